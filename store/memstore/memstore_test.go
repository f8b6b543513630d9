package memstore_test

import (
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/herald-sse/herald/store"
	"github.com/herald-sse/herald/store/memstore"
	"github.com/herald-sse/herald/store/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, lim storetest.Limits) store.Store {
		return memstore.New(memstore.Config{MaxLen: lim.MaxLen, MaxBytes: lim.MaxBytes})
	})
}

func TestConformanceSmallRing(t *testing.T) {
	// A ring that wraps many times while the suite runs.
	storetest.Run(t, func(t *testing.T, lim storetest.Limits) store.Store {
		return memstore.New(memstore.Config{MaxLen: min(lim.MaxLen, 1000), MaxBytes: lim.MaxBytes})
	})
}

func TestDefaultMaxLen(t *testing.T) {
	s := memstore.New(memstore.Config{})
	defer s.Close()
	ctx := t.Context()
	var first store.Update
	for i := range memstore.DefaultMaxLen + 1 {
		u, err := s.Append(ctx, store.Update{Topics: []string{"t"}, Data: fmt.Sprint(i)})
		if err != nil {
			t.Fatalf("Append(#%d) = %v, want nil", i, err)
		}
		if i == 0 {
			first = u
		}
	}
	if _, err := s.Lookup(ctx, first.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Lookup(%q) past DefaultMaxLen = %v, want %v", first.ID, err, store.ErrNotFound)
	}
	got, err := s.Read(ctx, 0, 2*memstore.DefaultMaxLen)
	if err != nil || len(got) != memstore.DefaultMaxLen {
		t.Fatalf("Read(0, %d) = %d updates, %v, want %d, nil", 2*memstore.DefaultMaxLen, len(got), err, memstore.DefaultMaxLen)
	}
}

func TestMaxAge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := memstore.New(memstore.Config{MaxAge: time.Minute})
		defer s.Close()
		ctx := t.Context()
		appendData := func(data string) store.Update {
			t.Helper()
			u, err := s.Append(ctx, store.Update{Topics: []string{"t"}, Data: data})
			if err != nil {
				t.Fatalf("Append(%q) = %v, want nil", data, err)
			}
			return u
		}
		old1 := appendData("old1")
		time.Sleep(30 * time.Second)
		old2 := appendData("old2")
		time.Sleep(40 * time.Second) // old1 is 70s old, old2 40s
		fresh := appendData("fresh")

		got, err := s.Read(ctx, 0, 10)
		if err != nil || len(got) != 2 || got[0].Seq != old2.Seq || got[1].Seq != fresh.Seq {
			t.Fatalf("Read(0, 10) = %+v, %v, want [old2 fresh]", got, err)
		}
		if _, err := s.Lookup(ctx, old1.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Lookup(%q) of expired update = %v, want %v", old1.ID, err, store.ErrNotFound)
		}
		if _, err := s.Read(ctx, old1.Seq, 10); err != nil {
			t.Fatalf("Read(%d, 10) after the newest trimmed = %v, want nil", old1.Seq, err)
		}

		time.Sleep(2 * time.Minute) // everything is expired now
		newest := appendData("newest")
		got, err = s.Read(ctx, 0, 10)
		if err != nil || len(got) != 1 || got[0].Seq != newest.Seq {
			t.Fatalf("Read(0, 10) = %+v, %v, want [newest]", got, err)
		}
		if _, err := s.Read(ctx, old1.Seq, 10); !errors.Is(err, store.ErrCursorGone) {
			t.Fatalf("Read(%d, 10) from an expired position = %v, want %v", old1.Seq, err, store.ErrCursorGone)
		}
		// Explicit old times are expired at the next append.
		stale, err := s.Append(ctx, store.Update{Topics: []string{"t"}, Time: time.Now().Add(-time.Hour)})
		if err != nil {
			t.Fatalf("Append(stale) = %v, want nil", err)
		}
		appendData("after-stale")
		if _, err := s.Lookup(ctx, stale.ID); err != nil {
			// stale is not the oldest: age trimming stops at the first
			// update young enough, so it is kept until newest expires.
			t.Fatalf("Lookup(%q) = %v, want nil", stale.ID, err)
		}
	})
}

func TestNewPanicsOnNegative(t *testing.T) {
	for _, cfg := range []memstore.Config{{MaxLen: -1}, {MaxAge: -time.Second}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New(%+v) did not panic", cfg)
				}
			}()
			memstore.New(cfg)
		}()
	}
}
