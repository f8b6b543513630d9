package auth_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"

	"github.com/herald-sse/herald/auth"
)

var (
	testKey  = []byte("0123456789abcdef0123456789abcdef") // 32 bytes
	otherKey = []byte("fedcba9876543210fedcba9876543210") // 32 bytes
	longKey  = []byte(strings.Repeat("k", 64))            // enough for HS512
	mercure  = map[string]any{"publish": []string{"https://example.com/books/{id}"}}
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func newVerifier(t *testing.T, cfg auth.Config) *auth.Verifier {
	t.Helper()
	v, err := auth.NewVerifier(cfg)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v
}

// rawToken signs claims with method and key, bypassing auth.Sign, so tests
// can build tokens auth.Sign would never produce.
func rawToken(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatalf("SignedString: %v", err)
	}
	return s
}

// confusedToken builds the classic algorithm-confusion token: the header
// says RS256, but the signature is an HMAC-SHA256 made with key (as if the
// server's public key had been used as an HMAC secret).
func confusedToken(key []byte) string {
	enc := base64.RawURLEncoding
	head := enc.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`))
	body := enc.EncodeToString([]byte(`{"mercure":{"publish":["*"]}}`))
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(head + "." + body))
	return head + "." + body + "." + enc.EncodeToString(mac.Sum(nil))
}

func TestVerify(t *testing.T) {
	now := time.Now()
	sign := func(c auth.Claims, ttl time.Duration) string {
		s, err := auth.Sign(testKey, c, ttl)
		if err != nil {
			t.Fatalf("Sign: %v", err)
		}
		return s
	}
	valid := auth.Claims{
		Publish:   []string{"https://example.com/books/{id}"},
		Subscribe: []string{"*"},
		Payload:   map[string]any{"user": "alice", "n": 1.0},
		Subject:   "alice",
	}
	noneToken := rawToken(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, jwt.MapClaims{"mercure": mercure})

	tests := []struct {
		name    string
		cfg     auth.Config
		token   string
		want    *auth.Claims // nil: an error is expected
		hasExp  bool         // the verified claims carry an exp
		wantErr error
	}{
		{name: "valid", token: sign(valid, time.Hour), want: &valid, hasExp: true},
		{name: "no exp", token: sign(auth.Claims{Publish: []string{"*"}}, 0), want: &auth.Claims{Publish: []string{"*"}}},
		{name: "missing mercure claim", token: rawToken(t, jwt.SigningMethodHS256, testKey, jwt.MapClaims{"sub": "bob"}), want: &auth.Claims{Subject: "bob"}},
		{name: "expired within leeway", token: sign(auth.Claims{Publish: []string{"a"}, ExpiresAt: now.Add(-5 * time.Second)}, 0), want: &auth.Claims{Publish: []string{"a"}}, hasExp: true},
		{name: "expired", token: sign(auth.Claims{ExpiresAt: now.Add(-2 * time.Minute)}, 0), wantErr: jwt.ErrTokenExpired},
		{name: "expired, no leeway", cfg: auth.Config{Leeway: -1}, token: sign(auth.Claims{ExpiresAt: now.Add(-2 * time.Second)}, 0), wantErr: jwt.ErrTokenExpired},
		{name: "not yet valid", token: rawToken(t, jwt.SigningMethodHS256, testKey, jwt.MapClaims{"nbf": now.Add(time.Hour).Unix()}), wantErr: jwt.ErrTokenNotValidYet},
		{name: "wrong key", token: rawToken(t, jwt.SigningMethodHS256, otherKey, jwt.MapClaims{"mercure": mercure}), wantErr: jwt.ErrTokenSignatureInvalid},
		{name: "alg none", token: noneToken, wantErr: auth.ErrInvalidToken},
		{name: "alg none, signature stripped", token: strings.TrimSuffix(noneToken, "."), wantErr: auth.ErrInvalidToken},
		{name: "RS256 header with HMAC signature", token: confusedToken(testKey), wantErr: auth.ErrInvalidToken},
		{name: "HS512 not in allowlist", cfg: auth.Config{Key: longKey}, token: rawToken(t, jwt.SigningMethodHS512, longKey, jwt.MapClaims{}), wantErr: auth.ErrInvalidToken},
		{name: "HS512 allowed", cfg: auth.Config{Key: longKey, Algorithms: []string{"HS256", "HS512"}}, token: rawToken(t, jwt.SigningMethodHS512, longKey, jwt.MapClaims{"mercure": map[string]any{"subscribe": []string{"x"}}}), want: &auth.Claims{Subscribe: []string{"x"}}},
		{name: "malformed", token: "not-a-jwt", wantErr: jwt.ErrTokenMalformed},
		{name: "malformed three parts", token: "a.b.c", wantErr: jwt.ErrTokenMalformed},
		{name: "mercure claim of wrong shape", token: rawToken(t, jwt.SigningMethodHS256, testKey, jwt.MapClaims{"mercure": map[string]any{"publish": "*"}}), wantErr: auth.ErrInvalidToken},
		{name: "mercure claim not an object", token: rawToken(t, jwt.SigningMethodHS256, testKey, jwt.MapClaims{"mercure": []string{"*"}}), wantErr: auth.ErrInvalidToken},
		{name: "required exp missing", cfg: auth.Config{RequireExpiry: true}, token: sign(auth.Claims{}, 0), wantErr: jwt.ErrTokenRequiredClaimMissing},
		{name: "required exp present", cfg: auth.Config{RequireExpiry: true}, token: sign(auth.Claims{Subject: "s"}, time.Minute), want: &auth.Claims{Subject: "s"}, hasExp: true},
		{name: "audience matches", cfg: auth.Config{Audience: "hub"}, token: rawToken(t, jwt.SigningMethodHS256, testKey, jwt.MapClaims{"aud": []string{"x", "hub"}}), want: &auth.Claims{}},
		{name: "audience differs", cfg: auth.Config{Audience: "hub"}, token: rawToken(t, jwt.SigningMethodHS256, testKey, jwt.MapClaims{"aud": "other"}), wantErr: jwt.ErrTokenInvalidAudience},
		{name: "empty", token: "", wantErr: auth.ErrNoToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			if cfg.Key == nil {
				cfg.Key = testKey
			}
			got, err := newVerifier(t, cfg).Verify(tt.token)
			if tt.want == nil {
				if err == nil || !errors.Is(err, tt.wantErr) {
					t.Fatalf("Verify(%q) = %+v, %v; want error %v", tt.token, got, err, tt.wantErr)
				}
				if tt.wantErr != auth.ErrNoToken && !errors.Is(err, auth.ErrInvalidToken) {
					t.Errorf("Verify(%q) error %v does not wrap ErrInvalidToken", tt.token, err)
				}
				if got != nil {
					t.Errorf("Verify(%q) claims = %+v, want nil", tt.token, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify(%q) error = %v, want nil", tt.token, err)
			}
			// Compare everything but ExpiresAt, checked separately.
			exp := got.ExpiresAt
			got.ExpiresAt = time.Time{}
			want := *tt.want
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("Verify(%q) = %+v, want %+v", tt.token, *got, want)
			}
			if exp.IsZero() == tt.hasExp {
				t.Errorf("Verify(%q).ExpiresAt = %v, want an exp: %v", tt.token, exp, tt.hasExp)
			}
		})
	}
}

func TestVerifyExpiresAt(t *testing.T) {
	v := newVerifier(t, auth.Config{Key: testKey})
	before := time.Now().Truncate(time.Second)
	tok, err := auth.Sign(testKey, auth.Claims{}, time.Hour)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	c, err := v.Verify(tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if lo, hi := before.Add(time.Hour), time.Now().Add(time.Hour); c.ExpiresAt.Before(lo) || c.ExpiresAt.After(hi) {
		t.Errorf("Verify(Sign(ttl=1h)).ExpiresAt = %v, want in [%v, %v]", c.ExpiresAt, lo, hi)
	}
}

func TestNewVerifierErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  auth.Config
	}{
		{"no key", auth.Config{}},
		{"short key", auth.Config{Key: []byte("secret")}},
		{"alg none", auth.Config{Key: testKey, Algorithms: []string{"none"}}},
		{"RS256 without key support", auth.Config{Key: testKey, Algorithms: []string{"RS256"}}},
		{"HS512 with 32-byte key", auth.Config{Key: testKey, Algorithms: []string{"HS512"}}},
	}
	for _, tt := range tests {
		if v, err := auth.NewVerifier(tt.cfg); err == nil {
			t.Errorf("%s: NewVerifier(%+v) = %v, nil; want an error", tt.name, tt.cfg, v)
		}
	}
}

func TestVerifierCopiesKey(t *testing.T) {
	key := append([]byte(nil), testKey...)
	v := newVerifier(t, auth.Config{Key: key})
	tok, err := auth.Sign(testKey, auth.Claims{}, time.Minute)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	key[0] ^= 0xff
	if _, err := v.Verify(tok); err != nil {
		t.Errorf("Verify after the caller changed its key slice: %v, want nil", err)
	}
}

func TestSignShortKey(t *testing.T) {
	if tok, err := auth.Sign([]byte("short"), auth.Claims{}, time.Minute); err == nil {
		t.Errorf("Sign(5-byte key) = %q, nil; want an error", tok)
	}
}

func TestTokenFromRequest(t *testing.T) {
	tests := []struct {
		name      string
		header    []string
		query     string
		cookie    string
		wantToken string
		wantSrc   auth.Source
	}{
		{name: "none", wantSrc: auth.SourceNone},
		{name: "header", header: []string{"Bearer h"}, wantToken: "h", wantSrc: auth.SourceHeader},
		{name: "header scheme case-insensitive", header: []string{"bearer  h "}, wantToken: "h", wantSrc: auth.SourceHeader},
		{name: "header beats query and cookie", header: []string{"Bearer h"}, query: "authorization=q", cookie: "c", wantToken: "h", wantSrc: auth.SourceHeader},
		{name: "basic header hides cookie", header: []string{"Basic dXNlcjpwYXNz"}, cookie: "c", wantToken: "", wantSrc: auth.SourceHeader},
		{name: "two headers", header: []string{"Bearer a", "Bearer b"}, wantToken: "", wantSrc: auth.SourceHeader},
		{name: "bearer without token", header: []string{"Bearer"}, wantToken: "", wantSrc: auth.SourceHeader},
		{name: "query authorization", query: "topic=x&authorization=q", cookie: "c", wantToken: "q", wantSrc: auth.SourceQuery},
		{name: "query access_token", query: "access_token=a", cookie: "c", wantToken: "a", wantSrc: auth.SourceQuery},
		{name: "authorization beats access_token", query: "access_token=a&authorization=q", wantToken: "q", wantSrc: auth.SourceQuery},
		{name: "empty query parameter hides cookie", query: "authorization=", cookie: "c", wantToken: "", wantSrc: auth.SourceQuery},
		{name: "cookie", query: "topic=x", cookie: "c", wantToken: "c", wantSrc: auth.SourceCookie},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/.well-known/mercure?"+tt.query, nil)
			for _, h := range tt.header {
				r.Header.Add("Authorization", h)
			}
			if tt.cookie != "" {
				r.AddCookie(&http.Cookie{Name: auth.CookieName, Value: tt.cookie})
			}
			tok, src := auth.TokenFromRequest(r)
			if tok != tt.wantToken || src != tt.wantSrc {
				t.Errorf("TokenFromRequest(header %q, query %q, cookie %q) = %q, %v; want %q, %v",
					tt.header, tt.query, tt.cookie, tok, src, tt.wantToken, tt.wantSrc)
			}
		})
	}
}

func TestAuthenticate(t *testing.T) {
	v := newVerifier(t, auth.Config{Key: testKey})
	good, err := auth.Sign(testKey, auth.Claims{Subscribe: []string{"s"}}, time.Minute)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	tests := []struct {
		name    string
		setup   func(r *http.Request)
		wantSrc auth.Source
		wantErr error
	}{
		{"no token", func(*http.Request) {}, auth.SourceNone, auth.ErrNoToken},
		{"header", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+good) }, auth.SourceHeader, nil},
		{"cookie", func(r *http.Request) { r.AddCookie(&http.Cookie{Name: auth.CookieName, Value: good}) }, auth.SourceCookie, nil},
		{"empty bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer ") }, auth.SourceHeader, auth.ErrInvalidToken},
		{"basic scheme", func(r *http.Request) { r.Header.Set("Authorization", "Basic eDp5") }, auth.SourceHeader, auth.ErrInvalidToken},
		{"bad cookie", func(r *http.Request) { r.AddCookie(&http.Cookie{Name: auth.CookieName, Value: "x.y.z"}) }, auth.SourceCookie, auth.ErrInvalidToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			tt.setup(r)
			c, src, err := v.Authenticate(r)
			if src != tt.wantSrc || !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("Authenticate() = %+v, %v, %v; want source %v, error %v", c, src, err, tt.wantSrc, tt.wantErr)
			}
			if err == nil && !reflect.DeepEqual(c.Subscribe, []string{"s"}) {
				t.Errorf("Authenticate().Subscribe = %q, want [s]", c.Subscribe)
			}
		})
	}
}

func TestVerifyConcurrent(t *testing.T) {
	v := newVerifier(t, auth.Config{Key: testKey})
	good, err := auth.Sign(testKey, auth.Claims{Publish: []string{"p"}}, time.Minute)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	bad := rawToken(t, jwt.SigningMethodHS256, otherKey, jwt.MapClaims{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if c, err := v.Verify(good); err != nil || len(c.Publish) != 1 {
					t.Errorf("Verify(good) = %+v, %v; want [p], nil", c, err)
					return
				}
				if _, err := v.Verify(bad); !errors.Is(err, auth.ErrInvalidToken) {
					t.Errorf("Verify(bad) error = %v, want ErrInvalidToken", err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkVerify(b *testing.B) {
	v, err := auth.NewVerifier(auth.Config{Key: testKey})
	if err != nil {
		b.Fatal(err)
	}
	tok, err := auth.Sign(testKey, auth.Claims{Publish: []string{"https://example.com/books/{id}"}, Subscribe: []string{"*"}}, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

// TestVerifyCacheHonoursExpiry checks that a token verified once (and so
// cached) is refused once it expires.
func TestVerifyCacheHonoursExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		key := []byte(strings.Repeat("k", 32))
		v, err := auth.NewVerifier(auth.Config{Key: key, Leeway: -1})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := auth.Sign(key, auth.Claims{Publish: []string{"*"}}, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		for range 2 { // the second call is served from the cache
			if _, err := v.Verify(tok); err != nil {
				t.Fatalf("Verify(fresh token) = %v, want nil", err)
			}
		}
		time.Sleep(3 * time.Second)
		if _, err := v.Verify(tok); !errors.Is(err, auth.ErrInvalidToken) {
			t.Fatalf("Verify(expired cached token) = %v, want ErrInvalidToken", err)
		}
	})
}
