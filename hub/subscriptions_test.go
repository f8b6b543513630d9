package hub_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/herald-sse/herald/auth"
	"github.com/herald-sse/herald/broker"
	"github.com/herald-sse/herald/hub"
	"github.com/herald-sse/herald/store/memstore"
)

// everySubscription selects every subscription event and API resource.
const everySubscription = hub.SubscriptionsPath + "{/topic}{/subscriber}"

// newSubscriptionsServer is newServer with Config.Subscriptions on and the
// broker's OnSubscription wired to the hub, as cmd/herald does.
func newSubscriptionsServer(t *testing.T, bcfg broker.Config) *server {
	t.Helper()
	cfg := defaultConfig()
	cfg.Subscriptions = true
	st := memstore.New(memstore.Config{})
	var h *hub.Hub // set before the server starts
	bcfg.OnSubscription = func(p broker.Presence) { h.OnSubscription(p) }
	b, err := broker.New(st, bcfg)
	if err != nil {
		t.Fatalf("broker.New: %v", err)
	}
	h, err = hub.New(b, cfg)
	if err != nil {
		t.Fatalf("hub.New: %v", err)
	}
	srv := httptest.NewServer(h)
	tr := &http.Transport{}
	s := &server{env: &env{hub: h, b: b, st: st}, srv: srv, client: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("hub Close: %v", err)
		}
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

// signSubscriber mints a subscriber token with a subject and a payload.
func signSubscriber(t *testing.T, subject string, payload any, subscribe ...string) string {
	t.Helper()
	tok, err := auth.Sign(subKey, auth.Claims{Subscribe: subscribe, Subject: subject, Payload: payload}, time.Hour)
	if err != nil {
		t.Fatalf("auth.Sign: %v", err)
	}
	return tok
}

func bearer(tok string) func(r *http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

// waitListed waits until GET SubscriptionsPath lists n subscriptions
// (they are added by the hub's goroutine, a moment after the stream
// starts), failing after a generous deadline.
func (s *server) waitListed(t *testing.T, n int) {
	t.Helper()
	tok := signSubscriber(t, "lister", nil, hub.SubscriptionsPath)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body := s.get(t, hub.SubscriptionsPath, tok)
		var c collectionDoc
		if err := json.Unmarshal([]byte(body), &c); err != nil {
			t.Fatalf("GET %s = %s: %v", hub.SubscriptionsPath, body, err)
		}
		if len(c.Subscriptions) == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s lists %d subscriptions after 10s, want %d", hub.SubscriptionsPath, len(c.Subscriptions), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// get runs GET path with token ("" for none) and returns the status, the
// response and its body.
func (s *server) get(t *testing.T, path, token string) (*http.Response, string) {
	t.Helper()
	r, err := http.NewRequest(http.MethodGet, s.srv.URL+path, nil)
	if err != nil {
		t.Fatalf("NewRequest: %v", err)
	}
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := s.client.Do(r)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", path, err)
	}
	return resp, string(body)
}

var uuidURN = regexp.MustCompile(`^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func TestSubscriptionEvents(t *testing.T) {
	for _, m := range []struct {
		name string
		cfg  broker.Config
	}{{"parked", broker.Config{}}, {"goroutine", broker.Config{NoPark: true}}} {
		t.Run(m.name, func(t *testing.T) {
			s := newSubscriptionsServer(t, m.cfg)
			watchQuery := url.Values{"topic": {everySubscription}}.Encode()
			watcher := s.subscribe(t, watchQuery, bearer(signSubscriber(t, "watcher", nil, everySubscription)))
			// An anonymous subscriber to the same selector gets none of the
			// private events, only the public marker published at the end.
			anon := s.subscribe(t, url.Values{"topic": {everySubscription, "marker"}}.Encode(), nil)

			// The watcher's own subscription comes first.
			want := `{"@context":"https://mercure.rocks/","id":"/.well-known/mercure/subscriptions/%2F.well-known%2Fmercure%2Fsubscriptions%7B%2Ftopic%7D%7B%2Fsubscriber%7D/watcher",` +
				`"type":"Subscription","subscriber":"watcher","topic":"/.well-known/mercure/subscriptions{/topic}{/subscriber}","active":true}`
			if got := watcher.next(t).Data; got != want {
				t.Fatalf("watcher's own event = %s\nwant %s", got, want)
			}
			// The anonymous subscriber's start: one event per selector, with
			// a generated subscriber id.
			var anonID string
			for _, topic := range []string{everySubscription, "marker"} {
				ev := watcher.next(t)
				var doc map[string]any
				if err := json.Unmarshal([]byte(ev.Data), &doc); err != nil {
					t.Fatalf("anonymous subscriber's event %q: %v", ev.Data, err)
				}
				sub, _ := doc["subscriber"].(string)
				if !uuidURN.MatchString(sub) || doc["active"] != true || doc["topic"] != topic || (anonID != "" && sub != anonID) {
					t.Errorf("anonymous subscriber's event = %s, want topic %q, active, one urn:uuid subscriber", ev.Data, topic)
				}
				anonID = sub
				if wantID := hub.SubscriptionsPath + "/" + url.QueryEscape(topic) + "/" + url.QueryEscape(sub); doc["id"] != wantID {
					t.Errorf("anonymous subscriber's event id = %v, want %q", doc["id"], wantID)
				}
			}

			// Another client subscribes, then goes away.
			const topic = "https://example.com/books/1"
			alice := s.subscribe(t, url.Values{"topic": {topic}}.Encode(), bearer(signSubscriber(t, "alice", map[string]any{"name": "Alice"})))
			wantDoc := func(active bool) string {
				a := "false"
				if active {
					a = "true"
				}
				return `{"@context":"https://mercure.rocks/","id":"/.well-known/mercure/subscriptions/https%3A%2F%2Fexample.com%2Fbooks%2F1/alice",` +
					`"type":"Subscription","subscriber":"alice","topic":"https://example.com/books/1","active":` + a + `,"payload":{"name":"Alice"}}`
			}
			ev := watcher.next(t)
			if ev.Data != wantDoc(true) {
				t.Fatalf("alice's start = %s\nwant %s", ev.Data, wantDoc(true))
			}
			if ev.ID != "" {
				t.Errorf("alice's start has id %q, want none: subscription events are live only", ev.ID)
			}
			alice.resp.Body.Close()
			if got := watcher.next(t).Data; got != wantDoc(false) {
				t.Fatalf("alice's end = %s\nwant %s", got, wantDoc(false))
			}

			marker := s.publish(t, url.Values{"topic": {"marker"}, "data": {"public"}})
			if got := anon.next(t); got.ID != marker {
				t.Errorf("anonymous subscriber's first event = %+v, want the public marker %q", got, marker)
			}
			if ups := s.updates(t); len(ups) != 1 || ups[0].ID != marker {
				t.Errorf("log = %+v, want only the marker: subscription events are not stored", ups)
			}
		})
	}
}

// subscriptionDoc is the API's JSON, decoded.
type subscriptionDoc struct {
	Context     string         `json:"@context"`
	ID          string         `json:"id"`
	Type        string         `json:"type"`
	Subscriber  string         `json:"subscriber"`
	Topic       string         `json:"topic"`
	Active      bool           `json:"active"`
	Payload     map[string]any `json:"payload"`
	LastEventID string         `json:"lastEventID"`
}

type collectionDoc struct {
	Context       string            `json:"@context"`
	ID            string            `json:"id"`
	Type          string            `json:"type"`
	LastEventID   string            `json:"lastEventID"`
	Subscriptions []subscriptionDoc `json:"subscriptions"`
}

func TestSubscriptionsAPI(t *testing.T) {
	s := newSubscriptionsServer(t, broker.Config{})
	reader := signSubscriber(t, "reader", nil, everySubscription)

	// Nothing yet: an empty list, and lastEventID "earliest".
	resp, body := s.get(t, hub.SubscriptionsPath, reader)
	const empty = `{"@context":"https://mercure.rocks/","id":"/.well-known/mercure/subscriptions","type":"Subscriptions","lastEventID":"earliest","subscriptions":[]}`
	if resp.StatusCode != http.StatusOK || body != empty {
		t.Fatalf("GET %s on an idle hub = %d %s, want 200 %s", hub.SubscriptionsPath, resp.StatusCode, body, empty)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/ld+json" {
		t.Errorf("GET %s: Content-Type = %q, want application/ld+json", hub.SubscriptionsPath, ct)
	}

	const books, authors = "https://example.com/books/{id}", "https://example.com/authors/1"
	s.subscribe(t, url.Values{"topic": {books, authors}}.Encode(), bearer(signSubscriber(t, "alice", map[string]any{"n": 1.0})))
	s.subscribe(t, url.Values{"topic": {books}}.Encode(), bearer(signSubscriber(t, "bob", nil)))
	s.waitListed(t, 3)
	const last = "earliest" // subscription events are not in the log

	sub := func(topic, subscriber string, payload map[string]any) subscriptionDoc {
		return subscriptionDoc{
			ID:         hub.SubscriptionsPath + "/" + url.QueryEscape(topic) + "/" + subscriber,
			Type:       "Subscription",
			Subscriber: subscriber,
			Topic:      topic,
			Active:     true,
			Payload:    payload,
		}
	}
	aliceBooks := sub(books, "alice", map[string]any{"n": 1.0})
	aliceAuthors := sub(authors, "alice", map[string]any{"n": 1.0})
	bobBooks := sub(books, "bob", nil)
	collection := func(id string, subs ...subscriptionDoc) collectionDoc {
		return collectionDoc{Context: "https://mercure.rocks/", ID: id, Type: "Subscriptions", LastEventID: last, Subscriptions: subs}
	}
	single := func(d subscriptionDoc) subscriptionDoc {
		d.Context, d.LastEventID = "https://mercure.rocks/", last
		return d
	}
	booksPath := hub.SubscriptionsPath + "/" + url.QueryEscape(books)

	tests := []struct {
		path string
		want any
	}{
		{hub.SubscriptionsPath, collection(hub.SubscriptionsPath, aliceAuthors, aliceBooks, bobBooks)},
		{booksPath, collection(booksPath, aliceBooks, bobBooks)},
		{aliceAuthors.ID, single(aliceAuthors)},
		{bobBooks.ID, single(bobBooks)},
		// Another encoding of the same path names the same resource.
		{hub.SubscriptionsPath + "/" + url.PathEscape(authors) + "/alice", single(aliceAuthors)},
	}
	for _, tt := range tests {
		resp, body := s.get(t, tt.path, reader)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d %q, want 200", tt.path, resp.StatusCode, body)
			continue
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/ld+json" {
			t.Errorf("GET %s: Content-Type = %q, want application/ld+json", tt.path, ct)
		}
		got := reflect.New(reflect.TypeOf(tt.want))
		if err := json.Unmarshal([]byte(body), got.Interface()); err != nil {
			t.Errorf("GET %s: body %s: %v", tt.path, body, err)
			continue
		}
		if !reflect.DeepEqual(got.Elem().Interface(), tt.want) {
			t.Errorf("GET %s = %s\nwant %+v", tt.path, body, tt.want)
		}
	}

	for _, path := range []string{
		hub.SubscriptionsPath + "/" + url.QueryEscape(books) + "/carol", // unknown subscriber
		hub.SubscriptionsPath + "/" + url.QueryEscape(authors) + "/bob", // bob did not subscribe to it
		hub.SubscriptionsPath + "/" + url.QueryEscape(books) + "/bob/x", // too deep
		hub.SubscriptionsPath + "/",
		hub.SubscriptionsPath + "//bob",
	} {
		if resp, body := s.get(t, path, reader); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s = %d %q, want 404", path, resp.StatusCode, body)
		}
	}
	if resp, body := s.get(t, hub.SubscriptionsPath+"/unknown-topic", reader); resp.StatusCode != http.StatusOK ||
		!strings.HasSuffix(body, `"subscriptions":[]}`) {
		t.Errorf("GET subscriptions of an unknown topic = %d %s, want 200 and an empty list", resp.StatusCode, body)
	}
}

func TestSubscriptionsAPIAuthorization(t *testing.T) {
	s := newSubscriptionsServer(t, broker.Config{})
	const invalid, scope = `Bearer error="invalid_token"`, `Bearer error="insufficient_scope"`
	topicPath := hub.SubscriptionsPath + "/a-topic"
	tests := []struct {
		name      string
		path      string
		token     string
		code      int
		challenge string
	}{
		{"no token", hub.SubscriptionsPath, "", 401, "Bearer"},
		{"garbage token", hub.SubscriptionsPath, "garbage", 401, invalid},
		{"publisher key", hub.SubscriptionsPath, sign(t, pubKey, nil, []string{"*"}), 401, invalid},
		{"no subscribe claim", hub.SubscriptionsPath, sign(t, subKey, []string{"*"}, nil), 403, scope},
		{"other topics", hub.SubscriptionsPath, sign(t, subKey, nil, []string{"https://example.com/{x}"}), 403, scope},
		{"collection only", topicPath, sign(t, subKey, nil, []string{hub.SubscriptionsPath}), 403, scope},
		{"collection only, collection", hub.SubscriptionsPath, sign(t, subKey, nil, []string{hub.SubscriptionsPath}), 200, ""},
		{"one topic", topicPath, sign(t, subKey, nil, []string{topicPath}), 200, ""},
		{"one topic, collection", hub.SubscriptionsPath, sign(t, subKey, nil, []string{topicPath}), 403, scope},
		{"template", topicPath, sign(t, subKey, nil, []string{everySubscription}), 200, ""},
		{"everything", topicPath, sign(t, subKey, nil, []string{"*"}), 200, ""},
	}
	for _, tt := range tests {
		resp, body := s.get(t, tt.path, tt.token)
		if resp.StatusCode != tt.code {
			t.Errorf("%s: GET %s = %d %q, want %d", tt.name, tt.path, resp.StatusCode, body, tt.code)
		}
		if got := resp.Header.Get("WWW-Authenticate"); !challengeIs(got, tt.challenge) {
			t.Errorf("%s: GET %s: WWW-Authenticate = %q, want %q", tt.name, tt.path, got, tt.challenge)
		}
	}
}

func TestSubscriptionsRouting(t *testing.T) {
	s := newSubscriptionsServer(t, broker.Config{})
	tok := sign(t, subKey, nil, []string{"*"})
	for _, tt := range []struct {
		method, path string
		code         int
		allow        string
	}{
		{http.MethodPost, hub.SubscriptionsPath, 405, "GET, HEAD, OPTIONS"},
		{http.MethodDelete, hub.SubscriptionsPath + "/t/s", 405, "GET, HEAD, OPTIONS"},
		{http.MethodOptions, hub.SubscriptionsPath, 204, "GET, HEAD, OPTIONS"},
		{http.MethodHead, hub.SubscriptionsPath, 200, ""},
		{http.MethodGet, hub.SubscriptionsPath + "x", 404, ""},
	} {
		w := s.serve(func() *http.Request {
			r := httptest.NewRequest(tt.method, tt.path, nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			return r
		}())
		call := tt.method + " " + tt.path
		if w.Code != tt.code {
			t.Errorf("%s = %d %q, want %d", call, w.Code, w.Body.String(), tt.code)
		}
		if got := w.Header().Get("Allow"); got != tt.allow {
			t.Errorf("%s: Allow = %q, want %q", call, got, tt.allow)
		}
	}
}

func TestSubscriptionsDisabled(t *testing.T) {
	s := newServer(t, defaultConfig())
	tok := sign(t, subKey, nil, []string{"*"})
	for _, path := range []string{hub.SubscriptionsPath, hub.SubscriptionsPath + "/t", hub.SubscriptionsPath + "/t/s"} {
		if resp, body := s.get(t, path, tok); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s with Subscriptions off = %d %q, want 404", path, resp.StatusCode, body)
		}
	}
	// Subscribing publishes no event, and Close and OnSubscription are
	// harmless.
	s.subscribe(t, "topic=a", nil)
	s.hub.OnSubscription(broker.Presence{Subscriber: "x", Topics: []string{"a"}, Active: true})
	if err := s.hub.Close(); err != nil {
		t.Errorf("Close() with Subscriptions off = %v, want nil", err)
	}
	id := s.publish(t, url.Values{"topic": {"a"}, "data": {"x"}})
	if ups := s.updates(t); len(ups) != 1 || ups[0].ID != id {
		t.Errorf("log = %+v, want only the published update %q", ups, id)
	}
	var nilHub *hub.Hub
	nilHub.OnSubscription(broker.Presence{}) // a nil hub ignores events
}

// TestCloseStopsEvents checks that Close is idempotent and that events
// reported after it are ignored.
func TestCloseStopsEvents(t *testing.T) {
	s := newSubscriptionsServer(t, broker.Config{})
	s.subscribe(t, "topic=a", nil)
	s.waitListed(t, 1)
	for range 2 {
		if err := s.hub.Close(); err != nil {
			t.Fatalf("Close() = %v, want nil", err)
		}
	}
	s.hub.OnSubscription(broker.Presence{Subscriber: "late", Topics: []string{"a"}, Active: true})
	s.subscribe(t, "topic=b", nil) // reported after Close: ignored
	if n := len(s.updates(t)); n != 0 {
		t.Errorf("log holds %d updates after Close, want 0", n)
	}
}
