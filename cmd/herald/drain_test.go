package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-sse/herald/hub"
)

// TestDrainOnShutdown shuts a running hub down while a publish is half
// sent and a stream is open: the listener closes at once (a readiness
// probe fails), the publish finishes and is accepted, the stream ends,
// and the command exits 0.
func TestDrainOnShutdown(t *testing.T) {
	bg, addr := startServe(t, "--no-dashboard")
	base := "http://" + addr
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr}

	// A stream, which the shutdown must end.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+hub.Path+"?topic=drain", nil)
	stream, err := c.Do(req)
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	defer stream.Body.Close()

	// A publish whose body is half sent.
	form := url.Values{"topic": {"drain"}, "data": {"in flight during the shutdown"}}.Encode()
	pub := dial(t, addr)
	fmt.Fprintf(pub, "POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s",
		hub.Path, addr, pubToken(t), len(form), form[:len(form)/2])
	waitFor(t, "the publish in flight", func() bool { return metric(t, c, base, "herald_publishes_in_flight") == 1 })

	bg.cancel() // SIGTERM
	waitFor(t, "the shutdown to start", func() bool { return strings.Contains(bg.stderr.String(), "herald: shutting down") })

	// Unready at once: the listener is closed (a probe's connection is
	// refused), and a request read on an open connection gets 503 (see
	// mountOps) until then.
	waitFor(t, "the listener to close", func() bool {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return true
		}
		conn.Close()
		return false
	})

	// The shutdown waits for the publish: finish it.
	fmt.Fprint(pub, form[len(form)/2:])
	resp, err := http.ReadResponse(bufio.NewReader(pub), nil)
	if err != nil {
		t.Fatalf("publish in flight during the shutdown: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || len(body) == 0 {
		t.Errorf("publish in flight during the shutdown: %s %q, want 200 and an id", resp.Status, body)
	}

	if _, err := io.Copy(io.Discard, stream.Body); err != nil {
		t.Errorf("stream during the shutdown: %v, want it ended cleanly", err)
	}
	res := bg.wait(t)
	if res.code != 0 {
		t.Errorf("herald serve after the shutdown: exit %d, want 0; stderr:\n%s", res.code, res.stderr)
	}
}

// dial opens a raw connection, closed at the end of the test.
func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// fakeBroker records the drain calls.
type fakeBroker struct {
	mu    sync.Mutex
	calls []string
	block chan struct{} // Shutdown waits on it when set
}

func (f *fakeBroker) record(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
}

func (f *fakeBroker) Drain(ctx context.Context, spread time.Duration) error {
	f.record(fmt.Sprintf("drain %v", spread))
	return nil
}

func (f *fakeBroker) Shutdown(ctx context.Context) error {
	f.record("shutdown")
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

type fakeHub struct{ b *fakeBroker }

func (h fakeHub) Close() error { h.b.record("hub close"); return nil }

// TestDrainOrder checks the order of the drain steps: publishes in
// flight, then the hub, then the broker's Drain with the spread, then
// Shutdown; and that Drain is skipped when the spread is 0.
func TestDrainOrder(t *testing.T) {
	for _, spread := range []time.Duration{3 * time.Second, 0} {
		fb := &fakeBroker{}
		release := make(chan struct{})
		in := newInflight(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			<-release
			fb.record("publish done")
		}))
		done := make(chan struct{})
		go func() {
			defer close(done)
			in.ServeHTTP(nil, httptestRequest(http.MethodPost))
		}()
		waitFor(t, "the publish in flight", func() bool { in.mu.Lock(); defer in.mu.Unlock(); return in.n == 1 })
		errc := make(chan error, 1)
		go func() {
			errc <- drain(context.Background(), drainSteps{
				server: &http.Server{}, inflight: in, hub: fakeHub{fb}, broker: fb, spread: spread,
				logger: slog.New(slog.DiscardHandler),
			})
		}()
		close(release)
		<-done
		if err := <-errc; err != nil {
			t.Errorf("drain (spread %v): %v", spread, err)
		}
		want := "publish done,hub close,drain 3s,shutdown"
		if spread == 0 {
			want = "publish done,hub close,shutdown"
		}
		if got := strings.Join(fb.calls, ","); got != want {
			t.Errorf("drain (spread %v) steps: %s, want %s", spread, got, want)
		}
	}
}

// TestDrainTimeout checks that a broker that never finishes does not hold
// the shutdown past its deadline.
func TestDrainTimeout(t *testing.T) {
	fb := &fakeBroker{block: make(chan struct{})}
	defer close(fb.block)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := drain(ctx, drainSteps{
		server: &http.Server{}, inflight: newInflight(nil), broker: fb, logger: slog.New(slog.DiscardHandler),
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("drain with a broker that never ends: %v, want context.DeadlineExceeded", err)
	}
}

func httptestRequest(method string) *http.Request {
	r, _ := http.NewRequest(method, "http://hub"+hub.Path, nil)
	return r
}
