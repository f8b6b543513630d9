package boltstore_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/herald-sse/herald/store"
	"github.com/herald-sse/herald/store/boltstore"
)

// payload is a typical small JSON update.
var payload = `{"symbol":"HRLD","price":42.17,"volume":1200,"at":"2026-01-02T03:04:05Z"}`

// runAppenders appends b.N updates to s from the given number of
// goroutines and reports appends/s.
func runAppenders(b *testing.B, s store.Store, appenders int) {
	b.Helper()
	b.ReportAllocs()
	var wg sync.WaitGroup
	per := b.N / appenders
	extra := b.N % appenders
	b.ResetTimer()
	for w := range appenders {
		n := per
		if w < extra {
			n++
		}
		wg.Go(func() {
			u := store.Update{Topics: []string{fmt.Sprintf("https://example.com/stocks/%d", w)}, Data: payload}
			for range n {
				if _, err := s.Append(context.Background(), u); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
}

// BenchmarkAppendDurable measures fsync'd appends with 1, 8, 64 and 256
// concurrent appenders: group commit turns concurrency into throughput.
// "fresh" starts from an empty file, which grows on almost every commit;
// "steady" starts from a store already trimming (the default MaxLen of
// 100,000, 110,000 updates appended), the state of a hub that has been up
// for a while: every commit also deletes the oldest updates.
func BenchmarkAppendDurable(b *testing.B) {
	for _, state := range []string{"fresh", "steady"} {
		for _, appenders := range []int{1, 8, 64, 256} {
			b.Run(fmt.Sprintf("%s/appenders=%d", state, appenders), func(b *testing.B) {
				path := dbPath(b)
				var cfg boltstore.Config
				if state == "steady" {
					cfg.NoSync = true
					s := open(b, path, cfg)
					fill(b, s, boltstore.DefaultMaxLen+10_000)
					if err := s.Close(); err != nil {
						b.Fatal(err)
					}
					cfg.NoSync = false
				}
				s := open(b, path, cfg)
				runAppenders(b, s, appenders)
			})
		}
	}
}

// BenchmarkAppendBatchDurable measures fsync'd appends in batches of 1,
// 10 and 100 updates (store.AppendBatch) from one appender: a batch is one
// commit and one fsync, so appends/s grows with its size.
func BenchmarkAppendBatchDurable(b *testing.B) {
	for _, size := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			s := open(b, dbPath(b), boltstore.Config{})
			b.ReportAllocs()
			ups := make([]store.Update, size)
			for i := range ups {
				ups[i] = store.Update{Topics: []string{"https://example.com/stocks/1"}, Data: payload}
			}
			b.ResetTimer()
			for n := 0; n < b.N; n += size {
				_, errs := s.AppendBatch(context.Background(), ups[:min(size, b.N-n)], true)
				for _, err := range errs {
					if err != nil {
						b.Fatal(err)
					}
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
		})
	}
}

// BenchmarkAppendNoSync is the same without fsync: the cost of bbolt and
// the store itself.
func BenchmarkAppendNoSync(b *testing.B) {
	for _, appenders := range []int{1, 64} {
		b.Run(fmt.Sprintf("appenders=%d", appenders), func(b *testing.B) {
			s := open(b, dbPath(b), boltstore.Config{NoSync: true})
			runAppenders(b, s, appenders)
		})
	}
}

// BenchmarkBoltBatchBaseline appends through bbolt's own DB.Batch with the
// same two buckets, for comparison with the store's group commit. Its
// records are pre-encoded, so it does less work per append than the store.
func BenchmarkBoltBatchBaseline(b *testing.B) {
	for _, appenders := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("appenders=%d", appenders), func(b *testing.B) {
			db, err := bolt.Open(dbPath(b), 0o600, &bolt.Options{FreelistType: bolt.FreelistMapType, NoFreelistSync: true})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			err = db.Update(func(tx *bolt.Tx) error {
				for _, name := range []string{"updates", "ids"} {
					if _, err := tx.CreateBucket([]byte(name)); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			var wg sync.WaitGroup
			b.ResetTimer()
			for w := range appenders {
				n := b.N / appenders
				if w < b.N%appenders {
					n++
				}
				wg.Go(func() {
					val := []byte(payload + strings.Repeat(" ", 60))
					for range n {
						id := []byte(store.NewID())
						err := db.Batch(func(tx *bolt.Tx) error {
							ups, ids := tx.Bucket([]byte("updates")), tx.Bucket([]byte("ids"))
							ups.FillPercent, ids.FillPercent = 1.0, 0.9
							seq, _ := ups.NextSequence()
							key := binary.BigEndian.AppendUint64(nil, seq)
							if err := ups.Put(key, val); err != nil {
								return err
							}
							return ids.Put(id, key)
						})
						if err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
		})
	}
}

// fill appends n updates quickly (no fsync, 32 appenders) and returns the
// ids in Seq order.
func fill(b *testing.B, s store.Store, n int) []string {
	b.Helper()
	var wg sync.WaitGroup
	const appenders = 32
	for w := range appenders {
		k := n / appenders
		if w < n%appenders {
			k++
		}
		wg.Go(func() {
			u := store.Update{Topics: []string{fmt.Sprintf("https://example.com/stocks/%d", w)}, Data: payload}
			for range k {
				if _, err := s.Append(context.Background(), u); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	us, err := s.Read(context.Background(), 0, 2*n)
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]string, len(us))
	for i, u := range us {
		ids[i] = u.ID
	}
	return ids
}

// BenchmarkLookupRead100 is a client reconnecting with a Last-Event-ID
// 100,000 updates back in a store of 110,000: one Lookup, then one Read of
// the next 100 updates.
func BenchmarkLookupRead100(b *testing.B) {
	const n = 110_000
	path := dbPath(b)
	s := open(b, path, boltstore.Config{MaxLen: 200_000, NoSync: true})
	ids := fill(b, s, n)
	if len(ids) != n {
		b.Fatalf("filled %d updates, want %d", len(ids), n)
	}
	id := ids[len(ids)-100_000]
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		seq, err := s.Lookup(ctx, id)
		if err != nil {
			b.Fatal(err)
		}
		us, err := s.Read(ctx, seq, 100)
		if err != nil || len(us) != 100 {
			b.Fatalf("Read(%d, 100) = %d updates, %v", seq, len(us), err)
		}
	}
}

// BenchmarkDiskSize publishes diskSizeN updates (no fsync) into a store
// keeping 100,000 and reports the file size. Run it with -benchtime=1x.
func BenchmarkDiskSize(b *testing.B) {
	n := 1_000_000
	if v := os.Getenv("HERALD_DISKSIZE_N"); v != "" {
		fmt.Sscan(v, &n)
	}
	for b.Loop() {
		path := dbPath(b)
		s, err := boltstore.Open(path, boltstore.Config{MaxLen: 100_000, NoSync: true})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		fill(b, s, n)
		elapsed := time.Since(start)
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(fi.Size())/(1<<20), "MiB")
		b.ReportMetric(float64(n)/elapsed.Seconds(), "appends/s")
		reopen := time.Now()
		s, err = boltstore.Open(path, boltstore.Config{MaxLen: 100_000})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(time.Since(reopen).Milliseconds()), "open-ms")
		s.Close()
	}
}
