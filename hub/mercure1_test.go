package hub_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/herald-sse/herald/auth"
	"github.com/herald-sse/herald/broker"
	"github.com/herald-sse/herald/hub"
)

// signAT mints a Mercure 1.0 access token (typ at+jwt) with key.
func signAT(t *testing.T, key []byte, subject string, details ...auth.Detail) string {
	t.Helper()
	tok, err := auth.SignToken(key, auth.Claims{Subject: subject, Details: details}, auth.SignOptions{Style: auth.StyleAccessToken, TTL: time.Hour})
	if err != nil {
		t.Fatalf("auth.SignToken: %v", err)
	}
	return tok
}

func exact(m string) auth.TopicMatcher { return auth.TopicMatcher{Match: m, Type: auth.MatchExact} }
func pattern(m string) auth.TopicMatcher {
	return auth.TopicMatcher{Match: m, Type: auth.MatchURLPattern}
}

func TestSubscribe1Rejected(t *testing.T) {
	required := defaultConfig()
	required.RequireSubscriberToken = true
	tests := []struct {
		name, query string
		cfg         *hub.Config
		code        int
		reason      string
	}{
		{name: "unknown matcher type", query: "match_regex=a", code: 400, reason: `unknown matcher parameter "match_regex": use match, matchExact or matchURLPattern`},
		{name: "matcher type in wrong case", query: "matchurlpattern=a", code: 400, reason: `unknown matcher parameter "matchurlpattern": use match, matchExact or matchURLPattern`},
		{name: "reserved prefix in upper case", query: "MATCH=a", code: 400, reason: `unknown matcher parameter "MATCH": use match, matchExact or matchURLPattern`},
		{name: "unrelated match-prefixed name", query: "match=a&matches=b", code: 400, reason: `unknown matcher parameter "matches": use match, matchExact or matchURLPattern`},
		{name: "topic and match mixed", query: "topic=a&match=b", code: 400, reason: `"topic" (Mercure 0.x) and "match" parameters (Mercure 1.0) cannot be mixed in one request`},
		{name: "empty match", query: "match=", code: 400, reason: "match: empty topic"},
		{name: "control character", query: "matchURLPattern=a%01", code: 400, reason: `matchURLPattern: topic "a\x01" contains a control character`},
		{name: "C1 control", query: "match=a%C2%85", code: 400, reason: `match: topic "a\u0085" contains a control character`},
		{name: "invalid URL pattern", query: "matchURLPattern=https://example.com/(", code: 400},
		{name: "URL pattern too long", query: "matchURLPattern=/" + strings.Repeat("a", broker.MaxURLPatternLength), code: 400},
		{name: "too many matchers", query: "match=t" + strings.Repeat("&matchURLPattern=/t", hub.DefaultMaxTopics), code: 400, reason: "too many topic selectors: 101, at most 100"},
		{name: "HEAD: token required", cfg: &required, query: "match=a", code: 401, reason: "missing access token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := defaultConfig()
			if tt.cfg != nil {
				cfg = *tt.cfg
			}
			e := newEnv(t, cfg)
			method := http.MethodGet
			if strings.HasPrefix(tt.name, "HEAD") {
				method = http.MethodHead
			}
			w := e.serve(httptest.NewRequest(method, hub.Path+"?"+tt.query, nil))
			if method == http.MethodHead {
				if w.Code != tt.code {
					t.Errorf("HEAD ?%s = %d, want %d", tt.query, w.Code, tt.code)
				}
				return
			}
			checkError(t, "GET ?"+tt.query, w, tt.code, tt.reason, "")
		})
	}
}

func TestSubscribe1Matching(t *testing.T) {
	s := newServer(t, defaultConfig())
	q := url.Values{
		"match":            {"https://example.com/foo", "{literal}"},
		"matchURLPattern":  {"https://example.com/bar/:id"},
		"match_urlpattern": {"/books/:id"},
		"matchExact":       {"exact"},
	}
	st := s.subscribe(t, q.Encode(), nil)
	for _, tc := range []struct {
		topic string
		want  bool
	}{
		{"https://example.com/foo", true},
		{"https://example.com/foo/x", false},
		{"{literal}", true}, // Exact: '{' is no template
		{"literal", false},
		{"https://example.com/bar/7", true},
		{"https://example.com/bar/7/8", false},
		{"https://EXAMPLE.com/bar/8", true}, // hosts are case-insensitive
		{"https://example.com/BAR/8", false},
		{"/books/1", true}, // relative pattern, relative topic
		{"https://herald.invalid/.well-known/books/2", false},
		{"exact", true},
	} {
		// A matching marker after each topic: the next event read is the
		// topic's own only if it was delivered.
		s.publish(t, url.Values{"topic": {tc.topic}, "data": {tc.topic}})
		s.publish(t, url.Values{"topic": {"exact"}, "data": {"marker"}})
		ev := st.next(t)
		if got := ev.Data != "marker"; got != tc.want {
			t.Errorf("topic %q delivered = %v, want %v", tc.topic, got, tc.want)
		}
		if got := ev.Data == "marker"; !got {
			if m := st.next(t); m.Data != "marker" {
				t.Fatalf("after %q: next event %q, want the marker", tc.topic, m.Data)
			}
		}
	}
	// topic= with templates and * keeps working beside it.
	old := s.subscribe(t, "topic=https://example.com/bar/{id}&topic=*", nil)
	s.publish(t, url.Values{"topic": {"https://example.com/bar/9"}, "data": {"nine"}})
	if ev := old.next(t); ev.Data != "nine" {
		t.Errorf("0.x subscription got %q, want nine", ev.Data)
	}
}

func TestLastEventID1(t *testing.T) {
	s := newServer(t, defaultConfig())
	s.publish(t, url.Values{"topic": {"a"}, "id": {"one"}, "data": {"1"}})
	s.publish(t, url.Values{"topic": {"a"}, "id": {"two"}, "data": {"2"}})
	for _, tc := range []struct {
		name, query, header, wantHead, wantFirst string
	}{
		{"lastEventID", "match=a&lastEventID=one", "", "one", "2"},
		{"last_event_id", "match=a&last_event_id=one", "", "one", "2"},
		{"header wins", "match=a&last_event_id=two", "one", "one", "2"},
		{"unknown id", "match=a&last_event_id=nope", "", "earliest", "1"},
		{"earliest", "match=a&lastEventID=earliest", "", "earliest", "1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := s.subscribe(t, tc.query, func(r *http.Request) {
				if tc.header != "" {
					r.Header.Set("Last-Event-ID", tc.header)
				}
			})
			for _, name := range []string{"Last-Event-ID", "Mercure-Last-Event-ID"} {
				if got := st.resp.Header.Get(name); got != tc.wantHead {
					t.Errorf("GET ?%s: %s = %q, want %q", tc.query, name, got, tc.wantHead)
				}
			}
			if ev := st.next(t); ev.Data != tc.wantFirst {
				t.Errorf("GET ?%s: first event %q, want %q", tc.query, ev.Data, tc.wantFirst)
			}
		})
	}
}

func TestHeadSubscribe(t *testing.T) {
	s := newServer(t, defaultConfig())
	for _, tc := range []struct {
		query string
		code  int
	}{
		{"match=a", 200},
		{"topic=a", 200},
		{"matchFoo=a", 400},
		{"", 400},
	} {
		r, _ := http.NewRequest(http.MethodHead, s.srv.URL+hub.Path+"?"+tc.query, nil)
		resp, err := s.client.Do(r)
		if err != nil {
			t.Fatalf("HEAD ?%s: %v", tc.query, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || len(body) != 0 {
			t.Errorf("HEAD ?%s = %d with %d body bytes, want %d and none", tc.query, resp.StatusCode, len(body), tc.code)
		}
		if tc.code == 200 && resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Errorf("HEAD ?%s: Content-Type = %q, want text/event-stream", tc.query, resp.Header.Get("Content-Type"))
		}
	}
	if n := s.b.Stats().Subscribers; n != 0 {
		t.Errorf("after HEAD requests: %d subscribers, want 0 (HEAD opens no stream)", n)
	}
}

func TestPrivate1(t *testing.T) {
	s := newServer(t, defaultConfig())
	q := "matchURLPattern=" + url.QueryEscape("https://example.com/:kind/:id")
	books := signAT(t, subKey, "reader", auth.Detail{Subscribe: true, Topics: []auth.TopicMatcher{pattern("https://example.com/books/:id")}})
	nothing := signAT(t, subKey, "nobody")
	publishOnly := signAT(t, subKey, "writer", auth.Detail{Publish: true, Topics: []auth.TopicMatcher{exact("*")}})
	classic := sign(t, subKey, nil, []string{"https://example.com/books/{id}"})
	streams := map[string]*stream{
		"books":        s.subscribe(t, q, bearer(books)),
		"no details":   s.subscribe(t, q, bearer(nothing)),
		"publish only": s.subscribe(t, q, bearer(publishOnly)),
		"classic":      s.subscribe(t, q, bearer(classic)),
		"cookie":       s.subscribe(t, q, func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "__Secure-mercure_access_token", Value: books}) }),
		"query":        s.subscribe(t, q+"&access_token="+books, nil),
	}
	s.publish(t, url.Values{"topic": {"https://example.com/authors/1"}, "data": {"private author"}, "private": {"on"}})
	s.publish(t, url.Values{"topic": {"https://example.com/books/1"}, "data": {"private book"}, "private": {"on"}})
	s.publish(t, url.Values{"topic": {"https://example.com/books/2"}, "data": {"public"}})
	want := map[string]string{"books": "private book", "classic": "private book", "cookie": "private book", "query": "private book", "no details": "public", "publish only": "public"}
	for name, st := range streams {
		if ev := st.next(t); ev.Data != want[name] {
			t.Errorf("%s: first event %q, want %q", name, ev.Data, want[name])
		}
	}
}

func TestPublish1(t *testing.T) {
	cfg := defaultConfig()
	books := signAT(t, pubKey, "pub", auth.Detail{Publish: true, Topics: []auth.TopicMatcher{pattern("https://example.com/books/:id"), exact("{x}")}})
	tests := []struct {
		name, body, token string
		code              int
		challenge         string
	}{
		{"pattern allows", "topic=https://example.com/books/1", books, 200, ""},
		{"exact with brace", "topic={x}", books, 200, ""},
		{"outside the pattern", "topic=https://example.com/authors/1", books, 403, `Bearer error="insufficient_scope"`},
		{"one topic only", "topic=https://example.com/books/1&topic=https://example.com/books/2", books, 400, ""},
		{"no details grant nothing", "topic=a", signAT(t, pubKey, "pub"), 403, `Bearer error="insufficient_scope"`},
		{"subscribe detail does not publish", "topic=a", signAT(t, pubKey, "pub", auth.Detail{Subscribe: true, Topics: []auth.TopicMatcher{exact("*")}}), 403, `Bearer error="insufficient_scope"`},
		{"wildcard", "topic=anything", signAT(t, pubKey, "pub", auth.Detail{Publish: true, Topics: []auth.TopicMatcher{pattern("*")}}), 200, ""},
		{"signed with the subscriber key", "topic=a", signAT(t, subKey, "pub", auth.Detail{Publish: true, Topics: []auth.TopicMatcher{exact("*")}}), 401, `Bearer error="invalid_token"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, cfg)
			w := e.serve(publishRequest(tt.body, tt.token))
			if tt.code == 200 {
				if w.Code != 200 {
					t.Errorf("POST %s = %d %q, want 200", tt.body, w.Code, w.Body.String())
				}
				return
			}
			checkError(t, "POST "+tt.body, w, tt.code, "", tt.challenge)
		})
	}
}

// TestPublishRules covers the publish rules of both generations, and that
// nothing is stored when one refuses.
func TestPublishRules(t *testing.T) {
	tok := sign(t, pubKey, []string{"*"}, nil)
	tests := []struct {
		name, body, query string
		code              int
		reason, chal      string
	}{
		{name: "topic *", body: "topic=*", code: 400, reason: `topic "*" is the wildcard of subscribers: an update cannot be published to it`},
		{name: "one of the topics *", body: "topic=a&topic=*", code: 400},
		{name: "reserved namespace", body: "topic=/.well-known/mercure/subscriptions/x", code: 403},
		{name: "reserved namespace, absolute", body: "topic=https://other.example/.well-known/mercure", code: 403},
		{name: "reserved namespace, dot segments", body: "topic=/x/../.well-known/mercure/y", code: 403},
		{name: "id earliest", body: "topic=a&id=earliest", code: 400, reason: `"id" "earliest" is reserved for replay requests`},
		{name: "id starting with #", body: "topic=a&id=%23x", code: 400},
		{name: "type mercure", body: "topic=a&type=mercure", code: 400, reason: `"type" "mercure" is reserved for the hub's own events`},
		{name: "retry not digits", body: "topic=a&retry=1s", code: 400, reason: `"retry" must be ASCII digits (milliseconds)`},
		{name: "retry negative", body: "topic=a&retry=-1", code: 400},
		{name: "token in authorization query", body: "topic=a", query: "authorization=" + tok, code: 400, reason: `access token in the "authorization" query parameter refused for publishing: send it in the Authorization header`, chal: `Bearer error="invalid_request"`},
		{name: "token in access_token query", body: "topic=a", query: "access_token=" + tok, code: 400, chal: `Bearer error="invalid_request"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, defaultConfig())
			r := publishRequest(tt.body, tok)
			if tt.query != "" {
				r.Header.Del("Authorization")
				r.URL.RawQuery = tt.query
			}
			w := e.serve(r)
			checkError(t, "POST "+tt.body, w, tt.code, tt.reason, tt.chal)
			if strings.Contains(w.Header().Get("WWW-Authenticate")+w.Body.String(), tok) {
				t.Errorf("POST %s: the answer echoes the token", tt.body)
			}
			if n := len(e.updates(t)); n != 0 {
				t.Errorf("POST %s: %d updates stored, want 0", tt.body, n)
			}
		})
	}
}

func TestAllowReusedIDs(t *testing.T) {
	tok := sign(t, pubKey, []string{"*"}, nil)
	for _, allow := range []bool{false, true} {
		cfg := defaultConfig()
		cfg.AllowReusedIDs = allow
		e := newEnv(t, cfg)
		if w := e.serve(publishRequest("topic=a&id=x", tok)); w.Code != 200 || w.Body.String() != "x" {
			t.Fatalf("first POST id=x = %d %q, want 200 x", w.Code, w.Body.String())
		}
		w := e.serve(publishRequest("topic=a&id=x", tok))
		switch {
		case !allow && w.Code != http.StatusConflict:
			t.Errorf("default: reused id = %d, want 409", w.Code)
		case allow && (w.Code != 200 || w.Body.String() == "x" || w.Body.String() == ""):
			t.Errorf("AllowReusedIDs: reused id = %d %q, want 200 with a new id", w.Code, w.Body.String())
		}
	}
}

func TestChallengeDescription(t *testing.T) {
	e := newEnv(t, defaultConfig())
	wrongKey := []byte("another-secret-another-secret-12345")
	w := e.serve(publishRequest("topic=a", sign(t, wrongKey, []string{"*"}, nil)))
	got := w.Header().Get("WWW-Authenticate")
	if !strings.HasPrefix(got, `Bearer error="invalid_token", error_description="invalid access token: `) {
		t.Errorf("WWW-Authenticate = %q, want invalid_token with a description", got)
	}
	for _, secret := range [][]byte{pubKey, subKey, wrongKey} {
		if strings.Contains(got, string(secret)) || strings.Contains(w.Body.String(), string(secret)) {
			t.Errorf("the answer %q / %q names a key", got, w.Body.String())
		}
	}
}

func TestSubscriptionEvents1(t *testing.T) {
	s := newSubscriptionsServer(t, broker.Config{})
	watcher := signAT(t, subKey, "watcher", auth.Detail{Subscribe: true, Topics: []auth.TopicMatcher{pattern("/.well-known/mercure/subscriptions/:type/:match/:sub"), pattern("/.well-known/mercure/subscriptions/*")}, Payload: map[string]any{"role": "watcher"}})
	events := s.subscribe(t, "matchURLPattern="+url.QueryEscape("/.well-known/mercure/subscriptions/:type/:match/:sub"), bearer(watcher))
	first := events.next(t) // its own subscription's event
	var doc map[string]any
	if err := json.Unmarshal([]byte(first.Data), &doc); err != nil {
		t.Fatalf("event data %q: %v", first.Data, err)
	}
	wantID := "/.well-known/mercure/subscriptions/URLPattern/%2F.well-known%2Fmercure%2Fsubscriptions%2F%3Atype%2F%3Amatch%2F%3Asub/watcher"
	if doc["id"] != wantID || doc["matchType"] != "URLPattern" || doc["match"] != "/.well-known/mercure/subscriptions/:type/:match/:sub" ||
		doc["subscriber"] != "watcher" || doc["active"] != true || doc["@context"] != "https://mercure.rocks/" || doc["topic"] != nil {
		t.Errorf("subscription event = %s, want the Mercure 1.0 shape with id %s", first.Data, wantID)
	}
	if p, _ := doc["payload"].(map[string]any); p["role"] != "watcher" {
		t.Errorf("subscription event payload = %v, want the detail's payload", doc["payload"])
	}
	// A 1.0 Exact subscription and its event.
	s.subscribe(t, "match=https://example.com/a", bearer(signAT(t, subKey, "alice")))
	ev := events.next(t)
	if !strings.Contains(ev.Data, `"id":"/.well-known/mercure/subscriptions/Exact/https%3A%2F%2Fexample.com%2Fa/alice"`) || !strings.Contains(ev.Data, `"matchType":"Exact"`) {
		t.Errorf("Exact subscription event = %s", ev.Data)
	}
	// The API, 1.0 paths.
	for _, tc := range []struct {
		path string
		code int
		n    int
	}{
		{hub.SubscriptionsPath + "/Exact", 200, 1},
		{hub.SubscriptionsPath + "/Exact/https%3A%2F%2Fexample.com%2Fa", 200, 1},
		{hub.SubscriptionsPath + "/Exact/https%3A%2F%2Fexample.com%2Fa/alice", 200, -1},
		{hub.SubscriptionsPath + "/Exact/https%3A%2F%2Fexample.com%2Fa/bob", 404, 0},
		{hub.SubscriptionsPath + "/URLPattern", 200, 1},
	} {
		resp, body := s.get(t, tc.path, watcher)
		if resp.StatusCode != tc.code {
			t.Errorf("GET %s = %d %s, want %d", tc.path, resp.StatusCode, body, tc.code)
			continue
		}
		if tc.code != 200 {
			continue
		}
		var got struct {
			Type          string           `json:"type"`
			MatchType     string           `json:"matchType"`
			Subscriptions []map[string]any `json:"subscriptions"`
		}
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatalf("GET %s: %v", tc.path, err)
		}
		if tc.n < 0 {
			if got.Type != "Subscription" || got.MatchType != "Exact" {
				t.Errorf("GET %s = %s, want one Exact subscription", tc.path, body)
			}
			continue
		}
		if got.Type != "Subscriptions" || len(got.Subscriptions) != tc.n {
			t.Errorf("GET %s = %s, want %d subscriptions", tc.path, body, tc.n)
		}
	}
}
