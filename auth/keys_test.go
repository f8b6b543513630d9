package auth_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/herald-sse/herald/auth"
)

// testKeys are generated once: RSA generation is slow.
var testKeys = sync.OnceValue(func() map[string]crypto.Signer {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ec256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	return map[string]crypto.Signer{"rsa": rsaKey, "ec256": ec256, "ec384": ec384, "ed25519": ed}
})

func pemPublic(t *testing.T, k crypto.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// TestKeyAlgorithmPairings verifies a token of every algorithm against a
// verifier holding each kind of key: only the matching family (and curve)
// verifies. The HMAC rows include the classic confusion attack: an HS256
// token whose secret is the verifier's public key in PEM.
func TestKeyAlgorithmPairings(t *testing.T) {
	keys := testKeys()
	hmacKey := []byte(strings.Repeat("s", 64))
	signers := map[string]any{ // alg -> signing key
		"HS256": hmacKey, "HS384": hmacKey, "HS512": hmacKey,
		"RS256": keys["rsa"], "RS384": keys["rsa"], "RS512": keys["rsa"],
		"ES256": keys["ec256"], "ES384": keys["ec384"], "EdDSA": keys["ed25519"],
	}
	verifiers := map[string]auth.Config{
		"hmac":    {Key: hmacKey, Algorithms: []string{"HS256", "HS384", "HS512"}},
		"rsa":     {PublicKeys: []crypto.PublicKey{keys["rsa"].Public()}},
		"ec256":   {PublicKeys: []crypto.PublicKey{keys["ec256"].Public()}},
		"ec384":   {PublicKeys: []crypto.PublicKey{keys["ec384"].Public()}},
		"ed25519": {PublicKeys: []crypto.PublicKey{keys["ed25519"].Public()}},
	}
	accepts := map[string]map[string]bool{
		"hmac":    {"HS256": true, "HS384": true, "HS512": true},
		"rsa":     {"RS256": true, "RS384": true, "RS512": true},
		"ec256":   {"ES256": true},
		"ec384":   {"ES384": true},
		"ed25519": {"EdDSA": true},
	}
	for vname, cfg := range verifiers {
		v := newVerifier(t, cfg)
		for alg, key := range signers {
			t.Run(vname+"/"+alg, func(t *testing.T) {
				tok, err := auth.SignToken(key, auth.Claims{Publish: []string{"*"}}, auth.SignOptions{Algorithm: alg, TTL: time.Minute})
				if err != nil {
					t.Fatalf("SignToken(%s): %v", alg, err)
				}
				_, err = v.Verify(tok)
				if want := accepts[vname][alg]; (err == nil) != want {
					t.Errorf("%s verifier: Verify(%s token) error = %v, want accepted: %v", vname, alg, err, want)
				}
				if err != nil && !errors.Is(err, auth.ErrInvalidToken) {
					t.Errorf("Verify(%s token) error %v does not wrap ErrInvalidToken", alg, err)
				}
			})
		}
		if vname == "hmac" {
			continue
		}
		// Confusion: the public key (PEM and DER) used as an HMAC secret.
		pub := keys[vname].Public()
		der, _ := x509.MarshalPKIXPublicKey(pub)
		for i, secret := range [][]byte{pemPublic(t, pub), der} {
			for _, alg := range []string{"HS256", "HS384", "HS512"} {
				tok := rawToken(t, jwt.GetSigningMethod(alg), secret, jwt.MapClaims{"mercure": mercure})
				if _, err := v.Verify(tok); err == nil {
					t.Errorf("%s verifier accepted %s signed with its public key (form %d) as the HMAC secret", vname, alg, i)
				}
			}
		}
	}
}

// TestHMACAndPublicKeysTogether: with both kinds configured, each token is
// checked only against its own family.
func TestHMACAndPublicKeysTogether(t *testing.T) {
	keys := testKeys()
	v := newVerifier(t, auth.Config{Key: testKey, PublicKeys: []crypto.PublicKey{keys["ec256"].Public()}})
	for _, key := range []any{testKey, keys["ec256"]} {
		tok, err := auth.SignToken(key, auth.Claims{}, auth.SignOptions{TTL: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify(tok); err != nil {
			t.Errorf("Verify(token signed with %T) = %v, want nil", key, err)
		}
	}
	// The EC public key's PEM as an HS256 secret: must fail (the PEM is
	// longer than 32 bytes, so only the key family stops it).
	tok := rawToken(t, jwt.SigningMethodHS256, pemPublic(t, keys["ec256"].Public()), jwt.MapClaims{})
	if _, err := v.Verify(tok); err == nil {
		t.Error("Verify(HS256 signed with the EC public key PEM) = nil, want an error")
	}
}

func TestParseKeysPEM(t *testing.T) {
	keys := testKeys()
	for name, k := range keys {
		got, err := auth.ParsePublicKeyPEM(pemPublic(t, k.Public()))
		if err != nil || len(got) != 1 {
			t.Errorf("ParsePublicKeyPEM(%s) = %v, %v", name, got, err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		priv, err := auth.ParsePrivateKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
		if err != nil {
			t.Errorf("ParsePrivateKeyPEM(%s) = %v", name, err)
			continue
		}
		if _, err := auth.ParsePublicKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err == nil {
			t.Errorf("ParsePublicKeyPEM(%s private key) = nil error, want a refusal", name)
		}
		_ = priv
	}
	if _, err := auth.ParsePublicKeyPEM([]byte("not pem")); err == nil {
		t.Error("ParsePublicKeyPEM(garbage) = nil error")
	}
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	if _, err := auth.NewVerifier(auth.Config{PublicKeys: []crypto.PublicKey{&small.PublicKey}}); err == nil {
		t.Error("NewVerifier(1024-bit RSA) = nil error, want a refusal")
	}
}

// signRaw signs an arbitrary header and claims JSON with HS256 and testKey.
func signRaw(header, claims string) string {
	enc := base64.RawURLEncoding
	s := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(claims))
	sig, _ := jwt.SigningMethodHS256.Sign(s, testKey)
	return s + "." + enc.EncodeToString(sig)
}

func TestStrictClaims(t *testing.T) {
	exp := time.Now().Add(time.Hour).Unix()
	v := newVerifier(t, auth.Config{Key: testKey})
	tests := []struct {
		name, header, claims string
		ok                   bool
		publish              []string
	}{
		{"exact name", `{"alg":"HS256"}`, `{"mercure":{"publish":["a"]}}`, true, []string{"a"}},
		{"claim name in other case grants nothing", `{"alg":"HS256"}`, `{"MERCURE":{"publish":["a"]}}`, true, nil},
		{"member name in other case grants nothing", `{"alg":"HS256"}`, `{"mercure":{"Publish":["a"]}}`, true, nil},
		{"duplicate claim", `{"alg":"HS256"}`, `{"mercure":{"publish":["a"]},"mercure":{"publish":["*"]}}`, false, nil},
		{"duplicate member", `{"alg":"HS256"}`, `{"mercure":{"publish":["a"],"publish":["*"]}}`, false, nil},
		{"duplicate exp", `{"alg":"HS256"}`, `{"exp":1,"exp":` + jsonInt(exp) + `}`, false, nil},
		{"duplicate header alg", `{"alg":"none","alg":"HS256"}`, `{}`, false, nil},
		{"duplicate header typ", `{"alg":"HS256","typ":"JWT","typ":"at+jwt"}`, `{}`, false, nil},
		{"unknown typ", `{"alg":"HS256","typ":"dpop+jwt"}`, `{}`, false, nil},
		{"invalid UTF-8", `{"alg":"HS256"}`, "{\"sub\":\"\xff\"}", false, nil},
	}
	for _, tt := range tests {
		c, err := v.Verify(signRaw(tt.header, tt.claims))
		if (err == nil) != tt.ok {
			t.Errorf("%s: Verify(%s . %s) error = %v, want ok: %v", tt.name, tt.header, tt.claims, err, tt.ok)
			continue
		}
		if err == nil && strings.Join(c.Publish, ",") != strings.Join(tt.publish, ",") {
			t.Errorf("%s: Verify(%s).Publish = %q, want %q", tt.name, tt.claims, c.Publish, tt.publish)
		}
	}
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestAccessTokens(t *testing.T) {
	exp := time.Now().Add(time.Hour).Unix()
	at := `{"alg":"HS256","typ":"at+jwt"}`
	claims := func(extra string) string {
		return `{"exp":` + jsonInt(exp) + `,"sub":"alice"` + extra + `}`
	}
	v := newVerifier(t, auth.Config{Key: testKey})
	strict := newVerifier(t, auth.Config{Key: testKey, RejectMercureClaim: true, Issuer: "https://as.example", Audience: "https://hub.example/.well-known/mercure"})
	detail := `,"authorization_details":[{"type":"mercure","actions":["publish","subscribe"],"topics":[{"match":"https://example.com/books/:id","matchType":"URLPattern"},{"match":"a"}],"payload":{"n":1}}]`
	tests := []struct {
		name     string
		v        *auth.Verifier
		header   string
		claims   string
		ok       bool
		details  int
		publish  []auth.TopicMatcher
		wantText string // in the error
	}{
		{"1.0 token", v, at, claims(detail), true, 1, []auth.TopicMatcher{{"https://example.com/books/:id", auth.MatchURLPattern}, {"a", auth.MatchExact}}, ""},
		{"earlier draft type and match_type", v, at, claims(`,"authorization_details":[{"type":"https://mercure.rocks/authorization-detail","actions":["publish"],"topics":[{"match":"/x/:y","match_type":"URLPattern"}]}]`), true, 1, []auth.TopicMatcher{{"/x/:y", auth.MatchURLPattern}}, ""},
		{"application/at+jwt", v, `{"alg":"HS256","typ":"application/at+jwt"}`, claims(detail), true, 1, nil, ""},
		{"no detail grants nothing", v, at, claims(""), true, 0, nil, ""},
		{"mercure claim in an access token grants nothing", v, at, claims(`,"mercure":{"publish":["*"]}`), true, 0, nil, ""},
		{"other detail types skipped", v, at, claims(`,"authorization_details":[{"type":"payment","topics":"x"}]`), true, 0, nil, ""},
		{"exp required", v, at, `{"sub":"a"}`, false, 0, nil, "exp"},
		{"unknown action", v, at, claims(`,"authorization_details":[{"type":"mercure","actions":["delete"],"topics":[{"match":"a"}]}]`), false, 0, nil, "unknown action"},
		{"no actions", v, at, claims(`,"authorization_details":[{"type":"mercure","topics":[{"match":"a"}]}]`), false, 0, nil, "actions"},
		{"no topics", v, at, claims(`,"authorization_details":[{"type":"mercure","actions":["publish"]}]`), false, 0, nil, "topics"},
		{"string topic", v, at, claims(`,"authorization_details":[{"type":"mercure","actions":["publish"],"topics":["a"]}]`), false, 0, nil, ""},
		{"unknown match type", v, at, claims(`,"authorization_details":[{"type":"mercure","actions":["publish"],"topics":[{"match":"a","matchType":"Regex"}]}]`), false, 0, nil, "match type"},
		{"match types disagree", v, at, claims(`,"authorization_details":[{"type":"mercure","actions":["publish"],"topics":[{"match":"a","matchType":"Exact","match_type":"URLPattern"}]}]`), false, 0, nil, "disagree"},
		{"matchType in other case", v, at, claims(`,"authorization_details":[{"type":"mercure","actions":["publish"],"topics":[{"match":"a","MatchType":"URLPattern"}]}]`), true, 1, []auth.TopicMatcher{{"a", auth.MatchExact}}, ""},
		{"one bad detail spoils all", v, at, claims(`,"authorization_details":[{"type":"mercure","actions":["publish"],"topics":[{"match":"*"}]},{"type":"mercure","actions":["x"],"topics":[{"match":"a"}]}]`), false, 0, nil, ""},
		{"details not an array", v, at, claims(`,"authorization_details":{"type":"mercure"}`), false, 0, nil, ""},
		{"strict: classic refused", strict, `{"alg":"HS256"}`, claims(""), false, 0, nil, "classic"},
		{"strict: iss and aud match", strict, at, claims(`,"iss":"https://as.example","aud":["x","https://hub.example/.well-known/mercure"]`), true, 0, nil, ""},
		{"strict: aud as a string", strict, at, claims(`,"iss":"https://as.example","aud":"https://hub.example/.well-known/mercure"`), true, 0, nil, ""},
		{"strict: wrong iss", strict, at, claims(`,"iss":"https://evil.example","aud":"https://hub.example/.well-known/mercure"`), false, 0, nil, "issuer"},
		{"strict: no iss", strict, at, claims(`,"aud":"https://hub.example/.well-known/mercure"`), false, 0, nil, "iss"},
		{"strict: wrong aud", strict, at, claims(`,"iss":"https://as.example","aud":"https://other.example/.well-known/mercure"`), false, 0, nil, "aud"},
		{"strict: no aud", strict, at, claims(`,"iss":"https://as.example"`), false, 0, nil, "aud"},
	}
	for _, tt := range tests {
		c, err := tt.v.Verify(signRaw(tt.header, tt.claims))
		if (err == nil) != tt.ok {
			t.Errorf("%s: Verify(%s) error = %v, want ok: %v", tt.name, tt.claims, err, tt.ok)
			continue
		}
		if err != nil {
			if !errors.Is(err, auth.ErrInvalidToken) || !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("%s: Verify(%s) error = %v, want ErrInvalidToken mentioning %q", tt.name, tt.claims, err, tt.wantText)
			}
			continue
		}
		if c.Style != auth.StyleAccessToken || len(c.Details) != tt.details || c.Publish != nil {
			t.Errorf("%s: Verify(%s) = %+v, want an access token with %d details", tt.name, tt.claims, c, tt.details)
		}
		if tt.publish != nil {
			got := c.Matchers("publish")
			if len(got) != len(tt.publish) {
				t.Errorf("%s: Matchers(publish) = %v, want %v", tt.name, got, tt.publish)
			}
			for i := range got {
				if got[i] != tt.publish[i] {
					t.Errorf("%s: Matchers(publish)[%d] = %v, want %v", tt.name, i, got[i], tt.publish[i])
				}
			}
		}
	}
}

func TestSignTokenAccessToken(t *testing.T) {
	v := newVerifier(t, auth.Config{Key: testKey, Issuer: "iss", Audience: "aud"})
	c := auth.Claims{Details: []auth.Detail{{Subscribe: true, Topics: []auth.TopicMatcher{{"/b/:id", auth.MatchURLPattern}}, Payload: map[string]any{"a": "b"}}}, Subject: "s"}
	tok, err := auth.SignToken(testKey, c, auth.SignOptions{Style: auth.StyleAccessToken, TTL: time.Minute, Issuer: "iss", Audience: []string{"aud"}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := v.Verify(tok)
	if err != nil {
		t.Fatalf("Verify(SignToken(at+jwt)) = %v", err)
	}
	if got.Style != auth.StyleAccessToken || len(got.Details) != 1 || got.Details[0].Topics[0] != c.Details[0].Topics[0] || got.Subject != "s" {
		t.Errorf("Verify(SignToken(at+jwt)) = %+v, want %+v", got, c)
	}
	if _, err := auth.SignToken(testKey, c, auth.SignOptions{Style: auth.StyleAccessToken}); err == nil {
		t.Error("SignToken(at+jwt without exp) = nil error, want a refusal")
	}
	// From Publish/Subscribe: Exact matchers.
	tok, err = auth.SignToken(testKey, auth.Claims{Publish: []string{"a"}, Subscribe: []string{"*"}}, auth.SignOptions{Style: auth.StyleAccessToken, TTL: time.Minute, Issuer: "iss", Audience: []string{"aud"}})
	if err != nil {
		t.Fatal(err)
	}
	got, err = v.Verify(tok)
	if err != nil || len(got.Matchers("publish")) != 1 || got.Matchers("subscribe")[0].Match != "*" {
		t.Errorf("Verify(SignToken(at+jwt from Publish/Subscribe)) = %+v, %v", got, err)
	}
}

func TestCookies(t *testing.T) {
	for _, tt := range []struct {
		cookies []string
		want    string
	}{
		{[]string{"mercureAuthorization=old"}, "old"},
		{[]string{"__Secure-mercure_access_token=new", "mercureAuthorization=old"}, "new"},
		{[]string{"mercureAccessToken=draft", "__Secure-mercure_access_token=new"}, "draft"},
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		for _, c := range tt.cookies {
			r.Header.Add("Cookie", c)
		}
		if got, src := auth.TokenFromRequest(r); got != tt.want || src != auth.SourceCookie {
			t.Errorf("TokenFromRequest(cookies %q) = %q, %v; want %q from a cookie", tt.cookies, got, src, tt.want)
		}
	}
}

// jwksServer serves a JWK Set holding the public keys of *keys and counts
// the fetches.
func jwksServer(t *testing.T, keys *atomic.Pointer[[]jwkEntry]) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": *keys.Load()})
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

type jwkEntry map[string]string

func ecJWK(kid string, k *ecdsa.PrivateKey) jwkEntry {
	enc := base64.RawURLEncoding
	b, _ := k.PublicKey.Bytes() // uncompressed point: 0x04 || X || Y
	size := (len(b) - 1) / 2
	return jwkEntry{"kty": "EC", "crv": k.Curve.Params().Name, "kid": kid, "alg": "ES256", "use": "sig",
		"x": enc.EncodeToString(b[1 : 1+size]), "y": enc.EncodeToString(b[1+size:])}
}

// TestJWKS: tokens verify against the set by kid; a token with a new kid
// makes the set refresh (rotation), and a flood of unknown kids costs at
// most one extra fetch per MinRefreshInterval.
func TestJWKS(t *testing.T) {
	k1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	var set atomic.Pointer[[]jwkEntry]
	set.Store(&[]jwkEntry{ecJWK("one", k1)})
	srv, fetches := jwksServer(t, &set)

	ctx := context.Background()
	jwks, err := auth.NewJWKS(ctx, srv.URL, auth.JWKSConfig{MinRefreshInterval: time.Hour})
	if err != nil {
		t.Fatalf("NewJWKS: %v", err)
	}
	defer jwks.Close()
	v := newVerifier(t, auth.Config{JWKS: jwks})
	sign := func(k *ecdsa.PrivateKey, kid string) string {
		tok, err := auth.SignToken(k, auth.Claims{Subject: kid}, auth.SignOptions{TTL: time.Minute, KeyID: kid})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	if _, err := v.Verify(sign(k1, "one")); err != nil {
		t.Fatalf("Verify(kid one) = %v", err)
	}
	if got := fetches.Load(); got != 1 {
		t.Errorf("fetches after a known kid = %d, want 1", got)
	}
	// Rotation: the server now also has "two"; the first token naming it
	// triggers a refresh.
	set.Store(&[]jwkEntry{ecJWK("one", k1), ecJWK("two", k2)})
	if _, err := v.Verify(sign(k2, "two")); err != nil {
		t.Fatalf("Verify(rotated kid two) = %v", err)
	}
	if got := fetches.Load(); got != 2 {
		t.Errorf("fetches after a rotated kid = %d, want 2", got)
	}
	// A flood of unknown kids: refused, and no further fetch within the
	// interval.
	for i := range 20 {
		if _, err := v.Verify(sign(k2, "unknown-"+string(rune('a'+i)))); err == nil {
			t.Fatal("Verify(unknown kid) = nil, want an error")
		}
	}
	if got := fetches.Load(); got != 2 {
		t.Errorf("fetches after 20 unknown kids = %d, want 2 (bounded refresh)", got)
	}
	// A key of the set never verifies an HMAC token.
	if _, err := v.Verify(rawToken(t, jwt.SigningMethodHS256, testKey, jwt.MapClaims{})); err == nil {
		t.Error("JWKS verifier accepted an HS256 token")
	}
	if _, err := auth.NewJWKS(ctx, "http://127.0.0.1:1/nothing", auth.JWKSConfig{}); err == nil {
		t.Error("NewJWKS(unreachable) = nil error, want the first fetch's error")
	}
}
