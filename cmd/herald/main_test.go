package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/herald-sse/herald/broker"
	"github.com/herald-sse/herald/hub"
	"github.com/herald-sse/herald/store/memstore"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testKey is the publisher key of the hubs started by newTestHub.
const testKey = "herald-cmd-test-key-0123456789abcdef"

// result is what one run of the command produced.
type result struct {
	code           int
	stdout, stderr string
}

// runCmd runs the herald command with args, as main does, and returns its
// exit code and output. It fails the test if the command takes more than
// 20 seconds.
func runCmd(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, &stdout, &stderr)
	if ctx.Err() != nil {
		t.Fatalf("herald %s: still running after 20s; stderr:\n%s", strings.Join(args, " "), stderr.String())
	}
	return result{code, stdout.String(), stderr.String()}
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// background is a command running in its own goroutine.
type background struct {
	args           []string
	stdout, stderr syncBuffer
	cancel         context.CancelFunc
	done           chan struct{}
	code           int
}

// startCmd runs the herald command with args in the background. It is
// canceled (and waited for) at the end of the test at the latest.
func startCmd(t *testing.T, args ...string) *background {
	t.Helper()
	return startCmdFor(t, 20*time.Second, args...)
}

// startCmdFor is startCmd with the command's lifetime bound set to d.
func startCmdFor(t *testing.T, d time.Duration, args ...string) *background {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	bg := &background{args: args, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(bg.done)
		bg.code = run(ctx, args, &bg.stdout, &bg.stderr)
	}()
	t.Cleanup(func() {
		cancel()
		<-bg.done
	})
	return bg
}

// wait waits for the command to end and returns its result.
func (bg *background) wait(t *testing.T) result {
	t.Helper()
	select {
	case <-bg.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("herald %s: still running after 20s; stderr:\n%s", strings.Join(bg.args, " "), bg.stderr.String())
	}
	return result{bg.code, bg.stdout.String(), bg.stderr.String()}
}

// waitFor polls cond until it is true, or fails the test after 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// testHub is a Herald hub (memstore, broker, hub) on a loopback
// httptest server.
type testHub struct {
	url string // the Mercure endpoint
	st  *memstore.Store
	b   *broker.Broker

	mu       sync.Mutex
	pubConns map[string]bool // remote addresses that sent a POST
}

// newTestHub starts a hub whose publisher key is testKey. cfg may change
// the other hub settings. Everything is stopped at the end of the test.
func newTestHub(t *testing.T, cfg hub.Config) *testHub {
	t.Helper()
	th := &testHub{st: memstore.New(memstore.Config{}), pubConns: map[string]bool{}}
	var err error
	th.b, err = broker.New(th.st, broker.Config{Heartbeat: -1})
	if err != nil {
		t.Fatal(err)
	}
	cfg.PublisherKey = []byte(testKey)
	h, err := hub.New(th.b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			th.mu.Lock()
			th.pubConns[r.RemoteAddr] = true
			th.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := th.b.Shutdown(ctx); err != nil {
			t.Errorf("broker Shutdown: %v", err)
		}
		srv.Close()
		th.st.Close()
	})
	th.url = srv.URL + hub.Path
	return th
}

// publishConnections returns how many connections sent a publish request.
func (th *testHub) publishConnections() int {
	th.mu.Lock()
	defer th.mu.Unlock()
	return len(th.pubConns)
}

// waitSubscribers waits until the hub serves n streams.
func (th *testHub) waitSubscribers(t *testing.T, n int) {
	t.Helper()
	waitFor(t, "subscribers", func() bool { return th.b.Stats().Subscribers == n })
}

// lastSeq returns the sequence number of the newest update in the hub's
// log (the number of updates published).
func (th *testHub) lastSeq(t *testing.T) uint64 {
	t.Helper()
	seq, _, err := th.st.Last(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

// mintToken returns a token signed with testKey by `herald token`.
func mintToken(t *testing.T, args ...string) string {
	t.Helper()
	res := runCmd(t, append([]string{"token", "--key", testKey}, args...)...)
	if res.code != 0 {
		t.Fatalf("herald token %v: exit %d, stderr %q", args, res.code, res.stderr)
	}
	return strings.TrimSpace(res.stdout)
}
