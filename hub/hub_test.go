package hub_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/herald-sse/herald/auth"
	"github.com/herald-sse/herald/broker"
	"github.com/herald-sse/herald/hub"
	"github.com/herald-sse/herald/store"
	"github.com/herald-sse/herald/store/memstore"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var (
	pubKey = []byte("publisher-secret-publisher-secret-0")
	subKey = []byte("subscriber-secret-subscriber-secret")
)

// defaultConfig is the hub configuration most tests use.
func defaultConfig() hub.Config {
	return hub.Config{PublisherKey: pubKey, SubscriberKey: subKey}
}

// env is a hub over a broker over a memory store.
type env struct {
	hub *hub.Hub
	b   *broker.Broker
	st  store.Store
}

func newEnv(t testing.TB, cfg hub.Config) *env {
	t.Helper()
	st := memstore.New(memstore.Config{})
	return newEnvOn(t, cfg, st, st)
}

// newEnvOn is newEnv over st, a store that wraps (or is) mem; e.st is mem.
func newEnvOn(t testing.TB, cfg hub.Config, st store.Store, mem *memstore.Store) *env {
	t.Helper()
	b, err := broker.New(st, broker.Config{})
	if err != nil {
		t.Fatalf("broker.New: %v", err)
	}
	h, err := hub.New(b, cfg)
	if err != nil {
		t.Fatalf("hub.New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := b.Shutdown(ctx); err != nil {
			t.Errorf("broker Shutdown: %v", err)
		}
		if err := mem.Close(); err != nil {
			t.Errorf("store Close: %v", err)
		}
	})
	return &env{hub: h, b: b, st: mem}
}

// updates returns every update in the log.
func (e *env) updates(t *testing.T) []store.Update {
	t.Helper()
	ups, err := e.st.Read(context.Background(), 0, 1000)
	if err != nil {
		t.Fatalf("store Read: %v", err)
	}
	return ups
}

// serve runs one request through the hub.
func (e *env) serve(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	e.hub.ServeHTTP(w, r)
	return w
}

// sign mints a token with the given key and mercure selectors.
func sign(t *testing.T, key []byte, publish, subscribe []string) string {
	t.Helper()
	tok, err := auth.Sign(key, auth.Claims{Publish: publish, Subscribe: subscribe}, time.Hour)
	if err != nil {
		t.Fatalf("auth.Sign: %v", err)
	}
	return tok
}

// publishRequest builds a form POST to the Mercure endpoint.
func publishRequest(body, token string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, hub.Path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	return r
}

// checkError checks that w is an error answer: the status, a plain text
// one-line body equal to reason, and the WWW-Authenticate challenge.
func checkError(t *testing.T, call string, w *httptest.ResponseRecorder, code int, reason, challenge string) {
	t.Helper()
	if w.Code != code {
		t.Errorf("%s: status = %d, want %d (body %q)", call, w.Code, code, w.Body.String())
	}
	if ct := w.Header().Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Errorf("%s: Content-Type = %q, want text/plain; charset=utf-8", call, ct)
	}
	body := w.Body.String()
	if strings.Count(body, "\n") != 1 || !strings.HasSuffix(body, "\n") || strings.Contains(body, "\r") {
		t.Errorf("%s: body = %q, want exactly one line", call, body)
	}
	if reason != "" && body != reason+"\n" {
		t.Errorf("%s: body = %q, want %q", call, body, reason+"\n")
	}
	if got := w.Header().Get("WWW-Authenticate"); !challengeIs(got, challenge) {
		t.Errorf("%s: WWW-Authenticate = %q, want %q", call, got, challenge)
	}
}

func TestNewErrors(t *testing.T) {
	st := memstore.New(memstore.Config{})
	defer st.Close()
	b, err := broker.New(st, broker.Config{})
	if err != nil {
		t.Fatalf("broker.New: %v", err)
	}
	defer func() {
		if err := b.Shutdown(context.Background()); err != nil {
			t.Errorf("broker Shutdown: %v", err)
		}
	}()

	if h, err := hub.New(nil, hub.Config{}); err == nil {
		t.Errorf("New(nil broker) = %v, nil; want an error", h)
	}
	tests := []struct {
		name string
		cfg  hub.Config
	}{
		{"short publisher key", hub.Config{PublisherKey: []byte("secret")}},
		{"short subscriber key", hub.Config{PublisherKey: pubKey, SubscriberKey: []byte("secret")}},
		{"negative body limit", hub.Config{MaxBodyBytes: -1}},
		{"token required without key", hub.Config{RequireSubscriberToken: true}},
		{"CORS wildcard", hub.Config{CORSOrigins: []string{"*"}}},
		{"CORS null", hub.Config{CORSOrigins: []string{"null"}}},
		{"CORS with path", hub.Config{CORSOrigins: []string{"https://app.example/path"}}},
		{"CORS with trailing slash", hub.Config{CORSOrigins: []string{"https://app.example/"}}},
		{"CORS without scheme", hub.Config{CORSOrigins: []string{"app.example"}}},
		{"CORS other scheme", hub.Config{CORSOrigins: []string{"ftp://app.example"}}},
	}
	for _, tt := range tests {
		if h, err := hub.New(b, tt.cfg); err == nil {
			t.Errorf("%s: New(%+v) = %v, nil; want an error", tt.name, tt.cfg, h)
		}
	}
	for _, cfg := range []hub.Config{
		{},
		{SubscriberKey: subKey, RequireSubscriberToken: true},
		{PublisherKey: pubKey, RequireSubscriberToken: true},
		{CORSOrigins: []string{"https://app.example", "http://localhost:3000"}},
	} {
		if _, err := hub.New(b, cfg); err != nil {
			t.Errorf("New(%+v) = %v, want nil", cfg, err)
		}
	}
}

func TestRouting(t *testing.T) {
	e := newEnv(t, defaultConfig())
	tests := []struct {
		method, path string
		code         int
		body, allow  string
	}{
		{http.MethodGet, hub.HealthPath, http.StatusOK, "ok", ""},
		{http.MethodHead, hub.HealthPath, http.StatusOK, "", ""},
		{http.MethodPost, hub.HealthPath, http.StatusMethodNotAllowed, "method POST not allowed\n", "GET, HEAD"},
		{http.MethodPut, hub.Path, http.StatusMethodNotAllowed, "method PUT not allowed\n", "GET, HEAD, POST, OPTIONS"},
		{http.MethodDelete, hub.Path, http.StatusMethodNotAllowed, "method DELETE not allowed\n", "GET, HEAD, POST, OPTIONS"},
		{http.MethodGet, "/", http.StatusNotFound, "not found\n", ""},
		{http.MethodGet, hub.Path + "/", http.StatusNotFound, "not found\n", ""},
		{http.MethodGet, "/metrics", http.StatusNotFound, "not found\n", ""},
	}
	for _, tt := range tests {
		w := e.serve(httptest.NewRequest(tt.method, tt.path, nil))
		call := tt.method + " " + tt.path
		if w.Code != tt.code || w.Body.String() != tt.body {
			t.Errorf("%s = %d %q, want %d %q", call, w.Code, w.Body.String(), tt.code, tt.body)
		}
		if got := w.Header().Get("Allow"); got != tt.allow {
			t.Errorf("%s: Allow = %q, want %q", call, got, tt.allow)
		}
		if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
			t.Errorf("%s: Content-Type = %q, want text/plain", call, ct)
		}
	}
}

func TestCORS(t *testing.T) {
	const allowed, other = "https://app.example", "https://evil.example"
	cfg := defaultConfig()
	cfg.CORSOrigins = []string{"https://APP.example"}
	e := newEnv(t, cfg)
	tok := sign(t, pubKey, []string{"*"}, nil)

	t.Run("actual request", func(t *testing.T) {
		for _, tt := range []struct {
			origin, wantACAO, wantCreds string
		}{
			{allowed, allowed, "true"},
			{other, "", ""},
			{"", "", ""},
			{"null", "", ""},
		} {
			// A request that fails validation still carries the CORS
			// headers so the page can read the reason.
			r := publishRequest("data=x", tok)
			if tt.origin != "" {
				r.Header.Set("Origin", tt.origin)
			}
			w := e.serve(r)
			if got := w.Header().Get("Access-Control-Allow-Origin"); got != tt.wantACAO {
				t.Errorf("POST from %q: Access-Control-Allow-Origin = %q, want %q", tt.origin, got, tt.wantACAO)
			}
			if got := w.Header().Get("Access-Control-Allow-Credentials"); got != tt.wantCreds {
				t.Errorf("POST from %q: Access-Control-Allow-Credentials = %q, want %q", tt.origin, got, tt.wantCreds)
			}
			if got := w.Header().Values("Vary"); !slices.Contains(got, "Origin") {
				t.Errorf("POST from %q: Vary = %q, want Origin", tt.origin, got)
			}
		}
		// Subscribe errors too.
		r := httptest.NewRequest(http.MethodGet, hub.Path, nil)
		r.Header.Set("Origin", allowed)
		w := e.serve(r)
		checkError(t, "GET without topic", w, http.StatusBadRequest, `missing "topic" or "match" query parameter`, "")
		if got := w.Header().Get("Access-Control-Allow-Origin"); got != allowed {
			t.Errorf("GET from %q: Access-Control-Allow-Origin = %q, want %q", allowed, got, allowed)
		}
	})

	t.Run("preflight", func(t *testing.T) {
		for _, tt := range []struct {
			name, origin, method, headers string
			code                          int
		}{
			{"publish", allowed, "POST", "authorization,content-type", http.StatusNoContent},
			{"subscribe", allowed, "GET", "last-event-id,cache-control", http.StatusNoContent},
			{"other origin", other, "POST", "authorization", http.StatusForbidden},
			{"other method", allowed, "PUT", "", http.StatusForbidden},
		} {
			r := httptest.NewRequest(http.MethodOptions, hub.Path, nil)
			r.Header.Set("Origin", tt.origin)
			r.Header.Set("Access-Control-Request-Method", tt.method)
			if tt.headers != "" {
				r.Header.Set("Access-Control-Request-Headers", tt.headers)
			}
			w := e.serve(r)
			if w.Code != tt.code {
				t.Errorf("%s: preflight status = %d, want %d (body %q)", tt.name, w.Code, tt.code, w.Body.String())
			}
			h := w.Header()
			if tt.code != http.StatusNoContent {
				if got := h.Get("Access-Control-Allow-Origin"); got != "" && tt.origin == other {
					t.Errorf("%s: refused preflight Access-Control-Allow-Origin = %q, want none", tt.name, got)
				}
				if got := h.Get("Access-Control-Allow-Methods"); got != "" {
					t.Errorf("%s: refused preflight Access-Control-Allow-Methods = %q, want none", tt.name, got)
				}
				checkError(t, tt.name+" preflight", w, tt.code, "", "")
				continue
			}
			if got := h.Get("Access-Control-Allow-Origin"); got != allowed {
				t.Errorf("%s: Access-Control-Allow-Origin = %q, want %q", tt.name, got, allowed)
			}
			if got := h.Get("Access-Control-Allow-Credentials"); got != "true" {
				t.Errorf("%s: Access-Control-Allow-Credentials = %q, want true", tt.name, got)
			}
			if got := h.Get("Access-Control-Allow-Methods"); !strings.Contains(got, tt.method) {
				t.Errorf("%s: Access-Control-Allow-Methods = %q, want it to contain %s", tt.name, got, tt.method)
			}
			allowHeaders := strings.ToLower(h.Get("Access-Control-Allow-Headers"))
			for _, want := range strings.Split(tt.headers, ",") {
				if !strings.Contains(allowHeaders, want) {
					t.Errorf("%s: Access-Control-Allow-Headers = %q, want it to contain %q", tt.name, allowHeaders, want)
				}
			}
		}
	})

	t.Run("plain OPTIONS", func(t *testing.T) {
		w := e.serve(httptest.NewRequest(http.MethodOptions, hub.Path, nil))
		if w.Code != http.StatusNoContent || w.Header().Get("Allow") != "GET, HEAD, POST, OPTIONS" {
			t.Errorf("OPTIONS = %d, Allow %q; want 204, Allow GET, HEAD, POST, OPTIONS", w.Code, w.Header().Get("Allow"))
		}
	})

	t.Run("no origins configured", func(t *testing.T) {
		e := newEnv(t, defaultConfig())
		r := httptest.NewRequest(http.MethodOptions, hub.Path, nil)
		r.Header.Set("Origin", allowed)
		r.Header.Set("Access-Control-Request-Method", "GET")
		w := e.serve(r)
		if w.Code != http.StatusForbidden || w.Header().Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("preflight without CORSOrigins = %d, ACAO %q; want 403 and none", w.Code, w.Header().Get("Access-Control-Allow-Origin"))
		}
		r = publishRequest("data=x", tok)
		r.Header.Set("Origin", allowed)
		if got := e.serve(r).Header().Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("POST without CORSOrigins: Access-Control-Allow-Origin = %q, want none", got)
		}
	})
}

// challengeIs reports whether the WWW-Authenticate value got is want,
// followed (for an error challenge) by an error_description.
func challengeIs(got, want string) bool {
	if got == want {
		return true
	}
	d, ok := strings.CutPrefix(got, want+`, error_description="`)
	return ok && strings.Contains(want, "error=") && strings.HasSuffix(d, `"`) && !strings.ContainsAny(d[:len(d)-1], "\"\\")
}
