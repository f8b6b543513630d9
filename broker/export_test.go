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
