package main

// Durability of `herald serve` with its default bolt store, checked on the
// real binary with real crashes: SIGKILL in the middle of a publishing
// burst, a graceful restart followed by replay, and a damaged data file.

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/herald-sse/herald/auth"
	"github.com/herald-sse/herald/hub"
	"github.com/herald-sse/herald/sse"
	"github.com/herald-sse/herald/store"
	"github.com/herald-sse/herald/store/boltstore"
)

// durKey is the publisher key of the servers started by these tests.
const durKey = "herald-durability-test-key-0123456789"

// durTopic is the topic every update of these tests is published to.
const durTopic = "urn:herald:durability"

// TestDurability runs the crash and restart tests against one build of
// the herald binary.
func TestDurability(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the herald binary")
	}
	bin := buildHerald(t)
	tok, err := auth.Sign([]byte(durKey), auth.Claims{Publish: []string{"*"}, Subscribe: []string{"*"}}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("KillMidBurst", func(t *testing.T) { testKillMidBurst(t, bin, tok) })
	t.Run("RestartReplay", func(t *testing.T) { testRestartReplay(t, bin, tok) })
	t.Run("CorruptDataFile", func(t *testing.T) { testCorruptDataFile(t, bin) })
}

// buildHerald builds the herald command into a temporary directory that
// lives as long as t.
func buildHerald(t *testing.T) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to build herald with: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "herald")
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, gobin, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build -o %s .: %v\n%s", bin, err, out)
	}
	return bin
}

// serverProc is one running `herald serve` process.
type serverProc struct {
	cmd    *exec.Cmd
	stderr *lineWatcher
	url    string // the Mercure endpoint
	exited chan struct{}
	err    error // the result of cmd.Wait, set before exited is closed
}

// lineWatcher collects a process's output and reports the listen address
// logged by `herald serve`.
type lineWatcher struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	addr chan string // gets the address once
	sent bool
}

var listenRE = regexp.MustCompile(`msg="herald: listening" addr=(\S+)`)

func (w *lineWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.sent {
		if m := listenRE.FindSubmatch(w.buf.Bytes()); m != nil {
			w.sent = true
			w.addr <- string(m[1])
		}
	}
	return len(p), nil
}

func (w *lineWatcher) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// heraldEnv returns the environment without HERALD_* variables, so that
// the caller's environment cannot change the flags of the tests.
func heraldEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HERALD_") {
			env = append(env, kv)
		}
	}
	return env
}

// startHerald starts `herald serve` on a free loopback port with the data
// directory dir and waits until it listens. The process is killed and
// reaped at the end of the test if it is still running.
func startHerald(t *testing.T, bin, dir string, extra ...string) *serverProc {
	t.Helper()
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dir, "--publisher-key", durKey}, extra...)
	p := &serverProc{
		cmd:    exec.Command(bin, args...),
		stderr: &lineWatcher{addr: make(chan string, 1)},
		exited: make(chan struct{}),
	}
	p.cmd.Env = heraldEnv()
	p.cmd.Stdout = p.stderr
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start herald serve: %v", err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
	select {
	case addr := <-p.stderr.addr:
		p.url = "http://" + addr + hub.Path
	case <-p.exited:
		t.Fatalf("herald serve exited before listening: %v; output:\n%s", p.err, p.stderr)
	case <-time.After(20 * time.Second):
		t.Fatalf("herald serve not listening after 20s; output:\n%s", p.stderr)
	}
	return p
}

// wait waits up to timeout for the process to exit and returns the time it
// took and its exit status.
func (p *serverProc) wait(t *testing.T, timeout time.Duration) (time.Duration, *os.ProcessState) {
	t.Helper()
	start := time.Now()
	select {
	case <-p.exited:
	case <-time.After(timeout):
		t.Fatalf("herald serve still running %v later; output:\n%s", timeout, p.stderr)
	}
	return time.Since(start), p.cmd.ProcessState
}

// stop ends the process with SIGTERM and checks that it exits with status
// 0 within 5 seconds.
func (p *serverProc) stop(t *testing.T) time.Duration {
	t.Helper()
	if err := syscall.Kill(p.cmd.Process.Pid, syscall.SIGTERM); err != nil {
		t.Fatalf("kill -TERM: %v", err)
	}
	took, st := p.wait(t, 10*time.Second)
	if took > 5*time.Second || st.ExitCode() != 0 {
		t.Fatalf("herald serve after SIGTERM: exit %v after %v, want exit 0 within 5s; output:\n%s", st, took, p.stderr)
	}
	return took
}

// durClient returns an HTTP client for up to 64 concurrent connections.
// Its idle connections are closed at the end of the test.
func durClient(t *testing.T) *http.Client {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

// durPublish posts one update and returns the status and the body (the id on
// success).
func durPublish(ctx context.Context, c *http.Client, endpoint, tok string, form url.Values) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// mustPublish publishes data (with the explicit id, if not empty) to
// durTopic and returns the update's id.
func mustPublish(t *testing.T, c *http.Client, endpoint, tok, id, data string) string {
	t.Helper()
	form := url.Values{"topic": {durTopic}, "data": {data}}
	if id != "" {
		form.Set("id", id)
	}
	code, body, err := durPublish(t.Context(), c, endpoint, tok, form)
	if err != nil || code != http.StatusOK {
		t.Fatalf("POST %s data=%q: %d %q, %v", endpoint, data, code, body, err)
	}
	if id != "" && body != id {
		t.Fatalf("POST %s id=%q: body %q, want the id", endpoint, id, body)
	}
	return body
}

// durSubscribe opens a stream of durTopic that replays from lastEventID.
func durSubscribe(t *testing.T, ctx context.Context, c *http.Client, endpoint, lastEventID string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"?topic="+url.QueryEscape(durTopic), nil)
	if err != nil {
		t.Fatal(err)
	}
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s (Last-Event-ID %q): %v", req.URL, lastEventID, err)
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("GET %s (Last-Event-ID %q): %d %q", req.URL, lastEventID, resp.StatusCode, body)
	}
	return resp
}

// replayUntil replays the whole history of durTopic through the server and
// returns its events up to and including the one with id marker.
func replayUntil(t *testing.T, c *http.Client, endpoint, marker string) []sse.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	resp := durSubscribe(t, ctx, c, endpoint, "earliest")
	defer resp.Body.Close()
	d := sse.NewDecoder(resp.Body)
	var evs []sse.Event
	for {
		ev, err := d.Next()
		if err != nil {
			t.Fatalf("replay from earliest: after %d events: %v", len(evs), err)
		}
		evs = append(evs, ev)
		if ev.ID == marker {
			return evs
		}
	}
}

// burstKey names one publisher of one crash round.
type burstKey struct{ round, pub int }

// burst is what one publisher saw: the ids acknowledged with 200, in the
// order it published them. The update numbered len(acked) may or may not
// have been stored, if its request failed (the crash).
type burst struct {
	acked  []string
	failed error // why the publisher stopped
	status int   // the HTTP status that stopped it, 0 for a transport error
}

func testKillMidBurst(t *testing.T, bin, tok string) {
	const (
		rounds     = 3
		publishers = 32
		minAcks    = 100
	)
	dir := t.TempDir()
	c := durClient(t)
	extra := []string{"--history", "10000000", "--heartbeat", "0"}
	srv := startHerald(t, bin, dir, extra...)
	bursts := map[burstKey]*burst{}
	deadline := time.Now().Add(2 * time.Minute)
	for round := range rounds {
		if time.Now().After(deadline) {
			t.Fatalf("round %d: out of time", round)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		var acks, inflight atomic.Int64
		var wg sync.WaitGroup
		t.Cleanup(func() { // if the test fails before the publishers end
			cancel()
			wg.Wait()
		})
		for p := range publishers {
			b := &burst{}
			bursts[burstKey{round, p}] = b
			wg.Go(func() {
				for n := 0; ; n++ {
					form := url.Values{"topic": {durTopic}, "data": {fmt.Sprintf("r%d p%d n%d", round, p, n)}}
					inflight.Add(1)
					code, body, err := durPublish(ctx, c, srv.url, tok, form)
					inflight.Add(-1)
					if err == nil && code != http.StatusOK {
						err, b.status = fmt.Errorf("status %d %q", code, body), code
					}
					if err != nil {
						b.failed = err
						return
					}
					b.acked = append(b.acked, body)
					acks.Add(1)
				}
			})
		}
		// Kill after about a second (at a varying point), once enough
		// publishes have been acknowledged.
		time.Sleep(time.Duration(700+round*300) * time.Millisecond)
		for acks.Load() < minAcks && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
		}
		acked, flying := acks.Load(), inflight.Load()
		if err := syscall.Kill(srv.cmd.Process.Pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill -KILL: %v", err)
		}
		_, st := srv.wait(t, 10*time.Second)
		if ws, ok := st.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: herald serve ended with %v, want killed by SIGKILL; output:\n%s", round, st, srv.stderr)
		}
		wg.Wait()
		cancel()
		total := 0
		for p := range publishers {
			b := bursts[burstKey{round, p}]
			total += len(b.acked)
			if b.status != 0 || errors.Is(b.failed, context.DeadlineExceeded) {
				t.Fatalf("round %d: publisher %d stopped with %v, want a connection error from the crash", round, p, b.failed)
			}
		}
		t.Logf("round %d: SIGKILL with %d publishes in flight after %d acks; %d acks in all", round, flying, acked, total)
		if flying == 0 {
			t.Errorf("round %d: no publish in flight at SIGKILL", round)
		}

		// Restart on the same data directory: it must open without repair
		// and hold every acknowledged update.
		srv = startHerald(t, bin, dir, extra...)
		marker := fmt.Sprintf("marker-%d", round)
		mustPublish(t, c, srv.url, tok, marker, "marker")
		evs := replayUntil(t, c, srv.url, marker)
		unanswered, err := checkHistory(evs, bursts, round)
		if err != nil {
			t.Fatalf("after crash %d, replay from earliest: %v", round, err)
		}
		t.Logf("after crash %d: %d updates replayed, every acknowledged one in order; %d stored but unanswered", round, len(evs)-round-1, unanswered)
	}
	srv.stop(t)

	// The file itself, opened by the store: same history, nothing after
	// the last marker.
	st, err := boltstore.Open(filepath.Join(dir, "history.db"), boltstore.Config{MaxLen: 10_000_000})
	if err != nil {
		t.Fatalf("boltstore.Open after the crashes: %v", err)
	}
	defer st.Close()
	ups, err := st.Read(t.Context(), 0, 10_000_000)
	if err != nil {
		t.Fatal(err)
	}
	evs := make([]sse.Event, len(ups))
	for i, u := range ups {
		evs[i] = sse.Event{ID: u.ID, Data: u.Data}
	}
	if want := fmt.Sprintf("marker-%d", rounds-1); len(evs) == 0 || evs[len(evs)-1].ID != want {
		t.Errorf("history.db holds %d updates, want the last one to be %q", len(evs), want)
	}
	if _, err := checkHistory(evs, bursts, rounds-1); err != nil {
		t.Fatalf("history.db read with boltstore after the crashes: %v", err)
	}
}

// checkHistory checks the replayed history evs against the bursts of
// rounds 0 to last: every acknowledged id present, once, in each
// publisher's order, with the data it published, each round before its
// marker, and nothing stored that was never sent (at most the one publish
// per publisher that the crash left unanswered). It returns how many
// unanswered publishes were stored.
func checkHistory(evs []sse.Event, bursts map[burstKey]*burst, last int) (unanswered int, err error) {
	seen := map[string]bool{}
	stored := map[burstKey][]string{} // ids in log order
	markers := 0
	for i, ev := range evs {
		if seen[ev.ID] {
			return 0, fmt.Errorf("history event %d: id %q appears twice", i, ev.ID)
		}
		seen[ev.ID] = true
		if ev.Data == "marker" {
			if want := fmt.Sprintf("marker-%d", markers); ev.ID != want {
				return 0, fmt.Errorf("history event %d: marker %q, want %q", i, ev.ID, want)
			}
			markers++
			continue
		}
		var k burstKey
		var n int
		if _, err := fmt.Sscanf(ev.Data, "r%d p%d n%d", &k.round, &k.pub, &n); err != nil {
			return 0, fmt.Errorf("history event %d: unexpected data %q", i, ev.Data)
		}
		if bursts[k] == nil || k.round > last {
			return 0, fmt.Errorf("history event %d: %q was never published", i, ev.Data)
		}
		if k.round != markers {
			return 0, fmt.Errorf("history event %d: %q of round %d found after marker %d", i, ev.Data, k.round, markers-1)
		}
		if len(stored[k]) != n {
			return 0, fmt.Errorf("history event %d: %q follows %d updates of its publisher, want n%d", i, ev.Data, len(stored[k]), len(stored[k]))
		}
		stored[k] = append(stored[k], ev.ID)
	}
	if markers != last+1 {
		return 0, fmt.Errorf("history has %d markers, want %d", markers, last+1)
	}
	for k, b := range bursts {
		if k.round > last {
			continue
		}
		got := stored[k]
		if len(got) < len(b.acked) || len(got) > len(b.acked)+1 {
			return 0, fmt.Errorf("round %d publisher %d: %d updates stored, want the %d acknowledged (and at most the one in flight)", k.round, k.pub, len(got), len(b.acked))
		}
		for i, id := range b.acked {
			if got[i] != id {
				return 0, fmt.Errorf("round %d publisher %d update n%d: stored id %q, acknowledged %q", k.round, k.pub, i, got[i], id)
			}
		}
		unanswered += len(got) - len(b.acked)
	}
	return unanswered, nil
}

// TestCheckHistory checks that the crash test's checker finds lost,
// reordered, duplicated and phantom updates.
func TestCheckHistory(t *testing.T) {
	bursts := map[burstKey]*burst{
		{0, 0}: {acked: []string{"a0", "a1"}},
		{0, 1}: {acked: []string{"b0"}},
	}
	ev := func(id, data string) sse.Event { return sse.Event{ID: id, Data: data} }
	a0, a1, a2 := ev("a0", "r0 p0 n0"), ev("a1", "r0 p0 n1"), ev("x", "r0 p0 n2")
	b0, b1 := ev("b0", "r0 p1 n0"), ev("y", "r0 p1 n1")
	m0 := ev("marker-0", "marker")
	tests := []struct {
		name       string
		evs        []sse.Event
		unanswered int
		wantErr    string
	}{
		{"exact", []sse.Event{a0, b0, a1, m0}, 0, ""},
		{"unanswered stored", []sse.Event{a0, b0, a1, b1, a2, m0}, 2, ""},
		{"lost ack", []sse.Event{a0, a1, m0}, 0, "0 updates stored, want the 1 acknowledged"},
		{"lost middle", []sse.Event{a0, b0, ev("a1", "r0 p0 n2"), m0}, 0, "want n1"},
		{"reordered", []sse.Event{a1, a0, b0, m0}, 0, "want n0"},
		{"other id", []sse.Event{a0, ev("z", "r0 p0 n1"), b0, m0}, 0, `stored id "z", acknowledged "a1"`},
		{"duplicate id", []sse.Event{a0, b0, ev("a0", "r0 p0 n1"), m0}, 0, "appears twice"},
		{"two unanswered", []sse.Event{a0, a1, b0, a2, ev("w", "r0 p0 n3"), m0}, 0, "at most the one in flight"},
		{"phantom publisher", []sse.Event{a0, a1, b0, ev("q", "r0 p7 n0"), m0}, 0, "never published"},
		{"after marker", []sse.Event{a0, b0, m0, a1}, 0, "found after marker 0"},
		{"no marker", []sse.Event{a0, a1, b0}, 0, "0 markers, want 1"},
		{"foreign data", []sse.Event{a0, a1, b0, ev("f", "hello"), m0}, 0, "unexpected data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := checkHistory(tt.evs, bursts, 0)
			switch {
			case tt.wantErr == "" && (err != nil || n != tt.unanswered):
				t.Errorf("checkHistory(%v) = %d, %v, want %d, nil", tt.evs, n, err, tt.unanswered)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("checkHistory(%v) = %d, %v, want error containing %q", tt.evs, n, err, tt.wantErr)
			}
		})
	}
}

func testRestartReplay(t *testing.T, bin, tok string) {
	dir := t.TempDir()
	c := durClient(t)
	srv := startHerald(t, bin, dir)
	var ids []string
	for i := 1; i <= 5; i++ {
		ids = append(ids, mustPublish(t, c, srv.url, tok, "", fmt.Sprintf("event %d", i)))
	}

	// A subscriber is connected while the server stops: the stream must
	// end and the process exit 0.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	live := durSubscribe(t, ctx, c, srv.url, "")
	took := srv.stop(t)
	if _, err := io.Copy(io.Discard, live.Body); err != nil {
		t.Errorf("live stream at shutdown: %v, want a clean end", err)
	}
	live.Body.Close()
	t.Logf("SIGTERM with a subscriber connected: exit 0 after %v", took)

	srv = startHerald(t, bin, dir)
	for i := 6; i <= 7; i++ {
		ids = append(ids, mustPublish(t, c, srv.url, tok, "", fmt.Sprintf("event %d", i)))
	}
	resp := durSubscribe(t, ctx, c, srv.url, ids[1])
	defer resp.Body.Close()
	if got := resp.Header.Get("Last-Event-ID"); got != ids[1] {
		t.Errorf("GET with Last-Event-ID %q: response Last-Event-ID %q, want it echoed", ids[1], got)
	}
	// The events after the 2nd, then a live one published now: nothing
	// else may come in between.
	live8 := ""
	want := ids[2:]
	d := sse.NewDecoder(resp.Body)
	for i := 0; i < len(want)+1; i++ {
		if i == len(want) {
			live8 = mustPublish(t, c, srv.url, tok, "", "event 8")
		}
		ev, err := d.Next()
		if err != nil {
			t.Fatalf("replay after %q: event %d: %v", ids[1], i+3, err)
		}
		wantID, wantData := live8, "event 8"
		if i < len(want) {
			wantID, wantData = want[i], fmt.Sprintf("event %d", i+3)
		}
		if ev.ID != wantID || ev.Data != wantData {
			t.Fatalf("replay after %q: event %d = {id %q, data %q}, want {id %q, data %q}", ids[1], i+3, ev.ID, ev.Data, wantID, wantData)
		}
	}
	resp.Body.Close()
	srv.stop(t)
}

func testCorruptDataFile(t *testing.T, bin string) {
	// A valid store of 1,000 updates to damage.
	validDir := t.TempDir()
	st, err := boltstore.Open(filepath.Join(validDir, "history.db"), boltstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		if _, err := st.Append(t.Context(), storeUpdate(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	valid, err := os.ReadFile(filepath.Join(validDir, "history.db"))
	if err != nil {
		t.Fatal(err)
	}
	random := make([]byte, 64<<10)
	rand.Read(random)

	tests := []struct {
		name string
		data []byte
	}{
		{"random bytes", random},
		{"text", []byte("this is not a database\n")},
		{"truncated store", valid[:len(valid)/2]},
		{"zeroed meta pages", append(make([]byte, 2*os.Getpagesize()), valid[2*os.Getpagesize():]...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "history.db")
			if err := os.WriteFile(path, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--data-dir", dir, "--publisher-key", durKey)
			cmd.Env = heraldEnv()
			var out lineWatcher
			out.addr = make(chan string, 1)
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			start := time.Now()
			select {
			case <-exited:
			case <-out.addr:
				_ = cmd.Process.Kill()
				<-exited
				t.Fatalf("herald serve on %s: started listening, want it to refuse the file; output:\n%s", tt.name, out.String())
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
				t.Fatalf("herald serve on %s: still running after 10s; output:\n%s", tt.name, out.String())
			}
			took := time.Since(start)
			if code := cmd.ProcessState.ExitCode(); code <= 0 || took > 5*time.Second {
				t.Errorf("herald serve on %s: exit %d after %v, want non-zero within 5s", tt.name, code, took)
			}
			if !strings.Contains(out.String(), path) {
				t.Errorf("herald serve on %s: output %q does not name %s", tt.name, out.String(), path)
			}
			if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, tt.data) {
				t.Errorf("herald serve on %s changed the file (read error %v)", tt.name, err)
			}
			t.Logf("%s: exit %d after %v: %s", tt.name, cmd.ProcessState.ExitCode(), took.Round(time.Millisecond), strings.TrimSpace(out.String()))
		})
	}
}

// storeUpdate returns the i-th update of a store built directly.
func storeUpdate(i int) store.Update {
	return store.Update{Topics: []string{durTopic}, Data: fmt.Sprintf("direct %d", i)}
}
