package storetest

import (
	"fmt"
	"testing"

	"github.com/herald-sse/herald/store"
)

// BenchFactory opens a fresh, empty store for a benchmark, retaining at
// least maxLen updates. The factory arranges for the store to be closed
// when b ends.
type BenchFactory func(b *testing.B, maxLen int) store.Store

// Benchmark measures the operations every store has, the same way for
// every store: Append (serial and with 4×GOMAXPROCS appenders, since
// networked stores wait on round trips), Read of 100 updates from the
// middle of a 1,000-update log, and Lookup.
func Benchmark(b *testing.B, open BenchFactory) {
	u := store.Update{Topics: []string{"https://example.com/books/1"}, Data: `{"price":42}`}
	b.Run("Append", func(b *testing.B) {
		s := open(b, 10_000)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Append(b.Context(), u); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("AppendParallel", func(b *testing.B) {
		s := open(b, 10_000)
		b.ReportAllocs()
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.Append(b.Context(), u); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	fill := func(b *testing.B, n int) (store.Store, []store.Update) {
		b.Helper()
		s := open(b, n)
		us := make([]store.Update, n)
		for i := range n {
			var err error
			if us[i], err = s.Append(b.Context(), store.Update{Topics: []string{"t"}, Data: fmt.Sprint(i)}); err != nil {
				b.Fatal(err)
			}
		}
		return s, us
	}
	b.Run("Read100", func(b *testing.B) {
		s, us := fill(b, 1000)
		after := us[len(us)/2].Seq
		b.ReportAllocs()
		for b.Loop() {
			got, err := s.Read(b.Context(), after, 100)
			if err != nil || len(got) != 100 {
				b.Fatalf("Read(%d, 100) = %d updates, %v", after, len(got), err)
			}
		}
	})
	b.Run("Lookup", func(b *testing.B) {
		s, us := fill(b, 1000)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			u := us[i%len(us)]
			i++
			if seq, err := s.Lookup(b.Context(), u.ID); err != nil || seq != u.Seq {
				b.Fatalf("Lookup(%q) = %d, %v", u.ID, seq, err)
			}
		}
	})
}
