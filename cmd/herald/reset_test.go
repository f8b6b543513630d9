package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/herald-sse/herald/internal/servertest"
	"github.com/herald-sse/herald/sse"
)

// TestServeLogReset wipes the engine's log under a running hub (Redis
// FLUSHALL; the NATS stream deleted): the hub must notice, end its streams
// rather than wait past a position the new log will not reach for a long
// time, and answer a client resuming from a lost id with Last-Event-ID:
// earliest and the new log's updates. The reset is counted in /metrics.
func TestServeLogReset(t *testing.T) {
	for _, tt := range []struct {
		name  string
		start func(testing.TB) *servertest.Server
		args  func(*servertest.Server) []string
		wipe  func(context.Context, *servertest.Server) error
	}{
		{"redis", servertest.StartRedis, func(s *servertest.Server) []string {
			return []string{"--store", "redis", "--redis-url", "redis://" + s.Addr + "/0"}
		}, func(ctx context.Context, s *servertest.Server) error {
			c := redis.NewClient(&redis.Options{Addr: s.Addr})
			defer c.Close()
			return c.FlushAll(ctx).Err()
		}},
		{"nats", servertest.StartNATS, func(s *servertest.Server) []string {
			return []string{"--store", "nats", "--nats-url", s.URL("nats")}
		}, func(ctx context.Context, s *servertest.Server) error {
			nc, err := nats.Connect(s.URL("nats"))
			if err != nil {
				return err
			}
			defer nc.Close()
			js, err := jetstream.New(nc)
			if err != nil {
				return err
			}
			return js.DeleteStream(ctx, "HERALD")
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := tt.start(t)
			h := startOutageHub(t, tt.args(srv)...)
			waitReady(t, h, http.StatusOK)
			if code, body := h.publish(t, "before-1"); code != http.StatusOK {
				t.Fatalf("POST before-1 = %d %q", code, body)
			}
			resp, dec := h.subscribe(t, "")
			defer resp.Body.Close()
			if code, body := h.publish(t, "before-2"); code != http.StatusOK {
				t.Fatalf("POST before-2 = %d %q", code, body)
			}
			for { // before-1 too if the hub's tail had not reached it yet
				ev, err := dec.Next()
				if err != nil {
					t.Fatalf("live events: %v before before-2", err)
				}
				if ev.ID == "before-2" {
					break
				}
			}

			if err := tt.wipe(t.Context(), srv); err != nil {
				t.Fatalf("wiping the engine's log: %v", err)
			}
			var after int
			// The hubs recreate a deleted NATS stream after a second and
			// check every two; a loaded CI machine has needed far longer.
			servertest.WaitFor(t.Context(), 40*time.Second, func() bool {
				after, _ = h.publish(t, "after-1")
				// A 504 (outcome unknown) may have stored it: the retry's
				// 409 then says so, as herald pub counts it.
				return after == http.StatusOK || after == http.StatusConflict
			})
			if after != http.StatusOK && after != http.StatusConflict {
				t.Fatalf("POST after-1 on the new log = %d, want 200 (or 409 after a stored 504)", after)
			}
			ended := make(chan error, 1)
			go func() {
				for {
					if _, err := dec.Next(); err != nil {
						ended <- err
						return
					}
				}
			}()
			select {
			case err := <-ended:
				if !errors.Is(err, io.EOF) {
					t.Errorf("stream ended with %v, want EOF", err)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("the stream was not ended within 20s of the reset")
			}

			resp2, dec2 := h.subscribe(t, "before-2")
			defer resp2.Body.Close()
			if got := resp2.Header.Get("Last-Event-ID"); got != "earliest" {
				t.Errorf("resume from a lost id: Last-Event-ID %q, want earliest", got)
			}
			if ev, err := dec2.Next(); err != nil || ev.ID != "after-1" {
				t.Errorf("resume from a lost id: first event %q, %v; want after-1", ev.ID, err)
			}
			if m := h.metrics(t); !strings.Contains(m, "herald_log_resets_total 1\n") {
				t.Errorf("/metrics has no herald_log_resets_total 1")
			}
		})
	}
}

// subscribe opens a stream of urn:outage, resuming after lastID if set.
func (h *outageHub) subscribe(t *testing.T, lastID string) (*http.Response, *sse.Decoder) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, h.base+"/.well-known/mercure?topic=urn:outage", nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		t.Fatalf("GET stream: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		t.Fatalf("GET stream: %d", resp.StatusCode)
	}
	return resp, sse.NewDecoder(resp.Body)
}

func (h *outageHub) metrics(t *testing.T) string {
	t.Helper()
	resp, err := h.c.Get(h.base + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
