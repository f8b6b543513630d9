package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herald-sse/herald/hub"
)

// pebbleVersion is the Let's Encrypt test CA the ACME test runs. It is
// installed with `go install` into the user's cache, outside this
// module's go.mod.
const pebbleVersion = "v2.10.3"

// installPebble returns the paths of pebble and pebble-challtestsrv,
// installing them on first use.
func installPebble(t *testing.T) (pebble, challtestsrv string) {
	t.Helper()
	dir := installGoTools(t, "pebble-"+pebbleVersion,
		"github.com/letsencrypt/pebble/v2/cmd/pebble@"+pebbleVersion,
		"github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv@"+pebbleVersion)
	return filepath.Join(dir, "pebble"), filepath.Join(dir, "pebble-challtestsrv")
}

// installGoTools installs the Go programs pkgs (path@version) with `go
// install` into name under the user's cache directory, once, outside
// this module's go.mod, and returns that directory. It skips the test
// when they cannot be installed (no module proxy), except under CI=true.
func installGoTools(t *testing.T, name string, pkgs ...string) string {
	t.Helper()
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "herald-test", name)
	done := filepath.Join(dir, ".installed")
	if _, err := os.Stat(done); err == nil {
		return dir
	}
	gobin, err := exec.LookPath("go")
	if err == nil {
		ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, gobin, append([]string{"install"}, pkgs...)...)
		cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=")
		var out []byte
		if out, err = cmd.CombinedOutput(); err != nil {
			err = fmt.Errorf("%w\n%s", err, out)
		}
	}
	if err == nil {
		err = os.WriteFile(done, nil, 0o644)
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("go install %s (CI=true): %v", strings.Join(pkgs, " "), err)
		}
		t.Skipf("go install %s failed (needs the Go module proxy): %v", strings.Join(pkgs, " "), err)
	}
	return dir
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startProc starts a helper process that is killed at the end of the
// test; its output is logged if the test failed.
func startProc(t *testing.T, env []string, name string, args ...string) *syncBuffer {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(heraldEnv(), env...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("%s %s output:\n%s", filepath.Base(name), strings.Join(args, " "), out.String())
		}
	})
	return out
}

// TestACME obtains a certificate from a local ACME server (pebble, with
// its DNS test server resolving every name to 127.0.0.1) for a running
// `herald serve --acme-domain`, serves HTTPS with it, and redirects HTTP
// to HTTPS.
func TestACME(t *testing.T) {
	if testing.Short() {
		t.Skip("installs and runs pebble and the herald binary")
	}
	pebble, challtestsrv := installPebble(t)
	bin := buildHerald(t)
	dir := t.TempDir()

	// pebble's own HTTPS certificate, signed by a CA that herald trusts
	// through SSL_CERT_FILE.
	ca := writeTestCert(t, filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key"))

	const domain = "hub.herald.test"
	httpsPort, httpPort, dnsPort := freePort(t), freePort(t), freePort(t)
	dirPort, mgmtPort := freePort(t), freePort(t)
	cfg, _ := json.Marshal(map[string]any{"pebble": map[string]any{
		"listenAddress":           "127.0.0.1:" + strconv.Itoa(dirPort),
		"managementListenAddress": "127.0.0.1:" + strconv.Itoa(mgmtPort),
		"certificate":             ca.certFile,
		"privateKey":              ca.keyFile,
		"httpPort":                httpPort,
		"tlsPort":                 httpsPort,
	}})
	cfgFile := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(cfgFile, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	startProc(t, nil, challtestsrv, "-dnsserver", "127.0.0.1:"+strconv.Itoa(dnsPort),
		"-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
		"-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", "", "-management", "127.0.0.1:"+strconv.Itoa(freePort(t)))
	startProc(t, []string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0"},
		pebble, "-config", cfgFile, "-dnsserver", "127.0.0.1:"+strconv.Itoa(dnsPort))
	trusted := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}}, Timeout: 5 * time.Second}
	directory := fmt.Sprintf("https://127.0.0.1:%d/dir", dirPort)
	waitFor(t, "pebble's directory", func() bool {
		resp, err := trusted.Get(directory)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	dataDir := filepath.Join(dir, "data")
	herald := startProc(t, []string{"SSL_CERT_FILE=" + ca.certFile}, bin, "serve",
		"--addr", "127.0.0.1:"+strconv.Itoa(httpsPort), "--acme-http-addr", ":"+strconv.Itoa(httpPort),
		"--acme-domain", domain, "--acme-email", "ops@herald.test", "--acme-directory", directory,
		"--data-dir", dataDir, "--store", "memory", "--publisher-key", durKey, "--log-level", "debug")
	waitFor(t, "herald to listen", func() bool { return strings.Contains(herald.String(), "herald: listening") })

	// The first handshake for the domain obtains the certificate.
	root := fetchPebbleRoot(t, trusted, mgmtPort)
	pool := x509.NewCertPool()
	pool.AddCert(root)
	var conn *tls.Conn
	deadline := time.Now().Add(60 * time.Second)
	for {
		d := &tls.Dialer{Config: &tls.Config{ServerName: domain, RootCAs: pool, NextProtos: []string{"h2", "http/1.1"}}}
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		c, err := d.DialContext(ctx, "tcp", "127.0.0.1:"+strconv.Itoa(httpsPort))
		cancel()
		if err == nil {
			conn = c.(*tls.Conn)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no valid certificate for %s from pebble after 60s: %v\nherald:\n%s", domain, err, herald.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	st := conn.ConnectionState()
	conn.Close()
	if st.NegotiatedProtocol != "h2" {
		t.Errorf("ALPN with the ACME certificate: %q, want h2", st.NegotiatedProtocol)
	}
	if got := st.PeerCertificates[0].DNSNames; len(got) != 1 || got[0] != domain {
		t.Errorf("certificate names %v, want [%s]", got, domain)
	}

	// HTTPS requests with the certificate, over HTTP/2.
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool},
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, "127.0.0.1:"+strconv.Itoa(httpsPort))
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	resp, err := hc.Get("https://" + domain + hub.HealthPath)
	if err != nil {
		t.Fatalf("GET https://%s/healthz: %v", domain, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
		t.Errorf("GET https://%s/healthz: %s %s, want HTTP/2.0 200", domain, resp.Proto, resp.Status)
	}

	// Plain HTTP is redirected to HTTPS.
	noFollow := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(httpPort)+hub.Path+"?topic=x", nil)
	req.Host = domain
	resp, err = noFollow.Do(req)
	if err != nil {
		t.Fatalf("GET http://%s%s: %v", domain, hub.Path, err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || loc != "https://"+domain+hub.Path+"?topic=x" {
		t.Errorf("GET http://%s%s: %s Location %q, want 302 to https://%s%s?topic=x", domain, hub.Path, resp.Status, loc, domain, hub.Path)
	}

	// The certificate is cached in the data directory.
	entries, _ := os.ReadDir(filepath.Join(dataDir, "acme"))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !strings.Contains(strings.Join(names, " "), domain) {
		t.Errorf("ACME cache %s holds %v, want the certificate of %s", filepath.Join(dataDir, "acme"), names, domain)
	}
}

// fetchPebbleRoot returns the root certificate pebble signs with, from its
// management interface.
func fetchPebbleRoot(t *testing.T, c *http.Client, mgmtPort int) *x509.Certificate {
	t.Helper()
	resp, err := c.Get(fmt.Sprintf("https://127.0.0.1:%d/roots/0", mgmtPort))
	if err != nil {
		t.Fatalf("pebble root: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	certs, err := parsePEMCerts(body)
	if err != nil || len(certs) == 0 {
		t.Fatalf("pebble root: %v in %q", err, body)
	}
	return certs[0]
}

func parsePEMCerts(b []byte) ([]*x509.Certificate, error) {
	pool := []*x509.Certificate{}
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		pool = append(pool, c)
	}
	if len(pool) == 0 {
		return nil, errors.New("no certificate")
	}
	return pool, nil
}
