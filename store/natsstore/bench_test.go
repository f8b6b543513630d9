package natsstore_test

import (
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-sse/herald/store"
	"github.com/herald-sse/herald/store/natsstore"
)

func BenchmarkAppend(b *testing.B) {
	nc := connect(b)
	s := open(b, nc, newStream(b, nc, natsstore.Config{}))
	u := store.Update{Topics: []string{"https://example.com/books/1"}, Data: `{"price":42}`}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Append(b.Context(), u); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendParallel(b *testing.B) {
	nc := connect(b)
	s := open(b, nc, newStream(b, nc, natsstore.Config{}))
	b.ReportAllocs()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		u := store.Update{Topics: []string{"https://example.com/books/1"}, Data: `{"price":42}`}
		for pb.Next() {
			if _, err := s.Append(b.Context(), u); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

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

func BenchmarkRead100(b *testing.B) {
	s, _, us := fill(b, 1000)
	after := us[len(us)/2].Seq
	b.ReportAllocs()
	for b.Loop() {
		got, err := s.Read(b.Context(), after, 100)
		if err != nil || len(got) != 100 {
			b.Fatalf("Read(%d, 100) = %d updates, %v", after, len(got), err)
		}
	}
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

func BenchmarkLookup(b *testing.B) {
	s, _, us := fill(b, 1000)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		u := us[i%len(us)]
		i++
		if seq, err := s.Lookup(b.Context(), u.ID); err != nil || seq != u.Seq {
			b.Fatalf("Lookup(%q) = %d, %v", u.ID, seq, err)
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
