package memstore

import (
	"hash/maphash"
	"testing"

	"github.com/herald-sse/herald/store"
	"github.com/herald-sse/herald/store/storetest"
)

// TestConformanceHashCollisions runs the store contract with an index hash
// that collides constantly, so ids live in the overflow map, move between
// the two maps as their neighbours are dropped, and must still be found,
// refused as duplicates and forgotten exactly once.
func TestConformanceHashCollisions(t *testing.T) {
	for _, c := range []struct {
		name string
		hash func(maphash.Seed, string) uint64
	}{
		{"all-equal", func(maphash.Seed, string) uint64 { return 7 }},
		{"by-length-and-last-byte", func(_ maphash.Seed, id string) uint64 {
			if id == "" {
				return 0
			}
			return uint64(len(id))<<8 | uint64(id[len(id)-1]%4)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			hashID = c.hash
			defer func() { hashID = maphash.String }()
			storetest.Run(t, func(t *testing.T, lim storetest.Limits) store.Store {
				return New(Config{MaxLen: min(lim.MaxLen, 500), MaxBytes: lim.MaxBytes})
			})
		})
	}
}
