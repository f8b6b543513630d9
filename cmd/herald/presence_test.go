package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/herald-sse/herald/auth"
	"github.com/herald-sse/herald/hub"
	"github.com/herald-sse/herald/sse"
)

// TestPresenceCrashRedis runs testPresenceCrash on Redis.
func TestPresenceCrashRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the herald binary")
	}
	addr := os.Getenv("HERALD_TEST_REDIS")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	requireService(t, "redis", addr)
	prefix := fmt.Sprintf("herald-presence-test-%d", time.Now().UnixNano())
	t.Cleanup(func() {
		rdb := redis.NewClient(&redis.Options{Addr: addr})
		defer rdb.Close()
		ctx := context.Background()
		keys, _ := rdb.Keys(ctx, "{"+prefix+"}*").Result()
		if len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
	})
	testPresenceCrash(t, []string{"--store", "redis", "--redis-url", "redis://" + addr + "/0", "--redis-prefix", prefix})
}

// TestPresenceCrashNATS runs testPresenceCrash on NATS.
func TestPresenceCrashNATS(t *testing.T) {
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
	stream := fmt.Sprintf("HERALD_PRESENCE_TEST_%d", time.Now().UnixNano())
	subject := "herald.presencetest." + strconv.FormatInt(time.Now().UnixNano(), 36)
	t.Cleanup(func() {
		nc, err := nats.Connect(natsURL)
		if err != nil {
			return
		}
		defer nc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if js, err := jetstream.New(nc); err == nil {
			_ = js.DeleteStream(ctx, stream)
			_ = js.DeleteKeyValue(ctx, stream+"_PRESENCE")
		}
	})
	testPresenceCrash(t, []string{"--store", "nats", "--nats-url", natsURL, "--nats-stream", stream, "--nats-subject", subject})
}

// testPresenceCrash runs two hubs sharing presence: hub B lists and
// announces a subscriber of hub A; after A is killed with SIGKILL (no
// cleanup), B announces that subscriber's end once A's entries expire,
// and no longer lists it.
func testPresenceCrash(t *testing.T, storeArgs []string) {
	bin := buildHerald(t)
	args := append(storeArgs, "--subscriptions", "--presence-ttl", "1s")
	a := startHerald(t, bin, t.TempDir(), args...)
	b := startHerald(t, bin, t.TempDir(), args...)
	c := durClient(t)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	every := hub.SubscriptionsPath + "{/topic}{/subscriber}"
	watcherTok := presenceToken(t, "watcher", every)
	watcher := presenceGet(t, ctx, c, b.url+"?topic="+url.QueryEscape(every), watcherTok)
	defer watcher.Body.Close()
	dec := sse.NewDecoder(watcher.Body)
	const topic = "https://example.com/room/1"
	// next returns the next event about alice (the watcher sees its own
	// start too).
	next := func() map[string]any {
		t.Helper()
		for {
			ev, err := dec.Next()
			if err != nil {
				t.Fatalf("watcher on hub B: %v", err)
			}
			var doc map[string]any
			if err := json.Unmarshal([]byte(ev.Data), &doc); err != nil {
				t.Fatalf("watcher on hub B: event %q: %v", ev.Data, err)
			}
			if doc["subscriber"] == "alice" {
				if ev.ID != "" {
					t.Errorf("subscription event has id %q, want none (live only)", ev.ID)
				}
				return doc
			}
		}
	}

	alice := presenceGet(t, ctx, c, a.url+"?topic="+url.QueryEscape(topic), presenceToken(t, "alice", topic))
	defer alice.Body.Close()
	if doc := next(); doc["active"] != true || doc["topic"] != topic {
		t.Fatalf("hub B announced %v, want alice's start on %q", doc, topic)
	}
	listed := func() bool {
		t.Helper()
		resp := presenceGet(t, ctx, c, strings.TrimSuffix(b.url, hub.Path)+hub.SubscriptionsPath, watcherTok)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("GET subscriptions on hub B: %v", err)
		}
		return strings.Contains(string(body), `"subscriber":"alice"`)
	}
	if !listed() {
		t.Fatal("hub B does not list alice, a subscriber of hub A")
	}

	killed := time.Now()
	if err := a.cmd.Process.Kill(); err != nil { // SIGKILL: no cleanup
		t.Fatalf("kill -9 hub A: %v", err)
	}
	<-a.exited
	if doc := next(); doc["active"] != false || doc["topic"] != topic {
		t.Fatalf("hub B announced %v, want alice's end on %q", doc, topic)
	}
	t.Logf("alice's end announced by hub B %v after hub A was killed (TTL 1s)", time.Since(killed).Round(time.Millisecond))
	if listed() {
		t.Error("hub B still lists alice after hub A's entries expired")
	}
	watcher.Body.Close()
	b.stop(t)
}

func presenceToken(t *testing.T, subject string, subscribe ...string) string {
	t.Helper()
	tok, err := auth.Sign([]byte(durKey), auth.Claims{Subject: subject, Subscribe: subscribe}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// presenceGet runs GET u with a bearer token and checks for 200.
func presenceGet(t *testing.T, ctx context.Context, c *http.Client, u, tok string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("GET %s = %d %q, want 200", u, resp.StatusCode, body)
	}
	return resp
}

func TestPresenceTTLFlag(t *testing.T) {
	for _, ttl := range []string{"-1s", "10ms"} {
		res := runCmd(t, "serve", "--store", "memory", "--addr", "127.0.0.1:0", "--subscriptions", "--presence-ttl", ttl)
		if want := "--presence-ttl must be at least 100ms"; res.code != 2 || !strings.Contains(res.stderr, want) {
			t.Errorf("herald serve --presence-ttl %s = exit %d, stderr %q; want exit 2, stderr containing %q", ttl, res.code, res.stderr, want)
		}
	}
}
