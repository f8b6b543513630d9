package main

// Checks of the deployment examples in deploy/ with the real tools:
// systemd-analyze, nginx, and the schema and lint check of
// deploy/check. A missing tool skips its test, except under CI=true.

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herald-sse/herald/hub"
	"github.com/herald-sse/herald/sse"
)

const deployDir = "../../deploy"

// requireTool returns the path of a tool, or skips the test (fails it
// under CI=true) when it is not installed.
func requireTool(t *testing.T, name, install string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found (CI=true): %s", name, install)
		}
		t.Skipf("%s not found: %s", name, install)
	}
	return p
}

// TestSystemdUnit verifies deploy/herald.service with systemd-analyze,
// against a real herald binary.
func TestSystemdUnit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the herald binary")
	}
	analyze := requireTool(t, "systemd-analyze", "apt-get install systemd")
	bin := buildHerald(t)
	unit, err := os.ReadFile(filepath.Join(deployDir, "herald.service"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(unit), "LimitNOFILE=") {
		t.Errorf("herald.service: no LimitNOFILE")
	}
	p := filepath.Join(t.TempDir(), "herald.service")
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/herald", bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", p).CombinedOutput()
	if err != nil || len(out) != 0 {
		t.Errorf("systemd-analyze verify herald.service: %v\n%s", err, out)
	}
}

// TestDeployChecks validates deploy/kubernetes.yaml against the
// Kubernetes schemas and lints the Dockerfile (deploy/check/check.mjs).
func TestDeployChecks(t *testing.T) {
	node := requireTool(t, "node", "apt-get install nodejs npm")
	if _, err := os.Stat(filepath.Join(deployDir, "check", "node_modules")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("deploy/check has no node_modules (CI=true): npm ci --prefix deploy/check")
		}
		t.Skip("deploy/check has no node_modules: npm ci --prefix deploy/check")
	}
	out, err := exec.Command(node, filepath.Join(deployDir, "check", "check.mjs")).CombinedOutput()
	if err != nil {
		t.Errorf("node deploy/check/check.mjs: %v\n%s", err, out)
	}
}

// TestNginxProxy runs a real nginx with deploy/nginx/herald-proxy.conf in
// front of a hub and streams through it: events arrive one by one as
// they are published, publishes go through, and a reconnection with
// Last-Event-ID replays what was missed.
func TestNginxProxy(t *testing.T) {
	nginx := requireTool(t, "nginx", "apt-get install nginx")
	proxyConf, err := filepath.Abs(filepath.Join(deployDir, "nginx", "herald-proxy.conf"))
	if err != nil {
		t.Fatal(err)
	}
	snippet, err := os.ReadFile(proxyConf)
	if err != nil {
		t.Fatal(err)
	}
	// An idle stream must outlive several heartbeats (15s by default).
	m := regexp.MustCompile(`(?m)^proxy_read_timeout (\d+)h;`).FindSubmatch(snippet)
	if m == nil || string(m[1]) == "0" {
		t.Errorf("herald-proxy.conf: want proxy_read_timeout in hours, far above --heartbeat")
	}
	for _, want := range []string{"proxy_buffering off;", "proxy_http_version 1.1;"} {
		if !strings.Contains(string(snippet), want) {
			t.Errorf("herald-proxy.conf: no %q", want)
		}
	}

	_, heraldAddr := startServe(t)
	dir := t.TempDir()
	port := freePort(t)
	user := ""
	if os.Geteuid() == 0 {
		user = "user root root;" // workers must reach the temporary directory
	}
	conf := fmt.Sprintf(`%s
worker_processes 1;
daemon off;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log info;
events { worker_connections 256; }
http {
	access_log off;
	client_body_temp_path %[2]s/body;
	proxy_temp_path %[2]s/proxy;
	fastcgi_temp_path %[2]s/fastcgi;
	uwsgi_temp_path %[2]s/uwsgi;
	scgi_temp_path %[2]s/scgi;
	upstream herald { server %[3]s; keepalive 8; }
	server {
		listen 127.0.0.1:%[4]d;
		location / { include %[5]s; }
	}
}
`, user, dir, heraldAddr, port, proxyConf)
	confFile := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(nginx, "-t", "-p", dir, "-c", confFile).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	cmd := exec.Command(nginx, "-p", dir, "-c", confFile)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nginx: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM) // fast shutdown: the master stops its workers
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx output:\n%s\nerror.log:\n%s", out.String(), log)
		}
	})
	checkProxy(t, "nginx", fmt.Sprintf("http://127.0.0.1:%d", port))
}

// checkProxy streams through a reverse proxy at base in front of a hub:
// events arrive one by one as they are published, publishes go through,
// and a reconnection with Last-Event-ID replays what was missed.
func checkProxy(t *testing.T, proxy, base string) {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr}
	waitFor(t, proxy+" to proxy /healthz", func() bool {
		resp, err := c.Get(base + hub.HealthPath)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	const topic = "urn:herald:proxy"
	subscribe := func(lastID string) (*sse.Decoder, func()) {
		ctx, cancel := context.WithCancel(t.Context())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+hub.Path+"?topic="+url.QueryEscape(topic), nil)
		if lastID != "" {
			req.Header.Set("Last-Event-ID", lastID)
		}
		resp, err := c.Do(req)
		if err != nil {
			cancel()
			t.Fatalf("subscribe through %s: %v", proxy, err)
		}
		if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || !strings.HasPrefix(ct, "text/event-stream") {
			cancel()
			t.Fatalf("subscribe through %s: %s, Content-Type %q", proxy, resp.Status, ct)
		}
		return sse.NewDecoder(resp.Body), func() { cancel(); resp.Body.Close() }
	}
	// next reads one event, failing the test if it does not come within
	// 5s: an event held in a proxy buffer would not.
	next := func(dec *sse.Decoder) sse.Event {
		t.Helper()
		type res struct {
			ev  sse.Event
			err error
		}
		ch := make(chan res, 1)
		go func() { ev, err := dec.Next(); ch <- res{ev, err} }()
		select {
		case r := <-ch:
			if r.err != nil {
				t.Fatalf("event through %s: %v", proxy, r.err)
			}
			return r.ev
		case <-time.After(5 * time.Second):
			t.Fatalf("event through %s: nothing after 5s (buffered?)", proxy)
		}
		return sse.Event{}
	}

	dec, stop := subscribe("")
	waitFor(t, "the subscriber", func() bool { return metric(t, c, base, "herald_subscribers") == 1 })
	var lastID string
	for i := range 3 {
		publish(t, c, base+hub.Path, topic, fmt.Sprintf("live %d", i))
		ev := next(dec)
		if want := fmt.Sprintf("live %d", i); ev.Data != want {
			t.Fatalf("event %d through %s: %q, want %q", i, proxy, ev.Data, want)
		}
		lastID = ev.ID
	}
	stop()
	waitFor(t, "the subscriber to leave", func() bool { return metric(t, c, base, "herald_subscribers") == 0 })
	publish(t, c, base+hub.Path, topic, "missed 1")
	publish(t, c, base+hub.Path, topic, "missed 2")
	dec, stop = subscribe(lastID)
	defer stop()
	for _, want := range []string{"missed 1", "missed 2"} {
		if ev := next(dec); ev.Data != want {
			t.Fatalf("replay through %s after Last-Event-ID %s: %q, want %q", proxy, lastID, ev.Data, want)
		}
	}
}

// caddyVersion is the Caddy that TestCaddyProxy runs, installed with `go
// install` into the user cache (Debian 12 has no Caddy package).
const caddyVersion = "v2.11.9"

// TestCaddyProxy runs a real Caddy with deploy/caddy/herald-proxy.caddy
// in front of a hub and streams through it, as TestNginxProxy does.
func TestCaddyProxy(t *testing.T) {
	if testing.Short() {
		t.Skip("installs and runs Caddy")
	}
	caddy := filepath.Join(installGoTools(t, "caddy-"+caddyVersion, "github.com/caddyserver/caddy/v2/cmd/caddy@"+caddyVersion), "caddy")
	snippet, err := filepath.Abs(filepath.Join(deployDir, "caddy", "herald-proxy.caddy"))
	if err != nil {
		t.Fatal(err)
	}
	_, heraldAddr := startServe(t)
	dir := t.TempDir()
	port := freePort(t)
	conf := fmt.Sprintf(`{
	admin off
	auto_https off
	storage file_system %[1]s
	persist_config off
}
http://127.0.0.1:%[2]d {
	import %[3]s %[4]s
}
`, dir, port, snippet, heraldAddr)
	confFile := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(caddy, "validate", "--config", confFile, "--adapter", "caddyfile").CombinedOutput(); err != nil {
		t.Fatalf("caddy validate: %v\n%s", err, out)
	}
	// The site example must adapt too (its certificates are not fetched).
	if out, err := exec.Command(caddy, "adapt", "--config", filepath.Join(deployDir, "caddy", "Caddyfile"), "--validate").CombinedOutput(); err != nil {
		t.Errorf("caddy adapt --validate deploy/caddy/Caddyfile: %v\n%s", err, out)
	}
	cmd := exec.Command(caddy, "run", "--config", confFile, "--adapter", "caddyfile")
	cmd.Env = append(heraldEnv(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start caddy: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("caddy output:\n%s", out.String())
		}
	})
	checkProxy(t, "caddy", fmt.Sprintf("http://127.0.0.1:%d", port))
}
