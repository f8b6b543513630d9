package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/herald-sse/herald/hub"
	"github.com/herald-sse/herald/sse"
)

// testCert is a self-signed certificate for 127.0.0.1 and localhost,
// written as PEM files.
type testCert struct {
	certFile, keyFile string
	pool              *x509.CertPool
	serial            *big.Int
}

// writeTestCert creates a self-signed certificate with a fresh key and
// writes it to certFile and keyFile (replacing them atomically).
func writeTestCert(t *testing.T, certFile, keyFile string) testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "herald test " + serial.String()},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writeAtomic(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
	writeAtomic(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return testCert{certFile: certFile, keyFile: keyFile, pool: pool, serial: serial}
}

func writeAtomic(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

var listenAddrRE = regexp.MustCompile(`msg="herald: listening" addr=(\S+)`)

// startServe runs `herald serve` in the background on a free loopback
// port with an in-memory store and testKey, and returns it with its
// listen address once it listens.
func startServe(t *testing.T, args ...string) (*background, string) {
	t.Helper()
	all := append([]string{"serve", "--addr", "127.0.0.1:0", "--store", "memory", "--publisher-key", testKey, "--heartbeat", "0"}, args...)
	bg := startCmd(t, all...)
	var addr string
	waitFor(t, "herald serve to listen", func() bool {
		if m := listenAddrRE.FindStringSubmatch(bg.stderr.String()); m != nil {
			addr = m[1]
			return true
		}
		select {
		case <-bg.done:
			t.Fatalf("herald %s: exited %d before listening:\n%s", strings.Join(all, " "), bg.code, bg.stderr.String())
		default:
		}
		return false
	})
	return bg, addr
}

// countingTransport returns a transport that trusts pool, and the number
// of TCP connections it has dialed.
func countingTransport(t *testing.T, pool *x509.CertPool) (*http.Transport, *atomic.Int32) {
	t.Helper()
	var dials atomic.Int32
	d := &net.Dialer{}
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool},
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			return d.DialContext(ctx, network, addr)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return tr, &dials
}

// publish posts one update to the hub with a publisher token.
func publish(t *testing.T, c *http.Client, hubURL, topic, data string) {
	t.Helper()
	form := url.Values{"topic": {topic}, "data": {data}}
	req, _ := http.NewRequest(http.MethodPost, hubURL, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+pubToken(t))
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", hubURL, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %s %s", hubURL, resp.Status, body)
	}
}

var (
	pubTokenOnce sync.Once
	pubTokenVal  string
)

func pubToken(t *testing.T) string {
	pubTokenOnce.Do(func() { pubTokenVal = mintToken(t, "--publish", "*", "--subscribe", "*") })
	return pubTokenVal
}

// metric returns the value of a gauge or counter of the hub's /metrics.
func metric(t *testing.T, c *http.Client, base, name string) float64 {
	t.Helper()
	resp, err := c.Get(base + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("GET /metrics: no %s in\n%s", name, body)
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// TestHTTP2ManyStreamsOneConnection opens 200 event streams over one
// HTTP/2 connection to an HTTPS hub and checks that each receives every
// update, in order.
func TestHTTP2ManyStreamsOneConnection(t *testing.T) {
	dir := t.TempDir()
	cert := writeTestCert(t, filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	_, addr := startServe(t, "--tls-cert", cert.certFile, "--tls-key", cert.keyFile)
	base := "https://" + addr
	tr, dials := countingTransport(t, cert.pool)
	c := &http.Client{Transport: tr}

	// One request first: the transport learns that the connection speaks
	// HTTP/2 and multiplexes everything after it onto it.
	if r, err := c.Get(base + "/healthz"); err != nil {
		t.Fatalf("GET /healthz: %v", err)
	} else {
		r.Body.Close()
	}

	const streams, updates = 200, 5
	const topic = "urn:herald:h2"
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, streams)
	got := make([][]string, streams)
	opened := make(chan struct{}, streams)
	for i := range streams {
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+hub.Path+"?topic="+url.QueryEscape(topic), nil)
			resp, err := c.Do(req)
			if err != nil {
				errs <- fmt.Errorf("stream %d: %w", i, err)
				return
			}
			defer resp.Body.Close()
			if resp.ProtoMajor != 2 {
				errs <- fmt.Errorf("stream %d: %s, want HTTP/2", i, resp.Proto)
				return
			}
			opened <- struct{}{}
			dec := sse.NewDecoder(resp.Body)
			for len(got[i]) < updates {
				ev, err := dec.Next()
				if err != nil {
					errs <- fmt.Errorf("stream %d after %d events: %w", i, len(got[i]), err)
					return
				}
				got[i] = append(got[i], ev.Data)
			}
		})
	}
	for range streams {
		select {
		case <-opened:
		case err := <-errs:
			t.Fatal(err)
		case <-time.After(20 * time.Second):
			t.Fatal("streams not open after 20s")
		}
	}
	waitFor(t, "200 subscribers", func() bool { return metric(t, c, base, "herald_subscribers") == streams })
	for i := range updates {
		publish(t, c, base+hub.Path, topic, "update "+strconv.Itoa(i))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	want := "update 0,update 1,update 2,update 3,update 4"
	for i, g := range got {
		if s := strings.Join(g, ","); s != want {
			t.Errorf("stream %d received %q, want %q", i, s, want)
		}
	}
	if n := dials.Load(); n != 1 {
		t.Errorf("the client dialed %d connections for %d streams and %d publishes, want 1", n, streams, updates)
	}
}

// TestH2C checks cleartext HTTP/2 with --h2c, and that HTTP/1.1 still
// works beside it.
func TestH2C(t *testing.T) {
	_, addr := startServe(t, "--h2c")
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &p}
	t.Cleanup(tr.CloseIdleConnections)
	resp, err := (&http.Client{Transport: tr}).Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz over h2c: %v", err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz over h2c: %s %s, want HTTP/2.0 200", resp.Proto, resp.Status)
	}
	tr1 := &http.Transport{}
	t.Cleanup(tr1.CloseIdleConnections)
	resp, err = (&http.Client{Transport: tr1}).Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz over HTTP/1.1: %v", err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 1 || resp.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz over HTTP/1.1 with --h2c: %s %s, want HTTP/1.1 200", resp.Proto, resp.Status)
	}
}

// servedSerial returns the serial number of the certificate the server
// at addr presents in a new handshake.
func servedSerial(t *testing.T, addr string) *big.Int {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("tls.Dial %s: %v", addr, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber
}

// TestCertificateReload replaces the certificate files under a running
// hub and checks that new handshakes get the new certificate, on SIGHUP
// and on the file change alone, while a stream opened before keeps
// receiving updates.
func TestCertificateReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	first := writeTestCert(t, certFile, keyFile)
	_, addr := startServe(t, "--tls-cert", certFile, "--tls-key", keyFile)
	base := "https://" + addr
	tr, _ := countingTransport(t, first.pool)
	c := &http.Client{Transport: tr}

	const topic = "urn:herald:reload"
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+hub.Path+"?topic="+url.QueryEscape(topic), nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	defer resp.Body.Close()
	dec := sse.NewDecoder(resp.Body)
	waitFor(t, "the subscriber", func() bool { return metric(t, c, base, "herald_subscribers") == 1 })

	// SIGHUP: the handler is registered before the hub listens.
	second := writeTestCert(t, certFile, keyFile)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the second certificate after SIGHUP", func() bool { return servedSerial(t, addr).Cmp(second.serial) == 0 })

	// The file change alone (polled).
	third := writeTestCert(t, certFile, keyFile)
	waitFor(t, "the third certificate after the file change", func() bool { return servedSerial(t, addr).Cmp(third.serial) == 0 })

	// A bad file keeps the current certificate.
	writeAtomic(t, certFile, []byte("not a certificate"))
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}

	// The stream opened with the first certificate is still served, on
	// the connection it was opened on.
	publish(t, c, base+hub.Path, topic, "after reload")
	ev, err := dec.Next()
	if err != nil || ev.Data != "after reload" {
		t.Fatalf("stream opened before the reloads: Next() = %q, %v, want \"after reload\"", ev.Data, err)
	}
	if s := servedSerial(t, addr); s.Cmp(third.serial) != 0 {
		t.Errorf("after a bad certificate file: served serial %v, want the third certificate %v kept", s, third.serial)
	}
}

// TestBannerAfterListen checks that the token banner
// follows the listening line (it is printed only once the hub can be
// used).
func TestBannerAfterListen(t *testing.T) {
	bg := startCmd(t, "serve", "--addr", "127.0.0.1:0", "--store", "memory")
	waitFor(t, "the token banner", func() bool { return strings.Contains(bg.stdout.String(), "Publisher token") })
	if !listenAddrRE.MatchString(bg.stderr.String()) {
		t.Errorf("the token banner was printed before the hub listened; stderr:\n%s", bg.stderr.String())
	}
	bgj := startCmd(t, "serve", "--addr", "127.0.0.1:0", "--store", "memory", "--log-format", "json")
	waitFor(t, "the JSON token banner", func() bool { return strings.Contains(bgj.stdout.String(), "publisher_token") })
	line := strings.TrimSpace(bgj.stdout.String())
	if !bytes.HasPrefix([]byte(line), []byte("{")) || strings.Count(line, "\n") != 0 {
		t.Errorf("--log-format json: banner %q, want one JSON line", line)
	}
}
