package connlimit_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/herald-sse/herald/internal/connlimit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func mustNew(t *testing.T, cfg connlimit.Config) *connlimit.Limiter {
	t.Helper()
	l, err := connlimit.New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	return l
}

func TestParseCIDRs(t *testing.T) {
	got, err := connlimit.ParseCIDRs(" 10.0.0.0/8, 192.168.1.7 ,::1/128,2001:db8::1/32,")
	want := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.7/32"),
		netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("2001:db8::/32"),
	}
	if err != nil || len(got) != len(want) {
		t.Fatalf("ParseCIDRs = %v, %v, want %v", got, err, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("ParseCIDRs[%d] = %v, want %v", i, got[i], want[i])
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "example.com", "1.2.3"} {
		if _, err := connlimit.ParseCIDRs(bad); err == nil {
			t.Errorf("ParseCIDRs(%q) = nil error, want one", bad)
		}
	}
}

func TestClientIP(t *testing.T) {
	proxies, _ := connlimit.ParseCIDRs("10.0.0.0/8,::1")
	l := mustNew(t, connlimit.Config{TrustedProxies: proxies})
	none := mustNew(t, connlimit.Config{})
	tests := []struct {
		name   string
		l      *connlimit.Limiter
		remote string
		xff    []string
		want   string
	}{
		{"no proxy trusted", none, "10.1.2.3:5", []string{"1.1.1.1"}, "10.1.2.3"},
		{"untrusted peer", l, "8.8.8.8:5", []string{"1.1.1.1"}, "8.8.8.8"},
		{"trusted peer", l, "10.1.2.3:5", []string{"1.1.1.1"}, "1.1.1.1"},
		{"spoofed left hop", l, "10.1.2.3:5", []string{"6.6.6.6, 1.1.1.1"}, "1.1.1.1"},
		{"proxy chain", l, "10.1.2.3:5", []string{"1.1.1.1, 10.9.9.9", "10.8.8.8"}, "1.1.1.1"},
		{"all trusted", l, "10.1.2.3:5", []string{"10.9.9.9"}, "10.9.9.9"},
		{"no header", l, "10.1.2.3:5", nil, "10.1.2.3"},
		{"malformed hop", l, "10.1.2.3:5", []string{"1.1.1.1, junk"}, "10.1.2.3"},
		{"ipv6 peer", l, "[::1]:5", []string{"2001:db8::7"}, "2001:db8::7"},
		{"mapped", none, "[::ffff:1.2.3.4]:5", nil, "1.2.3.4"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = tt.remote
		r.Header["X-Forwarded-For"] = tt.xff
		if got := tt.l.ClientIP(r).String(); got != tt.want {
			t.Errorf("%s: ClientIP(%s, X-Forwarded-For %q) = %s, want %s", tt.name, tt.remote, tt.xff, got, tt.want)
		}
	}
}

func TestPanicCountedAndLogged(t *testing.T) {
	var logs bytes.Buffer
	l := mustNew(t, connlimit.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	h := l.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	for range 3 {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/x", nil))
		if w.Code != http.StatusInternalServerError || w.Header().Get("Connection") != "close" {
			t.Errorf("panicking handler: %d, Connection %q, want 500 and close", w.Code, w.Header().Get("Connection"))
		}
	}
	if got := l.Stats().Panics; got != 3 {
		t.Errorf("Stats().Panics = %d, want 3", got)
	}
	if n := strings.Count(logs.String(), "level=ERROR msg=\"connlimit: handler panic\""); n != 1 {
		t.Errorf("logged %d panic lines, want 1 (rate-limited):\n%s", n, logs.String())
	}

	abort := l.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }))
	func() {
		defer func() {
			if p := recover(); p != http.ErrAbortHandler { //nolint:errorlint // sentinel panic value
				t.Errorf("ErrAbortHandler panic: recovered %v, want it passed on", p)
			}
		}()
		abort.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	}()
}

func TestRefusedStatusClosesConnection(t *testing.T) {
	l := mustNew(t, connlimit.Config{})
	for _, code := range []int{http.StatusServiceUnavailable, http.StatusTooManyRequests, http.StatusOK, http.StatusUnauthorized} {
		h := l.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "x", code) }))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
		want := ""
		if code == 503 || code == 429 {
			want = "close"
		}
		if got := w.Header().Get("Connection"); got != want {
			t.Errorf("answer %d: Connection = %q, want %q", code, got, want)
		}
	}
	if got := l.Stats().Refused; got["status_503"] != 1 || got["status_429"] != 1 {
		t.Errorf("Stats().Refused = %v, want status_503 and status_429 once each", got)
	}
}

// serve runs h behind l on a loopback listener wrapped by l.
func serve(t *testing.T, l *connlimit.Limiter, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: l.Handler(h), ConnContext: l.ConnContext, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l.Listener(ln)) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return ln.Addr().String()
}

// rawRequest sends req on a new connection and returns the connection and
// the response head read from it.
func rawRequest(t *testing.T, addr, req string) (net.Conn, *http.Response) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the response to %q: %v", req, err)
	}
	return c, resp
}

// checkClosed checks that the server closes c (after any rest of the
// response) within 5 seconds.
func checkClosed(t *testing.T, c net.Conn, what string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, c); err != nil {
		t.Errorf("%s: connection not closed by the server: %v", what, err)
	}
}

// TestRefusalDoesNotWaitForBody: a handler that refuses a request without
// reading its body (an anonymous publish) answers at once, and the server
// closes the connection instead of waiting, up to the body deadline, for a
// body that never comes.
func TestRefusalDoesNotWaitForBody(t *testing.T) {
	l := mustNew(t, connlimit.Config{BodyTimeout: time.Minute})
	addr := serve(t, l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "missing access token", http.StatusUnauthorized)
	}))
	c, resp := rawRequest(t, addr, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\n")
	if resp.StatusCode != http.StatusUnauthorized || !resp.Close {
		t.Errorf("POST without body: %d, Close %v, want 401 with Connection: close", resp.StatusCode, resp.Close)
	}
	checkClosed(t, c, "refused POST without body")
}

// TestBodyTimeout: a body that does not arrive in time fails the
// handler's read with a timeout, and is counted.
func TestBodyTimeout(t *testing.T) {
	l := mustNew(t, connlimit.Config{BodyTimeout: 100 * time.Millisecond})
	addr := serve(t, l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, "body: "+err.Error(), http.StatusRequestTimeout)
			return
		}
		io.WriteString(w, "ok")
	}))
	c, resp := rawRequest(t, addr, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly part")
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("trickled POST: %d, want 408", resp.StatusCode)
	}
	checkClosed(t, c, "timed-out POST")
	if got := l.Stats().Refused["body_timeout"]; got != 1 {
		t.Errorf(`Stats().Refused["body_timeout"] = %d, want 1`, got)
	}

	// A whole body in time clears the deadline: the connection is reused.
	c2, resp := rawRequest(t, addr, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
	if resp.StatusCode != http.StatusOK || resp.Close {
		t.Errorf("POST with body: %d, Close %v, want 200 kept alive", resp.StatusCode, resp.Close)
	}
	c2.Close()
}

func TestStreamsPerIP(t *testing.T) {
	l := mustNew(t, connlimit.Config{MaxStreamsPerIP: 2, IsStream: func(r *http.Request) bool { return r.URL.Path == "/stream" }})
	entered, release := make(chan struct{}), make(chan struct{})
	addr := serve(t, l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stream" {
			if _, _, err := http.NewResponseController(w).Hijack(); err == nil {
				t.Error("a counted stream could be hijacked")
			}
		}
		w.WriteHeader(http.StatusOK)
		http.NewResponseController(w).Flush()
		if r.URL.Path == "/stream" {
			entered <- struct{}{}
			<-release
		}
	}))
	req := "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n"
	var open []*http.Response
	for range 2 {
		_, resp := rawRequest(t, addr, req)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("stream: %d, want 200", resp.StatusCode)
		}
		<-entered
		open = append(open, resp)
	}
	c, resp := rawRequest(t, addr, req)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "5" || !resp.Close {
		t.Errorf("third stream: %d, Retry-After %q, Close %v, want 429, 5, true", resp.StatusCode, resp.Header.Get("Retry-After"), resp.Close)
	}
	checkClosed(t, c, "refused stream")
	if _, resp := rawRequest(t, addr, "GET /other HTTP/1.1\r\nHost: x\r\n\r\n"); resp.StatusCode != http.StatusOK {
		t.Errorf("non-stream request while at the stream limit: %d, want 200", resp.StatusCode)
	}
	release <- struct{}{} // one stream ends
	// Its response ends after its handler returned, so after the count.
	if _, err := io.ReadAll(open[0].Body); err != nil {
		t.Fatalf("reading the ended stream: %v", err)
	}
	if _, resp := rawRequest(t, addr, req); resp.StatusCode != http.StatusOK {
		t.Errorf("stream after one ended: %d, want 200", resp.StatusCode)
	}
	<-entered
	close(release)
	if got := l.Stats().Refused["streams_per_ip"]; got != 1 {
		t.Errorf(`Stats().Refused["streams_per_ip"] = %d, want 1`, got)
	}
}

func TestConnsPerIP(t *testing.T) {
	l := mustNew(t, connlimit.Config{MaxConnsPerIP: 2})
	addr := serve(t, l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	req := "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	a, resp := rawRequest(t, addr, req)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("first connection: %d", resp.StatusCode)
	}
	rawRequest(t, addr, req)
	c, resp := rawRequest(t, addr, req)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !resp.Close {
		t.Errorf("third connection: %d, Retry-After %q, Close %v, want 429 with Retry-After, closed", resp.StatusCode, resp.Header.Get("Retry-After"), resp.Close)
	}
	checkClosed(t, c, "refused connection")
	a.Close()
	// The server notices the close when its read of the next request
	// fails; wait for it.
	deadline := time.Now().Add(5 * time.Second)
	for l.Stats().Conns > 1 {
		if time.Now().After(deadline) {
			t.Fatalf("Stats().Conns = %d after closing two connections, want 1", l.Stats().Conns)
		}
		time.Sleep(time.Millisecond)
	}
	if _, resp := rawRequest(t, addr, req); resp.StatusCode != http.StatusOK {
		t.Errorf("connection after one closed: %d, want 200", resp.StatusCode)
	}
}

// failingListener fails every Accept with err.
type failingListener struct {
	net.Listener
	err error
}

func (l failingListener) Accept() (net.Conn, error) { return nil, l.err }

func TestAcceptErrorsCountedAndLogged(t *testing.T) {
	var logs bytes.Buffer
	l := mustNew(t, connlimit.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ln := l.Listener(failingListener{err: &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}})
	for range 5 {
		if _, err := ln.Accept(); !errors.Is(err, syscall.EMFILE) {
			t.Fatalf("Accept() error = %v, want EMFILE passed on", err)
		}
	}
	if got := l.Stats().AcceptErrors; got != 5 {
		t.Errorf("Stats().AcceptErrors = %d, want 5", got)
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 || !strings.Contains(logs.String(), "too many open files") {
		t.Errorf("logged %d WARN lines, want 1 naming the error (rate-limited):\n%s", n, logs.String())
	}
	closed := l.Listener(failingListener{err: net.ErrClosed})
	closed.Accept()
	if got := l.Stats().AcceptErrors; got != 5 {
		t.Errorf("after a closed listener's error Stats().AcceptErrors = %d, want still 5", got)
	}
}
