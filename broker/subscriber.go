package broker

import (
	"sync"
	"sync/atomic"
)

// subscriber is one open stream. Its queue holds references to immutable,
// shared encoded updates: nothing is copied or re-encoded per subscriber.
//
// Fields above mu are owned by the broker's tail goroutine (lastSeq, written
// under Broker.mu) or are immutable after construction.
type subscriber struct {
	b       *Broker
	topics  *Matcher
	private *Matcher
	lastSeq uint64      // Seq of the last update matched or replayed; later ones only are delivered
	busy    atomic.Bool // written since the last heartbeat tick

	mu     sync.Mutex
	queue  [][]byte
	queued int           // bytes in queue
	err    error         // why the stream ended; nil while open
	wake   func()        // tells the writer there is something to take
	stop   func()        // closes the connection (parked streams)
	done   chan struct{} // closed when err is set
	notify chan struct{} // goroutine path: wake-up signal (cap 1)
}

func newSubscriber(b *Broker, topics, private *Matcher) *subscriber {
	return &subscriber{b: b, topics: topics, private: private, done: make(chan struct{})}
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
		s.mu.Unlock()
		s.b.dropped.Add(1)
		s.b.log.Info("broker: disconnecting slow subscriber", "pending", s.queued)
		s.close(ErrSlowConsumer)
		return false
	}
	first := len(s.queue) == 0
	s.queue = append(s.queue, buf)
	s.queued += len(buf)
	wake := s.wake
	s.mu.Unlock()
	s.busy.Store(true)
	if first && wake != nil {
		wake()
	}
	return true
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
// It implements netpoll.Source.
func (s *subscriber) Closed(err error) {
	if err == nil {
		err = ErrShutdown
	}
	s.close(err)
	s.b.unregister(s)
	s.b.parked.Add(-1)
}

// close ends the stream with reason err. Idempotent; the first reason wins.
func (s *subscriber) close(err error) {
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return
	}
	s.err = err
	s.queue, s.queued = nil, 0
	stop := s.stop
	close(s.done)
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// setWriter installs the writer's wake-up and stop functions and wakes it if
// updates were queued before it was ready. It reports false if the stream
// already ended.
func (s *subscriber) setWriter(wake, stop func()) bool {
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return false
	}
	s.wake, s.stop = wake, stop
	pending := len(s.queue) > 0
	s.mu.Unlock()
	if pending {
		wake()
	}
	return true
}
