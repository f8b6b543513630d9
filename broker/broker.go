package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-sse/herald/sse"
	"github.com/herald-sse/herald/store"
)

// ErrShutdown is returned by Subscribe and Publish once Shutdown has begun.
var ErrShutdown = errors.New("broker: shut down")

// ErrTooManySubscribers is returned by Subscribe when Config.MaxSubscribers
// streams are already open.
var ErrTooManySubscribers = errors.New("broker: too many subscribers")

// ErrSlowConsumer is the reason a subscriber is disconnected when its backlog
// passes Config.MaxPending. The client reconnects with its Last-Event-ID and
// is replayed from the log.
var ErrSlowConsumer = errors.New("broker: subscriber too slow")

// ErrHistoryGap is the reason a stream is ended when updates it was owed
// are no longer in the log: its replay, or the broker's own tail, fell
// behind the retained history (store.ErrCursorGone). The client reconnects
// with its Last-Event-ID; if the log no longer holds that id the response
// says Last-Event-ID: earliest, so the client knows it missed updates,
// instead of a stream that silently skips them.
var ErrHistoryGap = errors.New("broker: updates owed to the stream were trimmed from the history")

// ErrLogReset is the reason every stream is ended when the store reports
// that the log lost updates or restarted its positions (store.ErrLogReset).
// Clients reconnect and resume from what the log still holds (ids it lost
// are answered Last-Event-ID: earliest).
var ErrLogReset = errors.New("broker: the log was reset")

// ErrWriteTimeout is the reason a stream is ended when its client stopped
// reading: its socket refused bytes for Config.WriteTimeout.
var ErrWriteTimeout = errors.New("broker: write timed out: the client stopped reading")

// ErrExpired is the reason a stream is ended at its Subscription.Until.
var ErrExpired = errors.New("broker: subscription expired")

// ErrDrained is the reason a stream is ended by Drain, after its final
// retry: hint.
var ErrDrained = errors.New("broker: drained")

// ErrNotReady is returned by Subscribe while the broker does not yet know
// the log's position (the store was unreachable when the broker started and
// still is). Subscribe answers 503 with Retry-After.
var ErrNotReady = errors.New("broker: log not reachable yet")

// Config configures a Broker. The zero value is valid: every zero field
// means the documented default.
type Config struct {
	// Logger receives the broker's logs. Nil discards them.
	Logger *slog.Logger
	// Heartbeat is the interval of the comment sent to streams that had no
	// other write in the last interval, so that proxies keep them open.
	// Zero means 15s; negative disables heartbeats.
	Heartbeat time.Duration
	// Retry is the reconnection time sent as "retry:" when a stream starts.
	// Zero means 2s; negative sends none.
	Retry time.Duration
	// MaxPending is the number of encoded bytes a subscriber may have queued
	// but not yet written before it is disconnected as too slow. Zero means
	// 1 MiB.
	MaxPending int
	// WriteTimeout cuts a client that stops reading: on the goroutine path
	// each batch of writes must be accepted by the socket within it, and a
	// parked stream is cut once its socket has refused bytes for this
	// long. Either way the clock runs only while the kernel's buffers for
	// the connection are full; a stream that is merely quiet is never cut.
	// Zero means 30s.
	WriteTimeout time.Duration
	// ReplayBatch is how many updates are read from the store at a time
	// when replaying or following the log. Zero means 256.
	ReplayBatch int
	// ReplayCache is how many bytes of recent updates, already encoded by
	// the fan-out, are kept for replays: a reconnecting client whose
	// position is in that window is replayed from the shared bytes without
	// reading or encoding anything, so a reconnect storm costs one encoding
	// per update, not one per client. Older positions read the store. Zero
	// means 8 MiB; negative disables the cache.
	ReplayCache int
	// NoPark keeps every stream on its handler goroutine instead of parking
	// plain HTTP/1.1 connections with the shared writer pool.
	NoPark bool
	// Writers is the number of writer goroutines of the parked-connection
	// pool. Zero means runtime.GOMAXPROCS(0).
	Writers int
	// MaxSubscribers caps the open streams; Subscribe answers 503 beyond
	// it, so a hub near its file-descriptor limit refuses cleanly instead
	// of failing to accept. Zero means no limit.
	MaxSubscribers int
	// IOUring submits each writer's batch of sends to the kernel in one
	// io_uring_enter call instead of one sendmsg per connection. Where the
	// kernel refuses io_uring (often in containers) the pool logs it and
	// falls back to sendmsg.
	IOUring bool
	// OnSubscription, if set, is called once when a stream starts (after it
	// is registered, so [Broker.Subscriptions] already lists it) with
	// Active true, and once when it ends with Active false; the start is
	// always reported before the end. It is called from whatever goroutine
	// starts or ends the stream, including the parked-connection writers,
	// so it MUST NOT block: no I/O, no long locks, no unbuffered channel
	// sends. Hand the event to a goroutine of your own without waiting.
	// Nil means no callback.
	OnSubscription func(Presence)
}

func (c *Config) setDefaults() error {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = 15 * time.Second
	}
	if c.Retry == 0 {
		c.Retry = 2 * time.Second
	}
	if c.MaxPending == 0 {
		c.MaxPending = 1 << 20
	}
	if c.MaxPending < 0 {
		return fmt.Errorf("broker: negative MaxPending %d", c.MaxPending)
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 30 * time.Second
	}
	if c.ReplayBatch == 0 {
		c.ReplayBatch = 256
	}
	if c.ReplayCache == 0 {
		c.ReplayCache = 8 << 20
	}
	if c.ReplayBatch < 0 || c.Writers < 0 || c.MaxSubscribers < 0 {
		return errors.New("broker: negative ReplayBatch, Writers or MaxSubscribers")
	}
	return nil
}

// Subscription describes what one stream receives.
type Subscription struct {
	// Topics are the topic selectors the subscriber asked for: an exact
	// topic, "*" for every topic, or an RFC 6570 URI template. At least one
	// is required.
	Topics []string
	// LastEventID, if set, asks for replay of every retained update after
	// that id before live delivery. "earliest" replays all retained history.
	// An id the log does not hold (never seen, or trimmed) also replays all
	// retained history, and the response's Last-Event-ID header says
	// "earliest" so the client knows events may be missing.
	LastEventID string
	// Private are the selectors that authorize private updates (from the
	// subscriber's token). Nil means the subscriber receives public updates
	// only.
	Private []string
	// Subscriber identifies the subscriber in [Presence] events and
	// [Broker.Subscriptions] (the Mercure hub sets it from the token's "sub"
	// claim, or generates a "urn:uuid:..." id). The broker does not
	// interpret it; empty is allowed.
	Subscriber string
	// Payload is free-form data about the subscriber (the Mercure hub sets
	// it from the token's payload), reported as is in [Presence] events. The
	// broker does not interpret it; nil means none.
	Payload any
	// Until, if not zero, ends the stream at that time with ErrExpired: the
	// Mercure hub sets it to the subscriber token's expiry, so a stream
	// never outlives the right to receive it. The client reconnects, with a
	// fresh token, and resumes from its Last-Event-ID.
	Until time.Time
}

// Presence describes a stream that started or ended: see
// [Config.OnSubscription] and [Broker.Subscriptions].
type Presence struct {
	// Subscriber is the [Subscription.Subscriber] of the stream.
	Subscriber string
	// Topics are the stream's topic selectors, as given in
	// [Subscription.Topics]. They are shared with the broker: do not modify
	// them.
	Topics []string
	// Payload is the [Subscription.Payload] of the stream.
	Payload any
	// Active is true while the stream is open, false once it has ended.
	Active bool
}

// Broker fans updates out from a store to subscribers.
//
// A Broker follows its store with one goroutine, so every update appended
// to the log (by this process through Publish, or by another node sharing
// the store) is encoded once and its bytes queued to every matching
// subscriber. Publishing costs O(matching subscribers): subscribers are
// indexed by exact topic, and only "*" and template subscribers are tested
// one by one.
//
// A Broker is safe for concurrent use. Create it with New and stop it with
// Shutdown; the caller owns the store and closes it after Shutdown.
//
// Lock order: Broker.mu, then subscriber.mu, then the writer pool's
// internal locks. The cache's, graveMu and the pool's locks are leaves. The
// writer pool's callbacks (subscriber.Take, subscriber.Closed) never take
// Broker.mu: a parked stream that ends is handed to the reaper goroutine,
// which unregisters it.
type Broker struct {
	st  store.Store
	cfg Config
	log *slog.Logger

	ctx    context.Context // canceled by Shutdown
	cancel context.CancelFunc
	wg     sync.WaitGroup // the broker's own goroutines
	subWG  sync.WaitGroup // streams being served
	park   parker         // nil when parking is off or unsupported

	mu    sync.RWMutex
	exact map[string]topicSet
	wild  map[*subscriber]struct{}
	// slots holds every open stream, by heartbeat slot, so that a
	// heartbeat tick visits only its own slot's streams.
	slots      [heartbeatSlots]map[*subscriber]struct{}
	nsubs      int
	dispatched uint64 // Seq of the last update fanned out (written by the tail goroutine only: under mu.RLock in dispatch, under mu.Lock in resync)
	nextSlot   uint   // heartbeat slot of the next subscriber
	nslots     int    // heartbeat slots in use: fewer for intervals under ~1 s
	closed     bool

	heartbeat []byte
	retry     []byte

	cache *replayCache
	arena arena       // the tail's
	memo  Memo        // the tail's: template results of the update being dispatched
	ready atomic.Bool // the tail knows the log's position and its last read succeeded

	draining    atomic.Bool
	drainSpread atomic.Int64 // time.Duration of Drain

	// Parked streams that ended, for the reaper to unregister.
	graveMu sync.Mutex
	grave   []*subscriber
	reapCh  chan struct{} // cap 1: wakes the reaper

	published     atomic.Uint64
	delivered     atomic.Uint64
	dropped       atomic.Uint64
	gaps          atomic.Uint64
	resets        atomic.Uint64
	writeTimeouts atomic.Uint64
	written       atomic.Uint64 // event bytes written by stream goroutines (the pool counts its own)
	parked        atomic.Int64

	slowLog, readLog logLimiter
}

// New returns a broker that follows st from its current end, and starts its
// goroutines. The broker does not own st: the caller closes st after
// Shutdown.
func New(st store.Store, cfg Config) (*Broker, error) {
	if st == nil {
		return nil, errors.New("broker: nil store")
	}
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Broker{
		st:        st,
		cfg:       cfg,
		log:       cfg.Logger,
		ctx:       ctx,
		cancel:    cancel,
		exact:     make(map[string]topicSet),
		wild:      make(map[*subscriber]struct{}),
		heartbeat: sse.AppendComment(nil, ""),
		nslots:    int(min(max(cfg.Heartbeat/time.Millisecond, 1), heartbeatSlots)),
		reapCh:    make(chan struct{}, 1),
	}
	if cfg.Retry > 0 {
		b.retry = sse.AppendRetry(nil, cfg.Retry)
	}
	// An unreachable store does not stop the broker: the tail retries with
	// backoff and Ready reports false until it succeeds, so a hub restarted
	// during an engine outage starts unready instead of crash-looping.
	last, _, err := st.Last(ctx)
	switch {
	case errors.Is(err, store.ErrClosed):
		cancel()
		return nil, fmt.Errorf("broker: read log end: %w", err)
	case err != nil:
		b.log.Warn("broker: log unreachable; retrying", "err", err)
	default:
		b.dispatched = last
		b.ready.Store(true)
	}
	b.cache = newReplayCache(cfg.ReplayCache, last)
	if !cfg.NoPark {
		p, err := newParker(cfg)
		if err != nil {
			b.log.Info("broker: parking unavailable, one goroutine per stream", "err", err)
		} else {
			b.park = p
		}
	}
	b.wg.Go(b.tail)
	b.wg.Go(b.reaper)
	if cfg.Heartbeat > 0 {
		b.wg.Go(b.heartbeats)
	}
	return b, nil
}

// Publish appends u to the store and returns the stored update (with its
// Seq and ID). Delivery to subscribers follows from the log.
func (b *Broker) Publish(ctx context.Context, u store.Update) (store.Update, error) {
	if b.ctx.Err() != nil {
		return store.Update{}, ErrShutdown
	}
	return b.st.Append(ctx, u)
}

// PublishBatch appends ups to the store in order and returns one result
// and one error per update, as [store.AppendBatch] does: with stop set,
// the updates after the first failure are not appended
// ([store.ErrNotAttempted]). A store that implements
// [store.BatchAppender] appends them together (the boltstore: one
// transaction and one fsync for the whole batch), which is what makes a
// batch cheaper than as many Publish calls.
func (b *Broker) PublishBatch(ctx context.Context, ups []store.Update, stop bool) ([]store.Update, []error) {
	if b.ctx.Err() != nil {
		errs := make([]error, len(ups))
		for i := range errs {
			errs[i] = ErrShutdown
		}
		return make([]store.Update, len(ups)), errs
	}
	return store.AppendBatch(ctx, b.st, ups, stop)
}

// tail follows the log and fans each update out. It starts from the
// position New read, or, if the store was unreachable then, from the end of
// the log once it is reachable.
func (b *Broker) tail() {
	var bo backoff
	b.mu.RLock()
	after := b.dispatched
	b.mu.RUnlock()
	if !b.ready.Load() {
		var ok bool
		if after, ok = b.lastWithRetry(); !ok {
			return
		}
		b.mu.Lock()
		b.dispatched = after
		b.mu.Unlock()
		b.cache.reset(after)
		b.ready.Store(true)
		b.log.Info("broker: log reachable", "position", after)
	}
	for {
		ups, err := b.st.Read(b.ctx, after, b.cfg.ReplayBatch)
		if err == nil && len(ups) == 0 {
			err = b.st.Wait(b.ctx, after)
			if err == nil {
				continue
			}
		}
		if err != nil {
			if b.ctx.Err() != nil || errors.Is(err, store.ErrClosed) {
				return
			}
			var ok bool
			switch {
			case errors.Is(err, store.ErrCursorGone):
				after, ok = b.resync(ErrHistoryGap, err)
			case errors.Is(err, store.ErrLogReset):
				after, ok = b.resync(ErrLogReset, err)
			default:
				b.ready.Store(false)
				if ok, n := b.readLog.allow(time.Second); ok {
					b.log.Error("broker: read log", "err", err, "suppressed", n)
				}
				ok = sleepCtx(b.ctx, bo.next())
			}
			if !ok {
				return
			}
			continue
		}
		bo.reset()
		b.ready.Store(true)
		for i := range ups {
			b.dispatch(&ups[i])
			after = ups[i].Seq
		}
	}
}

// resync handles a tail that can no longer follow the log from its
// position: the log was trimmed past it (reason ErrHistoryGap) or reset
// (ErrLogReset). Updates may have been missed, and no one can tell which
// streams they were for, so every open stream is ended with reason: its
// client reconnects with its Last-Event-ID and is replayed exactly, or told
// Last-Event-ID: earliest if the log no longer holds that id. The tail goes
// on from the log's current end. It reports false when the broker shuts
// down first.
func (b *Broker) resync(reason, cause error) (uint64, bool) {
	if reason == ErrLogReset {
		b.resets.Add(1)
		b.log.Error("broker: the log was reset (its engine lost data or restarted its positions); ending every stream so that clients resume from what the log holds", "err", cause)
	} else {
		b.log.Error("broker: fell behind the retained history; ending every stream so that clients resume from their ids", "err", cause)
	}
	last, ok := b.lastWithRetry()
	if !ok {
		return 0, false
	}
	b.mu.Lock()
	b.dispatched = last
	b.cache.reset(last) // under mu: no stream registers against stale entries
	subs := b.streams()
	b.mu.Unlock()
	var counter *atomic.Uint64
	if reason == ErrHistoryGap {
		counter = &b.gaps
	}
	for _, s := range subs {
		s.closeCounting(reason, counter)
	}
	return last, true
}

// lastWithRetry reads the log's end, retrying with backoff while the store
// fails. It reports false when the broker shuts down first.
func (b *Broker) lastWithRetry() (uint64, bool) {
	var bo backoff
	for {
		last, _, err := b.st.Last(b.ctx)
		if err == nil {
			return last, true
		}
		if b.ctx.Err() != nil || errors.Is(err, store.ErrClosed) {
			return 0, false
		}
		b.ready.Store(false)
		if ok, n := b.readLog.allow(time.Second); ok {
			b.log.Error("broker: read log end", "err", err, "suppressed", n)
		}
		if !sleepCtx(b.ctx, bo.next()) {
			return 0, false
		}
	}
}

// Ready reports whether the broker is following its log: it knows the log's
// position and its last read succeeded. A hub's readiness check uses it.
func (b *Broker) Ready() bool { return b.ready.Load() }

// backoff is a capped exponential delay: 50 ms doubling to 5 s.
type backoff struct{ d time.Duration }

func (bo *backoff) next() time.Duration {
	bo.d = min(max(bo.d*2, 50*time.Millisecond), 5*time.Second)
	return bo.d
}

func (bo *backoff) reset() { bo.d = 0 }

// logLimiter lets a repeated log line through at most once per interval and
// counts the ones it held back.
type logLimiter struct {
	next       atomic.Int64 // UnixNano before which lines are held back
	suppressed atomic.Int64
}

// allow reports whether to log now, and how many lines were held back
// since the last one logged.
func (l *logLimiter) allow(every time.Duration) (bool, int64) {
	now := time.Now().UnixNano()
	next := l.next.Load()
	if now < next || !l.next.CompareAndSwap(next, now+int64(every)) {
		l.suppressed.Add(1)
		return false, 0
	}
	return true, l.suppressed.Swap(0)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// encode returns the wire bytes of u. An update that cannot be encoded
// (validated on Append, so only a foreign writer could store one) is logged
// and skipped.
func (b *Broker) encode(u *store.Update) []byte {
	buf, err := sse.AppendEvent(make([]byte, 0, len(u.Data)+len(u.ID)+len(u.Type)+32), sse.Event{
		ID: u.ID, Type: u.Type, Data: u.Data, Retry: u.Retry,
	})
	if err != nil {
		b.log.Error("broker: skip update that cannot be encoded", "id", u.ID, "err", err)
		return nil
	}
	return buf
}

// dispatch queues u's bytes to every matching subscriber. The encoded
// update goes into the replay cache first, so that a stream registered with
// this update as its seam finds it there.
func (b *Broker) dispatch(u *store.Update) {
	e := encoded{seq: u.Seq, topics: u.Topics, private: u.Private, buf: b.arena.encode(b, u)}
	b.cache.add(e)
	buf := e.buf
	b.mu.RLock()
	defer b.mu.RUnlock()
	b.dispatched = u.Seq
	if buf == nil {
		return
	}
	b.published.Add(1)
	n := 0
	deliver := func(s *subscriber) {
		if u.Seq <= s.lastSeq { // matched another of u's topics already, or replayed
			return
		}
		s.lastSeq = u.Seq
		if u.Private && !s.private.MatchMemo(&b.memo) {
			return
		}
		if s.enqueue(buf) {
			n++
		}
	}
	b.memo.Reset(u.Topics)
	b.matching(u.Topics, &b.memo, deliver)
	b.delivered.Add(uint64(n))
}

// matching calls fn for every open stream whose selectors match one of
// topics: those indexed by exact topic, then the wildcard ones tested one by
// one. fn sees a stream once per matching exact topic, so it deduplicates
// updates with several topics. With mm (reset to topics), each distinct
// URI template is matched once for all the streams that hold it, so a
// thousand streams sharing one costly template cost one match per update.
// b.mu must be held (read or write).
func (b *Broker) matching(topics []string, mm *Memo, fn func(*subscriber)) {
	for _, t := range topics {
		set := b.exact[t]
		for _, s := range set.few {
			fn(s)
		}
		for s := range set.many {
			fn(s)
		}
	}
	for s := range b.wild {
		if mm != nil && s.topics.MatchMemo(mm) || mm == nil && s.topics.MatchAny(topics) {
			fn(s)
		}
	}
}

// register adds s to the index and returns the Seq of the last update
// already fanned out: s receives every later update live, and must be
// replayed up to and including that Seq. Live updates at or before from
// (the subscriber's Last-Event-ID position) are never delivered: the tail
// may not have fanned them out yet when a client that already has them
// connects.
func (b *Broker) register(s *subscriber, from uint64) (uint64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, ErrShutdown
	}
	if !b.ready.Load() {
		return 0, ErrNotReady
	}
	if b.cfg.MaxSubscribers > 0 && b.nsubs >= b.cfg.MaxSubscribers {
		return 0, ErrTooManySubscribers
	}
	b.subWG.Add(1)
	s.slot = uint16(b.nextSlot % uint(b.nslots))
	b.nextSlot++
	if b.slots[s.slot] == nil {
		b.slots[s.slot] = make(map[*subscriber]struct{})
	}
	b.slots[s.slot][s] = struct{}{}
	b.nsubs++
	if m := s.topics; len(m.exact) == 1 && m.wild == nil {
		// A stream of one exact topic, the most common kind, shares its
		// topic's matcher (a broadcast topic's streams hold one, not one
		// each). Nothing has read s.topics yet: s is not in the index.
		set := b.exact[m.exact[0]]
		if set.shared == nil {
			set.shared = m
		} else {
			s.topics = set.shared
		}
		b.exact[m.exact[0]] = set
	}
	for _, t := range s.topics.exact {
		set := b.exact[t]
		set.add(s)
		b.exact[t] = set
	}
	if s.topics.wildcard() {
		b.wild[s] = struct{}{}
	}
	s.lastSeq = max(b.dispatched, from)
	return b.dispatched, nil
}

// unregister removes s from the index and reports its end to
// Config.OnSubscription, once, whichever of the stream's paths calls it
// first.
func (b *Broker) unregister(s *subscriber) {
	b.mu.Lock()
	if _, ok := b.slots[s.slot][s]; !ok {
		b.mu.Unlock()
		return
	}
	delete(b.slots[s.slot], s)
	b.nsubs--
	if s.expiry != nil {
		s.expiry.Stop()
	}
	for _, t := range s.topics.exact {
		set := b.exact[t]
		set.remove(s)
		if set.len() == 0 {
			delete(b.exact, t)
		} else {
			b.exact[t] = set
		}
	}
	delete(b.wild, s)
	b.mu.Unlock()
	b.presence(s, false)
}

// retire hands a parked stream that ended to the reaper. It never blocks
// and takes no broker lock: the writer pool calls it.
func (b *Broker) retire(s *subscriber) {
	b.graveMu.Lock()
	b.grave = append(b.grave, s)
	b.graveMu.Unlock()
	select {
	case b.reapCh <- struct{}{}:
	default:
	}
}

// reaper unregisters the parked streams that ended, off the writer pool's
// goroutines.
func (b *Broker) reaper() {
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-b.reapCh:
			b.reap()
		}
	}
}

// reap unregisters every retired stream.
func (b *Broker) reap() {
	b.graveMu.Lock()
	grave := b.grave
	b.grave = nil
	b.graveMu.Unlock()
	for _, s := range grave {
		b.unregister(s)
	}
}

// presence reports the start or end of s to Config.OnSubscription.
func (b *Broker) presence(s *subscriber, active bool) {
	if b.cfg.OnSubscription != nil {
		b.cfg.OnSubscription(s.presence(active))
	}
}

// Subscriptions returns a snapshot of the open streams, in no particular
// order, every one with Active true. Safe for concurrent use; it holds the
// broker's read lock while it copies, so it costs O(open streams).
func (b *Broker) Subscriptions() []Presence {
	b.mu.RLock()
	defer b.mu.RUnlock()
	ps := make([]Presence, 0, b.nsubs)
	for _, s := range b.streams() {
		ps = append(ps, s.presence(true))
	}
	return ps
}

// streams returns every open stream. b.mu must be held.
func (b *Broker) streams() []*subscriber {
	subs := make([]*subscriber, 0, b.nsubs)
	for _, slot := range b.slots {
		for s := range slot {
			subs = append(subs, s)
		}
	}
	return subs
}

// LastEventID returns the id of the newest update in the log, or "" when
// the log is empty. Read it before [Broker.Subscriptions] to reconcile a
// snapshot with a stream that replays from this id: any change after the
// snapshot is then in the replay.
func (b *Broker) LastEventID(ctx context.Context) (string, error) {
	_, id, err := b.st.Last(ctx)
	if err != nil {
		return "", fmt.Errorf("broker: read log end: %w", err)
	}
	return id, nil
}

// heartbeatSlots spreads heartbeats over the interval: each subscriber
// belongs to one of these slots, and each tick of the shared ticker (every
// Heartbeat/heartbeatSlots, 15 ms by default) visits one slot's streams.
// Idle streams thus get their comment once per interval without many of
// them being written at the same instant, which would hold up live events
// queued behind them on the same writer: 18,000 idle streams written at
// once delayed a concurrent stream's events by up to 110 ms (BENCHMARKS.md,
// "Many topics"). It must fit subscriber.slot. Intervals shorter than
// heartbeatSlots milliseconds use one slot per millisecond, so that every
// stream is still visited once per interval.
const heartbeatSlots = 1024

// heartbeats sends a comment to every stream that was idle for a whole
// interval, from one shared ticker.
func (b *Broker) heartbeats() {
	t := time.NewTicker(b.cfg.Heartbeat / time.Duration(b.nslots))
	defer t.Stop()
	for slot := 0; ; slot = (slot + 1) % b.nslots {
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
		}
		b.mu.RLock()
		for s := range b.slots[slot] {
			if !s.busy.Swap(false) {
				s.enqueue(b.heartbeat)
				s.busy.Store(false) // a heartbeat is not activity
			}
		}
		b.mu.RUnlock()
	}
}

// Shutdown ends every stream and stops the broker's goroutines. It waits
// for the streams' handlers to return, or for ctx. Calling it more than once
// is harmless. After Shutdown, http.Server.Shutdown no longer waits on
// event streams.
func (b *Broker) Shutdown(ctx context.Context) error {
	b.mu.Lock()
	b.closed = true
	subs := b.streams()
	b.mu.Unlock()
	b.cancel()
	for _, s := range subs {
		s.close(ErrShutdown)
	}
	var err error
	if b.park != nil {
		err = b.park.Close()
	}
	done := make(chan struct{})
	go func() {
		b.wg.Wait()
		b.subWG.Wait()
		b.reap() // parked streams the pool closed after the reaper stopped
		close(done)
	}()
	select {
	case <-done:
		return err
	case <-ctx.Done():
		return errors.Join(err, fmt.Errorf("broker: shutdown: %w", ctx.Err()))
	}
}

// Drain ends every stream gracefully, spreading the clients' reconnections
// over spread: each stream gets, after the last complete event queued to
// it, a final "retry:" of Config.Retry plus a uniformly random delay in
// [0, spread), and then ends. Thousands of clients of a hub that shuts down
// thus come back over spread instead of in the same second. Streams that
// start after Drain is called get the same treatment after their replay.
// Drain returns when every stream has ended, or with ctx.Err(). It does not
// stop the broker: call Shutdown after it.
func (b *Broker) Drain(ctx context.Context, spread time.Duration) error {
	b.drainSpread.Store(int64(max(spread, 0)))
	b.draining.Store(true)
	b.mu.RLock()
	subs := b.streams()
	b.mu.RUnlock()
	for _, s := range subs {
		s.finish(b.finalRetry())
	}
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		b.mu.RLock()
		n := b.nsubs
		b.mu.RUnlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("broker: drain: %d streams still open: %w", n, ctx.Err())
		case <-t.C:
		}
	}
}

// finalRetry is the last retry: hint of a draining stream: Config.Retry
// (or the EventSource default of about 3 s when none is sent) plus a random
// share of the drain's spread.
func (b *Broker) finalRetry() []byte {
	d := b.cfg.Retry
	if d <= 0 {
		d = 3 * time.Second
	}
	if spread := b.drainSpread.Load(); spread > 0 {
		d += time.Duration(rand.Int64N(spread))
	}
	return sse.AppendRetry(nil, d)
}

// Stats is a snapshot of broker counters.
type Stats struct {
	Subscribers   int    // open streams
	Parked        int    // streams held by the shared writer pool
	Topics        int    // distinct exact topics with at least one subscriber
	Published     uint64 // updates fanned out since start
	Delivered     uint64 // deliveries queued to subscribers since start
	Dropped       uint64 // subscribers disconnected as too slow since start
	Gaps          uint64 // streams ended because updates owed to them were trimmed (ErrHistoryGap)
	Resets        uint64 // log resets detected (ErrLogReset); each ends every stream
	WriteTimeouts uint64 // streams cut because their client stopped reading (ErrWriteTimeout)
	BytesWritten  uint64 // event bytes written to subscribers (replays, events, heartbeats; not response heads)
}

// poolWritten is what the writer pool's sockets accepted.
func (b *Broker) poolWritten() uint64 {
	if b.park == nil {
		return 0
	}
	return b.park.Written()
}

// Stats returns the current counters. Safe for concurrent use.
func (b *Broker) Stats() Stats {
	b.mu.RLock()
	n, topics := b.nsubs, len(b.exact)
	b.mu.RUnlock()
	return Stats{
		Subscribers:   n,
		Parked:        int(b.parked.Load()),
		Topics:        topics,
		Published:     b.published.Load(),
		Delivered:     b.delivered.Load(),
		Dropped:       b.dropped.Load(),
		Gaps:          b.gaps.Load(),
		Resets:        b.resets.Load(),
		WriteTimeouts: b.writeTimeouts.Load(),
		BytesWritten:  b.written.Load() + b.poolWritten(),
	}
}
