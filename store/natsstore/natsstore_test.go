package natsstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/herald-sse/herald/store"
	"github.com/herald-sse/herald/store/natsstore"
	"github.com/herald-sse/herald/store/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// natsURL returns the address of the test server.
func natsURL() string {
	if u := os.Getenv("HERALD_TEST_NATS"); u != "" {
		return u
	}
	return "nats://127.0.0.1:4222"
}

// connect opens a connection to the test server and closes it when tb
// ends. It skips tb when the server is not reachable, unless CI=true.
func connect(tb testing.TB) *nats.Conn {
	tb.Helper()
	url := natsURL()
	nc, err := nats.Connect(url, nats.Timeout(2*time.Second), nats.MaxReconnects(0))
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("nats not reachable at %s: %v", url, err)
		}
		tb.Skipf("nats not reachable at %s: %v", url, err)
	}
	tb.Cleanup(nc.Close)
	return nc
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// uniqueNames returns a stream name and a subject that no other test uses.
func uniqueNames(tb testing.TB) (stream, subject string) {
	tb.Helper()
	name := unsafeChars.ReplaceAllString(tb.Name(), "_")
	if len(name) > 48 {
		name = name[len(name)-48:]
	}
	var b [6]byte
	rand.Read(b[:])
	suffix := hex.EncodeToString(b[:])
	return "herald_test_" + name + "_" + suffix, "herald_test." + name + "_" + suffix
}

// newStream returns a Config for a fresh stream on nc and deletes the
// stream when tb ends (before nc is closed).
func newStream(tb testing.TB, nc *nats.Conn, cfg natsstore.Config) natsstore.Config {
	tb.Helper()
	cfg.Stream, cfg.Subject = uniqueNames(tb)
	tb.Cleanup(func() {
		js, err := jetstream.New(nc)
		if err != nil {
			tb.Errorf("jetstream.New() = %v", err)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := js.DeleteStream(ctx, cfg.Stream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			tb.Errorf("DeleteStream(%q) = %v", cfg.Stream, err)
		}
	})
	return cfg
}

// open returns a Store on cfg and closes it when tb ends.
func open(tb testing.TB, nc *nats.Conn, cfg natsstore.Config) *natsstore.Store {
	tb.Helper()
	s, err := natsstore.New(context.Background(), nc, cfg)
	if err != nil {
		tb.Fatalf("New(%+v) = %v, want nil", cfg, err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	connect(t) // skip the whole suite at once when there is no server
	storetest.Run(t, func(t *testing.T, lim storetest.Limits) store.Store {
		nc := connect(t)
		return open(t, nc, newStream(t, nc, natsstore.Config{MaxLen: lim.MaxLen, MaxBytes: lim.MaxBytes}))
	})
}

func TestNewInvalidConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  natsstore.Config
	}{
		{"negative MaxLen", natsstore.Config{MaxLen: -1}},
		{"negative MaxAge", natsstore.Config{MaxAge: -time.Second}},
		{"negative Replicas", natsstore.Config{Replicas: -1}},
		{"stream with dot", natsstore.Config{Stream: "a.b"}},
		{"stream with space", natsstore.Config{Stream: "a b"}},
		{"wildcard subject", natsstore.Config{Subject: "herald.*"}},
		{"full wildcard subject", natsstore.Config{Subject: "herald.>"}},
		{"empty token", natsstore.Config{Subject: "herald..x"}},
		{"trailing dot", natsstore.Config{Subject: "herald."}},
		{"subject with space", natsstore.Config{Subject: "her ald"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A nil connection: the config is checked before it is used.
			if s, err := natsstore.New(t.Context(), nil, tt.cfg); err == nil {
				s.Close()
				t.Fatalf("New(nil, %+v) = nil error, want an error", tt.cfg)
			}
		})
	}
	if _, err := natsstore.New(t.Context(), nil, natsstore.Config{}); err == nil {
		t.Fatalf("New(nil, Config{}) = nil error, want an error")
	}
}

// TestTwoNodes runs two stores, each on its own connection, on one stream,
// as two Herald nodes would.
func TestTwoNodes(t *testing.T) {
	ncA, ncB := connect(t), connect(t)
	cfg := newStream(t, ncA, natsstore.Config{})
	a, b := open(t, ncA, cfg), open(t, ncB, cfg)
	ctx := t.Context()

	// B waits; A appends.
	waitErr := make(chan error, 1)
	go func() {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		waitErr <- b.Wait(wctx, 0)
	}()
	in := store.Update{ID: "from-a", Topics: []string{"https://example.com/t"}, Type: "t", Data: "hello", Private: true}
	ua, err := a.Append(ctx, in)
	if err != nil {
		t.Fatalf("A.Append(%+v) = %v, want nil", in, err)
	}
	if err := <-waitErr; err != nil {
		t.Fatalf("B.Wait(0) after A.Append = %v, want nil", err)
	}
	got, err := b.Read(ctx, 0, 10)
	if err != nil || len(got) != 1 || got[0].Seq != ua.Seq || got[0].ID != ua.ID || got[0].Data != ua.Data ||
		!got[0].Private || !got[0].Time.Equal(ua.Time) {
		t.Fatalf("B.Read(0, 10) = %+v, %v, want [%+v]", got, err, ua)
	}
	if seq, err := b.Lookup(ctx, "from-a"); err != nil || seq != ua.Seq {
		t.Fatalf("B.Lookup(%q) = %d, %v, want %d, nil", "from-a", seq, err, ua.Seq)
	}
	if seq, id, err := b.Last(ctx); err != nil || seq != ua.Seq || id != ua.ID {
		t.Fatalf("B.Last() = %d, %q, %v, want %d, %q, nil", seq, id, err, ua.Seq, ua.ID)
	}

	// A duplicate id is rejected on the other node too.
	dup := store.Update{ID: "from-a", Topics: []string{"t"}, Data: "again"}
	if got, err := b.Append(ctx, dup); !errors.Is(err, store.ErrDuplicateID) {
		t.Fatalf("B.Append(%+v) = %+v, %v, want %v", dup, got, err, store.ErrDuplicateID)
	}

	// B appends; A waits after its own last Seq and reads B's update.
	ub, err := b.Append(ctx, store.Update{Topics: []string{"t"}, Data: "from b"})
	if err != nil {
		t.Fatalf("B.Append = %v, want nil", err)
	}
	if ub.Seq <= ua.Seq {
		t.Fatalf("B.Append Seq = %d, want > %d (A's)", ub.Seq, ua.Seq)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := a.Wait(wctx, ua.Seq); err != nil {
		t.Fatalf("A.Wait(%d) after B.Append = %v, want nil", ua.Seq, err)
	}
	got, err = a.Read(ctx, ua.Seq, 10)
	if err != nil || len(got) != 1 || got[0].Seq != ub.Seq || got[0].ID != ub.ID || got[0].Data != "from b" {
		t.Fatalf("A.Read(%d, 10) = %+v, %v, want [%+v]", ua.Seq, got, err, ub)
	}
	if seq, err := a.Lookup(ctx, ub.ID); err != nil || seq != ub.Seq {
		t.Fatalf("A.Lookup(%q) = %d, %v, want %d, nil", ub.ID, seq, err, ub.Seq)
	}

	// Closing one node leaves the other working.
	if err := a.Close(); err != nil {
		t.Fatalf("A.Close() = %v, want nil", err)
	}
	if _, err := b.Append(ctx, store.Update{Topics: []string{"t"}}); err != nil {
		t.Fatalf("B.Append after A.Close = %v, want nil", err)
	}
}

// TestReopen checks that a store opened on an existing stream continues
// its history: Seq keeps increasing and Wait follows new appends.
func TestReopen(t *testing.T) {
	nc := connect(t)
	cfg := newStream(t, nc, natsstore.Config{})
	ctx := t.Context()
	first := open(t, nc, cfg)
	u1, err := first.Append(ctx, store.Update{ID: "one", Topics: []string{"t"}})
	if err != nil {
		t.Fatalf("Append = %v, want nil", err)
	}
	first.Close()

	s := open(t, nc, cfg)
	if seq, id, err := s.Last(ctx); err != nil || seq != u1.Seq || id != "one" {
		t.Fatalf("Last() after reopen = %d, %q, %v, want %d, %q, nil", seq, id, err, u1.Seq, "one")
	}
	if err := s.Wait(ctx, 0); err != nil {
		t.Fatalf("Wait(0) after reopen = %v, want nil", err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	if err := s.Wait(wctx, u1.Seq); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait(%d) when caught up = %v, want %v", u1.Seq, err, context.DeadlineExceeded)
	}
	if _, err := s.Append(ctx, store.Update{ID: "one", Topics: []string{"t"}}); !errors.Is(err, store.ErrDuplicateID) {
		t.Fatalf("Append(id %q) after reopen = %v, want %v", "one", err, store.ErrDuplicateID)
	}
	u2, err := s.Append(ctx, store.Update{Topics: []string{"t"}})
	if err != nil || u2.Seq <= u1.Seq {
		t.Fatalf("Append after reopen = %+v, %v, want Seq > %d", u2, err, u1.Seq)
	}
}

// TestMaxAge checks that updates older than MaxAge are purged, except the
// newest.
func TestMaxAge(t *testing.T) {
	nc := connect(t)
	s := open(t, nc, newStream(t, nc, natsstore.Config{MaxAge: 200 * time.Millisecond}))
	ctx := t.Context()
	old := time.Now().Add(-time.Hour)
	var us []store.Update
	for i := range 4 {
		u, err := s.Append(ctx, store.Update{Topics: []string{"t"}, Time: old.Add(time.Duration(i))})
		if err != nil {
			t.Fatalf("Append(#%d) = %v, want nil", i, err)
		}
		us = append(us, u)
	}
	newest := us[len(us)-1]
	// Every update is old, but the newest stays.
	waitFor(t, "the old updates but the newest to be purged", func() bool {
		got, err := s.Read(ctx, 0, 10)
		return err == nil && len(got) == 1 && got[0].Seq == newest.Seq
	})
	if _, err := s.Lookup(ctx, us[0].ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Lookup(%q) of a purged update = %v, want %v", us[0].ID, err, store.ErrNotFound)
	}
	if _, err := s.Read(ctx, us[0].Seq, 10); !errors.Is(err, store.ErrCursorGone) {
		t.Fatalf("Read(%d, 10) from a purged position = %v, want %v", us[0].Seq, err, store.ErrCursorGone)
	}
	if seq, id, err := s.Last(ctx); err != nil || seq != newest.Seq || id != newest.ID {
		t.Fatalf("Last() = %d, %q, %v, want %d, %q, nil", seq, id, err, newest.Seq, newest.ID)
	}
	// A fresh update lets the old newest go, and stays itself.
	fresh, err := s.Append(ctx, store.Update{Topics: []string{"t"}})
	if err != nil {
		t.Fatalf("Append = %v, want nil", err)
	}
	waitFor(t, "the previous newest update to be purged", func() bool {
		_, err := s.Lookup(ctx, newest.ID)
		return errors.Is(err, store.ErrNotFound)
	})
	if seq, err := s.Lookup(ctx, fresh.ID); err != nil || seq != fresh.Seq {
		t.Fatalf("Lookup(%q) of a fresh update = %d, %v, want %d, nil", fresh.ID, seq, err, fresh.Seq)
	}
}

// waitFor polls cond for up to 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTwoNodesSameID checks that when two nodes append the same explicit
// id at once, exactly one wins and the other gets ErrDuplicateID.
func TestTwoNodesSameID(t *testing.T) {
	ncA, ncB := connect(t), connect(t)
	cfg := newStream(t, ncA, natsstore.Config{})
	nodes := []*natsstore.Store{open(t, ncA, cfg), open(t, ncB, cfg)}
	ctx := t.Context()
	for i := range 20 {
		id := fmt.Sprintf("race-%d", i)
		type result struct {
			u   store.Update
			err error
		}
		results := make(chan result, len(nodes))
		for n, s := range nodes {
			go func() {
				u, err := s.Append(ctx, store.Update{ID: id, Topics: []string{"t"}, Data: fmt.Sprint(n)})
				results <- result{u, err}
			}()
		}
		var won []store.Update
		for range nodes {
			r := <-results
			switch {
			case r.err == nil:
				won = append(won, r.u)
			case !errors.Is(r.err, store.ErrDuplicateID):
				t.Fatalf("Append(id %q) = %v, want nil or %v", id, r.err, store.ErrDuplicateID)
			}
		}
		if len(won) != 1 {
			t.Fatalf("concurrent Append(id %q) on two nodes: %d succeeded, want 1", id, len(won))
		}
		for n, s := range nodes {
			if seq, err := s.Lookup(ctx, id); err != nil || seq != won[0].Seq {
				t.Fatalf("node %d: Lookup(%q) = %d, %v, want %d, nil", n, id, seq, err, won[0].Seq)
			}
		}
	}
}
