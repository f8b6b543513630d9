package hub_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/herald-sse/herald/auth"
	"github.com/herald-sse/herald/broker"
	"github.com/herald-sse/herald/hub"
	"github.com/herald-sse/herald/store/memstore"
)

// publishSelectors are what the test publisher token authorizes.
var publishSelectors = []string{"https://example.com/books/{id}", "urn:topic:a", "urn:topic:b", "/.well-known/mercure/subscriptions/{+rest}", "https://example.com/.well-known/mercure/{+x}"}

func TestPublishRejected(t *testing.T) {
	tok := sign(t, pubKey, publishSelectors, nil)
	expired, err := auth.Sign(pubKey, auth.Claims{Publish: []string{"*"}, ExpiresAt: time.Now().Add(-time.Hour)}, 0)
	if err != nil {
		t.Fatalf("auth.Sign: %v", err)
	}
	const (
		bearer      = "Bearer"
		invalid     = `Bearer error="invalid_token"`
		scope       = `Bearer error="insufficient_scope"`
		okTopic     = "topic=urn:topic:a&"
		contentType = "application/x-www-form-urlencoded"
	)
	tests := []struct {
		name      string
		cfg       *hub.Config // nil: defaultConfig()
		body      string
		ctype     string // "" : form; "-": none
		setup     func(r *http.Request)
		token     string // "" : tok; "-": none
		code      int
		reason    string // "": only check that it is one line
		challenge string
	}{
		// Form validation.
		{name: "no topic", body: "data=x", code: 400, reason: `missing "topic" field`},
		{name: "topic only in query", body: "data=x", setup: func(r *http.Request) { r.URL.RawQuery = "topic=urn:topic:a" }, code: 400, reason: `missing "topic" field`},
		{name: "empty topic", body: "topic=", code: 400, reason: "empty topic"},
		{name: "second topic empty", body: "topic=urn:topic:a&topic=", code: 400, reason: "empty topic"},
		{name: "topic with control", body: "topic=a%01b", code: 400, reason: `topic "a\x01b" contains a control character`},
		{name: "topic with LF", body: "topic=a%0Ab", code: 400, reason: `topic "a\nb" contains a control character`},
		{name: "topic with DEL", body: "topic=a%7F", code: 400, reason: `topic "a\x7f" contains a control character`},
		{name: "topic with C1", body: "topic=a%C2%85", code: 400, reason: `topic "a\u0085" contains a control character`},
		{name: "topic not UTF-8", body: "topic=a%FF", code: 400, reason: `topic "a\xff" is not valid UTF-8`},
		{name: "id starts with #", body: okTopic + "id=%23frag", code: 400, reason: `"id" must not start with '#'`},
		{name: "id with LF", body: okTopic + "id=a%0Ab", code: 400, reason: `"id" must not contain CR, LF or NUL`},
		{name: "id with CR", body: okTopic + "id=a%0Db", code: 400, reason: `"id" must not contain CR, LF or NUL`},
		{name: "id with NUL", body: okTopic + "id=a%00b", code: 400, reason: `"id" must not contain CR, LF or NUL`},
		{name: "id not UTF-8", body: okTopic + "id=%FE", code: 400, reason: `"id" is not valid UTF-8`},
		{name: "id earliest", body: okTopic + "id=earliest", code: 400, reason: `"id" "earliest" is reserved for replay requests`},
		{name: "type with CR", body: okTopic + "type=a%0Db", code: 400, reason: `"type" must not contain CR or LF`},
		{name: "type with LF", body: okTopic + "type=a%0A", code: 400, reason: `"type" must not contain CR or LF`},
		{name: "retry letters", body: okTopic + "retry=12a", code: 400, reason: `"retry" must be ASCII digits (milliseconds)`},
		{name: "retry negative", body: okTopic + "retry=-1", code: 400, reason: `"retry" must be ASCII digits (milliseconds)`},
		{name: "retry fraction", body: okTopic + "retry=1.5", code: 400, reason: `"retry" must be ASCII digits (milliseconds)`},
		{name: "retry space", body: okTopic + "retry=+1", code: 400, reason: `"retry" must be ASCII digits (milliseconds)`},
		{name: "retry non-ASCII digit", body: okTopic + "retry=%D9%A1", code: 400, reason: `"retry" must be ASCII digits (milliseconds)`},
		{name: "retry overflow", body: okTopic + "retry=99999999999999999999", code: 400, reason: `"retry" is too large`},
		{name: "data not UTF-8", body: okTopic + "data=%C3%28", code: 400, reason: `"data" is not valid UTF-8`},
		{name: "two data", body: okTopic + "data=a&data=b", code: 400, reason: `field "data" given more than once`},
		{name: "two ids", body: okTopic + "id=a&id=b", code: 400, reason: `field "id" given more than once`},
		{name: "bad escape", body: "topic=%zz", code: 400, reason: `malformed form body: invalid URL escape "%zz"`},
		{name: "semicolon", body: "topic=a;b", code: 400},

		// Reserved namespace.
		{name: "reserved path", body: "topic=/.well-known/mercure/subscriptions/x", code: 403, reason: `topic "/.well-known/mercure/subscriptions/x" is in the hub's reserved /.well-known/mercure namespace`},
		{name: "reserved URL", body: "topic=https://example.com/.well-known/mercure/x", code: 403},
		{name: "reserved dot segments", body: "topic=/a/../.well-known/mercure/subscriptions/x", code: 403},
		{name: "reserved escaped", body: "topic=/.well-known/%256Dercure/subscriptions/x", code: 403},

		// Content type.
		{name: "JSON", ctype: "application/json", body: `{"topic":"a"}`, code: 415, reason: "Content-Type must be application/x-www-form-urlencoded"},
		{name: "no content type", ctype: "-", body: okTopic, code: 415, reason: "Content-Type must be application/x-www-form-urlencoded"},
		{name: "bad content type", ctype: "form;;", body: okTopic, code: 415, reason: "Content-Type must be application/x-www-form-urlencoded"},
		{name: "multipart", ctype: "multipart/form-data; boundary=x", body: "--x--", code: 415, reason: "multipart bodies are not supported: use application/x-www-form-urlencoded"},

		// Size.
		{name: "body too large", cfg: &hub.Config{PublisherKey: pubKey, MaxBodyBytes: 64}, body: okTopic + "data=" + strings.Repeat("x", 100), code: 413, reason: "request body larger than 64 bytes"},

		// Authentication and authorization.
		{name: "no token", token: "-", body: okTopic, code: 401, reason: "missing access token", challenge: bearer},
		{name: "garbage token", token: "garbage", body: okTopic, code: 401, challenge: invalid},
		{name: "expired token", token: expired, body: okTopic, code: 401, challenge: invalid},
		{name: "subscriber key", token: sign(t, subKey, []string{"*"}, nil), body: okTopic, code: 401, challenge: invalid},
		{name: "basic auth", token: "-", setup: func(r *http.Request) { r.SetBasicAuth("u", "p") }, body: okTopic, code: 401, reason: "invalid access token: empty or malformed Authorization header", challenge: invalid},
		{name: "topic not allowed", body: "topic=urn:other", code: 403, reason: `not authorized to publish to topic "urn:other"`, challenge: scope},
		{name: "one topic not allowed", body: "topic=https://example.com/books/1&topic=https://example.com/authors/1", code: 403, reason: `not authorized to publish to topic "https://example.com/authors/1"`, challenge: scope},
		{name: "no mercure claim", token: sign(t, pubKey, nil, []string{"*"}), body: okTopic, code: 403, challenge: scope},
		{name: "bad selector in token", token: sign(t, pubKey, []string{"https://example.com/{"}, nil), body: okTopic, code: 401, challenge: invalid},
		{name: "cross-site cookie", token: "-", setup: func(r *http.Request) {
			r.AddCookie(&http.Cookie{Name: auth.CookieName, Value: tok})
			r.Header.Set("Origin", "https://evil.example")
			r.Header.Set("Sec-Fetch-Site", "cross-site")
		}, body: okTopic, code: 403, reason: "cross-origin publish refused: origin not allowed"},
		{name: "cross-site cookie, old browser", token: "-", setup: func(r *http.Request) {
			r.AddCookie(&http.Cookie{Name: auth.CookieName, Value: tok})
			r.Header.Set("Origin", "https://evil.example")
		}, body: okTopic, code: 403, reason: "cross-origin publish refused: origin not allowed"},
		{name: "publishing disabled", cfg: &hub.Config{SubscriberKey: subKey}, token: "-", body: okTopic, code: 403, reason: "publishing is disabled: no publisher key is configured"},
		{name: "token with publishing disabled", cfg: &hub.Config{SubscriberKey: subKey}, token: sign(t, subKey, []string{"*"}, nil), body: okTopic, code: 401, reason: "invalid access token: no publisher key is configured", challenge: invalid},
		{name: "anonymous cross-site", cfg: &hub.Config{PublishAnonymous: true}, token: "-", setup: func(r *http.Request) {
			r.Header.Set("Origin", "https://evil.example")
			r.Header.Set("Sec-Fetch-Site", "cross-site")
		}, body: okTopic, code: 403},
		{name: "anonymous allowed, bad token", cfg: &hub.Config{PublisherKey: pubKey, PublishAnonymous: true}, token: "garbage", body: okTopic, code: 401, challenge: invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := defaultConfig()
			if tt.cfg != nil {
				cfg = *tt.cfg
			}
			e := newEnv(t, cfg)
			token := tt.token
			switch token {
			case "":
				token = tok
			case "-":
				token = ""
			}
			r := publishRequest(tt.body, token)
			switch tt.ctype {
			case "":
			case "-":
				r.Header.Del("Content-Type")
			default:
				r.Header.Set("Content-Type", tt.ctype)
			}
			if tt.setup != nil {
				tt.setup(r)
			}
			w := e.serve(r)
			checkError(t, "POST "+tt.body, w, tt.code, tt.reason, tt.challenge)
			if ups := e.updates(t); len(ups) != 0 {
				t.Errorf("POST %q appended %d updates, want none: %+v", tt.body, len(ups), ups)
			}
		})
	}
}

func TestPublish(t *testing.T) {
	const origin = "https://app.example"
	cfg := defaultConfig()
	cfg.CORSOrigins = []string{origin}
	tok := sign(t, pubKey, publishSelectors, nil)

	tests := []struct {
		name   string
		body   string
		setup  func(r *http.Request)
		ctype  string
		want   wantUpdate
		wantID string // "" : a generated urn:uuid id
	}{
		{
			name: "minimal",
			body: "topic=urn:topic:a",
			want: wantUpdate{Topics: []string{"urn:topic:a"}},
		},
		{
			name:   "every field",
			body:   "topic=https://example.com/books/1&topic=urn:topic:b&data=line1%0Aline2&id=book-1&type=book&retry=1500&private=",
			want:   wantUpdate{Topics: []string{"https://example.com/books/1", "urn:topic:b"}, Data: "line1\nline2", Type: "book", Retry: 1500 * time.Millisecond, Private: true},
			wantID: "book-1",
		},
		{
			name: "private with value, unknown fields ignored",
			body: "topic=urn:topic:a&private=off&extension=1&data=%E2%9C%93",
			want: wantUpdate{Topics: []string{"urn:topic:a"}, Data: "✓", Private: true},
		},
		{
			name:  "charset parameter, empty retry",
			body:  "topic=urn:topic:a&retry=",
			ctype: "application/x-www-form-urlencoded; charset=UTF-8",
			want:  wantUpdate{Topics: []string{"urn:topic:a"}},
		},
		{
			name: "relative topic named mercure",
			body: "topic=mercure",
			setup: func(r *http.Request) {
				r.Header.Set("Authorization", "Bearer "+sign(t, pubKey, []string{"*"}, nil))
			},
			want: wantUpdate{Topics: []string{"mercure"}},
		},
		{
			name: "same-origin cookie",
			body: "topic=urn:topic:a",
			setup: func(r *http.Request) {
				r.Header.Del("Authorization")
				r.AddCookie(&http.Cookie{Name: auth.CookieName, Value: tok})
				r.Header.Set("Sec-Fetch-Site", "same-origin")
			},
			want: wantUpdate{Topics: []string{"urn:topic:a"}},
		},
		{
			name: "cookie from allowed origin",
			body: "topic=urn:topic:a",
			setup: func(r *http.Request) {
				r.Header.Del("Authorization")
				r.AddCookie(&http.Cookie{Name: auth.CookieName, Value: tok})
				r.Header.Set("Origin", origin)
				r.Header.Set("Sec-Fetch-Site", "cross-site")
			},
			want: wantUpdate{Topics: []string{"urn:topic:a"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, cfg)
			r := publishRequest(tt.body, tok)
			if tt.ctype != "" {
				r.Header.Set("Content-Type", tt.ctype)
			}
			if tt.setup != nil {
				tt.setup(r)
			}
			w := e.serve(r)
			if w.Code != http.StatusOK {
				t.Fatalf("POST %q = %d %q, want 200", tt.body, w.Code, w.Body.String())
			}
			if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
				t.Errorf("POST %q: Content-Type = %q, want text/plain", tt.body, ct)
			}
			// A publisher-chosen id is echoed: browsers must not sniff it
			// as HTML.
			if got := w.Header().Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("POST %q: X-Content-Type-Options = %q, want nosniff", tt.body, got)
			}
			id := w.Body.String()
			switch {
			case tt.wantID != "" && id != tt.wantID:
				t.Errorf("POST %q: body = %q, want id %q", tt.body, id, tt.wantID)
			case tt.wantID == "" && !strings.HasPrefix(id, "urn:uuid:"):
				t.Errorf("POST %q: body = %q, want a generated urn:uuid: id", tt.body, id)
			}
			ups := e.updates(t)
			if len(ups) != 1 {
				t.Fatalf("POST %q: store holds %d updates, want 1", tt.body, len(ups))
			}
			u := ups[0]
			got := wantUpdate{Topics: u.Topics, Data: u.Data, Type: u.Type, Retry: u.Retry, Private: u.Private}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("POST %q stored %+v, want %+v", tt.body, got, tt.want)
			}
			if u.ID != id {
				t.Errorf("POST %q: stored id %q, answered %q", tt.body, u.ID, id)
			}
		})
	}
}

// wantUpdate is the part of a stored update that publishing decides.
type wantUpdate struct {
	Topics  []string
	Data    string
	Type    string
	Retry   time.Duration
	Private bool
}

func TestPublishDuplicateID(t *testing.T) {
	e := newEnv(t, defaultConfig())
	tok := sign(t, pubKey, []string{"*"}, nil)
	if w := e.serve(publishRequest("topic=a&id=x&data=first", tok)); w.Code != http.StatusOK || w.Body.String() != "x" {
		t.Fatalf("first POST id=x = %d %q, want 200 \"x\"", w.Code, w.Body.String())
	}
	w := e.serve(publishRequest("topic=b&id=x&data=second", tok))
	checkError(t, "second POST id=x", w, http.StatusConflict, `update id "x" already exists`, "")
	if ups := e.updates(t); len(ups) != 1 || ups[0].Data != "first" {
		t.Errorf("store after duplicate = %+v, want only the first update", ups)
	}
}

func TestPublishAnonymous(t *testing.T) {
	e := newEnv(t, hub.Config{PublishAnonymous: true})
	w := e.serve(publishRequest("topic=a&private=on", ""))
	if w.Code != http.StatusOK {
		t.Fatalf("anonymous POST = %d %q, want 200", w.Code, w.Body.String())
	}
	if ups := e.updates(t); len(ups) != 1 || ups[0].ID != w.Body.String() || !ups[0].Private {
		t.Errorf("store after anonymous POST = %+v, want one private update with id %q", ups, w.Body.String())
	}
}

func TestPublishBodyLimitExact(t *testing.T) {
	body := "topic=a&data=" + strings.Repeat("x", 50)
	tok := sign(t, pubKey, []string{"*"}, nil)
	for _, tt := range []struct {
		limit int64
		code  int
	}{
		{int64(len(body)), http.StatusOK},
		{int64(len(body)) - 1, http.StatusRequestEntityTooLarge},
	} {
		e := newEnv(t, hub.Config{PublisherKey: pubKey, MaxBodyBytes: tt.limit})
		w := e.serve(publishRequest(body, tok))
		if w.Code != tt.code {
			t.Errorf("POST %d-byte body with limit %d = %d %q, want %d", len(body), tt.limit, w.Code, w.Body.String(), tt.code)
		}
	}
}

// TestPublishDefaultBodyLimit checks the 1 MiB default without building a
// large form in every test.
func TestPublishDefaultBodyLimit(t *testing.T) {
	e := newEnv(t, defaultConfig())
	tok := sign(t, pubKey, []string{"*"}, nil)
	prefix := "topic=a&data="
	body := prefix + strings.Repeat("x", hub.DefaultMaxBodyBytes-len(prefix)+1)
	w := httptest.NewRecorder()
	e.hub.ServeHTTP(w, publishRequest(body, tok))
	checkError(t, "POST 1 MiB + 1", w, http.StatusRequestEntityTooLarge, "request body larger than 1048576 bytes", "")
	if w := e.serve(publishRequest(body[:len(body)-1], tok)); w.Code != http.StatusOK {
		t.Errorf("POST 1 MiB = %d %q, want 200", w.Code, w.Body.String())
	}
}

func BenchmarkPublish(b *testing.B) {
	st := memstore.New(memstore.Config{MaxLen: 1024})
	defer st.Close()
	br, err := broker.New(st, broker.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := br.Shutdown(context.Background()); err != nil {
			b.Error(err)
		}
	}()
	h, err := hub.New(br, hub.Config{PublisherKey: pubKey})
	if err != nil {
		b.Fatal(err)
	}
	tok, err := auth.Sign(pubKey, auth.Claims{Publish: []string{"https://example.com/books/{id}"}}, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	const body = "topic=https://example.com/books/1&data=%7B%22title%22%3A%22Dune%22%7D"
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, publishRequest(body, tok))
		if w.Code != http.StatusOK {
			b.Fatalf("POST = %d %q", w.Code, w.Body.String())
		}
	}
}
