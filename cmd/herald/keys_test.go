package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/herald-sse/herald/auth"
)

// writeECKey writes a P-256 key pair as PEM files in a temporary directory
// and returns the private key's path, the public key's path and the key.
func writeECKey(t *testing.T) (privFile, pubFile string, key *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	privFile = filepath.Join(dir, "es256.pem")
	if err := os.WriteFile(privFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	pder, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pubFile = filepath.Join(dir, "es256.pub.pem")
	if err := os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pder}), 0o644); err != nil {
		t.Fatal(err)
	}
	return privFile, pubFile, key
}

func TestTokenStyles(t *testing.T) {
	privFile, _, key := writeECKey(t)
	res := runCmd(t, "token", "--style", "at+jwt", "--key-file", privFile, "--subject", "alice",
		"--publish", "a", "--subscribe-pattern", "https://example.com/books/:id", "--payload", `{"n":1}`,
		"--issuer", "https://as.example", "--audience", "https://hub.example/.well-known/mercure", "--kid", "k1")
	if res.code != 0 {
		t.Fatalf("herald token --style at+jwt: exit %d, stderr %q", res.code, res.stderr)
	}
	v, err := auth.NewVerifier(auth.Config{PublicKeys: []crypto.PublicKey{&key.PublicKey}, Issuer: "https://as.example",
		Audience: "https://hub.example/.well-known/mercure", RejectMercureClaim: true})
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(strings.TrimSpace(res.stdout))
	if err != nil {
		t.Fatalf("Verify(minted at+jwt) = %v", err)
	}
	if c.Style != auth.StyleAccessToken || c.Subject != "alice" || len(c.Details) != 2 ||
		c.Matchers("publish")[0] != (auth.TopicMatcher{Match: "a", Type: auth.MatchExact}) ||
		c.Matchers("subscribe")[0] != (auth.TopicMatcher{Match: "https://example.com/books/:id", Type: auth.MatchURLPattern}) ||
		c.Details[1].Payload == nil {
		t.Errorf("minted at+jwt claims = %+v", c)
	}

	// A key file without PEM is an HMAC secret.
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte(testKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	res = runCmd(t, "token", "--key-file", secretFile, "--publish", "*")
	if res.code != 0 {
		t.Fatalf("herald token --key-file secret: exit %d, stderr %q", res.code, res.stderr)
	}
	verifyToken(t, testKey, strings.TrimSpace(res.stdout))

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--key", testKey, "--style", "jwt", "--publish", "*"}, `--style "jwt": want mercure or at+jwt`},
		{[]string{"--key", testKey, "--style", "at+jwt", "--ttl", "0", "--publish", "*"}, "must expire"},
		{[]string{"--key", testKey, "--publish-pattern", "/a/:b"}, "need --style at+jwt"},
		{[]string{"--key", testKey, "--key-file", privFile, "--publish", "*"}, "not both"},
		{[]string{"--key-file", filepath.Join(t.TempDir(), "missing"), "--publish", "*"}, "--key-file"},
		{[]string{"--key", testKey, "--alg", "RS256", "--publish", "*"}, "RS256 needs an asymmetric key"},
		{[]string{"--key-file", privFile, "--alg", "HS256", "--publish", "*"}, "HS256 cannot be signed with"},
		{[]string{"--key-file", privFile, "--alg", "none", "--publish", "*"}, `"none" is never used`},
	} {
		res := runCmd(t, append([]string{"token"}, tt.args...)...)
		if res.code != 2 || !strings.Contains(res.stderr, tt.want) || res.stdout != "" {
			t.Errorf("herald token %q = exit %d, stdout %q, stderr %q; want exit 2 and %q", tt.args, res.code, res.stdout, res.stderr, tt.want)
		}
	}
}

var serveListenRE = regexp.MustCompile(`msg="herald: listening" addr=(\S+)`)

// TestServeKeyFlags runs `herald serve` with a PEM public key, an audience
// and classic tokens off, and publishes with tokens minted by `herald token`.
func TestServeKeyFlags(t *testing.T) {
	privFile, pubFile, _ := writeECKey(t)
	const aud = "https://hub.example/.well-known/mercure"
	bg := startCmd(t, "serve", "--addr", "127.0.0.1:0", "--store", "memory", "--no-dashboard",
		"--publisher-key-file", pubFile, "--jwt-audience", aud, "--mercure-claim-tokens=false")
	var addr string
	waitFor(t, "herald serve to listen", func() bool {
		m := serveListenRE.FindStringSubmatch(bg.stderr.String())
		if m != nil {
			addr = m[1]
		}
		return m != nil
	})
	if strings.Contains(bg.stdout.String(), "generated a key") {
		t.Errorf("serve with --publisher-key-file generated an HMAC key: %q", bg.stdout.String())
	}
	endpoint := "http://" + addr + "/.well-known/mercure"
	publish := func(tok string) int {
		r, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(url.Values{"topic": {"https://example.com/books/1"}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatalf("POST: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	mint := func(args ...string) string {
		t.Helper()
		res := runCmd(t, append([]string{"token"}, args...)...)
		if res.code != 0 {
			t.Fatalf("herald token %v: exit %d, stderr %q", args, res.code, res.stderr)
		}
		return strings.TrimSpace(res.stdout)
	}
	good := mint("--style", "at+jwt", "--key-file", privFile, "--audience", aud, "--publish-pattern", "https://example.com/books/:id")
	for _, tc := range []struct {
		name, tok string
		want      int
	}{
		{"at+jwt with the audience", good, 200},
		{"other audience", mint("--style", "at+jwt", "--key-file", privFile, "--audience", "https://other.example/.well-known/mercure", "--publish", "*"), 401},
		{"classic token refused", mint("--key-file", privFile, "--audience", aud, "--publish", "*"), 401},
		{"HMAC token", mintToken(t, "--style", "at+jwt", "--audience", aud, "--publish", "*"), 401},
	} {
		if got := publish(tc.tok); got != tc.want {
			t.Errorf("%s: POST = %d, want %d", tc.name, got, tc.want)
		}
	}
	bg.cancel()
	if res := bg.wait(t); res.code != 0 {
		t.Errorf("herald serve exit %d, stderr %s", res.code, res.stderr)
	}

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--publisher-key-file", filepath.Join(t.TempDir(), "missing.pem")}, "--publisher-key-file"},
		{[]string{"--publisher-key-file", privFile}, "not a public key"},
		{[]string{"--jwks-url", "http://127.0.0.1:1/jwks.json"}, "--jwks-url"},
	} {
		res := runCmd(t, append([]string{"serve", "--addr", "127.0.0.1:0", "--store", "memory", "--no-dashboard"}, tt.args...)...)
		if res.code != 2 || !strings.Contains(res.stderr, tt.want) {
			t.Errorf("herald serve %q = exit %d, stderr %q; want exit 2 and %q", tt.args, res.code, res.stderr, tt.want)
		}
	}
}
