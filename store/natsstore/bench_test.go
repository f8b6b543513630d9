package natsstore_test

import (
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-sse/herald/store"
	"github.com/herald-sse/herald/store/natsstore"
	"github.com/herald-sse/herald/store/storetest"
)

// fill returns a store holding n updates.
func fill(b *testing.B, n int) (*natsstore.Store, natsstore.Config, []store.Update) {
	b.Helper()
	nc := connect(b)
	cfg := newStream(b, nc, natsstore.Config{})
	s := open(b, nc, cfg)
	us := make([]store.Update, n)
	for i := range n {
		u, err := s.Append(b.Context(), store.Update{Topics: []string{"t"}, Data: fmt.Sprint(i)})
		if err != nil {
			b.Fatal(err)
		}
		us[i] = u
	}
	return s, cfg, us
}

// BenchmarkRead1 is the live tail: one new update after a Wait.
func BenchmarkRead1(b *testing.B) {
	s, _, us := fill(b, 100)
	after := us[len(us)-2].Seq
	b.ReportAllocs()
	for b.Loop() {
		got, err := s.Read(b.Context(), after, 100)
		if err != nil || len(got) != 1 {
			b.Fatalf("Read(%d, 100) = %d updates, %v", after, len(got), err)
		}
	}
}

// BenchmarkGetMsgSequential100 is the baseline that Read's pipelined direct
// gets replace: 100 GetMsg calls one after the other.
func BenchmarkGetMsgSequential100(b *testing.B) {
	_, cfg, us := fill(b, 1000)
	nc := connect(b)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	st, err := js.Stream(b.Context(), cfg.Stream)
	if err != nil {
		b.Fatal(err)
	}
	first := us[len(us)/2].Seq + 1
	b.ReportAllocs()
	for b.Loop() {
		for seq := first; seq < first+100; seq++ {
			if _, err := st.GetMsg(b.Context(), seq); err != nil {
				b.Fatalf("GetMsg(%d) = %v", seq, err)
			}
		}
	}
}

func BenchmarkLast(b *testing.B) {
	s, _, us := fill(b, 10)
	b.ReportAllocs()
	for b.Loop() {
		if seq, _, err := s.Last(b.Context()); err != nil || seq != us[len(us)-1].Seq {
			b.Fatalf("Last() = %d, %v", seq, err)
		}
	}
}

// BenchmarkOrderedConsumerFetch100 is the other baseline: an ephemeral
// ordered consumer per read, starting at the wanted sequence.
func BenchmarkOrderedConsumerFetch100(b *testing.B) {
	_, cfg, us := fill(b, 1000)
	nc := connect(b)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	st, err := js.Stream(b.Context(), cfg.Stream)
	if err != nil {
		b.Fatal(err)
	}
	first := us[len(us)/2].Seq + 1
	b.ReportAllocs()
	for b.Loop() {
		c, err := st.OrderedConsumer(b.Context(), jetstream.OrderedConsumerConfig{
			DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
			OptStartSeq:   first,
		})
		if err != nil {
			b.Fatal(err)
		}
		batch, err := c.Fetch(100)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for range batch.Messages() {
			n++
		}
		if n != 100 || batch.Error() != nil {
			b.Fatalf("Fetch(100) = %d messages, %v", n, batch.Error())
		}
	}
}

// BenchmarkStore runs the benchmarks every store shares.
func BenchmarkStore(b *testing.B) {
	storetest.Benchmark(b, func(b *testing.B, maxLen int) store.Store {
		nc := connect(b)
		return open(b, nc, newStream(b, nc, natsstore.Config{MaxLen: maxLen}))
	})
}
