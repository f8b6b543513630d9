package memstore

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/herald-sse/herald/store"
)

// MaxPresenceBacklog is how many changes a watcher of a [Presence] may
// have pending; beyond it new changes are dropped for that watcher (and
// counted by [PresenceWatcher.Dropped]), so a stalled watcher never holds
// up Add or Remove.
const MaxPresenceBacklog = 4096

// Presence is a [store.Presence] registry of one process, for a hub that
// does not share its store (memstore, boltstore). Its entries never expire
// (TTL is zero) and Renew does nothing. The zero value is not usable: call
// NewPresence. Safe for concurrent use.
type Presence struct {
	mu       sync.Mutex
	entries  map[string][]byte
	watchers map[*PresenceWatcher]struct{}
	closed   bool
}

// NewPresence returns an empty registry.
func NewPresence() *Presence {
	return &Presence{entries: make(map[string][]byte), watchers: make(map[*PresenceWatcher]struct{})}
}

var _ store.Presence = (*Presence)(nil)

// Add implements [store.Presence].
func (p *Presence) Add(_ context.Context, key string, data []byte) error {
	if err := store.ValidatePresenceKey(key); err != nil {
		return fmt.Errorf("memstore: presence add: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return store.ErrClosed
	}
	data = append([]byte(nil), data...)
	p.entries[key] = data
	p.announce(store.PresenceChange{PresenceEntry: store.PresenceEntry{Key: key, Data: data}, Active: true})
	return nil
}

// Remove implements [store.Presence].
func (p *Presence) Remove(_ context.Context, key string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return store.ErrClosed
	}
	data, ok := p.entries[key]
	if !ok {
		return nil
	}
	delete(p.entries, key)
	p.announce(store.PresenceChange{PresenceEntry: store.PresenceEntry{Key: key, Data: data}})
	return nil
}

// announce queues c to every watcher. p.mu must be held.
func (p *Presence) announce(c store.PresenceChange) {
	for w := range p.watchers {
		w.push(c)
	}
}

// List implements [store.Presence].
func (p *Presence) List(context.Context) ([]store.PresenceEntry, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, store.ErrClosed
	}
	es := make([]store.PresenceEntry, 0, len(p.entries))
	for k, d := range p.entries {
		es = append(es, store.PresenceEntry{Key: k, Data: d})
	}
	return es, nil
}

// Renew implements [store.Presence]: entries of one process never expire.
func (p *Presence) Renew(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return store.ErrClosed
	}
	return nil
}

// TTL implements [store.Presence]: zero, entries never expire.
func (p *Presence) TTL() time.Duration { return 0 }

// Leave implements [store.Presence].
func (p *Presence) Leave(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return store.ErrClosed
	}
	for k, d := range p.entries {
		delete(p.entries, k)
		p.announce(store.PresenceChange{PresenceEntry: store.PresenceEntry{Key: k, Data: d}})
	}
	return nil
}

// Watch implements [store.Presence].
func (p *Presence) Watch(context.Context) (store.PresenceWatcher, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, store.ErrClosed
	}
	w := &PresenceWatcher{p: p, notify: make(chan struct{}, 1), done: make(chan struct{})}
	p.watchers[w] = struct{}{}
	return w, nil
}

// Close implements [store.Presence]: it closes every watcher.
func (p *Presence) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	for w := range p.watchers {
		w.closeLocked()
	}
	clear(p.watchers)
	return nil
}

// PresenceWatcher is a watcher of a [Presence]: a queue of changes, bounded
// by [MaxPresenceBacklog]. Safe for concurrent use.
type PresenceWatcher struct {
	p      *Presence
	notify chan struct{} // cap 1: queue not empty
	done   chan struct{} // closed by Close

	mu      sync.Mutex
	queue   []store.PresenceChange
	dropped uint64
	closed  bool
}

func (w *PresenceWatcher) push(c store.PresenceChange) {
	w.mu.Lock()
	if len(w.queue) >= MaxPresenceBacklog {
		w.dropped++
		w.mu.Unlock()
		return
	}
	w.queue = append(w.queue, c)
	w.mu.Unlock()
	select {
	case w.notify <- struct{}{}:
	default:
	}
}

// Next implements [store.PresenceWatcher].
func (w *PresenceWatcher) Next(ctx context.Context) (store.PresenceChange, error) {
	for {
		w.mu.Lock()
		if len(w.queue) > 0 {
			c := w.queue[0]
			w.queue[0] = store.PresenceChange{}
			w.queue = w.queue[1:]
			if len(w.queue) == 0 {
				w.queue = nil
			}
			w.mu.Unlock()
			return c, nil
		}
		closed := w.closed
		w.mu.Unlock()
		if closed {
			return store.PresenceChange{}, store.ErrClosed
		}
		select {
		case <-ctx.Done():
			return store.PresenceChange{}, ctx.Err()
		case <-w.done:
		case <-w.notify:
		}
	}
}

// Dropped returns how many changes did not fit the watcher's backlog.
func (w *PresenceWatcher) Dropped() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.dropped
}

// Close implements [store.PresenceWatcher].
func (w *PresenceWatcher) Close() error {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	delete(w.p.watchers, w)
	w.closeLocked()
	return nil
}

// closeLocked marks w closed; w.p.mu must be held.
func (w *PresenceWatcher) closeLocked() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.closed = true
		close(w.done)
	}
}
