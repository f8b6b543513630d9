package redisstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/herald-sse/herald/store"
	"github.com/herald-sse/herald/store/redisstore"
)

func BenchmarkAppend(b *testing.B) {
	rdb := newClient(b)
	s := open(b, rdb, redisstore.Config{Prefix: newPrefix(b, rdb), MaxLen: 10_000})
	u := store.Update{Topics: []string{"https://example.com/books/1"}, Data: `{"price":42}`}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Append(b.Context(), u); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendParallel(b *testing.B) {
	rdb := newClient(b)
	s := open(b, rdb, redisstore.Config{Prefix: newPrefix(b, rdb), MaxLen: 10_000})
	b.ReportAllocs()
	b.SetParallelism(8) // network bound: more publishers than cores
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
func fill(b *testing.B, n int) (*redisstore.Store, []store.Update) {
	b.Helper()
	rdb := newClient(b)
	s := open(b, rdb, redisstore.Config{Prefix: newPrefix(b, rdb), MaxLen: n})
	us := make([]store.Update, n)
	for i := range n {
		u, err := s.Append(b.Context(), store.Update{Topics: []string{"https://example.com/books/1"}, Data: fmt.Sprint(i)})
		if err != nil {
			b.Fatal(err)
		}
		us[i] = u
	}
	return s, us
}

func BenchmarkRead100(b *testing.B) {
	s, us := fill(b, 1000)
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
}

// BenchmarkWakeOtherNode measures an Append on one node until a Wait on
// another returns: the delay before a second node can deliver an update.
func BenchmarkWakeOtherNode(b *testing.B) {
	rdbA, rdbB := newClient(b), newClient(b)
	prefix := newPrefix(b, rdbA)
	a := open(b, rdbA, redisstore.Config{Prefix: prefix, MaxLen: 10_000})
	n := open(b, rdbB, redisstore.Config{Prefix: prefix, MaxLen: 10_000})
	u := store.Update{Topics: []string{"t"}, Data: "x"}
	b.ReportAllocs()
	for b.Loop() {
		got, err := a.Append(b.Context(), u)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(b.Context(), 5*time.Second)
		err = n.Wait(ctx, got.Seq-1)
		cancel()
		if err != nil {
			b.Fatalf("Wait(%d) = %v", got.Seq-1, err)
		}
	}
}
