package e2e_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/herald-sse/herald/hub"
	"github.com/herald-sse/herald/internal/browsertest"
)

// selfSignedFiles writes a self-signed certificate for 127.0.0.1 and
// its key into dir and returns the two paths.
func selfSignedFiles(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "herald e2e"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestBrowserHTTP2ManyEventSources opens twelve EventSources from one
// page to an HTTPS hub: over HTTP/2 they share one connection, so all
// twelve open (over HTTP/1.1 the seventh would wait, see
// TestSixConnectionsPerOrigin) and each receives its updates.
func TestBrowserHTTP2ManyEventSources(t *testing.T) {
	b := browsertest.New(t, chromedp.Flag("ignore-certificate-errors", true))
	certFile, keyFile := selfSignedFiles(t, t.TempDir())
	addr := freeAddr(t)
	cmd := exec.Command(heraldBinary(t), "serve", "--addr", addr, "--publisher-key", string(testKey),
		"--store", "memory", "--tls-cert", certFile, "--tls-key", keyFile)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start herald: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("herald output:\n%s", out.String())
		}
	})
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	base := "https://" + addr
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := client.Get(base + hub.HealthPath)
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("herald not answering on %s after 15s: %v", base, err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	p := openHarness(b, base+hub.HealthPath)
	var proto string
	p.Eval(`performance.getEntriesByType('navigation')[0].nextHopProtocol`, &proto)
	if proto != "h2" {
		t.Fatalf("page loaded over %q, want h2", proto)
	}
	const n = 12
	for i := range n {
		p.Eval(fmt.Sprintf(`h.listen(%q)`, base+hub.Path+"?topic="+url.QueryEscape(fmt.Sprintf("/t/%d", i))), nil)
	}
	p.WaitFor(fmt.Sprintf("h.opens.filter(x => x > 0).length === %d", n), 10*time.Second, "[h.opens, h.errors]")
	tok := token(t)
	for i := range n {
		form := url.Values{"topic": {fmt.Sprintf("/t/%d", i)}, "data": {fmt.Sprintf("to %d", i)}}
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, base+hub.Path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("publish: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("publish: %s", resp.Status)
		}
	}
	p.WaitFor(fmt.Sprintf("h.events.length >= %d", n), 10*time.Second, "h.events")
	got := map[string]bool{}
	for _, ev := range events(p) {
		got[fmt.Sprintf("%d %s", ev.Src, ev.Data)] = true
	}
	for i := range n {
		if want := fmt.Sprintf("%d to %d", i, i); !got[want] {
			t.Errorf("EventSource %d did not receive %q; got %v", i, want, got)
		}
	}
	var protos []string
	p.Eval(`[...new Set(performance.getEntriesByType('resource').map(e => e.nextHopProtocol))]`, &protos)
	for _, pr := range protos {
		if pr != "h2" && pr != "" {
			t.Errorf("a resource was fetched over %q, want h2 only (got %v)", pr, protos)
		}
	}
}
