package broker

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-sse/herald/internal/netpoll"
)

// subscriber is one open stream. Its queue holds references to immutable,
// shared encoded updates: nothing is copied or re-encoded per subscriber.
// It is held by every open stream, parked ones included, so it is kept
// small: no channels or closures unless the stream has its own goroutine.
//
// Fields above mu are owned by the broker's tail goroutine (lastSeq, written
// under Broker.mu) or are immutable after construction.
type subscriber struct {
	b       *Broker
	topics  *Matcher
	private *Matcher
	lastSeq uint64      // Seq of the last update matched or replayed; later ones only are delivered
	busy    atomic.Bool // written since its heartbeat slot was last visited
	slot    uint16      // heartbeat slot, set at registration

	expiry *time.Timer // ends the stream at Subscription.Until; nil when none

	// What Presence reports; immutable.
	selectors []string
	id        string
	payload   any

	mu     sync.Mutex
	queue  [][]byte
	queued int           // bytes in queue
	err    error         // why the stream ended; nil while open
	pc     *netpoll.Conn // parked streams: the writer pool's handle
	notify chan struct{} // goroutine streams: wake-up signal (cap 1)
	ending bool          // Drain: end once everything queued is written
	done   chan struct{} // goroutine streams: closed when err is set
}

func newSubscriber(b *Broker, topics, private *Matcher) *subscriber {
	return &subscriber{b: b, topics: topics, private: private}
}

// presence describes s for Config.OnSubscription and Subscriptions.
func (s *subscriber) presence(active bool) Presence {
	return Presence{Subscriber: s.id, Topics: s.selectors, Payload: s.payload, Active: active}
}

// enqueue queues buf for writing. It never blocks: when the backlog would
// pass Config.MaxPending the subscriber is disconnected instead. It reports
// whether buf was queued.
func (s *subscriber) enqueue(buf []byte) bool {
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return false
	}
	if s.queued+len(buf) > s.b.cfg.MaxPending {
		pending := s.queued
		s.mu.Unlock()
		s.b.dropped.Add(1)
		// Fan-out holds Broker.mu here: one line per second at most, however
		// many subscribers a burst leaves behind.
		if ok, n := s.b.slowLog.allow(time.Second); ok {
			s.b.log.Info("broker: disconnecting slow subscriber", "pending", pending, "suppressed", n)
		}
		s.close(ErrSlowConsumer)
		return false
	}
	first := len(s.queue) == 0
	s.queue = append(s.queue, buf)
	s.queued += len(buf)
	pc, notify := s.pc, s.notify
	s.mu.Unlock()
	s.busy.Store(true)
	if first {
		wake(pc, notify)
	}
	return true
}

func wake(pc *netpoll.Conn, notify chan struct{}) {
	switch {
	case pc != nil:
		pc.Wake()
	case notify != nil:
		select {
		case notify <- struct{}{}:
		default:
		}
	}
}

// Take moves the queued buffers to bufs. It implements netpoll.Source and
// is the goroutine path's dequeue too.
func (s *subscriber) Take(bufs [][]byte) [][]byte {
	s.mu.Lock()
	bufs = append(bufs, s.queue...)
	if cap(s.queue) > 64 {
		s.queue = nil // don't pin a burst-sized array on an idle stream
	} else {
		clear(s.queue)
		s.queue = s.queue[:0]
	}
	s.queued = 0
	s.mu.Unlock()
	return bufs
}

// Closed is called by the writer pool when a parked connection is finished.
// It implements netpoll.Source. It must not block, so it does not take the
// broker's lock (a fan-out may hold it): the reaper unregisters s.
func (s *subscriber) Closed(err error) {
	switch {
	case err == nil:
		err = ErrShutdown
	case errors.Is(err, netpoll.ErrWriteTimeout):
		err = ErrWriteTimeout
	}
	var counter *atomic.Uint64
	if err == ErrWriteTimeout {
		counter = &s.b.writeTimeouts
	}
	s.closeCounting(err, counter)
	s.b.parked.Add(-1)
	s.b.retire(s)
}

// ended returns why the stream ended, or nil while it is open.
func (s *subscriber) ended() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// close ends the stream with reason err. Idempotent; the first reason wins,
// and close reports whether this call was the first.
func (s *subscriber) close(err error) bool { return s.closeCounting(err, nil) }

// closeCounting is close that, when this call ends the stream, adds one to
// n (if not nil) before the connection is closed: a client that sees its
// stream end then always finds the end counted.
func (s *subscriber) closeCounting(err error, n *atomic.Uint64) bool {
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return false
	}
	if n != nil {
		n.Add(1)
	}
	s.err = err
	s.queue, s.queued = nil, 0
	pc := s.pc
	if s.done != nil {
		close(s.done)
	}
	s.mu.Unlock()
	if pc != nil {
		pc.Close()
	}
	return true
}

// finish queues last (a final retry: hint) and has the stream end once
// everything queued is written: a graceful end after the last complete
// event, for Drain. It never blocks.
func (s *subscriber) finish(last []byte) {
	s.mu.Lock()
	if s.err != nil || s.ending {
		s.mu.Unlock()
		return
	}
	s.ending = true
	s.queue = append(s.queue, last) // past MaxPending if need be: it is a few bytes
	s.queued += len(last)
	pc, notify := s.pc, s.notify
	s.mu.Unlock()
	if pc != nil {
		pc.Finish()
	} else {
		wake(nil, notify)
	}
}

// written reports whether the stream was asked to end (finish) and has
// nothing left to write: the goroutine path then ends it.
func (s *subscriber) written() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ending && len(s.queue) == 0
}

// wants reports whether s receives e: one of its selectors matches, and a
// private update is also authorized by its private selectors.
func (s *subscriber) wants(e *encoded) bool {
	return s.topics.MatchAny(e.topics) && (!e.private || s.private.MatchAny(e.topics))
}

// closedCh is a channel that is already closed, for streams that ended
// before they asked for their done channel.
var closedCh = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// startGoroutine prepares a goroutine-path stream: it returns the wake-up
// and done channels and wakes the writer if updates were queued before it
// was ready.
func (s *subscriber) startGoroutine() (notify, done <-chan struct{}) {
	n := make(chan struct{}, 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return n, closedCh
	}
	s.notify, s.done = n, make(chan struct{})
	if len(s.queue) > 0 {
		n <- struct{}{}
	}
	return n, s.done
}

// park installs the writer pool's handle and wakes it if updates were
// queued before the stream was parked. It reports false if the stream
// already ended (the caller closes the connection's handle).
func (s *subscriber) park(pc *netpoll.Conn) bool {
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return false
	}
	s.pc = pc
	pending, ending := len(s.queue) > 0, s.ending
	s.mu.Unlock()
	switch {
	case ending:
		pc.Finish()
	case pending:
		pc.Wake()
	}
	return true
}
