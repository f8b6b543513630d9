package broker

import "github.com/herald-sse/herald/store"

// Hooks for the benchmarks in broker_test: they measure the fan-out
// itself, without sockets.

// BenchSubscriber registers a subscriber whose queue is drained by the
// caller.
type BenchSubscriber struct{ s *subscriber }

func (b *Broker) RegisterForBench(topics []string) *BenchSubscriber {
	m, err := NewMatcher(topics)
	if err != nil {
		panic(err)
	}
	s := newSubscriber(b, m, nil)
	if _, err := b.register(s, 0); err != nil {
		panic(err)
	}
	b.subWG.Done() // no stream handler owns it
	return &BenchSubscriber{s}
}

// Drain empties the subscriber's queue and returns how many buffers it held.
func (bs *BenchSubscriber) Drain() int {
	bufs := bs.s.Take(nil)
	return len(bufs)
}

func (b *Broker) DispatchForBench(u *store.Update) { b.dispatch(u) }

// UnindexedForBench returns a subscriber of topics that is not registered:
// the same heap as a registered one, without its index entries.
func (b *Broker) UnindexedForBench(topics []string) any {
	m, err := NewMatcher(topics)
	if err != nil {
		panic(err)
	}
	return newSubscriber(b, m, nil)
}

// LockForTest holds the broker's lock, as a long fan-out does, until the
// returned function is called.
func (b *Broker) LockForTest() (unlock func()) {
	b.mu.Lock()
	return b.mu.Unlock
}

// CachedForTest returns how many encoded updates the replay cache holds.
func (b *Broker) CachedForTest() int { return b.cache.entries() }

// ParkedForTest reads the parked-stream count without the broker's lock.
func (b *Broker) ParkedForTest() int64 { return b.parked.Load() }

// MemoEntriesForTest returns how many distinct templates the tail's memo
// matched for the last update dispatched.
func (b *Broker) MemoEntriesForTest() int { return len(b.memo.seen) }
