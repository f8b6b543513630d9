package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herald-sse/herald/auth"
	"github.com/herald-sse/herald/hub"
)

// TestServeLimits runs the real binary against hostile connections: idle,
// half-sent, absent and trickled bodies, refused subscribers, and per-IP
// limits (issue #11 item 4). Timeouts are shortened by flags; every check
// waits for an outcome (a status, a closed connection) with a generous
// client deadline, never for a fixed time.
func TestServeLimits(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the herald binary")
	}
	bin := buildHerald(t)
	tok, err := auth.Sign([]byte(durKey), auth.Claims{Publish: []string{"*"}, Subscribe: []string{"*"}}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("Timeouts", func(t *testing.T) { testServeTimeouts(t, bin, tok) })
	t.Run("PerIP", func(t *testing.T) { testServePerIP(t, bin, tok) })
}

// hostAddr returns the host:port of a Mercure endpoint URL.
func hostAddr(t *testing.T, endpoint string) string {
	t.Helper()
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// rawConn is a client connection written by hand.
type rawConn struct {
	net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{Conn: c, br: bufio.NewReader(c)}
}

func (c *rawConn) send(t *testing.T, s string) {
	t.Helper()
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatalf("write %q: %v", s, err)
	}
}

// response reads one response within 10 seconds.
func (c *rawConn) response(t *testing.T, what string) (*http.Response, string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatalf("%s: reading the response: %v", what, err)
	}
	if resp.Header.Get("Content-Type") == "text/event-stream" {
		return resp, ""
	}
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// closedWithin checks that the server closes the connection within d (the
// client's deadline, well above the server timeout under test).
func (c *rawConn) closedWithin(t *testing.T, d time.Duration, what string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(d))
	// A reset (the client wrote after the server closed) is a close too.
	if _, err := io.Copy(io.Discard, c.br); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("%s: connection still open after %v: %v", what, d, err)
	}
}

const formHead = "POST " + hub.Path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"

func testServeTimeouts(t *testing.T, bin, tok string) {
	p := startHerald(t, bin, t.TempDir(), "--store", "memory",
		"--read-header-timeout", "1s", "--idle-timeout", "1s", "--body-timeout", "2s", "--max-subscribers", "1")
	addr := hostAddr(t, p.url)

	t.Run("idle new connection", func(t *testing.T) {
		dialRaw(t, addr).closedWithin(t, 10*time.Second, "connection that sends nothing")
	})
	t.Run("idle kept-alive connection", func(t *testing.T) {
		c := dialRaw(t, addr)
		c.send(t, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp, _ := c.response(t, "GET /healthz"); resp.StatusCode != 200 || resp.Close {
			t.Fatalf("GET /healthz: %d, Close %v, want 200 kept alive", resp.StatusCode, resp.Close)
		}
		c.closedWithin(t, 10*time.Second, "idle kept-alive connection")
	})
	t.Run("half-sent request", func(t *testing.T) {
		c := dialRaw(t, addr)
		c.send(t, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n")
		if resp, _ := c.response(t, "first request"); resp.StatusCode != 200 {
			t.Fatalf("first request: %d", resp.StatusCode)
		}
		c.closedWithin(t, 10*time.Second, "half-sent second request")
	})
	t.Run("absent body", func(t *testing.T) {
		c := dialRaw(t, addr)
		c.send(t, formHead+"Authorization: Bearer "+tok+"\r\nContent-Length: 100\r\n\r\n")
		resp, body := c.response(t, "publish without body")
		if resp.StatusCode != http.StatusRequestTimeout || body != "request body not received in time\n" {
			t.Errorf("publish without body: %d %q, want 408 with its reason", resp.StatusCode, body)
		}
		c.closedWithin(t, 10*time.Second, "publish without body")
	})
	t.Run("trickled body", func(t *testing.T) {
		c := dialRaw(t, addr)
		c.send(t, formHead+"Authorization: Bearer "+tok+"\r\nContent-Length: 1000\r\n\r\ntopic=urn:t&data=")
		stop, done := make(chan struct{}), make(chan struct{})
		go func() { // one byte every 100 ms, until the server cuts it
			defer close(done)
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					if _, err := c.Write([]byte("x")); err != nil {
						return
					}
				}
			}
		}()
		resp, body := c.response(t, "trickled publish")
		close(stop)
		<-done
		if resp.StatusCode != http.StatusRequestTimeout {
			t.Errorf("trickled publish: %d %q, want 408", resp.StatusCode, body)
		}
		c.closedWithin(t, 10*time.Second, "trickled publish")
	})
	t.Run("healthy stream outlives every timeout; refused subscriber is closed", func(t *testing.T) {
		c := dialRaw(t, addr)
		c.send(t, "GET "+hub.Path+"?topic=urn:t HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, _ := c.response(t, "subscribe")
		if resp.StatusCode != 200 {
			t.Fatalf("subscribe: %d", resp.StatusCode)
		}
		// A second subscriber is refused (--max-subscribers 1) and closed.
		r := dialRaw(t, addr)
		r.send(t, "GET "+hub.Path+"?topic=urn:t HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp, body := r.response(t, "second subscriber"); resp.StatusCode != 503 || !resp.Close || resp.Header.Get("Retry-After") == "" {
			t.Errorf("second subscriber: %d %q, Close %v, Retry-After %q, want 503, closed, with Retry-After", resp.StatusCode, body, resp.Close, resp.Header.Get("Retry-After"))
		}
		r.closedWithin(t, 10*time.Second, "refused subscriber")

		// Outlive the header, idle and body timeouts (1 s, 1 s, 2 s) with
		// no traffic at all (heartbeats every 15 s), then publish.
		time.Sleep(3 * time.Second)
		code, body, err := durPublish(t.Context(), durClient(t), p.url, tok, url.Values{"topic": {"urn:t"}, "data": {"still here"}})
		if err != nil || code != 200 {
			t.Fatalf("publish: %d %q %v", code, body, err)
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			line, err := c.br.ReadString('\n')
			if err != nil {
				t.Fatalf("stream cut before the update arrived: %v", err)
			}
			if strings.HasPrefix(line, "data: still here") {
				break
			}
		}
	})
}

func testServePerIP(t *testing.T, bin, tok string) {
	p := startHerald(t, bin, t.TempDir(), "--store", "memory", "--max-conns-per-ip", "4", "--max-streams-per-ip", "2")
	addr := hostAddr(t, p.url)
	sub := "GET " + hub.Path + "?topic=urn:t HTTP/1.1\r\nHost: x\r\n\r\n"

	t.Run("anonymous publish refused without waiting for the body", func(t *testing.T) {
		// --body-timeout is 10 s by default; the refusal and the close
		// must come before it, however long the body takes.
		c := dialRaw(t, addr)
		c.send(t, formHead+"Content-Length: 100\r\n\r\n")
		resp, body := c.response(t, "anonymous publish")
		if resp.StatusCode != http.StatusUnauthorized || !resp.Close {
			t.Errorf("anonymous publish without body: %d %q, Close %v, want 401 and close", resp.StatusCode, body, resp.Close)
		}
		c.closedWithin(t, 5*time.Second, "refused anonymous publish")
	})

	var streams []*rawConn
	for i := range 2 {
		c := dialRaw(t, addr)
		c.send(t, sub)
		if resp, _ := c.response(t, "stream"); resp.StatusCode != 200 {
			t.Fatalf("stream %d: %d", i, resp.StatusCode)
		}
		streams = append(streams, c)
	}
	c := dialRaw(t, addr)
	c.send(t, sub)
	resp, body := c.response(t, "third stream")
	if resp.StatusCode != http.StatusTooManyRequests || !resp.Close || resp.Header.Get("Retry-After") == "" {
		t.Errorf("third stream: %d %q, Close %v, Retry-After %q, want 429, closed, with Retry-After", resp.StatusCode, body, resp.Close, resp.Header.Get("Retry-After"))
	}
	c.closedWithin(t, 10*time.Second, "refused stream")

	// Two streams hold two connections; two idle ones make four.
	idle := []*rawConn{dialRaw(t, addr), dialRaw(t, addr)}
	c = dialRaw(t, addr)
	c.send(t, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, body = c.response(t, "fifth connection")
	if resp.StatusCode != http.StatusTooManyRequests || !resp.Close || !strings.Contains(body, "too many connections") {
		t.Errorf("fifth connection: %d %q, Close %v, want 429 closed", resp.StatusCode, body, resp.Close)
	}
	c.closedWithin(t, 10*time.Second, "refused connection")
	for _, c := range idle {
		c.Close()
	}

	// The refusals are on /metrics (retry while the closed connections
	// are still counted).
	var metrics string
	waitFor(t, "/metrics", func() bool {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		metrics = string(b)
		return resp.StatusCode == 200
	})
	for _, want := range []string{
		`herald_connection_refusals_total\{reason="streams_per_ip"\} 1\n`,
		// at least 1: the polling above may have been refused too
		`herald_connection_refusals_total\{reason="conns_per_ip"\} [1-9]\d*\n`,
		`herald_auth_failures_total\{op="publish",reason="missing"\} 1\n`,
		`herald_accept_errors_total 0\n`,
		`herald_handler_panics_total 0\n`,
	} {
		if !regexp.MustCompile(want).MatchString(metrics) {
			t.Errorf("/metrics lacks a line matching %s", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", grepLines(metrics, "herald_"))
	}
	for _, s := range streams {
		s.Close()
	}
	_ = tok
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var b strings.Builder
	for l := range strings.Lines(s) {
		if strings.Contains(l, sub) {
			fmt.Fprint(&b, l)
		}
	}
	return b.String()
}
