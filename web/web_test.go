package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/herald-sse/herald/broker"
	"github.com/herald-sse/herald/sse"
	"github.com/herald-sse/herald/web"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestAssets(t *testing.T) {
	d := web.New(func() broker.Stats { return broker.Stats{} }, web.Config{})
	defer d.Close()
	tests := []struct {
		method, path string
		code         int
		contentType  string
		contains     string
	}{
		{"GET", "/", 200, "text/html; charset=utf-8", `<canvas id="chart"`},
		{"HEAD", "/", 200, "text/html; charset=utf-8", ""},
		{"GET", "/dashboard/app.js", 200, "text/javascript; charset=utf-8", `new EventSource("/dashboard/stats")`},
		{"GET", "/dashboard/style.css", 200, "text/css; charset=utf-8", "--accent"},
		{"GET", "/dashboard/nope.js", 404, "text/plain; charset=utf-8", "not found"},
		{"GET", "/other", 404, "text/plain; charset=utf-8", "not found"},
		{"POST", "/", 405, "text/plain; charset=utf-8", "method not allowed"},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		d.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
		if rec.Code != tt.code {
			t.Errorf("%s %s: status %d, want %d", tt.method, tt.path, rec.Code, tt.code)
		}
		if ct := rec.Header().Get("Content-Type"); ct != tt.contentType {
			t.Errorf("%s %s: Content-Type %q, want %q", tt.method, tt.path, ct, tt.contentType)
		}
		if !strings.Contains(rec.Body.String(), tt.contains) {
			t.Errorf("%s %s: body does not contain %q", tt.method, tt.path, tt.contains)
		}
		if tt.method == "HEAD" && rec.Body.Len() != 0 {
			t.Errorf("HEAD %s: body of %d bytes, want none", tt.path, rec.Body.Len())
		}
		if tt.code == 200 && rec.Header().Get("Content-Security-Policy") == "" {
			t.Errorf("%s %s: no Content-Security-Policy", tt.method, tt.path)
		}
	}
}

// TestAssetsAreSelfContained checks that the page loads nothing from
// another origin (no CDN).
func TestAssetsAreSelfContained(t *testing.T) {
	d := web.New(func() broker.Stats { return broker.Stats{} }, web.Config{})
	defer d.Close()
	for _, path := range []string{"/", "/dashboard/app.js", "/dashboard/style.css"} {
		rec := httptest.NewRecorder()
		d.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		for _, bad := range []string{`src="http`, `href="http`, `src="//`, `href="//`, "url(http", "url(//", "@import"} {
			if strings.Contains(rec.Body.String(), bad) {
				t.Errorf("GET %s: body contains %q: the dashboard must not load remote resources", path, bad)
			}
		}
	}
}

func TestStatsStream(t *testing.T) {
	var published atomic.Uint64
	stats := func() broker.Stats {
		n := published.Add(1)
		return broker.Stats{Subscribers: 3, Parked: 2, Topics: 1, Published: n, Delivered: 2 * n, Dropped: 7}
	}
	d := web.New(stats, web.Config{Interval: 10 * time.Millisecond})
	defer d.Close()
	srv := httptest.NewServer(d)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+web.StatsPath, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("GET %s: Content-Type %q, want text/event-stream", web.StatsPath, ct)
	}
	dec := sse.NewDecoder(resp.Body)
	var last uint64
	for i := range 3 {
		ev, err := dec.Next()
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if ev.Type != "stats" {
			t.Errorf("event %d type = %q, want stats", i, ev.Type)
		}
		var s web.Stats
		if err := json.Unmarshal([]byte(ev.Data), &s); err != nil {
			t.Fatalf("event %d: data %q: %v", i, ev.Data, err)
		}
		if s.Published <= last || s.Delivered != 2*s.Published || s.Subscribers != 3 || s.Parked != 2 || s.Topics != 1 || s.Dropped != 7 {
			t.Errorf("event %d = %+v, want the counters of stats() (published > %d)", i, s, last)
		}
		if d := time.Since(time.UnixMilli(s.Time)); d < 0 || d > 5*time.Second {
			t.Errorf("event %d time %d is %v away from now", i, s.Time, d)
		}
		last = s.Published
	}
	if got := dec.Retry(); got != 2*time.Second {
		t.Errorf("stream retry = %v, want 2s", got)
	}
}

func TestCloseEndsStreams(t *testing.T) {
	d := web.New(func() broker.Stats { return broker.Stats{} }, web.Config{Interval: time.Hour})
	srv := httptest.NewServer(d)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+web.StatsPath, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	dec := sse.NewDecoder(resp.Body)
	if _, err := dec.Next(); err != nil { // the first event comes at once
		t.Fatalf("first event: %v", err)
	}
	closed := make(chan struct{})
	go func() { d.Close(); close(closed) }()
	if _, err := dec.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("after Close, Next() = %v, want io.EOF", err)
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	d.Close() // twice is fine

	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+web.StatsPath, nil)
	resp2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("GET %s after Close: %s, want 503", web.StatsPath, resp2.Status)
	}
}
