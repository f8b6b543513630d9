package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/herald-sse/herald/store"
	"github.com/herald-sse/herald/store/redisstore"
	"github.com/herald-sse/herald/store/storetest"
)

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

// BenchmarkStore runs the benchmarks every store shares.
func BenchmarkStore(b *testing.B) {
	storetest.Benchmark(b, func(b *testing.B, maxLen int) store.Store {
		rdb := newClient(b)
		return open(b, rdb, redisstore.Config{Prefix: newPrefix(b, rdb), MaxLen: maxLen})
	})
}
