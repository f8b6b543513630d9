// Package redisstore is a [store.Store] on Redis Streams, so that several
// Herald nodes behind a load balancer share one history: an update
// published to any node is delivered by every node, with the same Seq and
// id, and a client may reconnect to any node with its Last-Event-ID.
//
// It needs Redis 5 or later (streams; tested with 7.0), and works on a
// single server, Sentinel or Redis Cluster through any
// [redis.UniversalClient].
//
// # Keys
//
// All keys of one log start with the hash tag "{prefix}" (Config.Prefix,
// "herald" by default), so they live in one Cluster slot and one script
// can touch all of them:
//
//   - {prefix}:log, a stream with one entry per retained update;
//   - {prefix}:seq, a counter: the Seq of the newest update ever appended;
//   - {prefix}:ids, a hash from update id to Seq, so Lookup is one HGET;
//   - {prefix}:trimmed, the highest Seq ever trimmed (absent when nothing
//     was), which tells Read that a position is gone;
//   - {prefix}:epoch, a random value created by the first Append of a log,
//     which tells every node that the log was lost (see below);
//   - {prefix}:bytes, the size of the retained entries, for MaxBytes;
//   - {prefix}:wake:<uuid>, a short-lived stream (60s TTL) that Close writes
//     to end its own blocked XREAD at once.
//
// # Appending
//
// Append runs one Lua script, atomically: it rejects an id that is already
// in the hash, takes seq = INCR {prefix}:seq, adds the entry with the
// explicit stream id "0-<seq>" (so Seq maps one to one to stream ids, and
// the increasing counter keeps them increasing as Redis requires), records
// the id, then trims. Seqs are contiguous in practice; the contract only
// promises that they increase.
//
// AppendBatch sends a batch in one round trip: a pipeline of SCRIPT LOAD
// and one run of the same script per update. With stop, the runs share a
// stop key ({prefix}:batch:<uuid>, deleted at the end of the pipeline,
// expiring after a minute otherwise): the first run that refuses its id
// sets it, and the later ones append nothing.
//
// The client retries a command whose connection broke before the reply
// came (go-redis does, up to Options.MaxRetries), so the script may run
// twice for one Append. For an id that Append generated, the second run
// finds the id and returns the first run's Seq instead of appending again:
// a retry never publishes an update twice. For an id the caller chose, it
// returns [store.ErrDuplicateID], as for any id already retained: set
// Options.MaxRetries to -1 for exact answers, as herald serve does. Then
// an Append whose reply is lost or late (a timeout, a broken connection
// after the command was sent) returns [store.ErrOutcomeUnknown]: retry
// with the same id. Set Options.ContextTimeoutEnabled so that a context
// deadline bounds the command.
//
// Trimming is exact: while the stream holds more than Config.MaxLen
// entries, or while its oldest entry is older than Config.MaxAge, the
// oldest entry is deleted and its id removed from the hash; the newest
// entry is never trimmed, and the Seq of the last one trimmed is stored in
// {prefix}:trimmed. Age is checked against the Redis server clock, when
// updates are appended, so an idle log keeps its last updates. One Append
// trims at most 1,000 entries, so that lowering MaxLen on a long log does
// not block Redis: the excess then drains by 1,000 per Append. Every node
// of a log should use the same MaxLen and MaxAge.
//
// # Entries
//
// Each stream entry has the fields, always all of them and in this order
// (Redis then stores the field names once per stream node):
//
//	id       the update id
//	topics   the topics as a JSON array of strings
//	type     the event type ("" for the default)
//	data     the payload
//	retry    the reconnection hint in nanoseconds ("0" for none)
//	private  "1" or "0"
//	time     "<unix seconds>.<nanoseconds, 9 digits>"
//
// Update.Time, when the caller leaves it zero, is taken from the Redis
// server's TIME inside the script (microsecond precision), so every node
// agrees on the clock that age retention compares against. An explicit
// Time is stored exactly.
//
// # Reading and waiting
//
// Read is one pipeline of XRANGE from "0-<after+1>" and GET of the trimmed
// mark, in that order: if updates after `after` were trimmed before the
// XRANGE ran, the mark read after it shows it, and Read returns
// [store.ErrCursorGone] rather than a silent gap.
//
// Each Store runs one goroutine that follows the log with XREAD BLOCK
// (Config.BlockTime at a time) and wakes the local Wait calls when a newer
// update appears, whichever node appended it. Wait itself never talks to
// Redis, so any number of waiting subscribers cost one Redis connection
// per node (the follower's, taken from the client's pool), and Wait
// returns as soon as its ctx is done or the store is closed. Close ends the
// follower's blocked XREAD at once by adding an entry to the wake stream
// that the XREAD also watches.
//
// # Lost logs
//
// If the keys are deleted or lost while nodes run (FLUSHALL, a restart
// without persistence, a failover to a replica that lagged, an old
// snapshot restored), Redis positions restart. Each Store notices: Read,
// Lookup, Last and Append read the epoch in the same MULTI (or script) as
// their data, and the follower checks, every BlockTime and after every
// reconnection, that the newest entry it saw is still there with the same
// id (or was trimmed) and that the counter did not go below it. It then
// logs an ERROR and starts a new generation: Seq is the Redis position
// plus a base, 0 until the first reset, then the highest Seq the Store had
// handed out, so Seqs keep increasing and stale positions are recognized:
// [Store.Wait] and [Store.Read] report [store.ErrLogReset] for them. The
// Seqs of one update may then differ between nodes; ids do not.
//
// # Durability and ownership
//
// Append returns once the Redis primary has run the script; how durable
// that is depends on the server's persistence (appendonly, appendfsync) and
// replication.
//
// The caller owns the Redis client: it creates it, passes it to [New], and
// closes it after [Store.Close].
package redisstore
