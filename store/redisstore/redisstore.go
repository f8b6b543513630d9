package redisstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/herald-sse/herald/internal/seqwait"
	"github.com/herald-sse/herald/store"
)

// Defaults for the zero fields of Config.
const (
	// DefaultPrefix is the key prefix when Config.Prefix is empty.
	DefaultPrefix = "herald"
	// DefaultMaxLen is the number of updates kept when Config.MaxLen is 0.
	DefaultMaxLen = 100_000
	// DefaultMaxBytes bounds the retained updates' size when
	// Config.MaxBytes is 0: 64 MiB, in Redis's memory.
	DefaultMaxBytes = 64 << 20
	// DefaultBlockTime is how long one XREAD of the follower blocks when
	// Config.BlockTime is 0.
	DefaultBlockTime = 5 * time.Second
)

// trimBudget is the most entries one Append trims.
const trimBudget = 1000

// closeTimeout bounds the Redis calls made by Close.
const closeTimeout = 2 * time.Second

// Config configures a Store. The zero value is valid: every zero field means
// the documented default.
type Config struct {
	// Prefix starts every key of the log, inside a Redis Cluster hash tag:
	// "{Prefix}:log" and so on. Nodes that share a log use the same
	// Prefix; different logs on one Redis use different ones. Empty means
	// DefaultPrefix ("herald"). It must not contain '{' or '}'.
	Prefix string
	// MaxLen is the number of newest updates kept; appending beyond it
	// trims the oldest, exactly. Zero means DefaultMaxLen (100,000).
	// Negative is invalid.
	MaxLen int
	// MaxBytes bounds the size of the retained updates: appending trims
	// the oldest while their entries add up to more (an entry counts its
	// field values plus 64 bytes, at least store.Size of the update). An
	// update bigger than MaxBytes by itself is refused with
	// store.ErrInvalid, so the newest update is always kept. Zero means
	// DefaultMaxBytes (64 MiB). Negative is invalid.
	MaxBytes int64
	// MaxAge trims the oldest updates while their Time is older than
	// MaxAge by the Redis server clock (stopping at the first younger
	// one), checked when updates are appended. The newest update is always
	// kept. Zero means no age limit. Negative is invalid.
	MaxAge time.Duration
	// BlockTime is how long one XREAD BLOCK of the follower that wakes
	// Wait lasts before it is issued again, and so how often an idle
	// follower checks that the log was not lost (see the package doc):
	// shorter notices a dead connection or a lost log sooner, at the cost
	// of a round trip per BlockTime on an idle log. Zero means
	// DefaultBlockTime (5s). It must be 0 or at least a millisecond.
	BlockTime time.Duration
	// Logger receives the follower's errors and recoveries, and an ERROR
	// for every lost log detected. Nil discards them.
	Logger *slog.Logger
}

// Store is a log on Redis Streams. It is safe for concurrent use, also by
// several processes that share the Redis keys. Create it with [New]; the
// caller closes it with [Store.Close], then closes the Redis client.
//
// Updates returned by Read are fresh copies.
type Store struct {
	rdb  redis.UniversalClient
	cfg  Config
	log  *slog.Logger
	keys []string // seq, log, ids, trimmed, epoch, bytes: the keys of appendScript
	// Individual keys.
	seqKey, logKey, idsKey, trimmedKey, epochKey, wakeKey string
	// epochSeed and epochN make the fresh epochs that Append offers.
	epochSeed string
	epochN    atomic.Uint64
	// budget is the most entries one Append trims (trimBudget but in
	// tests).
	budget int

	closed atomic.Bool
	cancel context.CancelFunc // stops the follower
	wg     sync.WaitGroup     // the follower

	// wait holds the highest Seq known to be in the log, advanced by every
	// call that sees one, and wakes every Wait. Its floor is gen.base.
	wait seqwait.Waiter

	// gmu guards gen. A reply is turned into Seqs, and wait advanced,
	// under gmu, so that a reset sees every Seq handed out before it.
	// Lock order: gmu, then wait's own lock.
	gmu sync.Mutex
	gen generation

	// xreadCancel ends the follower's blocked XREAD, so that it follows
	// a new generation at once. Guarded by gmu.
	xreadCancel context.CancelFunc

	// Owned by the follower: the newest entry it has seen in generation
	// anchorGen, which must still be there (or trimmed) while the log is
	// the same.
	anchorGen uint64
	anchorSeq uint64 // a Redis position
	anchorID  string
}

// generation is the log a Store believes in. Seq = base + the Redis
// position (the stream id "0-<n>"). A lost log starts a new generation
// whose base is the highest Seq handed out before, so Seqs keep
// increasing and stale positions (up to base) are recognized.
type generation struct {
	n     uint64 // counts resets
	v     uint64 // counts changes of epoch: resets and adoptions
	epoch string // the log's epoch key, "" while it has none
	base  uint64
}

var _ store.Store = (*Store)(nil)

// New returns a store on the log under cfg.Prefix, creating it on the first
// Append. It does not talk to Redis, so it succeeds while Redis is down;
// the caller may Ping rdb first. It starts the goroutine that follows the
// log, which Close stops. New returns an error for a nil rdb or an invalid
// cfg.
func New(rdb redis.UniversalClient, cfg Config) (*Store, error) {
	switch {
	case rdb == nil:
		return nil, errors.New("redisstore: new: nil redis client")
	case cfg.MaxLen < 0 || cfg.MaxAge < 0 || cfg.BlockTime < 0 || cfg.MaxBytes < 0:
		return nil, fmt.Errorf("redisstore: new: negative field in config %+v", cfg)
	case cfg.BlockTime > 0 && cfg.BlockTime < time.Millisecond:
		return nil, fmt.Errorf("redisstore: new: block time %v below 1ms", cfg.BlockTime)
	case strings.ContainsAny(cfg.Prefix, "{}"):
		return nil, fmt.Errorf("redisstore: new: prefix %q contains '{' or '}'", cfg.Prefix)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.MaxLen == 0 {
		cfg.MaxLen = DefaultMaxLen
	}
	if cfg.BlockTime == 0 {
		cfg.BlockTime = DefaultBlockTime
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := "{" + cfg.Prefix + "}:"
	s := &Store{
		rdb:        rdb,
		cfg:        cfg,
		log:        log,
		keys:       []string{p + "seq", p + "log", p + "ids", p + "trimmed", p + "epoch", p + "bytes"},
		seqKey:     p + "seq",
		logKey:     p + "log",
		idsKey:     p + "ids",
		trimmedKey: p + "trimmed",
		epochKey:   p + "epoch",
		wakeKey:    p + "wake:" + uuid.NewString(),
		epochSeed:  uuid.NewString(),
		budget:     trimBudget,
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Go(func() { s.follow(ctx) })
	return s, nil
}

// Append stores u and returns it with Seq, ID and Time set. It copies
// u.Topics, so the caller may reuse the slice.
func (s *Store) Append(ctx context.Context, u store.Update) (store.Update, error) {
	if err := store.Validate(u); err != nil {
		return store.Update{}, fmt.Errorf("redisstore: append: %w", err)
	}
	if s.closed.Load() {
		return store.Update{}, fmt.Errorf("redisstore: append: %w", store.ErrClosed)
	}
	explicit := u.ID != ""
	if !explicit {
		u.ID = store.NewID()
	}
	return s.append(ctx, u, explicit)
}

// append runs appendScript for u, whose ID is set; explicit tells whether
// the caller chose it.
func (s *Store) append(ctx context.Context, u store.Update, explicit bool) (store.Update, error) {
	args, err := s.appendArgs(u, explicit)
	if err != nil {
		return store.Update{}, err
	}
	for {
		g := s.generation()
		res, err := appendScript.Run(ctx, s.rdb, s.keys, args...).Result()
		if err != nil {
			if sent(err) {
				return store.Update{}, fmt.Errorf("redisstore: append: %w (%w)", store.ErrOutcomeUnknown, err)
			}
			return store.Update{}, fmt.Errorf("redisstore: append: %w", err)
		}
		seq, ts, epoch, err := parseAppendReply(res)
		if err == nil && seq < 0 { // only a batch's stop key answers -1
			err = fmt.Errorf("redisstore: append: unexpected script reply %v", res)
		}
		if err != nil {
			return store.Update{}, err
		}
		if seq == 0 {
			s.resolve(epoch, g, 0)
			if explicit {
				return store.Update{}, fmt.Errorf("redisstore: append %q: %w", u.ID, store.ErrDuplicateID)
			}
			// The generated id is in the index without its entry, which
			// only a hand edit of the keys does: draw another.
			u.ID = store.NewID()
			args[0] = u.ID
			continue
		}
		return s.appended(u, g, seq, ts, epoch)
	}
}

// appendArgs returns the ARGV of appendScript for u, or ErrInvalid when u
// is larger than the history's MaxBytes.
func (s *Store) appendArgs(u store.Update, explicit bool) ([]any, error) {
	topics, err := encodeTopics(u.Topics)
	if err != nil {
		return nil, fmt.Errorf("redisstore: append: %w", err)
	}
	var t string
	if !u.Time.IsZero() {
		t = encodeTime(u.Time)
	}
	private := "0"
	if u.Private {
		private = "1"
	}
	retry := strconv.FormatInt(int64(u.Retry), 10)
	// The server's TIME is "<10 digits>.<9 digits>" for centuries.
	if n := entrySize(u.ID, topics, u.Type, u.Data, retry, private, cmp.Or(t, "0000000000.000000000")); n > s.cfg.MaxBytes {
		return nil, fmt.Errorf("redisstore: append: update of %d bytes larger than the history's MaxBytes %d: %w",
			n, s.cfg.MaxBytes, store.ErrInvalid)
	}
	args := []any{u.ID, topics, u.Type, u.Data, retry, private, t,
		s.cfg.MaxLen, strconv.FormatFloat(s.cfg.MaxAge.Seconds(), 'f', -1, 64), s.budget, "1",
		s.epochSeed + "-" + strconv.FormatUint(s.epochN.Add(1), 10), s.cfg.MaxBytes}
	if explicit {
		args[10] = "0"
	}
	return args, nil
}

// parseAppendReply reads appendScript's {seq, time, epoch}.
func parseAppendReply(res any) (seq int64, ts, epoch string, err error) {
	r, ok := res.([]any)
	if !ok || len(r) != 3 {
		return 0, "", "", fmt.Errorf("redisstore: append: unexpected script reply %v", res)
	}
	seq, ok1 := r[0].(int64)
	ts, ok2 := r[1].(string)
	epoch, ok3 := r[2].(string)
	if !ok1 || !ok2 || !ok3 || seq < -1 {
		return 0, "", "", fmt.Errorf("redisstore: append: unexpected script reply %v", res)
	}
	return seq, ts, epoch, nil
}

// appended returns u as stored at Redis position seq with time ts, under
// the epoch of the reply; g is the generation taken before the command.
func (s *Store) appended(u store.Update, g generation, seq int64, ts, epoch string) (store.Update, error) {
	var err error
	if u.Time, err = parseTime(ts); err != nil {
		return store.Update{}, fmt.Errorf("redisstore: append: %w", err)
	}
	g2 := s.resolve(epoch, g, uint64(seq))
	if g2.epoch != epoch {
		// Appended to a log that another call has since found lost.
		return store.Update{}, fmt.Errorf("redisstore: append: %w: the log was lost meanwhile", store.ErrOutcomeUnknown)
	}
	u.Seq = g2.base + uint64(seq)
	u.Topics = slices.Clone(u.Topics)
	return u, nil
}

// sent reports whether err, from a command that failed, may have come
// after Redis received the command: anything but a reply from Redis, a
// refused connection or a pool timeout, which happen before.
func sent(err error) bool {
	var rerr redis.Error
	var operr *net.OpError
	switch {
	case errors.As(err, &rerr), errors.Is(err, redis.ErrPoolTimeout), errors.Is(err, redis.ErrClosed),
		errors.As(err, &operr) && operr.Op == "dial":
		return false
	}
	return true
}

// generation returns the store's current generation.
func (s *Store) generation() generation {
	s.gmu.Lock()
	defer s.gmu.Unlock()
	return s.gen
}

// resolve takes the epoch that a reply of Redis was read under, and the
// generation the caller took before sending the command. A different epoch
// means the log was lost: resolve starts a new generation (see reset).
// Then, if the reply's epoch is the current one, it advances the waiters
// to the reply's newest Redis position pos (0 for none) in it. It returns
// the current generation; the reply's positions are Seqs of it when its
// epoch is the reply's.
func (s *Store) resolve(epoch string, was generation, pos uint64) generation {
	s.gmu.Lock()
	defer s.gmu.Unlock()
	switch {
	case epoch == s.gen.epoch:
	case s.gen.epoch == "":
		// The first epoch seen, or the first Append on a log found lost
		// (or written by an older Herald that kept no epoch): the same
		// positions.
		s.gen.epoch = epoch
		s.gen.v++
	case was.v != s.gen.v && epoch == was.epoch:
		// A reply from the log that another call has since found lost.
		return s.gen
	default:
		s.resetLocked(epoch, "epoch changed")
	}
	if pos > 0 {
		s.wait.Advance(s.gen.base + pos)
	}
	return s.gen
}

// resetLocked starts a new generation: the log was lost, every Seq handed
// out so far is stale. s.gmu must be held.
func (s *Store) resetLocked(epoch, why string) {
	old := s.gen
	s.gen = generation{n: old.n + 1, v: old.v + 1, epoch: epoch, base: s.wait.Reset()}
	if s.xreadCancel != nil {
		s.xreadCancel()
	}
	s.log.Error("redisstore: the log was lost or restarted its positions: positions and ids taken before are stale",
		"key", s.logKey, "why", why, "old_epoch", old.epoch, "new_epoch", epoch, "last_seq", s.gen.base)
}

// Lookup returns the Seq of the retained update with the given id, or
// store.ErrNotFound. It is one HGET.
func (s *Store) Lookup(ctx context.Context, id string) (uint64, error) {
	if s.closed.Load() {
		return 0, fmt.Errorf("redisstore: lookup: %w", store.ErrClosed)
	}
	g := s.generation()
	pipe := s.rdb.TxPipeline()
	hget := pipe.HGet(ctx, s.idsKey, id)
	ep := pipe.Get(ctx, s.epochKey)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return 0, fmt.Errorf("redisstore: lookup %q: %w", id, err)
	}
	epoch, err := optional(ep)
	if err != nil {
		return 0, fmt.Errorf("redisstore: lookup %q: %w", id, err)
	}
	v, err := hget.Result()
	if errors.Is(err, redis.Nil) {
		s.resolve(epoch, g, 0)
		return 0, fmt.Errorf("redisstore: lookup %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("redisstore: lookup %q: %w", id, err)
	}
	pos, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("redisstore: lookup %q: %w: seq %q", id, errCorrupt, v)
	}
	g2 := s.resolve(epoch, g, pos)
	if g2.epoch != epoch { // found in a log since lost
		return 0, fmt.Errorf("redisstore: lookup %q: %w", id, store.ErrNotFound)
	}
	return g2.base + pos, nil
}

// optional returns the value of a GET, "" for a missing key.
func optional(c *redis.StringCmd) (string, error) {
	v, err := c.Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	return v, err
}

// Read returns up to limit updates with Seq > after, oldest first, or
// store.ErrCursorGone when updates after `after` were trimmed. A limit of
// zero or less returns no updates.
func (s *Store) Read(ctx context.Context, after uint64, limit int) ([]store.Update, error) {
	if s.closed.Load() {
		return nil, fmt.Errorf("redisstore: read: %w", store.ErrClosed)
	}
	g := s.generation()
	if after != 0 && after <= g.base {
		return nil, fmt.Errorf("redisstore: read after %d: %w", after, store.ErrLogReset)
	}
	pos := after // the Redis position of after
	if after != 0 {
		pos -= g.base
	}
	if limit <= 0 || pos >= 1<<63-1 { // INCR never goes past MaxInt64
		return nil, nil
	}
	// XRANGE first, then the mark: see the package doc. MULTI makes the
	// epoch that of the entries.
	pipe := s.rdb.TxPipeline()
	rng := pipe.Do(ctx, "xrange", s.logKey, streamID(pos+1), "+", "count", limit)
	mark := pipe.Get(ctx, s.trimmedKey)
	ep := pipe.Get(ctx, s.epochKey)
	seqc := pipe.Get(ctx, s.seqKey)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("redisstore: read after %d: %w", after, err)
	}
	epoch, err := optional(ep)
	if err != nil {
		return nil, fmt.Errorf("redisstore: read after %d: %w", after, err)
	}
	counter, err := optional(seqc)
	if err != nil {
		return nil, fmt.Errorf("redisstore: read after %d: %w", after, err)
	}
	if after != 0 && after <= s.wait.Last() {
		// A position handed out, past the log's counter: the log
		// restarted below it.
		if n, _ := strconv.ParseUint(counter, 10, 64); n < pos {
			s.gmu.Lock()
			if s.gen.n == g.n {
				s.resetLocked(epoch, "position past the end of the log")
			}
			s.gmu.Unlock()
			return nil, fmt.Errorf("redisstore: read after %d: %w", after, store.ErrLogReset)
		}
	}
	if after != 0 {
		switch v, err := mark.Result(); {
		case errors.Is(err, redis.Nil):
		case err != nil:
			return nil, fmt.Errorf("redisstore: read after %d: %w", after, err)
		default:
			trimmed, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("redisstore: read after %d: %w: trimmed mark %q", after, errCorrupt, v)
			}
			if pos < trimmed && (epoch == g.epoch || g.epoch == "") {
				return nil, fmt.Errorf("redisstore: read after %d: %w", after, store.ErrCursorGone)
			}
		}
	}
	entries, err := rng.Slice()
	if err != nil {
		return nil, fmt.Errorf("redisstore: read after %d: %w", after, err)
	}
	out := make([]store.Update, len(entries))
	for i, e := range entries {
		if out[i], err = decodeEntry(e); err != nil {
			return nil, fmt.Errorf("redisstore: read after %d: %w", after, err)
		}
	}
	var newest uint64
	if len(out) > 0 {
		newest = out[len(out)-1].Seq
	}
	g2 := s.resolve(epoch, g, newest)
	switch {
	case g2.n != g.n && after != 0:
		return nil, fmt.Errorf("redisstore: read after %d: %w", after, store.ErrLogReset)
	case g2.epoch != epoch:
		return nil, nil // read from a log since lost
	}
	for i := range out {
		out[i].Seq += g2.base
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// Wait blocks until an update with Seq > after is in the log, ctx is done
// or the store is closed. It returns store.ErrLogReset when the log was
// found lost since after was taken. It does not call Redis: the store's
// follower wakes it.
func (s *Store) Wait(ctx context.Context, after uint64) error {
	err := s.wait.Wait(ctx, after)
	if errors.Is(err, store.ErrClosed) {
		return fmt.Errorf("redisstore: wait: %w", err)
	}
	return err
}

// Last returns the Seq and ID of the newest update, or 0 and "" when the
// log is empty.
func (s *Store) Last(ctx context.Context) (uint64, string, error) {
	if s.closed.Load() {
		return 0, "", fmt.Errorf("redisstore: last: %w", store.ErrClosed)
	}
	for {
		g := s.generation()
		pipe := s.rdb.TxPipeline()
		rev := pipe.XRevRangeN(ctx, s.logKey, "+", "-", 1)
		ep := pipe.Get(ctx, s.epochKey)
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return 0, "", fmt.Errorf("redisstore: last: %w", err)
		}
		epoch, err := optional(ep)
		if err != nil {
			return 0, "", fmt.Errorf("redisstore: last: %w", err)
		}
		pos, id, err := newest(rev)
		if err != nil {
			return 0, "", fmt.Errorf("redisstore: last: %w", err)
		}
		g2 := s.resolve(epoch, g, pos)
		if g2.epoch != epoch {
			continue // read from a log since lost: read the new one
		}
		if pos == 0 {
			return 0, "", nil
		}
		return g2.base + pos, id, nil
	}
}

// newest returns the Redis position and the ID of the entry an XREVRANGE
// COUNT 1 returned, or 0 and "" for none.
func newest(c *redis.XMessageSliceCmd) (uint64, string, error) {
	msgs, err := c.Result()
	if err != nil || len(msgs) == 0 {
		return 0, "", err
	}
	pos, err := parseStreamID(msgs[0].ID)
	if err != nil {
		return 0, "", err
	}
	id, _ := msgs[0].Values["id"].(string)
	return pos, id, nil
}

// Close stops the follower, wakes every Wait with store.ErrClosed and makes
// later calls return store.ErrClosed. It does not close the Redis client,
// which the caller closes afterwards. Close is idempotent and returns nil.
// It takes a round trip to Redis; if Redis does not answer, at most the
// client's timeouts (for the follower's blocked XREAD: Config.BlockTime
// plus 10s in go-redis).
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	s.wait.Close()

	s.cancel()
	// End the follower's blocked XREAD now rather than after BlockTime.
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	pipe := s.rdb.Pipeline()
	pipe.XAdd(ctx, &redis.XAddArgs{Stream: s.wakeKey, Values: []any{"closed", "1"}})
	pipe.PExpire(ctx, s.wakeKey, time.Minute)
	_, werr := pipe.Exec(ctx)
	s.wg.Wait()
	if werr == nil {
		werr = s.rdb.Del(ctx, s.wakeKey).Err()
	}
	if werr != nil {
		s.log.Debug("redisstore: close: wake follower", "key", s.wakeKey, "err", werr)
	}
	return nil
}

// follow tails the log until ctx is done: it blocks in XREAD for an entry
// newer than the newest it knows, then asks for the newest entry (one
// round trip however many arrived) and wakes the waiters.
func (s *Store) follow(ctx context.Context) {
	const minBackoff, maxBackoff = 50 * time.Millisecond, 2 * time.Second
	backoff := minBackoff
	failing := false
	fail := func(op string, err error) bool {
		if ctx.Err() != nil {
			return false
		}
		if !failing {
			s.log.Warn("redisstore: following the log", "op", op, "key", s.logKey, "err", err)
			failing = true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
		return true
	}
	synced := false // s.wait reflects the stream as of the last XREAD
	for ctx.Err() == nil {
		if !synced {
			if err := s.sync(ctx); err != nil {
				if fail("sync", err) {
					continue
				}
				return
			}
			synced = true
		}
		s.gmu.Lock()
		cursor := s.wait.Last() - s.gen.base // the Redis position of the newest known
		rctx, rcancel := context.WithCancel(ctx)
		s.xreadCancel = rcancel
		s.gmu.Unlock()
		res, err := s.rdb.XRead(rctx, &redis.XReadArgs{
			Streams: []string{s.logKey, s.wakeKey, streamID(cursor), "0-0"},
			Count:   1,
			Block:   s.cfg.BlockTime,
		}).Result()
		s.gmu.Lock()
		s.xreadCancel = nil
		s.gmu.Unlock()
		reset := rctx.Err() != nil && ctx.Err() == nil
		rcancel()
		switch {
		case reset: // a new generation: follow it
			synced = false
			continue
		case errors.Is(err, redis.Nil): // timed out: check the log is still there
			synced = false
		case err != nil:
			synced = false
			if !fail("xread", err) {
				return
			}
		default:
			for _, st := range res {
				if st.Stream == s.logKey && len(st.Messages) > 0 {
					synced = false
				}
			}
		}
		if err == nil || errors.Is(err, redis.Nil) {
			if failing {
				s.log.Info("redisstore: following the log again", "key", s.logKey)
				failing = false
			}
			backoff = minBackoff
		}
	}
}

// sync reads the newest entry and wakes the waiters up to it, after
// checking that the log is the one the store follows: the same epoch, and
// the entry the follower saw newest last time still there with the same
// id (or trimmed), with the counter not below it. Anything else means the
// log was lost or went back (a failover to a replica that lagged, a restore
// of an old snapshot), and sync starts a new generation.
func (s *Store) sync(ctx context.Context) error {
	g := s.generation()
	pipe := s.rdb.TxPipeline()
	rev := pipe.XRevRangeN(ctx, s.logKey, "+", "-", 1)
	ep := pipe.Get(ctx, s.epochKey)
	seqc := pipe.Get(ctx, s.seqKey)
	mark := pipe.Get(ctx, s.trimmedKey)
	anchor := pipe.XRangeN(ctx, s.logKey, streamID(max(s.anchorSeq, 1)), streamID(max(s.anchorSeq, 1)), 1)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	epoch, err := optional(ep)
	if err != nil {
		return err
	}
	counter, err := optional(seqc)
	if err != nil {
		return err
	}
	trimmedv, err := optional(mark)
	if err != nil {
		return err
	}
	pos, id, err := newest(rev)
	if err != nil {
		return err
	}
	if s.anchorSeq > 0 && s.anchorGen == g.n && (epoch == g.epoch || g.epoch == "") {
		n, _ := strconv.ParseUint(counter, 10, 64)
		trimmed, _ := strconv.ParseUint(trimmedv, 10, 64)
		msgs, err := anchor.Result()
		if err != nil {
			return err
		}
		var why string
		switch {
		case n < s.anchorSeq:
			why = "the position counter went back"
		case len(msgs) == 0 && trimmed < s.anchorSeq:
			why = "an entry vanished without being trimmed"
		case len(msgs) > 0 && msgs[0].Values["id"] != s.anchorID:
			why = "an entry changed its id"
		}
		if why != "" {
			s.gmu.Lock()
			if s.gen.n == g.n {
				s.resetLocked(epoch, why)
			}
			s.gmu.Unlock()
		}
	}
	g2 := s.resolve(epoch, g, pos)
	if g2.epoch == epoch {
		s.anchorGen, s.anchorSeq, s.anchorID = g2.n, pos, id
	}
	return nil
}
