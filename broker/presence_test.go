package broker_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-sse/herald/broker"
	"github.com/herald-sse/herald/store"
	"github.com/herald-sse/herald/store/memstore"
)

// presenceEnv is a broker whose OnSubscription events are collected, behind
// a handler that names each subscriber with its ?sub= parameter.
type presenceEnv struct {
	b       *broker.Broker
	srv     *httptest.Server
	events  chan broker.Presence
	dropped atomic.Int64
}

func newPresenceEnv(t *testing.T, cfg broker.Config) *presenceEnv {
	t.Helper()
	e := &presenceEnv{events: make(chan broker.Presence, 64)}
	cfg.OnSubscription = func(p broker.Presence) {
		select { // never block, as the contract asks
		case e.events <- p:
		default:
			e.dropped.Add(1)
		}
	}
	st := memstore.New(memstore.Config{})
	b, err := broker.New(st, cfg)
	if err != nil {
		t.Fatalf("broker.New: %v", err)
	}
	e.b = b
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		_ = b.Subscribe(w, r, broker.Subscription{
			Topics:     q["topic"],
			Subscriber: q.Get("sub"),
			Payload:    map[string]any{"name": q.Get("sub")},
		})
	}))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := b.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		e.srv.Close()
		st.Close()
		if n := e.dropped.Load(); n > 0 {
			t.Errorf("OnSubscription: %d events did not fit the test's buffer", n)
		}
	})
	return e
}

// open starts a stream and returns its response.
func (e *presenceEnv) open(t *testing.T, query string) *http.Response {
	t.Helper()
	resp, err := e.srv.Client().Get(e.srv.URL + "/?" + query)
	if err != nil {
		t.Fatalf("GET ?%s: %v", query, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET ?%s: status %d, want 200", query, resp.StatusCode)
	}
	return resp
}

// next returns the next OnSubscription event, failing after a generous
// deadline (a hang, not a speed check).
func (e *presenceEnv) next(t *testing.T) broker.Presence {
	t.Helper()
	select {
	case p := <-e.events:
		return p
	case <-time.After(10 * time.Second):
		t.Fatal("OnSubscription: no call within 10s")
	}
	return broker.Presence{}
}

// quiet checks that no OnSubscription call is pending.
func (e *presenceEnv) quiet(t *testing.T) {
	t.Helper()
	select {
	case p := <-e.events:
		t.Errorf("unexpected OnSubscription(%+v)", p)
	default:
	}
}

func TestOnSubscription(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e := newPresenceEnv(t, m.cfg)
			resp := e.open(t, "topic=a&topic=https://example.com/{id}&sub=alice")
			want := broker.Presence{
				Subscriber: "alice",
				Topics:     []string{"a", "https://example.com/{id}"},
				Payload:    map[string]any{"name": "alice"},
				Active:     true,
			}
			if got := e.next(t); !reflect.DeepEqual(got, want) {
				t.Fatalf("OnSubscription(start) = %+v, want %+v", got, want)
			}
			if got := e.b.Subscriptions(); !reflect.DeepEqual(got, []broker.Presence{want}) {
				t.Errorf("Subscriptions() = %+v, want [%+v]", got, want)
			}
			if m.name == "parked" {
				deadline := time.Now().Add(10 * time.Second)
				for e.b.Stats().Parked != 1 {
					if time.Now().After(deadline) {
						t.Fatalf("Stats().Parked = %d, want 1", e.b.Stats().Parked)
					}
					time.Sleep(2 * time.Millisecond)
				}
			}

			resp.Body.Close() // the client goes away
			want.Active = false
			if got := e.next(t); !reflect.DeepEqual(got, want) {
				t.Fatalf("OnSubscription(end) = %+v, want %+v", got, want)
			}
			if got := e.b.Subscriptions(); len(got) != 0 {
				t.Errorf("Subscriptions() after the end = %+v, want none", got)
			}
			e.quiet(t)
		})
	}
}

// TestOnSubscriptionShutdown checks that streams ended by Shutdown report
// their end too, parked ones from the writer pool.
func TestOnSubscriptionShutdown(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e := newPresenceEnv(t, m.cfg)
			e.open(t, "topic=a&sub=s1")
			e.open(t, "topic=b&sub=s2")
			started := map[string]bool{}
			for range 2 {
				p := e.next(t)
				if !p.Active {
					t.Fatalf("OnSubscription(%+v) before Shutdown, want Active", p)
				}
				started[p.Subscriber] = true
			}
			if got := e.b.Subscriptions(); len(got) != 2 {
				t.Errorf("Subscriptions() = %+v, want 2 entries", got)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := e.b.Shutdown(ctx); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			for range 2 {
				p := e.next(t)
				if p.Active || !started[p.Subscriber] {
					t.Errorf("OnSubscription(%+v) at Shutdown, want the end of s1 or s2", p)
				}
				delete(started, p.Subscriber)
			}
			e.quiet(t)
		})
	}
}

// TestOnSubscriptionRefused checks that a refused stream reports nothing.
func TestOnSubscriptionRefused(t *testing.T) {
	e := newPresenceEnv(t, broker.Config{MaxSubscribers: 1})
	e.open(t, "topic=a&sub=first")
	if p := e.next(t); p.Subscriber != "first" || !p.Active {
		t.Fatalf("OnSubscription = %+v, want the start of first", p)
	}
	resp, err := e.srv.Client().Get(e.srv.URL + "/?topic=a&sub=second")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("second subscriber: status %d, want 503", resp.StatusCode)
	}
	e.quiet(t)
	if got := e.b.Subscriptions(); len(got) != 1 || got[0].Subscriber != "first" {
		t.Errorf("Subscriptions() = %+v, want only first", got)
	}
}

func TestLastEventID(t *testing.T) {
	e := newPresenceEnv(t, broker.Config{})
	if id, err := e.b.LastEventID(context.Background()); err != nil || id != "" {
		t.Errorf("LastEventID() on an empty log = %q, %v, want \"\", nil", id, err)
	}
	u, err := e.b.Publish(context.Background(), store.Update{Topics: []string{"a"}})
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if id, err := e.b.LastEventID(context.Background()); err != nil || id != u.ID {
		t.Errorf("LastEventID() = %q, %v, want %q, nil", id, err, u.ID)
	}
}
