package natsstore_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-sse/herald/internal/servertest"
	"github.com/herald-sse/herald/store"
	"github.com/herald-sse/herald/store/natsstore"
)

// upConn connects to srv, which is running, and waits until connected.
func upConn(tb testing.TB, srv *servertest.Server) *nats.Conn {
	tb.Helper()
	nc := privateConn(tb, srv)
	if !servertest.WaitFor(tb.Context(), 10*time.Second, nc.IsConnected) {
		tb.Fatalf("not connected to %s after 10s", srv.Addr)
	}
	return nc
}

// privateConn connects to srv, retrying while it is down, and closes the
// connection when tb ends.
func privateConn(tb testing.TB, srv *servertest.Server) *nats.Conn {
	tb.Helper()
	nc, err := nats.Connect(srv.URL("nats"), nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1),
		nats.ReconnectWait(50*time.Millisecond), nats.ReconnectBufSize(-1))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	return nc
}

// TestLogReset loses the stream under two running stores, on a private
// nats-server: a Wait pending at the newest position and a Read from an
// old one must report store.ErrLogReset, the stores must create the
// stream again and follow it.
func TestLogReset(t *testing.T) {
	tests := []struct {
		name string
		lose func(t *testing.T, srv *servertest.Server)
	}{
		{"stream deleted", func(t *testing.T, srv *servertest.Server) {
			js, err := jetstream.New(upConn(t, srv))
			if err != nil {
				t.Fatal(err)
			}
			if err := js.DeleteStream(t.Context(), natsstore.DefaultStream); err != nil {
				t.Fatal(err)
			}
		}},
		{"restart with its storage wiped", func(t *testing.T, srv *servertest.Server) {
			srv.Kill()
			entries, _ := os.ReadDir(srv.Dir)
			for _, e := range entries {
				os.RemoveAll(filepath.Join(srv.Dir, e.Name()))
			}
			srv.Start()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := servertest.StartNATS(t)
			cfg := natsstore.Config{CheckInterval: 50 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))}
			a, b := open(t, upConn(t, srv), cfg), open(t, upConn(t, srv), cfg)
			ctx := t.Context()
			var last store.Update
			for i := range 5 {
				var err error
				if last, err = a.Append(ctx, store.Update{Topics: []string{"t"}, Data: fmt.Sprint(i)}); err != nil {
					t.Fatal(err)
				}
			}
			if err := b.Wait(ctx, last.Seq-1); err != nil {
				t.Fatalf("B.Wait(%d) = %v, want nil", last.Seq-1, err)
			}
			waited := make(chan error, 1)
			go func() { waited <- b.Wait(ctx, last.Seq) }()

			tt.lose(t, srv)

			select {
			case err := <-waited:
				if !errors.Is(err, store.ErrLogReset) {
					t.Fatalf("B.Wait(%d) pending while the stream was lost = %v, want %v", last.Seq, err, store.ErrLogReset)
				}
			case <-time.After(15 * time.Second):
				t.Fatalf("B.Wait(%d) still blocked 15s after the stream was lost, want %v", last.Seq, store.ErrLogReset)
			}
			var err error
			servertest.WaitFor(ctx, 15*time.Second, func() bool {
				_, err = a.Read(ctx, 2, 10)
				return errors.Is(err, store.ErrLogReset)
			})
			if !errors.Is(err, store.ErrLogReset) {
				t.Fatalf("A.Read(2, 10) after the stream was lost = %v, want %v", err, store.ErrLogReset)
			}

			// The stores created the stream again and follow it.
			seq, _, err := b.Last(ctx)
			if err != nil {
				t.Fatalf("B.Last() = %v", err)
			}
			waited = make(chan error, 1)
			go func() { waited <- b.Wait(ctx, seq) }()
			u, err := a.Append(ctx, store.Update{Topics: []string{"t"}, Data: "new stream"})
			if err != nil {
				t.Fatalf("A.Append() after the reset = %v", err)
			}
			if u.Seq <= last.Seq {
				t.Fatalf("A.Append() after the reset = Seq %d, want above the lost stream's %d", u.Seq, last.Seq)
			}
			select {
			case err := <-waited:
				if err != nil {
					t.Fatalf("B.Wait(%d) in the new stream = %v, want nil", seq, err)
				}
			case <-time.After(15 * time.Second):
				t.Fatalf("B.Wait(%d) not woken by an append to the new stream", seq)
			}
			got, err := b.Read(ctx, seq, 10)
			if err != nil || len(got) == 0 || got[len(got)-1].Data != "new stream" {
				t.Fatalf("B.Read(%d, 10) = %+v, %v, want the new update last", seq, got, err)
			}
			if n, err := b.Lookup(ctx, u.ID); err != nil || n != got[len(got)-1].Seq {
				t.Fatalf("B.Lookup(%q) = %d, %v, want %d", u.ID, n, err, got[len(got)-1].Seq)
			}
		})
	}
}

// TestStartWhileDown opens stores while the server is down: New succeeds,
// calls fail until the server is up, then everything works.
func TestStartWhileDown(t *testing.T) {
	srv := servertest.StartNATS(t)
	srv.Kill()
	nc := privateConn(t, srv)
	ctx := t.Context()
	nctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	s, err := natsstore.New(nctx, nc, natsstore.Config{CheckInterval: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("New() with the server down = %v, want nil", err)
	}
	defer s.Close()
	lctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, _, err := s.Last(lctx); err == nil {
		t.Fatal("Last() with the server down = nil error, want an error")
	}
	if _, err := s.Append(lctx, store.Update{Topics: []string{"t"}}); err == nil || errors.Is(err, store.ErrOutcomeUnknown) {
		t.Fatalf("Append() with the server down = %v, want an error other than %v (nothing was sent)", err, store.ErrOutcomeUnknown)
	}
	srv.Start()
	if !servertest.WaitFor(ctx, 15*time.Second, func() bool { _, _, err := s.Last(ctx); return err == nil }) {
		t.Fatal("Last() still failing 15s after the server started")
	}
	waited := make(chan error, 1)
	go func() { waited <- s.Wait(ctx, 0) }()
	if _, err := s.Append(ctx, store.Update{Topics: []string{"t"}}); err != nil {
		t.Fatalf("Append() once the server is up = %v", err)
	}
	if err := <-waited; err != nil {
		t.Fatalf("Wait(0) = %v", err)
	}
}

// TestConcurrentCreate starts several nodes at once on a server without
// the stream: every New succeeds, and they share one stream.
func TestConcurrentCreate(t *testing.T) {
	srv := servertest.StartNATS(t)
	const nodes = 4
	stores := make([]*natsstore.Store, nodes)
	errs := make([]error, nodes)
	var wg sync.WaitGroup
	for i := range nodes {
		nc, err := nats.Connect(srv.URL("nats"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		wg.Go(func() {
			stores[i], errs[i] = natsstore.New(t.Context(), nc, natsstore.Config{})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("New() on node %d of %d started at once = %v, want nil", i, nodes, err)
		}
		defer stores[i].Close()
	}
	ctx := t.Context()
	for i, s := range stores {
		u, err := s.Append(ctx, store.Update{Topics: []string{"t"}, Data: fmt.Sprint(i)})
		if err != nil || u.Seq != uint64(i+1) {
			t.Fatalf("node %d: Append() = %+v, %v, want Seq %d of one shared stream", i, u, err, i+1)
		}
	}
}

// TestStalledAppend pauses the server (SIGSTOP) after an Append's publish
// is sent: the Append bounded by its context returns
// store.ErrOutcomeUnknown in time.
func TestStalledAppend(t *testing.T) {
	srv := servertest.StartNATS(t)
	s := open(t, upConn(t, srv), natsstore.Config{Logger: slog.New(slog.DiscardHandler)})
	ctx := t.Context()
	if _, err := s.Append(ctx, store.Update{Topics: []string{"t"}}); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	defer srv.Cont()
	actx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := s.Append(actx, store.Update{ID: "stalled", Topics: []string{"t"}}); !errors.Is(err, store.ErrOutcomeUnknown) {
		t.Fatalf("Append with the server paused = %v, want %v", err, store.ErrOutcomeUnknown)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Append with a 200ms deadline and the server paused took %v", d)
	}
	srv.Cont()
	// The retry with the same id: stored once, whatever the first did.
	var err error
	servertest.WaitFor(ctx, 10*time.Second, func() bool {
		_, err = s.Append(ctx, store.Update{ID: "stalled", Topics: []string{"t"}})
		return err == nil || errors.Is(err, store.ErrDuplicateID)
	})
	if err != nil && !errors.Is(err, store.ErrDuplicateID) {
		t.Fatalf("Append retry after the pause = %v, want nil or %v", err, store.ErrDuplicateID)
	}
}
