package broker_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/herald-sse/herald/broker"
	"github.com/herald-sse/herald/store"
	"github.com/herald-sse/herald/store/memstore"
)

// newLiveEnv is an env whose handler subscribes with ?topic= selectors and
// ?private= authorization selectors.
func newLiveEnv(t *testing.T, cfg broker.Config) *env {
	t.Helper()
	st := memstore.New(memstore.Config{MaxLen: 1000})
	b, err := broker.New(st, cfg)
	if err != nil {
		t.Fatalf("broker.New: %v", err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		_ = b.Subscribe(w, r, broker.Subscription{
			Topics:      q["topic"],
			Private:     q["private"],
			LastEventID: r.Header.Get("Last-Event-ID"),
		})
	}))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := b.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		srv.Close()
		st.Close()
	})
	return &env{t, st, b, srv}
}

// TestPublishLive checks that a live update reaches the matching streams,
// once each, private ones only where authorized, and is never stored:
// the log does not grow, and a replay does not hold it.
func TestPublishLive(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e := newLiveEnv(t, m.cfg)
			first := e.publish("a", "stored-1", false)
			exact := e.subscribe("topic=a&topic=b", nil)
			wild := e.subscribe("topic=*&private=a", nil)
			other := e.subscribe("topic=c", nil)

			n, err := e.b.PublishLive(store.Update{Topics: []string{"a", "b"}, Data: "live"})
			if err != nil || n != 2 {
				t.Fatalf("PublishLive(a, b) = %d, %v, want 2, nil", n, err)
			}
			n, err = e.b.PublishLive(store.Update{Topics: []string{"a"}, Data: "secret", Private: true})
			if err != nil || n != 1 {
				t.Fatalf("PublishLive(private a) = %d, %v, want 1, nil", n, err)
			}
			if seq, _, _ := e.st.Last(context.Background()); seq != first.Seq {
				t.Errorf("Last() after PublishLive = %d, want %d: a live update was stored", seq, first.Seq)
			}
			second := e.publish("a", "stored-2", false)
			e.publish("c", "stored-c", false)

			for _, c := range []struct {
				name string
				cl   *client
				want []string
			}{
				{"exact", exact, []string{"live", "stored-2"}},
				{"wild", wild, []string{"live", "secret", "stored-2", "stored-c"}},
				{"other", other, []string{"stored-c"}},
			} {
				for _, want := range c.want {
					ev := c.cl.next(t)
					if ev.Data != want {
						t.Fatalf("%s: Next().Data = %q, want %q", c.name, ev.Data, want)
					}
					if want == "live" || want == "secret" {
						if ev.ID != "" {
							t.Errorf("%s: live event has id %q, want none", c.name, ev.ID)
						}
					}
				}
			}

			// A client resuming from before the live updates is replayed
			// the log only.
			h := http.Header{"Last-Event-ID": {first.ID}}
			re := e.subscribe("topic=*&private=a", h)
			if ev := re.next(t); ev.Data != "stored-2" || ev.ID != second.ID {
				t.Fatalf("replay: Next() = %+v, want stored-2 with id %q", ev, second.ID)
			}
		})
	}
}

func TestPublishLiveErrors(t *testing.T) {
	e := newLiveEnv(t, broker.Config{})
	if _, err := e.b.PublishLive(store.Update{Data: "x"}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("PublishLive(no topic) = %v, want ErrInvalid", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.b.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if _, err := e.b.PublishLive(store.Update{Topics: []string{"a"}}); !errors.Is(err, broker.ErrShutdown) {
		t.Errorf("PublishLive after Shutdown = %v, want ErrShutdown", err)
	}
}
