// Package seqwait lets goroutines wait until a log's newest sequence number
// passes a position: the Wait of every store.Store. One Advance wakes every
// waiter at once (a channel closed and replaced), and a channel is made only
// while someone waits, so advancing costs nothing when nobody does.
package seqwait

import (
	"context"
	"sync"

	"github.com/herald-sse/herald/store"
)

// Waiter tracks the newest sequence number of a log. The zero value is a
// waiter at sequence 0, ready to use. A Waiter is safe for concurrent use;
// it must not be copied after first use.
type Waiter struct {
	mu     sync.Mutex
	last   uint64
	closed bool
	ch     chan struct{} // closed when last grows or on Close; nil while nobody waits
}

// Advance records that the log holds sequence seq; a seq at or below the
// current one changes nothing.
func (w *Waiter) Advance(seq uint64) {
	w.mu.Lock()
	if seq > w.last {
		w.last = seq
		w.wakeLocked()
	}
	w.mu.Unlock()
}

// Last returns the newest sequence number advanced to.
func (w *Waiter) Last() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}

// Close wakes every Wait with store.ErrClosed, now and later. Idempotent.
func (w *Waiter) Close() {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		w.wakeLocked()
	}
	w.mu.Unlock()
}

func (w *Waiter) wakeLocked() {
	if w.ch != nil {
		close(w.ch)
		w.ch = nil
	}
}

// Wait blocks until the log holds a sequence number above after (nil), the
// waiter is closed (store.ErrClosed) or ctx is done (ctx.Err()).
func (w *Waiter) Wait(ctx context.Context, after uint64) error {
	for {
		w.mu.Lock()
		switch {
		case w.closed:
			w.mu.Unlock()
			return store.ErrClosed
		case w.last > after:
			w.mu.Unlock()
			return nil
		}
		if w.ch == nil {
			w.ch = make(chan struct{})
		}
		ch := w.ch
		w.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
