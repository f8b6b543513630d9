package hub_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/herald-sse/herald/broker"
	"github.com/herald-sse/herald/hub"
	"github.com/herald-sse/herald/store"
)

// canceled returns r with a canceled context, so that a subscription the
// hub accepts ends at once.
func canceled(r *http.Request) *http.Request {
	ctx, cancel := context.WithCancel(r.Context())
	cancel()
	return r.WithContext(ctx)
}

// checkRefused checks that w is a one-line refusal with code whose reason
// contains want.
func checkRefused(t *testing.T, call string, w *httptest.ResponseRecorder, code int, want string) {
	t.Helper()
	body := w.Body.String()
	if w.Code != code || !strings.Contains(body, want) || strings.Count(body, "\n") != 1 {
		t.Errorf("%s = %d %q, want %d and one line containing %q", call, w.Code, body, code, want)
	}
}

func TestSubscribeSelectorLimits(t *testing.T) {
	vars := func(n int) string { return "https://example.com/{" + strings.Repeat("a,", n-1) + "a}" }
	tests := []struct {
		name   string
		topics []string
		reason string
	}{
		{"long selector", []string{"https://example.com/" + strings.Repeat("x", broker.MaxSelectorLen)}, "longer than 2048 bytes"},
		{"391 KB template", []string{"https://example.com/{+" + strings.Repeat("a", 391<<10) + "}"}, "longer than 2048 bytes"},
		{"1002 variables", []string{vars(1002)}, "more than 20 template variables (1002)"},
		{"21 variables", []string{vars(21)}, "more than 20 template variables (21)"},
		{"21 expressions", []string{strings.Repeat("{a}", 21)}, "more than 20 template expressions (21)"},
		{"budget", slices.Repeat([]string{vars(20)}, 3), "more than 50 template variables in all"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, defaultConfig())
			q := url.Values{"topic": tt.topics}.Encode()
			r := canceled(httptest.NewRequest(http.MethodGet, hub.Path+"?"+q, nil))
			checkRefused(t, "GET "+tt.name, e.serve(r), http.StatusBadRequest, tt.reason)
			if got := e.hub.Refusals(); !slices.Contains(got, hub.Count{Op: "subscribe", Reason: "selector_too_large", N: 1}) {
				t.Errorf("Refusals() = %v, want subscribe/selector_too_large 1", got)
			}
		})
	}
}

// TestSubscribeAuthorizesBeforeCompiling: a hub that requires a token
// refuses an anonymous or forged request before it compiles anything, so
// an invalid template is answered 401 (not 400) and a valid new one does
// not enter the template cache.
func TestSubscribeAuthorizesBeforeCompiling(t *testing.T) {
	cfg := defaultConfig()
	cfg.RequireSubscriberToken = true
	e := newEnv(t, cfg)
	for i, tt := range []struct{ topic, token string }{
		{"https://example.com/{unclosed", ""},
		{"https://example.com/never-compiled-1/{a,b,c}/{+d}", ""},
		{"https://example.com/never-compiled-2/{a,b,c}/{+d}", "forged.token.value"},
	} {
		before := broker.TemplateCacheBytes()
		r := canceled(httptest.NewRequest(http.MethodGet, hub.Path+"?topic="+url.QueryEscape(tt.topic), nil))
		if tt.token != "" {
			r.Header.Set("Authorization", "Bearer "+tt.token)
		}
		w := e.serve(r)
		if w.Code != http.StatusUnauthorized {
			t.Errorf("case %d: GET ?topic=%s = %d %q, want 401", i, tt.topic, w.Code, w.Body)
		}
		if after := broker.TemplateCacheBytes(); after != before {
			t.Errorf("case %d: template cache went from %d to %d bytes: the selector was compiled before authorization", i, before, after)
		}
	}
	want := []hub.Count{{Op: "subscribe", Reason: "malformed", N: 1}, {Op: "subscribe", Reason: "missing", N: 2}}
	if got := e.hub.AuthFailures(); !slices.Equal(got, want) {
		t.Errorf("AuthFailures() = %v, want %v", got, want)
	}
}

// TestLastEventIDNeverEchoedRaw: the broker echoes the requested replay id
// in the Last-Event-ID response header; an id with a control character (a
// foreign writer could have stored one) or over the length limit is
// refused with its reason instead.
func TestLastEventIDNeverEchoedRaw(t *testing.T) {
	e := newEnv(t, defaultConfig())
	bad := "id\x01with\x1bcontrols"
	if _, err := e.st.Append(context.Background(), store.Update{ID: bad, Topics: []string{"urn:t"}}); err != nil {
		t.Fatalf("Append(id %q): %v", bad, err)
	}
	long := strings.Repeat("x", store.MaxIDLen+1)
	tests := []struct {
		name, query, header, reason string
	}{
		{"query control", "lastEventID=" + url.QueryEscape(bad), "", "Last-Event-ID contains a control character"},
		{"legacy query control", "Last-Event-ID=" + url.QueryEscape(bad), "", "Last-Event-ID contains a control character"},
		{"header control", "", bad, "Last-Event-ID contains a control character"},
		{"C1 control", "lastEventID=%C2%85", "", "Last-Event-ID contains a control character"},
		{"too long", "lastEventID=" + long, "", "Last-Event-ID is longer than 1024 bytes (1025)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := canceled(httptest.NewRequest(http.MethodGet, hub.Path+"?topic=urn:t&"+tt.query, nil))
			if tt.header != "" {
				r.Header["Last-Event-Id"] = []string{tt.header}
			}
			w := e.serve(r)
			checkRefused(t, tt.name, w, http.StatusBadRequest, tt.reason)
			if got := w.Header().Get("Last-Event-ID"); got != "" {
				t.Errorf("%s: response Last-Event-ID = %q, want none", tt.name, got)
			}
		})
	}
}

func TestPublishIDRefused(t *testing.T) {
	tok := sign(t, pubKey, []string{"*"}, nil)
	for _, tt := range []struct{ id, reason string }{
		{strings.Repeat("x", store.MaxIDLen+1), `"id" is longer than 1024 bytes (1025)`},
		{"a\x01b", `"id" must not contain control characters`},
		{"a\x7fb", `"id" must not contain control characters`},
		{"a\u0085b", `"id" must not contain control characters`},
	} {
		e := newEnv(t, defaultConfig())
		w := e.serve(publishRequest(url.Values{"topic": {"urn:t"}, "id": {tt.id}}.Encode(), tok))
		checkRefused(t, fmt.Sprintf("publish id %.20q", tt.id), w, http.StatusBadRequest, tt.reason)
		if ups := e.updates(t); len(ups) != 0 {
			t.Errorf("publish id %.20q stored %d updates, want none", tt.id, len(ups))
		}
	}
}

func TestRefusalCounts(t *testing.T) {
	e := newEnv(t, defaultConfig())
	e.serve(publishRequest("topic=urn:t", ""))
	e.serve(publishRequest("topic=urn:t", "garbage"))
	e.serve(publishRequest("topic=urn:t", sign(t, pubKey, []string{"urn:other"}, nil)))
	e.serve(publishRequest("topic=urn:t&id=%01", sign(t, pubKey, []string{"*"}, nil)))
	e.serve(canceled(httptest.NewRequest(http.MethodGet, hub.Path+"?topic=a&topic=", nil)))
	wantAuth := []hub.Count{
		{Op: "publish", Reason: "insufficient_scope", N: 1},
		{Op: "publish", Reason: "malformed", N: 1},
		{Op: "publish", Reason: "missing", N: 1},
	}
	if got := e.hub.AuthFailures(); !slices.Equal(got, wantAuth) {
		t.Errorf("AuthFailures() = %v, want %v", got, wantAuth)
	}
	wantRefusals := []hub.Count{
		{Op: "publish", Reason: "invalid_update", N: 1},
		{Op: "subscribe", Reason: "invalid_selector", N: 1},
	}
	if got := e.hub.Refusals(); !slices.Equal(got, wantRefusals) {
		t.Errorf("Refusals() = %v, want %v", got, wantRefusals)
	}
}

// FuzzPublishForm posts arbitrary bodies to a hub that allows anonymous
// publishing: every answer is a success or a one-line refusal with a
// client error status, and a refused body stores nothing.
func FuzzPublishForm(f *testing.F) {
	for _, s := range []string{
		"topic=urn:t&data=hi", "topic=urn:t&id=x&type=t&retry=10&private=on", "topic=", "data=x",
		"topic=a&id=%0A", "topic=a&id=%01", "topic=a&retry=-1", "topic=a&retry=99999999999999999999",
		"topic=/.well-known/mercure/x", "topic=a&data=%FF", "topic=a&topic=b&id=a&id=b", "%zz", "topic=a;b",
	} {
		f.Add(s)
	}
	cfg := defaultConfig()
	cfg.PublishAnonymous = true
	e := newEnv(f, cfg)
	f.Fuzz(func(t *testing.T, body string) {
		last := func() int {
			seq, _, err := e.st.Last(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			return int(seq)
		}
		before := last()
		w := e.serve(publishRequest(body, ""))
		n := last() - before
		switch w.Code {
		case http.StatusOK:
			if n != 1 {
				t.Fatalf("POST %q = 200, stored %d updates, want 1", body, n)
			}
		case http.StatusBadRequest, http.StatusForbidden, http.StatusConflict, http.StatusRequestEntityTooLarge:
			if n != 0 {
				t.Fatalf("POST %q = %d, stored %d updates, want none", body, w.Code, n)
			}
			if b := w.Body.String(); strings.Count(b, "\n") != 1 || !strings.HasSuffix(b, "\n") || strings.Contains(b, "\r") {
				t.Fatalf("POST %q = %d %q, want a one-line reason", body, w.Code, b)
			}
		default:
			t.Fatalf("POST %q = %d %q, want 200 or a client error", body, w.Code, w.Body)
		}
	})
}

// FuzzSubscribeQuery subscribes with arbitrary query strings and
// Last-Event-ID headers: no panic, a refusal is one line, and no response
// header carries a control character.
func FuzzSubscribeQuery(f *testing.F) {
	for _, s := range []string{
		"topic=urn:t", "topic=https://example.com/{id}", "topic=*&lastEventID=earliest", "topic={" + strings.Repeat("a,", 1001) + "a}",
		"topic=%7B%2Bx%7D&topic=a", "topic=a&lastEventID=%01", "topic=", "%zz", "topic={a:0}", "topic={a*,b}",
	} {
		f.Add(s, "")
	}
	f.Add("topic=a", "id\x01")
	e := newEnv(f, defaultConfig())
	f.Fuzz(func(t *testing.T, query, last string) {
		r, err := http.NewRequest(http.MethodGet, "http://hub.example"+hub.Path, nil)
		if err != nil {
			t.Fatal(err)
		}
		r.URL.RawQuery = query
		if last != "" {
			r.Header["Last-Event-Id"] = []string{last}
		}
		w := e.serve(canceled(r))
		for k, vs := range w.Header() {
			for _, v := range vs {
				if strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
					t.Fatalf("GET ?%q: header %s = %q holds a control character", query, k, v)
				}
			}
		}
		if w.Code >= 400 {
			if b := w.Body.String(); strings.Count(b, "\n") != 1 || strings.Contains(b, "\r") {
				t.Fatalf("GET ?%q = %d %q, want a one-line reason", query, w.Code, b)
			}
		}
	})
}
