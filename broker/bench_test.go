package broker_test

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/herald-sse/herald/broker"
	"github.com/herald-sse/herald/store"
	"github.com/herald-sse/herald/store/memstore"
)

func newBenchBroker(b *testing.B) *broker.Broker {
	b.Helper()
	st := memstore.New(memstore.Config{})
	br, err := broker.New(st, broker.Config{NoPark: true, Heartbeat: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { br.Shutdown(b.Context()); st.Close() })
	return br
}

// BenchmarkFanout measures dispatching one update (encode once, queue to
// every matching subscriber) to N subscribers of one topic.
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{1, 1000, 10000} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			br := newBenchBroker(b)
			subs := make([]*broker.BenchSubscriber, n)
			for i := range subs {
				subs[i] = br.RegisterForBench([]string{"t"})
			}
			u := store.Update{ID: "urn:uuid:0192f0e4-0000-7000-8000-000000000000", Topics: []string{"t"}, Data: string(make100())}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				u.Seq = uint64(i + 1)
				br.DispatchForBench(&u)
				if i%16 == 15 {
					b.StopTimer()
					for _, s := range subs {
						s.Drain()
					}
					b.StartTimer()
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/delivery")
		})
	}
}

// BenchmarkPublishOneTopicAmongMany checks that publishing to one topic
// costs the same with 1 or 10,000 (or 100,000) other topics subscribed:
// publishing is O(matching subscribers).
//
// The last case subscribes one topic but keeps 99,999 more subscribers
// alive without indexing them: the heap of the 100,000-topic case, so its
// GC work, without its index. Against it, the 100,000-topic case shows
// what the index itself costs; against topics=1, what a bigger heap costs.
func BenchmarkPublishOneTopicAmongMany(b *testing.B) {
	for _, c := range []struct {
		name         string
		n, unindexed int
	}{
		{"topics=1", 1, 0},
		{"topics=10000", 10000, 0},
		{"topics=100000", 100000, 0},
		{"topics=1,unindexed-subscribers=99999", 1, 99999},
	} {
		b.Run(c.name, func(b *testing.B) {
			br := newBenchBroker(b)
			var target *broker.BenchSubscriber
			before := liveHeap()
			for i := range c.n {
				s := br.RegisterForBench([]string{fmt.Sprintf("topic-%d", i)})
				if i == 0 {
					target = s
				}
			}
			ballast := make([]any, c.unindexed)
			for i := range ballast {
				ballast[i] = br.UnindexedForBench([]string{fmt.Sprintf("other-%d", i)})
			}
			n := c.n + c.unindexed
			// Heap per topic with one subscriber: the index entry, the
			// subscriber and its matcher (no connection).
			perTopic := float64(liveHeap()-before) / float64(n)
			u := store.Update{ID: "urn:uuid:0192f0e4-0000-7000-8000-000000000000", Topics: []string{"topic-0"}, Data: string(make100())}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				u.Seq = uint64(i + 1)
				br.DispatchForBench(&u)
				target.Drain()
			}
			b.ReportMetric(perTopic, "heap-B/topic")
			runtime.KeepAlive(ballast)
		})
	}
}

func make100() []byte {
	p := make([]byte, 100)
	for i := range p {
		p[i] = 'a' + byte(i%26)
	}
	return p
}

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkPublishThroughput publishes through Broker.Publish into a
// memstore from parallel goroutines while the tail goroutine fans every
// update out to one subscriber: the library's end-to-end publish rate,
// without HTTP.
func BenchmarkPublishThroughput(b *testing.B) {
	br := newBenchBroker(b)
	sub := br.RegisterForBench([]string{"t"})
	data := string(make100())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := br.Publish(b.Context(), store.Update{Topics: []string{"t"}, Data: data}); err != nil {
				b.Error(err)
				return
			}
			sub.Drain()
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "publishes/s")
}
