package main

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/herald-sse/herald/hub"
	"github.com/herald-sse/herald/sse"
)

// TestAccessLogWithoutSecrets checks that --access-log logs requests and
// streams, and never a token: not from the Authorization header, the
// authorization query parameter nor the cookie.
func TestAccessLogWithoutSecrets(t *testing.T) {
	bg, addr := startServe(t, "--access-log")
	base := "http://" + addr
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr}
	subTok := mintToken(t, "--subscribe", "*")

	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+hub.Path+"?topic=logged&authorization="+url.QueryEscape(subTok), nil)
	req.AddCookie(&http.Cookie{Name: "mercureAuthorization", Value: subTok})
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	waitFor(t, "the subscriber", func() bool { return metric(t, c, base, "herald_subscribers") == 1 })
	publish(t, c, base+hub.Path, "logged", "hello")
	if ev, err := sse.NewDecoder(resp.Body).Next(); err != nil || ev.Data != "hello" {
		t.Fatalf("stream: %q, %v", ev.Data, err)
	}
	cancel()
	resp.Body.Close()
	waitFor(t, "the stream's log line", func() bool {
		return strings.Contains(bg.stderr.String(), `method=GET path=/.well-known/mercure query="authorization=%2A%2A%2A&topic=logged"`)
	})
	bg.cancel()
	res := bg.wait(t)
	for _, secret := range []string{subTok, pubToken(t), testKey} {
		if strings.Contains(res.stderr, secret) {
			t.Errorf("--access-log logged a secret %q:\n%s", secret, res.stderr)
		}
	}
	if !strings.Contains(res.stderr, `msg="http request" method=POST path=/.well-known/mercure query="" proto=HTTP/1.1 status=200`) {
		t.Errorf("--access-log: no line for the publish:\n%s", res.stderr)
	}
}

// TestNoAccessLogByDefault checks that requests are not logged unless
// asked.
func TestNoAccessLogByDefault(t *testing.T) {
	bg, addr := startServe(t)
	resp, err := http.Get("http://" + addr + hub.HealthPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if v := resp.Header.Get(versionHeader); v == "" || v != versionString() {
		t.Errorf("GET /healthz: %s %q, want %q", versionHeader, v, versionString())
	}
	bg.cancel()
	if res := bg.wait(t); strings.Contains(res.stderr, "http request") {
		t.Errorf("requests logged without --access-log:\n%s", res.stderr)
	}
}

// TestLatencyMetrics checks the publish and store append histograms and
// the replay lookup counters on /metrics.
func TestLatencyMetrics(t *testing.T) {
	_, addr := startServe(t)
	base := "http://" + addr
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr}
	publish(t, c, base+hub.Path, "m", "one")
	publish(t, c, base+hub.Path, "m", "two")
	// Refusals: a publish with a token of another key, a subscription
	// without a topic.
	other, err := signWith("another-key-0123456789abcdef0123456789")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, base+hub.Path, strings.NewReader("topic=m&data=x"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+other)
	if resp, err := c.Do(req); err == nil {
		resp.Body.Close()
	}
	if resp, err := c.Get(base + hub.Path); err == nil {
		resp.Body.Close()
	}
	for _, lastID := range []string{"urn:uuid:not-in-history", ""} {
		ctx, cancel := context.WithCancel(t.Context())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+hub.Path+"?topic=m&lastEventID="+url.QueryEscape(lastID), nil)
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		cancel()
	}
	for name, want := range map[string]float64{
		`herald_publish_duration_seconds_count{code="200"}`:       2,
		`herald_store_append_duration_seconds_count{result="ok"}`: 2,
		`herald_replay_lookups_total{result="miss"}`:              1,
		`herald_responses_total{code="200",route="publish"}`:      2,
		`herald_responses_total{code="401",route="publish"}`:      1,
		`herald_responses_total{code="400",route="subscribe"}`:    1,
	} {
		if got := metric(t, c, base, regexpQuote(name)); got != want {
			t.Errorf("/metrics %s = %v, want %v", name, got, want)
		}
	}
}

func regexpQuote(s string) string {
	r := strings.NewReplacer("{", `\{`, "}", `\}`, `"`, `"`)
	return r.Replace(s)
}

// TestVersion checks `herald version`.
func TestVersion(t *testing.T) {
	res := runCmd(t, "version")
	if res.code != 0 || !strings.HasPrefix(res.stdout, "herald "+versionString()+" (go") {
		t.Errorf("herald version: exit %d, %q", res.code, res.stdout)
	}
}

// TestRedisLogsThroughSlog checks that the Redis client's own log lines
// (connection pool failures) go through the hub's logger, not raw to
// stderr.
func TestRedisLogsThroughSlog(t *testing.T) {
	bg := startCmd(t, "serve", "--addr", "127.0.0.1:0", "--store", "redis", "--redis-url", "redis://127.0.0.1:1/0", "--log-format", "json")
	waitFor(t, "a redis client log line", func() bool { return strings.Contains(bg.stderr.String(), `"msg":"redis: `) })
	bg.cancel()
	res := bg.wait(t)
	for _, line := range strings.Split(strings.TrimSpace(res.stderr), "\n") {
		if !strings.HasPrefix(line, "{") && !strings.HasPrefix(line, "herald serve:") {
			t.Errorf("stderr line outside the JSON log: %q", line)
		}
	}
	if !strings.Contains(res.stderr, `"msg":"redis: `) {
		t.Errorf("no redis client log line in the JSON log:\n%s", res.stderr)
	}
}
