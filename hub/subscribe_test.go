package hub_test

import (
	"bufio"
	"context"
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
	"github.com/herald-sse/herald/store/memstore"
)

func TestSubscribeRejected(t *testing.T) {
	const (
		invalid = `Bearer error="invalid_token"`
		books   = "topic=https://example.com/books/{id}"
	)
	required := defaultConfig()
	required.RequireSubscriberToken = true
	noKeys := hub.Config{}
	tests := []struct {
		name      string
		cfg       *hub.Config
		query     string
		token     string
		code      int
		reason    string
		challenge string
	}{
		{name: "no topic", query: "", code: 400, reason: `missing "topic" or "match" query parameter`},
		{name: "other parameters only", query: "lastEventID=x&other=y", code: 400, reason: `missing "topic" or "match" query parameter`},
		{name: "empty topic", query: "topic=", code: 400, reason: "empty topic"},
		{name: "too many topics", query: "topic=t" + strings.Repeat("&topic=t", hub.DefaultMaxTopics), code: 400, reason: "too many topic selectors: 101, at most 100"},
		{name: "topic with control", query: "topic=a%0Db", code: 400, reason: `topic "a\rb" contains a control character`},
		{name: "topic not UTF-8", query: "topic=%FF", code: 400, reason: `topic "\xff" is not valid UTF-8`},
		{name: "bad template", query: "topic=https://example.com/{id", code: 400},
		{name: "bad escape", query: "topic=%zz", code: 400, reason: `malformed query string: invalid URL escape "%zz"`},
		{name: "token required", cfg: &required, query: books, code: 401, reason: "missing access token", challenge: "Bearer"},
		{name: "garbage token", query: books, token: "garbage", code: 401, challenge: invalid},
		{name: "publisher key", query: books, token: sign(t, pubKey, nil, []string{"*"}), code: 401, challenge: invalid},
		{name: "bad subscribe selector", query: books, token: sign(t, subKey, nil, []string{""}), code: 401, challenge: invalid},
		{name: "token without keys", cfg: &noKeys, query: books, token: sign(t, subKey, nil, []string{"*"}), code: 401, reason: "invalid access token: no subscriber key is configured", challenge: invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := defaultConfig()
			if tt.cfg != nil {
				cfg = *tt.cfg
			}
			e := newEnv(t, cfg)
			r := httptest.NewRequest(http.MethodGet, hub.Path+"?"+tt.query, nil)
			if tt.token != "" {
				r.Header.Set("Authorization", "Bearer "+tt.token)
			}
			checkError(t, "GET ?"+tt.query, e.serve(r), tt.code, tt.reason, tt.challenge)
		})
	}
}

// server is a hub behind a real HTTP server, with a client of its own.
type server struct {
	*env
	srv    *httptest.Server
	client *http.Client
}

func newServer(t *testing.T, cfg hub.Config) *server {
	t.Helper()
	st := memstore.New(memstore.Config{})
	b, err := broker.New(st, broker.Config{})
	if err != nil {
		t.Fatalf("broker.New: %v", err)
	}
	h, err := hub.New(b, cfg)
	if err != nil {
		t.Fatalf("hub.New: %v", err)
	}
	srv := httptest.NewServer(h)
	tr := &http.Transport{}
	s := &server{env: &env{hub: h, b: b, st: st}, srv: srv, client: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
	t.Cleanup(func() {
		// End the streams first: Close waits for active handlers.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := b.Shutdown(ctx); err != nil {
			t.Errorf("broker Shutdown: %v", err)
		}
		srv.Close()
		tr.CloseIdleConnections()
		if err := st.Close(); err != nil {
			t.Errorf("store Close: %v", err)
		}
	})
	return s
}

// publish posts an update with a token allowed to publish anywhere and
// returns its id.
func (s *server) publish(t *testing.T, form url.Values) string {
	t.Helper()
	r, err := http.NewRequest(http.MethodPost, s.srv.URL+hub.Path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatalf("NewRequest: %v", err)
	}
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Authorization", "Bearer "+sign(t, pubKey, []string{"*"}, nil))
	resp, err := s.client.Do(r)
	if err != nil {
		t.Fatalf("POST %v: %v", form, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %v = %d %q, %v; want 200", form, resp.StatusCode, body, err)
	}
	return string(body)
}

// stream is an open subscription.
type stream struct {
	resp *http.Response
	br   *bufio.Reader
}

// subscribe opens a subscription and checks that it started.
func (s *server) subscribe(t *testing.T, query string, setup func(r *http.Request)) *stream {
	t.Helper()
	r, err := http.NewRequest(http.MethodGet, s.srv.URL+hub.Path+"?"+query, nil)
	if err != nil {
		t.Fatalf("NewRequest: %v", err)
	}
	if setup != nil {
		setup(r)
	}
	resp, err := s.client.Do(r)
	if err != nil {
		t.Fatalf("GET ?%s: %v", query, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET ?%s = %d %q, want 200", query, resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("GET ?%s: Content-Type = %q, want text/event-stream", query, ct)
	}
	return &stream{resp: resp, br: bufio.NewReader(resp.Body)}
}

// event is the part of an SSE event the tests look at.
type event struct {
	ID, Type, Data string
}

// next returns the next event with data, skipping comments (heartbeats) and
// retry-only blocks. The client timeout bounds the wait.
func (st *stream) next(t *testing.T) event {
	t.Helper()
	var ev event
	var data []string
	for {
		line, err := st.br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading stream: %v (partial line %q)", err, line)
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line == "" {
			if data != nil {
				ev.Data = strings.Join(data, "\n")
				return ev
			}
			ev = event{}
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			ev.ID = value
		case "event":
			ev.Type = value
		case "data":
			data = append(data, value)
		}
	}
}

func TestSubscribePrivate(t *testing.T) {
	s := newServer(t, defaultConfig())
	const topic = "https://example.com/books/{id}"
	q := url.Values{"topic": {topic}}.Encode()
	anon := s.subscribe(t, q, nil)
	authed := s.subscribe(t, q, func(r *http.Request) {
		r.Header.Set("Authorization", "Bearer "+sign(t, subKey, nil, []string{"https://example.com/books/{id}"}))
	})
	cookie := s.subscribe(t, q, func(r *http.Request) {
		r.AddCookie(&http.Cookie{Name: auth.CookieName, Value: sign(t, subKey, nil, []string{"*"})})
	})
	other := s.subscribe(t, q, func(r *http.Request) {
		r.Header.Set("Authorization", "Bearer "+sign(t, subKey, nil, []string{"https://example.com/authors/{id}"}))
	})

	private := s.publish(t, url.Values{"topic": {"https://example.com/books/1"}, "data": {"secret"}, "private": {"on"}})
	s.publish(t, url.Values{"topic": {"https://example.com/authors/1"}, "data": {"unrelated"}})
	public := s.publish(t, url.Values{"topic": {"https://example.com/books/2"}, "data": {"line1\nline2"}, "type": {"book"}})

	wantPrivate := event{ID: private, Data: "secret"}
	wantPublic := event{ID: public, Type: "book", Data: "line1\nline2"}
	for _, tt := range []struct {
		name string
		st   *stream
		want []event
	}{
		{"anonymous", anon, []event{wantPublic}},
		{"authorized", authed, []event{wantPrivate, wantPublic}},
		{"cookie", cookie, []event{wantPrivate, wantPublic}},
		{"authorized for other topics", other, []event{wantPublic}},
	} {
		for i, want := range tt.want {
			if got := tt.st.next(t); got != want {
				t.Errorf("%s subscriber: event %d = %+v, want %+v", tt.name, i, got, want)
			}
		}
	}
}

func TestSubscribeRequireToken(t *testing.T) {
	cfg := defaultConfig()
	cfg.RequireSubscriberToken = true
	s := newServer(t, cfg)
	// A valid token without a subscribe claim may subscribe to public
	// updates.
	st := s.subscribe(t, "topic=*", func(r *http.Request) {
		r.Header.Set("Authorization", "Bearer "+sign(t, subKey, nil, nil))
	})
	s.publish(t, url.Values{"topic": {"a"}, "data": {"private"}, "private": {""}})
	id := s.publish(t, url.Values{"topic": {"b"}, "data": {"public"}})
	if got, want := st.next(t), (event{ID: id, Data: "public"}); got != want {
		t.Errorf("first event = %+v, want %+v", got, want)
	}
}

func TestSubscribeReplay(t *testing.T) {
	s := newServer(t, defaultConfig())
	ids := make([]string, 3)
	for i := range ids {
		ids[i] = s.publish(t, url.Values{"topic": {"urn:t"}, "data": {string(rune('a' + i))}})
	}
	tests := []struct {
		name      string
		query     string
		header    string
		wantFirst int    // index in ids of the first replayed event
		wantLast  string // the Last-Event-ID response header
	}{
		{name: "header", query: "topic=urn:t", header: ids[0], wantFirst: 1, wantLast: ids[0]},
		{name: "query", query: "topic=urn:t&lastEventID=" + url.QueryEscape(ids[1]), wantFirst: 2, wantLast: ids[1]},
		{name: "header wins", query: "topic=urn:t&lastEventID=" + url.QueryEscape(ids[0]), header: ids[1], wantFirst: 2, wantLast: ids[1]},
		{name: "earliest", query: "topic=urn:t&lastEventID=earliest", wantFirst: 0, wantLast: "earliest"},
		{name: "unknown id", query: "topic=urn:t", header: "nope", wantFirst: 0, wantLast: "earliest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := s.subscribe(t, tt.query, func(r *http.Request) {
				if tt.header != "" {
					r.Header.Set("Last-Event-ID", tt.header)
				}
			})
			if got := st.resp.Header.Get("Last-Event-ID"); got != tt.wantLast {
				t.Errorf("GET ?%s (Last-Event-ID %q): response Last-Event-ID = %q, want %q", tt.query, tt.header, got, tt.wantLast)
			}
			for i := tt.wantFirst; i < len(ids); i++ {
				if got := st.next(t); got.ID != ids[i] {
					t.Errorf("GET ?%s (Last-Event-ID %q): replayed %+v, want id %q", tt.query, tt.header, got, ids[i])
				}
			}
		})
	}
}

func TestSubscribeCORS(t *testing.T) {
	const origin = "https://app.example"
	cfg := defaultConfig()
	cfg.CORSOrigins = []string{origin}
	s := newServer(t, cfg)
	st := s.subscribe(t, "topic=urn:t", func(r *http.Request) { r.Header.Set("Origin", origin) })
	h := st.resp.Header
	if h.Get("Access-Control-Allow-Origin") != origin || h.Get("Access-Control-Allow-Credentials") != "true" {
		t.Errorf("GET from %s: Access-Control-Allow-Origin %q, -Credentials %q; want %s, true",
			origin, h.Get("Access-Control-Allow-Origin"), h.Get("Access-Control-Allow-Credentials"), origin)
	}
	id := s.publish(t, url.Values{"topic": {"urn:t"}, "data": {"x"}})
	if got := st.next(t); got.ID != id {
		t.Errorf("GET from %s: event %+v, want id %q", origin, got, id)
	}
}
