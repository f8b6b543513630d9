package main

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/herald-sse/herald/auth"
	"github.com/herald-sse/herald/internal/servertest"
)

const outageKey = "herald-outage-test-key-0123456789abcdef"

// outageHub is a `herald serve` run in this process on a free port.
type outageHub struct {
	base string // http://127.0.0.1:port
	tok  string
	c    *http.Client
}

func startOutageHub(t *testing.T, args ...string) *outageHub {
	t.Helper()
	h, _ := startOutageHubBg(t, args...)
	h.waitListening(t)
	return h
}

func startOutageHubBg(t *testing.T, args ...string) (*outageHub, *background) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	// A minute: the engine tests stop, wipe and restart engines under the
	// hub, which takes longer on a loaded CI machine than startCmd's 20 s.
	bg := startCmdFor(t, time.Minute, append([]string{"serve", "--addr", addr, "--publisher-key", outageKey, "--no-dashboard",
		"--data-dir", t.TempDir()}, args...)...)
	tok, err := auth.Sign([]byte(outageKey), auth.Claims{Publish: []string{"*"}}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &outageHub{base: "http://" + addr, tok: tok, c: &http.Client{Transport: tr, Timeout: 5 * time.Second}}, bg
}

func (h *outageHub) waitListening(t *testing.T) {
	t.Helper()
	addr := strings.TrimPrefix(h.base, "http://")
	if !servertest.WaitFor(t.Context(), 20*time.Second, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		t.Fatalf("herald serve not listening on %s after 20s", addr)
	}
}

func (h *outageHub) ready() (int, string) {
	resp, err := h.c.Get(h.base + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (h *outageHub) publish(t *testing.T, id string) (int, string) {
	t.Helper()
	form := url.Values{"topic": {"urn:outage"}, "data": {"x"}}
	if id != "" {
		form.Set("id", id)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, h.base+"/.well-known/mercure", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+h.tok)
	resp, err := h.c.Do(req)
	if err != nil {
		t.Fatalf("POST: %v (the hub must answer before the client's 5s timeout)", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func waitReady(t *testing.T, h *outageHub, want int) {
	t.Helper()
	var code int
	var body string
	if !servertest.WaitFor(t.Context(), 20*time.Second, func() bool {
		code, body = h.ready()
		return code == want
	}) {
		t.Fatalf("GET /readyz = %d %q, want %d within 20s", code, body, want)
	}
}

// TestServeStoreStalled stalls the connection to Redis under a running hub:
// a publish gets 504 (outcome unknown) within --store-timeout rather than
// hanging, /readyz says not ready within its own limit, and both recover.
func TestServeStoreStalled(t *testing.T) {
	redis := servertest.StartRedis(t)
	proxy := servertest.NewProxy(t, redis.Addr)
	h := startOutageHub(t, "--store", "redis", "--redis-url", "redis://"+proxy.Addr()+"/0", "--store-timeout", "300ms")
	waitReady(t, h, http.StatusOK)
	if code, body := h.publish(t, ""); code != http.StatusOK {
		t.Fatalf("POST before the stall = %d %q, want 200", code, body)
	}
	proxy.Stall()
	code, body := h.publish(t, "stalled-1")
	if code != http.StatusGatewayTimeout || !strings.Contains(body, "may or may not be stored; retry with the same id") {
		t.Fatalf("POST while Redis stalls = %d %q, want 504 saying the outcome is unknown", code, body)
	}
	if code, body := h.ready(); code != http.StatusServiceUnavailable {
		t.Fatalf("GET /readyz while Redis stalls = %d %q, want 503 within its limit", code, body)
	}
	proxy.Resume()
	waitReady(t, h, http.StatusOK)
	// The retry with the same id: stored once, whatever the first did.
	code, body = h.publish(t, "stalled-1")
	if code != http.StatusOK && code != http.StatusConflict {
		t.Fatalf("POST retry after the stall = %d %q, want 200 or 409", code, body)
	}
}

// TestServeStartsWhileStoreDown starts hubs while their engine is down:
// they listen and answer /readyz with 503 (retrying, without exiting), and
// become ready and take publishes once it is up.
func TestServeStartsWhileStoreDown(t *testing.T) {
	for _, tt := range []struct {
		name  string
		start func(testing.TB) *servertest.Server
		args  func(*servertest.Server) []string
	}{
		{"redis", servertest.StartRedis, func(s *servertest.Server) []string {
			return []string{"--store", "redis", "--redis-url", "redis://" + s.Addr + "/0"}
		}},
		{"nats", servertest.StartNATS, func(s *servertest.Server) []string {
			return []string{"--store", "nats", "--nats-url", s.URL("nats")}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := tt.start(t)
			srv.Kill()
			h, bg := startOutageHubBg(t, append(tt.args(srv), "--store-timeout", "500ms")...)
			// It serves, unready, while the engine is down.
			h.waitListening(t)
			waitReady(t, h, http.StatusServiceUnavailable)
			select {
			case <-bg.done:
				t.Fatalf("herald serve with the engine down exited with %d:\n%s", bg.code, bg.stderr.String())
			default:
			}
			srv.Start()
			waitReady(t, h, http.StatusOK)
			var code int
			var body string
			servertest.WaitFor(t.Context(), 10*time.Second, func() bool {
				code, body = h.publish(t, "")
				return code == http.StatusOK
			})
			if code != http.StatusOK {
				t.Fatalf("POST once the engine is up = %d %q, want 200", code, body)
			}
		})
	}
}

func TestByteSizeFlag(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"64MiB", 64 << 20, true}, {"1GiB", 1 << 30, true}, {"500MB", 500e6, true}, {"1048576", 1 << 20, true},
		{"2 KiB", 2048, true}, {"10XB", 0, false}, {"-1", 0, false}, {"MiB", 0, false}, {"99999999999GiB", 0, false},
	} {
		var b byteSize
		err := b.Set(tt.in)
		if (err == nil) != tt.ok || (tt.ok && int64(b) != tt.want) {
			t.Errorf("byteSize.Set(%q) = %d, %v; want %d, ok %v", tt.in, b, err, tt.want, tt.ok)
		}
	}
	b := byteSize(defaultHistoryBytes)
	if got := b.String(); got != "64MiB" {
		t.Errorf("byteSize(64 MiB).String() = %q, want %q", got, "64MiB")
	}
}
