package e2e_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/herald-sse/herald/hub"
	"github.com/herald-sse/herald/internal/browsertest"
)

// process is a herald serve process started by a test.
type process struct {
	t    *testing.T
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a
// process's stdout and stderr.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// freeAddr returns a loopback address with a port that was free a moment
// ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startHerald runs the herald binary's serve command with args and waits
// until it answers /healthz on addr. The process is killed when the test
// ends, and its output is logged if the test failed.
func startHerald(t *testing.T, addr string, args ...string) *process {
	t.Helper()
	args = append([]string{"serve", "--addr", addr, "--publisher-key", string(testKey), "--log-level", "debug"}, args...)
	cmd := exec.Command(heraldBinary(t), args...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start herald: %v", err)
	}
	p := &process{t: t, cmd: cmd, out: out, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("herald %v output:\n%s", args, out.String())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+hub.HealthPath, nil)
		resp, err := http.DefaultClient.Do(req)
		cancel()
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-p.done:
			t.Fatalf("herald exited before it was ready:\n%s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("herald not ready on %s after 15s (last error %v):\n%s", addr, err, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill ends the process at once (SIGKILL, as a crash would) and waits for
// it.
func (p *process) kill() {
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.t.Errorf("herald did not exit 10s after SIGKILL")
	}
}

// TestBrowserReconnectsAfterHubRestart kills the hub (durable store)
// while a page is subscribed, starts it again on the same address and data
// directory and publishes at once. The browser's EventSource reconnects on
// its own with Last-Event-ID and must get exactly the updates published
// while it was away: no gap, no duplicate.
func TestBrowserReconnectsAfterHubRestart(t *testing.T) {
	addr := freeAddr(t)
	dataDir := t.TempDir()
	// The retry is long enough that the hub is back and the missed
	// updates are published before the browser reconnects, and short
	// enough to keep the test quick.
	const retry = 2500 * time.Millisecond
	args := []string{"--data-dir", dataDir, "--retry", retry.String()}
	hub1 := startHerald(t, addr, args...)
	endpoint := "http://" + addr + hub.Path
	tok := token(t)

	b := browsertest.New(t)
	p := openHarness(b, "http://"+addr+hub.HealthPath)
	p.Eval(fmt.Sprintf(`h.listen(%q, ["tick"])`, endpoint+"?topic=/clock"), nil)
	p.WaitFor("h.opens[0] === 1", 10*time.Second, "h.errors")

	var want []event
	pub := func(id string) {
		t.Helper()
		publish(t, endpoint, tok, url.Values{"topic": {"/clock"}, "id": {id}, "type": {"tick"}, "data": {"at " + id}})
		want = append(want, event{Type: "tick", Data: "at " + id, ID: id})
	}
	for i := 1; i <= 3; i++ {
		pub("before-" + strconv.Itoa(i))
	}
	p.WaitFor("h.events.length === 3", 10*time.Second, "h.events")

	hub1.kill()
	p.WaitFor("h.errors[0] >= 1 && h.state(0) === EventSource.CONNECTING", 10*time.Second, "[h.errors, h.state(0)]")
	down := time.Now()
	startHerald(t, addr, args...)
	for i := 1; i <= 3; i++ {
		pub("missed-" + strconv.Itoa(i))
	}
	var opens int
	p.Eval("h.opens[0]", &opens)
	if opens != 1 {
		t.Fatalf("the browser reconnected %v after the hub went down, before the missed updates were published; the hub took too long to restart", time.Since(down))
	}

	p.WaitFor("h.opens[0] === 2", 2*retry+10*time.Second, "[h.errors, h.state(0)]")
	p.WaitFor("h.events.length >= 6", 10*time.Second, "h.events")
	// A live update after the reconnection: a duplicate or a stray replay
	// would show up before it.
	pub("after")
	p.WaitFor("h.events.length >= 7", 10*time.Second, "h.events")

	if got := events(p); !reflect.DeepEqual(got, want) {
		t.Errorf("across the restart the browser received\n%+v\nwant\n%+v", got, want)
	}
}
