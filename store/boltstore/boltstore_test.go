package boltstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/goleak"

	"github.com/herald-sse/herald/store"
	"github.com/herald-sse/herald/store/boltstore"
	"github.com/herald-sse/herald/store/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// dbPath returns a fresh file path for tb.
func dbPath(tb testing.TB) string {
	tb.Helper()
	return filepath.Join(tb.TempDir(), "herald.db")
}

// open opens path with cfg and closes the store when tb ends.
func open(tb testing.TB, path string, cfg boltstore.Config) *boltstore.Store {
	tb.Helper()
	s, err := boltstore.Open(path, cfg)
	if err != nil {
		tb.Fatalf("Open(%q, %+v) = %v, want nil", path, cfg, err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// mustAppend appends u to s and fails tb on error.
func mustAppend(tb testing.TB, s store.Store, u store.Update) store.Update {
	tb.Helper()
	got, err := s.Append(context.Background(), u)
	if err != nil {
		tb.Fatalf("Append(%+v) = %v, want nil", u, err)
	}
	return got
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, lim storetest.Limits) store.Store {
		s, err := boltstore.Open(dbPath(t), boltstore.Config{MaxLen: lim.MaxLen, MaxBytes: lim.MaxBytes})
		if err != nil {
			t.Fatalf("Open = %v", err)
		}
		return s
	})
}

func TestConformanceMaxAge(t *testing.T) {
	// Retention by age runs on every append without trimming young updates.
	storetest.Run(t, func(t *testing.T, lim storetest.Limits) store.Store {
		s, err := boltstore.Open(dbPath(t), boltstore.Config{MaxLen: lim.MaxLen, MaxBytes: lim.MaxBytes, MaxAge: time.Hour, NoSync: true})
		if err != nil {
			t.Fatalf("Open = %v", err)
		}
		return s
	})
}

func TestReopen(t *testing.T) {
	path := dbPath(t)
	ctx := t.Context()
	s, err := boltstore.Open(path, boltstore.Config{MaxLen: 5})
	if err != nil {
		t.Fatalf("Open(%q) = %v, want nil", path, err)
	}
	var us []store.Update
	for i := range 8 {
		us = append(us, mustAppend(t, s, store.Update{Topics: []string{"t", "u"}, Type: "x", Data: fmt.Sprint(i), Private: i%2 == 0, Retry: time.Second}))
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v, want nil", err)
	}

	s = open(t, path, boltstore.Config{MaxLen: 5})
	got, err := s.Read(ctx, 0, 100)
	if err != nil || len(got) != 5 {
		t.Fatalf("Read(0, 100) after reopen = %d updates, %v, want 5, nil", len(got), err)
	}
	for i, u := range got {
		want := us[3+i]
		if u.Seq != want.Seq || u.ID != want.ID || u.Data != want.Data || !u.Time.Equal(want.Time) ||
			u.Private != want.Private || u.Retry != want.Retry || u.Type != want.Type || len(u.Topics) != 2 {
			t.Fatalf("Read(0, 100)[%d] after reopen = %+v, want %+v", i, u, want)
		}
	}
	if seq, id, err := s.Last(ctx); err != nil || seq != us[7].Seq || id != us[7].ID {
		t.Fatalf("Last() after reopen = %d, %q, %v, want %d, %q, nil", seq, id, err, us[7].Seq, us[7].ID)
	}
	if seq, err := s.Lookup(ctx, us[4].ID); err != nil || seq != us[4].Seq {
		t.Fatalf("Lookup(%q) after reopen = %d, %v, want %d, nil", us[4].ID, seq, err, us[4].Seq)
	}
	if _, err := s.Lookup(ctx, us[0].ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Lookup(%q) of trimmed after reopen = %v, want %v", us[0].ID, err, store.ErrNotFound)
	}
	if _, err := s.Read(ctx, us[1].Seq, 10); !errors.Is(err, store.ErrCursorGone) {
		t.Fatalf("Read(%d, 10) after reopen = %v, want %v", us[1].Seq, err, store.ErrCursorGone)
	}
	if _, err := s.Append(ctx, store.Update{ID: us[7].ID, Topics: []string{"t"}}); !errors.Is(err, store.ErrDuplicateID) {
		t.Fatalf("Append(id %q) after reopen = %v, want %v", us[7].ID, err, store.ErrDuplicateID)
	}
	next := mustAppend(t, s, store.Update{Topics: []string{"t"}})
	if next.Seq <= us[7].Seq {
		t.Fatalf("Append after reopen: Seq = %d, want > %d", next.Seq, us[7].Seq)
	}
}

func TestReopenSmallerMaxLen(t *testing.T) {
	path := dbPath(t)
	s, err := boltstore.Open(path, boltstore.Config{MaxLen: 10, NoSync: true})
	if err != nil {
		t.Fatalf("Open(%q) = %v, want nil", path, err)
	}
	for range 10 {
		mustAppend(t, s, store.Update{Topics: []string{"t"}})
	}
	s.Close()
	s = open(t, path, boltstore.Config{MaxLen: 3, NoSync: true})
	last := mustAppend(t, s, store.Update{Topics: []string{"t"}})
	got, err := s.Read(t.Context(), 0, 100)
	if err != nil || len(got) != 3 || got[2].Seq != last.Seq {
		t.Fatalf("Read(0, 100) after reopening with MaxLen 3 = %d updates, %v, want 3 ending at %d", len(got), err, last.Seq)
	}
}

func TestOpenInvalidFile(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, path string)
		want    string
	}{
		{"garbage", func(t *testing.T, path string) {
			data := []byte(strings.Repeat("this is not a database\n", 2000))
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "invalid"},
		{"truncated", func(t *testing.T, path string) {
			s, err := boltstore.Open(path, boltstore.Config{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			for range 2000 {
				mustAppend(t, s, store.Update{Topics: []string{"t"}, Data: strings.Repeat("x", 200)})
			}
			s.Close()
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, fi.Size()/3); err != nil {
				t.Fatal(err)
			}
		}, ""},
		{"other bbolt file", func(t *testing.T, path string) {
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = db.Update(func(tx *bolt.Tx) error {
				_, err := tx.CreateBucket([]byte("sessions"))
				return err
			})
			db.Close()
			if err != nil {
				t.Fatal(err)
			}
		}, "not a herald store"},
		{"future format", func(t *testing.T, path string) {
			s, err := boltstore.Open(path, boltstore.Config{})
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = db.Update(func(tx *bolt.Tx) error {
				return tx.Bucket([]byte("meta")).Put([]byte("version"), []byte{2})
			})
			db.Close()
			if err != nil {
				t.Fatal(err)
			}
		}, "format version"},
		{"directory", func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := dbPath(t)
			tt.prepare(t, path)
			s, err := boltstore.Open(path, boltstore.Config{})
			if err == nil {
				s.Close()
				t.Fatalf("Open(%q) of a %s file = nil error, want an error", path, tt.name)
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Open(%q) = %v, want an error naming the path and %q", path, err, tt.want)
			}
		})
	}
}

func TestOpenMissingDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "herald.db")
	if s, err := boltstore.Open(path, boltstore.Config{}); err == nil || !strings.Contains(err.Error(), path) {
		if s != nil {
			s.Close()
		}
		t.Fatalf("Open(%q) = %v, want an error naming the path", path, err)
	}
}

func TestOpenInvalidConfig(t *testing.T) {
	for _, cfg := range []boltstore.Config{{MaxLen: -1}, {MaxAge: -time.Second}, {LockTimeout: -time.Second}} {
		if s, err := boltstore.Open(dbPath(t), cfg); err == nil {
			s.Close()
			t.Errorf("Open(%+v) = nil error, want an error", cfg)
		}
	}
}

func TestOpenLocked(t *testing.T) {
	path := dbPath(t)
	open(t, path, boltstore.Config{})
	start := time.Now()
	s, err := boltstore.Open(path, boltstore.Config{LockTimeout: 100 * time.Millisecond})
	if err == nil {
		s.Close()
		t.Fatalf("Open(%q) while locked = nil error, want an error", path)
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("Open(%q) while locked = %v, want an error naming the path and the lock", path, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Open(%q) while locked took %v, want about the 100ms LockTimeout", path, d)
	}
}

func TestCorruptRecord(t *testing.T) {
	path := dbPath(t)
	s, err := boltstore.Open(path, boltstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var us []store.Update
	for range 3 {
		us = append(us, mustAppend(t, s, store.Update{Topics: []string{"t"}}))
	}
	s.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		key := []byte{0, 0, 0, 0, 0, 0, 0, byte(us[1].Seq)}
		return tx.Bucket([]byte("updates")).Put(key, []byte{1, 0, 0xff})
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	// Open checks every record, so the damage is reported at once rather
	// than when a client replays through it.
	if s, err := boltstore.Open(path, boltstore.Config{}); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "corrupt record") {
		if s != nil {
			s.Close()
		}
		t.Fatalf("Open(%q) with a corrupt record = %v, want an error naming the path and the corrupt record", path, err)
	}
}

func TestAppendLongID(t *testing.T) {
	s := open(t, dbPath(t), boltstore.Config{NoSync: true})
	u := store.Update{ID: strings.Repeat("x", bolt.MaxKeySize+1), Topics: []string{"t"}}
	if _, err := s.Append(t.Context(), u); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("Append(id of %d bytes) = %v, want %v", len(u.ID), err, store.ErrInvalid)
	}
}

func TestMaxAge(t *testing.T) {
	s := open(t, dbPath(t), boltstore.Config{MaxAge: time.Hour, NoSync: true})
	ctx := t.Context()
	now := time.Now()
	old1 := mustAppend(t, s, store.Update{Topics: []string{"t"}, Time: now.Add(-3 * time.Hour)})
	old2 := mustAppend(t, s, store.Update{Topics: []string{"t"}, Time: now.Add(-2 * time.Hour)})
	fresh := mustAppend(t, s, store.Update{Topics: []string{"t"}})

	got, err := s.Read(ctx, 0, 10)
	if err != nil || len(got) != 1 || got[0].Seq != fresh.Seq {
		t.Fatalf("Read(0, 10) = %+v, %v, want only the fresh update %d", got, err, fresh.Seq)
	}
	for _, u := range []store.Update{old1, old2} {
		if _, err := s.Lookup(ctx, u.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Lookup(%q) of an expired update = %v, want %v", u.ID, err, store.ErrNotFound)
		}
	}
	if _, err := s.Read(ctx, old1.Seq, 10); !errors.Is(err, store.ErrCursorGone) {
		t.Fatalf("Read(%d, 10) from an expired position = %v, want %v", old1.Seq, err, store.ErrCursorGone)
	}
	if got, err := s.Read(ctx, old2.Seq, 10); err != nil || len(got) != 1 {
		t.Fatalf("Read(%d, 10) after the newest expired = %d updates, %v, want 1, nil", old2.Seq, len(got), err)
	}
}

func TestMaxAgeIdle(t *testing.T) {
	// The store trims expired updates with no append to trigger it, but
	// keeps the newest one.
	s := open(t, dbPath(t), boltstore.Config{MaxAge: 100 * time.Millisecond, NoSync: true})
	ctx := t.Context()
	var last store.Update
	for range 3 {
		last = mustAppend(t, s, store.Update{Topics: []string{"t"}})
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := s.Read(ctx, 0, 10)
		if err != nil {
			t.Fatalf("Read(0, 10) = %v, want nil", err)
		}
		if len(got) == 1 {
			if got[0].Seq != last.Seq {
				t.Fatalf("Read(0, 10) after idle trimming = %+v, want the newest update %d", got, last.Seq)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Read(0, 10) = %d updates 10s after they expired, want 1", len(got))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if seq, id, err := s.Last(ctx); err != nil || seq != last.Seq || id != last.ID {
		t.Fatalf("Last() = %d, %q, %v, want %d, %q, nil", seq, id, err, last.Seq, last.ID)
	}
}

func TestCloseCommitsSubmitted(t *testing.T) {
	path := dbPath(t)
	s, err := boltstore.Open(path, boltstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu     sync.Mutex
		stored []store.Update
		wg     sync.WaitGroup
	)
	for w := range 16 {
		wg.Go(func() {
			for i := 0; ; i++ {
				u, err := s.Append(context.Background(), store.Update{Topics: []string{"t"}, Data: fmt.Sprintf("%d/%d", w, i)})
				if errors.Is(err, store.ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("Append = %v, want nil or %v", err, store.ErrClosed)
					return
				}
				mu.Lock()
				stored = append(stored, u)
				mu.Unlock()
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v, want nil", err)
	}
	wg.Wait()
	if len(stored) == 0 {
		t.Fatal("no Append succeeded before Close")
	}
	s = open(t, path, boltstore.Config{})
	for _, u := range stored {
		if seq, err := s.Lookup(t.Context(), u.ID); err != nil || seq != u.Seq {
			t.Fatalf("Lookup(%q) after reopen = %d, %v, want %d: an acknowledged append was lost", u.ID, seq, err, u.Seq)
		}
	}
	got, err := s.Read(t.Context(), 0, len(stored)+10)
	if err != nil || len(got) != len(stored) {
		t.Fatalf("Read(0, %d) after reopen = %d updates, %v, want %d", len(stored)+10, len(got), err, len(stored))
	}
}

func TestFileSizeBounded(t *testing.T) {
	const maxLen = 500
	path := dbPath(t)
	s := open(t, path, boltstore.Config{MaxLen: maxLen, NoSync: true})
	data := strings.Repeat("d", 300)
	appendRound := func() {
		// Concurrent appenders, so that commits hold batches of several
		// sizes as they do under load.
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for range maxLen / 4 {
					if _, err := s.Append(context.Background(), store.Update{Topics: []string{fmt.Sprintf("t/%d", w)}, Data: data}); err != nil {
						t.Errorf("Append = %v", err)
						return
					}
				}
			})
		}
		wg.Wait()
	}
	size := func() int64 {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	for range 3 { // warm-up: fill and start trimming
		appendRound()
	}
	warm := size()
	var peak int64
	for range 20 {
		appendRound()
		peak = max(peak, size())
	}
	t.Logf("file size after warm-up %d bytes, peak over 20×MaxLen more appends %d bytes", warm, peak)
	if peak > 2*warm {
		t.Fatalf("file grew from %d to %d bytes over 20×MaxLen appends with MaxLen %d, want it bounded", warm, peak, maxLen)
	}
	got, err := s.Read(t.Context(), 0, 2*maxLen)
	if err != nil || len(got) != maxLen {
		t.Fatalf("Read(0, %d) = %d updates, %v, want %d", 2*maxLen, len(got), err, maxLen)
	}
}
