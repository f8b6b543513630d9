package hub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-sse/herald/broker"
	"github.com/herald-sse/herald/hub"
	"github.com/herald-sse/herald/store"
	"github.com/herald-sse/herald/store/memstore"
)

// TestChurnKeepsHistory checks that subscription events cost no history:
// with a history of 5 updates, 200 anonymous subscribers coming and going
// (400 subscription events, all delivered to a watcher) leave the
// publishers' 5 updates in the log, and a client resuming from the first
// of them is replayed the other 4 exactly.
func TestChurnKeepsHistory(t *testing.T) {
	for _, m := range []struct {
		name string
		cfg  broker.Config
	}{{"parked", broker.Config{}}, {"goroutine", broker.Config{NoPark: true}}} {
		t.Run(m.name, func(t *testing.T) {
			s := newChurnServer(t, m.cfg, 5)
			var ids []string
			for i := range 5 {
				ids = append(ids, s.publish(t, url.Values{"topic": {"news"}, "data": {"update " + string(rune('0'+i))}}))
			}
			watcher := s.subscribe(t, url.Values{"topic": {everySubscription}}.Encode(), bearer(signSubscriber(t, "watcher", nil, everySubscription)))
			if ev := watcher.next(t); ev.ID != "" || !json.Valid([]byte(ev.Data)) {
				t.Fatalf("watcher's own start = %+v, want a JSON document without id", ev)
			}
			const cycles = 200
			for i := range cycles {
				st := s.subscribe(t, url.Values{"topic": {"news"}}.Encode(), nil)
				st.resp.Body.Close()
				for _, active := range []bool{true, false} {
					ev := watcher.next(t)
					var doc struct {
						Topic  string `json:"topic"`
						Active bool   `json:"active"`
					}
					if err := json.Unmarshal([]byte(ev.Data), &doc); err != nil || doc.Topic != "news" || doc.Active != active || ev.ID != "" {
						t.Fatalf("cycle %d: event %+v, want topic news, active %v, no id", i, ev, active)
					}
				}
			}
			ups := s.updates(t)
			if len(ups) != len(ids) {
				t.Fatalf("log holds %d updates after %d subscribe/unsubscribe cycles, want the %d published", len(ups), cycles, len(ids))
			}
			for i, u := range ups {
				if u.ID != ids[i] {
					t.Errorf("log[%d] = %q, want %q", i, u.ID, ids[i])
				}
			}
			re := s.subscribe(t, url.Values{"topic": {"news"}}.Encode(), func(r *http.Request) { r.Header.Set("Last-Event-ID", ids[0]) })
			if got := re.resp.Header.Get("Last-Event-ID"); got != ids[0] {
				t.Errorf("resume: Last-Event-ID = %q, want %q (still in the history)", got, ids[0])
			}
			for _, want := range ids[1:] {
				if ev := re.next(t); ev.ID != want {
					t.Fatalf("resume: replayed %q, want %q", ev.ID, want)
				}
			}
		})
	}
}

// newChurnServer is newSubscriptionsServer with a history of maxLen
// updates.
func newChurnServer(t *testing.T, bcfg broker.Config, maxLen int) *server {
	t.Helper()
	cfg := defaultConfig()
	cfg.Subscriptions = true
	st := memstore.New(memstore.Config{MaxLen: maxLen})
	var h *hub.Hub
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
		h.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := b.Shutdown(ctx); err != nil {
			t.Errorf("broker Shutdown: %v", err)
		}
		srv.Close()
		tr.CloseIdleConnections()
		st.Close()
	})
	return s
}

// TestSameSubscriberTwice checks that a subscriber with two streams on the
// same topic (two tabs) stays listed until both end, and that its events
// say so: one start, one end.
func TestSameSubscriberTwice(t *testing.T) {
	s := newChurnServer(t, broker.Config{}, 10)
	watcher := s.subscribe(t, url.Values{"topic": {everySubscription}}.Encode(), bearer(signSubscriber(t, "watcher", nil, everySubscription)))
	type doc struct {
		Subscriber string `json:"subscriber"`
		Active     bool   `json:"active"`
	}
	next := func() doc {
		t.Helper()
		var d doc
		ev := watcher.next(t)
		if err := json.Unmarshal([]byte(ev.Data), &d); err != nil {
			t.Fatalf("event %q: %v", ev.Data, err)
		}
		return d
	}
	if d := next(); d.Subscriber != "watcher" {
		t.Fatalf("first event = %+v, want the watcher's start", d)
	}
	bobTok := bearer(signSubscriber(t, "bob", nil))
	tab1 := s.subscribe(t, "topic=x", bobTok)
	tab2 := s.subscribe(t, "topic=x", bobTok)
	tab1.resp.Body.Close()
	// carol is a marker: her start is applied after both of bob's starts.
	s.subscribe(t, "topic=x", bearer(signSubscriber(t, "carol", nil)))
	for _, want := range []doc{{"bob", true}, {"carol", true}} {
		if d := next(); d != want {
			t.Fatalf("event = %+v, want %+v", d, want)
		}
	}
	resp, body := s.get(t, hub.SubscriptionsPath+"/x/bob", signSubscriber(t, "r", nil, everySubscription))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET bob's subscription with one tab open = %d %s, want 200", resp.StatusCode, body)
	}
	tab2.resp.Body.Close()
	if d := next(); d != (doc{"bob", false}) {
		t.Fatalf("event = %+v, want bob's end", d)
	}
}

// fakeRegistry is an in-process registry whose first Add can be held, and
// whose Renew can report that the hub's entries expired.
type fakeRegistry struct {
	*memstore.Presence
	ttl     time.Duration
	hold    chan struct{} // closed to release the first Add; nil: no hold
	held    chan struct{} // closed when the first Add is being held
	once    sync.Once
	expired atomic.Bool // the next Renew drops every entry and reports it
	adds    atomic.Int64
}

func (f *fakeRegistry) Add(ctx context.Context, key string, data []byte) error {
	if f.hold != nil {
		f.once.Do(func() {
			close(f.held)
			<-f.hold
		})
	}
	defer f.adds.Add(1)
	return f.Presence.Add(ctx, key, data)
}

func (f *fakeRegistry) Renew(ctx context.Context) error {
	if f.expired.CompareAndSwap(true, false) {
		if err := f.Presence.Leave(ctx); err != nil {
			return err
		}
		return store.ErrPresenceLost
	}
	return f.Presence.Renew(ctx)
}

func (f *fakeRegistry) TTL() time.Duration { return f.ttl }

// newRegistryServer is newChurnServer with the hub's registry reg.
func newRegistryServer(t *testing.T, reg store.Presence) *server {
	t.Helper()
	cfg := defaultConfig()
	cfg.Subscriptions = true
	cfg.Presence = reg
	st := memstore.New(memstore.Config{})
	var h *hub.Hub
	b, err := broker.New(st, broker.Config{OnSubscription: func(p broker.Presence) { h.OnSubscription(p) }})
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
		h.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := b.Shutdown(ctx); err != nil {
			t.Errorf("broker Shutdown: %v", err)
		}
		srv.Close()
		tr.CloseIdleConnections()
		st.Close()
		reg.Close()
	})
	return s
}

// listedSubscribers returns the subscribers GET SubscriptionsPath lists.
func (s *server) listedSubscribers(t *testing.T) []string {
	t.Helper()
	_, body := s.get(t, hub.SubscriptionsPath, signSubscriber(t, "lister", nil, hub.SubscriptionsPath))
	var c collectionDoc
	if err := json.Unmarshal([]byte(body), &c); err != nil {
		t.Fatalf("GET %s = %s: %v", hub.SubscriptionsPath, body, err)
	}
	var subs []string
	for _, d := range c.Subscriptions {
		subs = append(subs, d.Subscriber)
	}
	slices.Sort(subs)
	return subs
}

// waitSubscribers waits until the list names exactly want, failing after
// a generous deadline.
func (s *server) waitSubscribers(t *testing.T, want ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for got := s.listedSubscribers(t); !slices.Equal(got, want); got = s.listedSubscribers(t) {
		if time.Now().After(deadline) {
			if len(got) > 10 {
				got = append(got[:10], fmt.Sprintf("... (%d in all)", len(got)))
			}
			t.Fatalf("list = %q after 10s, want %q", got, want)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestPresenceLostReadded checks that when the registry reports that this
// hub's entries expired (it could not renew them in time), the hub adds
// its open subscriptions again.
func TestPresenceLostReadded(t *testing.T) {
	reg := &fakeRegistry{Presence: memstore.NewPresence(), ttl: 30 * time.Millisecond}
	s := newRegistryServer(t, reg)
	s.subscribe(t, "topic=x", bearer(signSubscriber(t, "alice", nil)))
	s.waitSubscribers(t, "alice")
	reg.expired.Store(true) // the next Renew drops the entries
	deadline := time.Now().Add(10 * time.Second)
	for reg.adds.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("alice's subscription not added again 10s after the registry lost it")
		}
		time.Sleep(time.Millisecond)
	}
	if got := s.listedSubscribers(t); !slices.Equal(got, []string{"alice"}) {
		t.Errorf("list after the entries were added again = %q, want [alice]", got)
	}
}

// TestPresenceOverflowReconciled checks that starts and ends dropped
// because the hub's queue was full are made up for: the list is
// reconciled with the broker's open streams.
func TestPresenceOverflowReconciled(t *testing.T) {
	reg := &fakeRegistry{Presence: memstore.NewPresence(), ttl: time.Hour, hold: make(chan struct{}), held: make(chan struct{})}
	s := newRegistryServer(t, reg)
	s.subscribe(t, "topic=x", bearer(signSubscriber(t, "first", nil)))
	<-reg.held // the hub's goroutine is stuck adding "first"
	for i := range hub.MaxPendingPresence {
		s.hub.OnSubscription(broker.Presence{Subscriber: fmt.Sprint("ghost", i), Topics: []string{"x"}, Active: true})
	}
	s.subscribe(t, "topic=x", bearer(signSubscriber(t, "late", nil))) // its start is dropped
	close(reg.hold)
	s.waitSubscribers(t, "first", "late")
}
