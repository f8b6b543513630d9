package hub

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-sse/herald/broker"
	"github.com/herald-sse/herald/store"
)

// presenceTimeout bounds each call of the hub to its presence registry.
const presenceTimeout = 5 * time.Second

// presenceFeed keeps this hub's subscriptions in the presence registry and
// turns the registry's changes, this hub's and other hubs', into
// subscription events.
//
// Subscription events are live only ([broker.Broker.PublishLive]): they
// never enter the history, so connect/disconnect churn costs no log
// positions and evicts no publisher's update. Every hub of a cluster
// watches the shared registry and delivers each change to its own
// subscribers, so the events still reach every hub.
//
// Starts and ends are queued by OnSubscription without waiting (the broker
// calls it from stream goroutines that must not block) in a bounded queue;
// the run goroutine applies them in order to the registry. If the queue
// overflowed, run discards it and reconciles the registry with the
// broker's list of open streams. The watch goroutine publishes the
// registry's changes.
type presenceFeed struct {
	h      *Hub
	reg    store.Presence
	ownReg bool            // the hub made reg and closes it
	ctx    context.Context // canceled by close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	notify chan struct{} // cap 1: the queue is not empty
	drops  atomic.Uint64 // starts and ends dropped since the last reconciliation
	first  store.PresenceWatcher

	mu       sync.Mutex
	queue    []broker.Presence
	overflow bool // the queue overflowed: discard it and reconcile
	closed   bool

	// Owned by run.
	streams map[*string]broker.Presence // open streams, by &Topics[0]
	keys    map[string]int              // registry key -> open streams holding it
	retry   bool                        // a registry call failed: add every key again
	removes map[string]struct{}         // removals to retry
}

func newPresenceFeed(h *Hub, reg store.Presence, ownReg bool) *presenceFeed {
	ctx, cancel := context.WithCancel(context.Background())
	f := &presenceFeed{
		h: h, reg: reg, ownReg: ownReg, ctx: ctx, cancel: cancel,
		notify:  make(chan struct{}, 1),
		streams: make(map[*string]broker.Presence),
		keys:    make(map[string]int),
		removes: make(map[string]struct{}),
	}
	// Watch once here, so that changes from the hub's first streams on are
	// seen; if the engine is down the watch goroutine retries.
	wctx, wcancel := context.WithTimeout(ctx, presenceTimeout)
	w, err := reg.Watch(wctx)
	wcancel()
	if err != nil {
		h.log.Warn("hub: watch subscriptions; retrying", "err", err)
	}
	f.first = w
	f.wg.Go(f.run)
	f.wg.Go(f.watch)
	return f
}

// push queues p; it never blocks.
func (f *presenceFeed) push(p broker.Presence) {
	if len(p.Topics) == 0 {
		return
	}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	full := len(f.queue) >= MaxPendingPresence
	if full {
		f.overflow = true
	} else {
		f.queue = append(f.queue, p)
	}
	f.mu.Unlock()
	if full {
		f.drops.Add(1)
	}
	select {
	case f.notify <- struct{}{}:
	default:
	}
}

// renewEvery is the interval of Renew: a third of the TTL, so that two
// renewals may fail before the entries expire.
func (f *presenceFeed) renewEvery() time.Duration {
	if ttl := f.reg.TTL(); ttl > 0 {
		return max(ttl/3, time.Millisecond)
	}
	return 5 * time.Second // only retries failed calls
}

func (f *presenceFeed) run() {
	t := time.NewTicker(f.renewEvery())
	defer t.Stop()
	var batch []broker.Presence
	for {
		select {
		case <-f.ctx.Done():
			return
		case <-t.C:
			f.renew()
			continue
		case <-f.notify:
		}
		f.mu.Lock()
		batch, f.queue = f.queue, batch[:0]
		overflow := f.overflow
		f.overflow = false
		f.mu.Unlock()
		if overflow {
			// Some starts or ends were dropped: the queue no longer tells
			// what is open, the broker does. Every start or end pushed
			// after this point is applied after the reconciliation, and
			// applying it again is harmless.
			clear(batch)
			f.h.log.Warn("hub: too many subscriptions started or ended at once; reconciling the subscriptions list with the open streams", "dropped", f.drops.Swap(0))
			f.reconcile()
			continue
		}
		for _, p := range batch {
			if f.ctx.Err() != nil {
				return
			}
			f.apply(p)
		}
		clear(batch)
	}
}

// streamKey identifies the stream p describes: the broker gives each
// stream its own copy of its selectors, so the address of the first one is
// the stream's identity.
func streamKey(p broker.Presence) *string { return &p.Topics[0] }

// apply records the start or end of one stream.
func (f *presenceFeed) apply(p broker.Presence) {
	k := streamKey(p)
	_, open := f.streams[k]
	switch {
	case p.Active && !open:
		f.streams[k] = p
		for _, topic := range p.Topics {
			f.hold(p, topic)
		}
	case !p.Active && open:
		delete(f.streams, k)
		for _, sel := range p.Topics {
			f.release(newSubscription(p, sel).ID)
		}
	}
}

// hold counts one more open stream with the subscription of p with the
// selector sel, and adds it to the registry when it is the first. The
// registry key is the subscription's id (its events' topic).
func (f *presenceFeed) hold(p broker.Presence, sel string) {
	doc := newSubscription(p, sel)
	key := doc.ID
	f.keys[key]++
	if f.keys[key] > 1 {
		return
	}
	delete(f.removes, key)
	data, err := json.Marshal(doc)
	if err != nil { // a payload decoded from JSON always encodes
		f.h.log.Error("hub: encode subscription", "id", key, "err", err)
		return
	}
	if err := f.call(func(ctx context.Context) error { return f.reg.Add(ctx, key, data) }); err != nil {
		f.h.log.Warn("hub: add subscription to the list; retrying", "id", key, "err", err)
		f.retry = true
	}
}

// release counts one less open stream holding key, and removes key from
// the registry when it was the last.
func (f *presenceFeed) release(key string) {
	if f.keys[key]--; f.keys[key] > 0 {
		return
	}
	delete(f.keys, key)
	if err := f.call(func(ctx context.Context) error { return f.reg.Remove(ctx, key) }); err != nil {
		f.h.log.Warn("hub: remove subscription from the list; retrying", "id", key, "err", err)
		f.removes[key] = struct{}{}
	}
}

// reconcile makes the streams this feed holds those the broker lists:
// starts or ends dropped from the queue are made up for.
func (f *presenceFeed) reconcile() {
	open := make(map[*string]broker.Presence)
	for _, p := range f.h.b.Subscriptions() {
		if len(p.Topics) > 0 {
			open[streamKey(p)] = p
		}
	}
	for k, p := range f.streams {
		if _, ok := open[k]; !ok {
			p.Active = false
			f.apply(p)
		}
	}
	for _, p := range open {
		f.apply(p)
	}
}

// renew keeps this hub's entries alive, expires crashed hubs' entries (in
// Renew), and retries what failed.
func (f *presenceFeed) renew() {
	err := f.call(f.reg.Renew)
	switch {
	case errors.Is(err, store.ErrPresenceLost):
		f.h.log.Warn("hub: this hub's subscriptions expired from the shared list (it could not renew them in time); adding them again")
		f.retry = true
	case err != nil:
		f.h.log.Warn("hub: renew subscriptions", "err", err)
		return
	}
	for key := range f.removes {
		if err := f.call(func(ctx context.Context) error { return f.reg.Remove(ctx, key) }); err != nil {
			return
		}
		delete(f.removes, key)
	}
	if !f.retry {
		return
	}
	f.retry = false
	added := make(map[string]bool)
	for _, p := range f.streams {
		for _, sel := range p.Topics {
			doc := newSubscription(p, sel)
			key := doc.ID
			if added[key] {
				continue
			}
			added[key] = true
			data, err := json.Marshal(doc)
			if err != nil {
				continue
			}
			if err := f.call(func(ctx context.Context) error { return f.reg.Add(ctx, key, data) }); err != nil {
				f.retry = true
				return
			}
		}
	}
}

// call runs fn with the registry call timeout.
func (f *presenceFeed) call(fn func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(f.ctx, presenceTimeout)
	defer cancel()
	return fn(ctx)
}

// watch publishes every change of the registry as a subscription event to
// this hub's streams, re-watching after errors.
func (f *presenceFeed) watch() {
	w := f.first
	f.first = nil
	var bo time.Duration
	for {
		if w == nil {
			ctx, cancel := context.WithTimeout(f.ctx, presenceTimeout)
			var err error
			w, err = f.reg.Watch(ctx)
			cancel()
			if err != nil {
				if f.ctx.Err() != nil || errors.Is(err, store.ErrClosed) {
					return
				}
				bo = min(max(2*bo, 50*time.Millisecond), 5*time.Second)
				f.h.log.Warn("hub: watch subscriptions", "err", err, "retry_in", bo)
				if !sleep(f.ctx, bo) {
					return
				}
				continue
			}
			// The list may have changed while nobody watched.
			f.h.log.Info("hub: watching subscriptions")
		}
		c, err := w.Next(f.ctx)
		if err != nil {
			w.Close()
			w = nil
			if f.ctx.Err() != nil || errors.Is(err, store.ErrClosed) && f.closing() {
				return
			}
			f.h.log.Warn("hub: watch subscriptions", "err", err)
			continue
		}
		bo = 0
		f.publish(c)
	}
}

func (f *presenceFeed) closing() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// publish sends the subscription event of c, live, to this hub's streams
// authorized for it.
func (f *presenceFeed) publish(c store.PresenceChange) {
	var s subscription
	if err := json.Unmarshal(c.Data, &s); err != nil || s.ID == "" {
		f.h.log.Warn("hub: skip malformed subscription from the list", "key", c.Key, "err", err)
		return
	}
	s.Active, s.Context = c.Active, jsonLDContext
	data, err := json.Marshal(s)
	if err != nil {
		f.h.log.Error("hub: encode subscription event", "id", s.ID, "err", err)
		return
	}
	_, err = f.h.b.PublishLive(store.Update{Topics: []string{s.ID}, Data: string(data), Private: true})
	if err != nil && !errors.Is(err, broker.ErrShutdown) {
		f.h.log.Warn("hub: publish subscription event", "id", s.ID, "err", err)
	}
}

// list returns the active subscriptions of every hub sharing the
// registry, one per id.
func (f *presenceFeed) list(ctx context.Context) ([]subscription, error) {
	es, err := f.reg.List(ctx)
	if err != nil {
		return nil, err
	}
	seen := make(map[string]bool, len(es))
	subs := make([]subscription, 0, len(es))
	for _, e := range es {
		var s subscription
		if err := json.Unmarshal(e.Data, &s); err != nil || s.ID == "" || seen[s.ID] {
			continue
		}
		seen[s.ID] = true
		s.Context, s.LastEventID, s.Active = "", "", true
		subs = append(subs, s)
	}
	return subs, nil
}

// close stops the goroutines and waits for them; queued starts and ends
// are dropped. Then it removes this hub's entries from the registry, so
// that every hub announces their end, and closes the registry if the hub
// made it.
func (f *presenceFeed) close() {
	f.mu.Lock()
	f.closed = true
	f.queue = nil
	f.mu.Unlock()
	f.cancel()
	f.wg.Wait()
	if f.first != nil {
		f.first.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), presenceTimeout)
	defer cancel()
	if err := f.reg.Leave(ctx); err != nil && !errors.Is(err, store.ErrClosed) {
		f.h.log.Warn("hub: remove this hub's subscriptions from the list", "err", err)
	}
	if f.ownReg {
		f.reg.Close()
	}
}
