package main

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"

	"github.com/herald-sse/herald/auth"
	"github.com/herald-sse/herald/sse"
)

// requireService skips the test when nothing answers at addr on a laptop,
// and fails it under CI=true, where .ci/run starts the service.
func requireService(t *testing.T, name, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not reachable at %s (CI=true: .ci/run should have started it): %v", name, addr, err)
		}
		t.Skipf("%s not reachable at %s: %v", name, addr, err)
	}
	c.Close()
}

// TestClusterNATS runs two hubs on one JetStream stream: an update
// published on one is delivered live by the other, with the same id, and a
// client may resume on either hub with an id the other assigned.
func TestClusterNATS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the herald binary")
	}
	natsURL := os.Getenv("HERALD_TEST_NATS")
	if natsURL == "" {
		natsURL = "nats://127.0.0.1:4222"
	}
	u, err := url.Parse(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	requireService(t, "nats", u.Host)
	stream := fmt.Sprintf("HERALD_CLUSTER_TEST_%d", time.Now().UnixNano())
	subject := "herald.clustertest." + strconv.FormatInt(time.Now().UnixNano(), 36)
	t.Cleanup(func() {
		nc, err := nats.Connect(natsURL)
		if err != nil {
			return
		}
		defer nc.Close()
		if js, err := nc.JetStream(); err == nil {
			_ = js.DeleteStream(stream)
		}
	})
	args := []string{"--store", "nats", "--nats-url", natsURL, "--nats-stream", stream, "--nats-subject", subject}
	testCluster(t, args)
}

// TestClusterRedis is TestClusterNATS on one Redis stream.
func TestClusterRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the herald binary")
	}
	addr := os.Getenv("HERALD_TEST_REDIS")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	requireService(t, "redis", addr)
	prefix := fmt.Sprintf("herald-cluster-test-%d", time.Now().UnixNano())
	t.Cleanup(func() {
		rdb := redis.NewClient(&redis.Options{Addr: addr})
		defer rdb.Close()
		ctx := context.Background()
		keys, _ := rdb.Keys(ctx, "{"+prefix+"}*").Result()
		if len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
	})
	testCluster(t, []string{"--store", "redis", "--redis-url", "redis://" + addr + "/0", "--redis-prefix", prefix})
}

func testCluster(t *testing.T, storeArgs []string) {
	bin := buildHerald(t)
	tok, err := auth.Sign([]byte(durKey), auth.Claims{Publish: []string{"*"}, Subscribe: []string{"*"}}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	a := startHerald(t, bin, t.TempDir(), storeArgs...)
	b := startHerald(t, bin, t.TempDir(), storeArgs...)
	c := durClient(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	// A live subscriber on hub B: the stream is open once the head arrived.
	live := durSubscribe(t, ctx, c, b.url, "")
	defer live.Body.Close()
	dec := sse.NewDecoder(live.Body)

	var ids []string
	for i := range 5 {
		ids = append(ids, mustPublish(t, c, a.url, tok, "", "via A "+strconv.Itoa(i)))
	}
	for i, id := range ids {
		ev, err := dec.Next()
		if err != nil {
			t.Fatalf("hub B live stream: event %d: %v", i, err)
		}
		if ev.ID != id || ev.Data != "via A "+strconv.Itoa(i) {
			t.Fatalf("hub B live event %d = {%q %q}, want {%q %q}", i, ev.ID, ev.Data, id, "via A "+strconv.Itoa(i))
		}
	}

	// Resume on hub B after an id hub A assigned; then on hub A after an id
	// hub B assigned.
	ids = append(ids, mustPublish(t, c, b.url, tok, "", "via B 5"))
	for _, tc := range []struct {
		name, endpoint string
		after          int
	}{
		{"on B after A's id", b.url, 1},
		{"on A after B's id", a.url, 4},
	} {
		resp := durSubscribe(t, ctx, c, tc.endpoint, ids[tc.after])
		if got := resp.Header.Get("Last-Event-ID"); got != ids[tc.after] {
			t.Errorf("%s: reply Last-Event-ID = %q, want %q", tc.name, got, ids[tc.after])
		}
		d := sse.NewDecoder(resp.Body)
		for _, want := range ids[tc.after+1:] {
			ev, err := d.Next()
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if ev.ID != want {
				t.Fatalf("%s: replayed id %q, want %q", tc.name, ev.ID, want)
			}
		}
		resp.Body.Close()
	}
	a.stop(t)
	b.stop(t)
}
