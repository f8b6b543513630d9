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

	"github.com/herald-sse/herald/broker"
	"github.com/herald-sse/herald/hub"
	"github.com/herald-sse/herald/sse"
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

// TestDrainSpreadsReconnects shuts a hub with 200 open streams down with
// --drain-spread 2s and records when each client would reconnect: the end
// of its stream plus the last retry: it received. The reconnections must
// be spread over the interval, not bunched.
func TestDrainSpreadsReconnects(t *testing.T) {
	var _ drainer = (*broker.Broker)(nil) // the hub's drain uses the broker's
	const streams, spread = 200, 2 * time.Second
	bg, addr := startServe(t, "--drain-spread", spread.String(), "--shutdown-timeout", "5s", "--retry", "1s")
	base := "http://" + addr
	tr := &http.Transport{MaxConnsPerHost: 0}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr}
	reconnect := make([]time.Time, streams)
	var wg sync.WaitGroup
	for i := range streams {
		resp, err := c.Get(base + hub.Path + "?topic=spread")
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		wg.Go(func() {
			defer resp.Body.Close()
			dec := sse.NewDecoder(resp.Body)
			for {
				if _, err := dec.Next(); err != nil {
					reconnect[i] = time.Now().Add(dec.Retry())
					return
				}
			}
		})
	}
	waitFor(t, "the subscribers", func() bool { return metric(t, c, base, "herald_subscribers") == streams })
	start := time.Now()
	bg.cancel()
	wg.Wait()
	if res := bg.wait(t); res.code != 0 {
		t.Errorf("herald serve after the drain: exit %d; stderr:\n%s", res.code, res.stderr)
	}
	// Count the reconnections per tenth of the spread: none may hold more
	// than a quarter of them (uniform would be a tenth), and they must
	// cover at least half of the spread.
	buckets := map[int]int{}
	first, last := reconnect[0], reconnect[0]
	for _, r := range reconnect {
		buckets[int(r.Sub(start)/(spread/10))]++
		if r.Before(first) {
			first = r
		}
		if r.After(last) {
			last = r
		}
	}
	for b, n := range buckets {
		if n > streams/4 {
			t.Errorf("%d of %d reconnections in [%v, %v) after SIGTERM, want them spread over %v; buckets %v",
				n, streams, time.Duration(b)*spread/10, time.Duration(b+1)*spread/10, spread, buckets)
		}
	}
	if got := last.Sub(first); got < spread/2 {
		t.Errorf("reconnections spread over %v, want at least %v", got, spread/2)
	}
}
