package memstore_test

import (
	"fmt"
	"testing"

	"github.com/herald-sse/herald/store"
	"github.com/herald-sse/herald/store/memstore"
)

func BenchmarkAppend(b *testing.B) {
	s := memstore.New(memstore.Config{})
	defer s.Close()
	u := store.Update{Topics: []string{"https://example.com/books/1"}, Data: `{"price":42}`}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Append(b.Context(), u); err != nil {
			b.Fatal(err)
		}
	}
}

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

func BenchmarkAppendParallel(b *testing.B) {
	s := memstore.New(memstore.Config{})
	defer s.Close()
	b.ReportAllocs()
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

func fill(b *testing.B, n int) (*memstore.Store, []store.Update) {
	b.Helper()
	s := memstore.New(memstore.Config{MaxLen: n})
	us := make([]store.Update, n)
	for i := range n {
		u, err := s.Append(b.Context(), store.Update{Topics: []string{"t"}, Data: fmt.Sprint(i)})
		if err != nil {
			b.Fatal(err)
		}
		us[i] = u
	}
	return s, us
}

func BenchmarkRead100(b *testing.B) {
	s, us := fill(b, memstore.DefaultMaxLen)
	defer s.Close()
	after := us[len(us)/2].Seq
	b.ReportAllocs()
	for b.Loop() {
		got, err := s.Read(b.Context(), after, 100)
		if err != nil || len(got) != 100 {
			b.Fatalf("Read(%d, 100) = %d updates, %v", after, len(got), err)
		}
	}
}

func BenchmarkLookup(b *testing.B) {
	s, us := fill(b, memstore.DefaultMaxLen)
	defer s.Close()
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
