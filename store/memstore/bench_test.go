package memstore_test

import (
	"fmt"
	"testing"

	"github.com/herald-sse/herald/store"
	"github.com/herald-sse/herald/store/memstore"
	"github.com/herald-sse/herald/store/storetest"
)

func BenchmarkAppendExplicitID(b *testing.B) {
	s := memstore.New(memstore.Config{})
	defer s.Close()
	ids := make([]string, 1<<16)
	for i := range ids {
		ids[i] = fmt.Sprintf("id-%d", i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		u := store.Update{ID: ids[i%len(ids)], Topics: []string{"https://example.com/books/1"}, Data: `{"price":42}`}
		i++
		if _, err := s.Append(b.Context(), u); err != nil {
			b.Fatal(err)
		}
		if i%len(ids) == 0 {
			// Let the ids expire from the ring before they come round again.
			b.StopTimer()
			for range memstore.DefaultMaxLen {
				s.Append(b.Context(), store.Update{Topics: []string{"t"}})
			}
			b.StartTimer()
		}
	}
}

// BenchmarkStore runs the benchmarks every store shares.
func BenchmarkStore(b *testing.B) {
	storetest.Benchmark(b, func(b *testing.B, maxLen int) store.Store {
		s := memstore.New(memstore.Config{MaxLen: maxLen})
		b.Cleanup(func() { s.Close() })
		return s
	})
}

// BenchmarkAppendFull appends with generated ids to a store holding its
// full history of 100,000 updates, as a hub's does in steady state: every
// append also drops the oldest update and its index entry.
func BenchmarkAppendFull(b *testing.B) {
	const maxLen = 100_000
	s := memstore.New(memstore.Config{MaxLen: maxLen})
	defer s.Close()
	u := store.Update{Topics: []string{"https://example.com/books/1"}, Data: `{"price":42}`}
	for range maxLen {
		if _, err := s.Append(b.Context(), u); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Append(b.Context(), u); err != nil {
			b.Fatal(err)
		}
	}
}
