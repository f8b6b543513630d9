// Package broker fans server-sent events out from a log to subscribers.
//
// A [Broker] follows a [store.Store]: every update appended to the log (by
// [Broker.Publish] in this process, or by another node that shares the
// store) is encoded once to its SSE bytes, and those same immutable bytes
// are queued to every matching subscriber. Nothing is re-encoded per
// subscriber.
//
// # Mounting
//
// A Broker is an [http.Handler]: mount it anywhere, as the seed article
// mounts /api/events:
//
//	st := memstore.New(memstore.Config{})
//	b, _ := broker.New(st, broker.Config{})
//	mux.Handle("/api/events", b) // GET /api/events?topic=prices
//
// Applications that authorize subscribers themselves call
// [Broker.Subscribe] from their own handler with a [Subscription].
//
// # Replay
//
// A client that reconnects with a Last-Event-ID header (or ?lastEventID=)
// first receives every retained update after that id, then live updates,
// with no gap and no duplicate at the seam: the subscriber is registered
// before the replay is read, and live updates at or before the replayed
// range are skipped. If the log no longer holds the id, the response header
// Last-Event-ID is "earliest" and the whole retained history is replayed.
// Replays inside the recent window ([Config.ReplayCache]) write the bytes the
// fan-out already encoded; older ones read the store.
//
// # The delivery guarantee
//
// A subscriber gets every update after its position exactly once, in log
// order, or it is told that it may have missed some. When updates a running
// stream is owed are trimmed before they reach it (the broker's tail or a
// replay fell behind the retained history) the stream is ended with
// [ErrHistoryGap]; when the store reports that its log was reset every
// stream is ended with [ErrLogReset]. Either way the client reconnects with
// its Last-Event-ID and is replayed exactly, or answered "earliest". A
// client that stops reading is cut after [Config.WriteTimeout]
// ([ErrWriteTimeout]). [Stats] counts each.
//
// # Slow subscribers
//
// Fan-out never blocks. Each subscriber has a bounded backlog
// ([Config.MaxPending] bytes); a subscriber that falls further behind is
// disconnected and resumes from its Last-Event-ID. The publisher and other
// subscribers never wait for it.
//
// # Parked connections
//
// Once the response head and any replay are written, a plain HTTP/1.1
// stream is hijacked and handed to a small fixed pool of writer goroutines
// driven by epoll (package internal/netpoll): an idle subscriber costs a few
// hundred bytes instead of a goroutine and its buffers, and queued updates
// go out with one vectored write. HTTP/2 and TLS streams, and handlers
// behind wrappers that cannot hijack, are served on their handler goroutine
// with the same semantics. Parked streams are close-delimited (Connection:
// close), which every EventSource implementation accepts.
//
// # Presence
//
// [Config.OnSubscription] is told when each stream starts and ends, with the
// [Subscription.Subscriber] and [Subscription.Payload] the caller attached,
// and [Broker.Subscriptions] lists the open streams. The Mercure hub builds
// its subscription events and subscriptions API on them.
//
// # Heartbeats and shutdown
//
// One shared ticker sends a comment to every stream that was idle for a
// whole [Config.Heartbeat] interval. [Broker.Shutdown] ends every stream
// (parked or not), so a following http.Server.Shutdown does not wait on
// them.
package broker
