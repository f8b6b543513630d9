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
//
// A store whose engine can lose its log behind the process's back (see
// store.ErrLogReset) calls [Waiter.Reset] when it detects that: positions
// up to the floor then belong to the lost log, and Wait reports
// store.ErrLogReset for them.
type Waiter struct {
	mu     sync.Mutex
	last   uint64
	floor  uint64 // positions 1..floor belong to logs lost by Reset
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

// Reset records that the log was lost: every position handed out so far
// (up to Last) is stale. It wakes every Wait, which returns
// store.ErrLogReset for a stale position, and returns the new floor (the
// former Last): positions of the new log are above it. The log is then
// empty until the next Advance above the floor.
func (w *Waiter) Reset() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.floor = w.last
	w.wakeLocked()
	return w.floor
}

// Floor returns the floor set by the last Reset, 0 if none.
func (w *Waiter) Floor() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.floor
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
// waiter is closed (store.ErrClosed), ctx is done (ctx.Err()) or after is
// a position of a log lost by Reset (store.ErrLogReset). After 0 means the
// start of the current log.
func (w *Waiter) Wait(ctx context.Context, after uint64) error {
	for {
		w.mu.Lock()
		switch {
		case w.closed:
			w.mu.Unlock()
			return store.ErrClosed
		case after != 0 && after <= w.floor:
			w.mu.Unlock()
			return store.ErrLogReset
		case w.last > max(after, w.floor):
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
