package broker_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/herald-sse/herald/broker"
	"github.com/herald-sse/herald/sse"
	"github.com/herald-sse/herald/store"
	"github.com/herald-sse/herald/store/memstore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// modes runs a test with parked connections and with one goroutine per
// stream.
var modes = []struct {
	name string
	cfg  broker.Config
}{
	{"parked", broker.Config{}},
	{"goroutine", broker.Config{NoPark: true}},
}

type env struct {
	t   *testing.T
	st  *memstore.Store
	b   *broker.Broker
	srv *httptest.Server
}

func newEnv(t *testing.T, cfg broker.Config) *env {
	t.Helper()
	st := memstore.New(memstore.Config{MaxLen: 1000})
	return newEnvOn(t, cfg, st, st)
}

// newEnvOn serves a broker over st, a store wrapping (or being) mem.
func newEnvOn(t *testing.T, cfg broker.Config, st store.Store, mem *memstore.Store) *env {
	t.Helper()
	b, err := broker.New(st, cfg)
	if err != nil {
		t.Fatalf("broker.New: %v", err)
	}
	srv := httptest.NewServer(b)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := b.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		srv.Close()
		mem.Close()
	})
	return &env{t, mem, b, srv}
}

func (e *env) publish(topic, data string, private bool) store.Update {
	e.t.Helper()
	u, err := e.b.Publish(context.Background(), store.Update{Topics: []string{topic}, Data: data, Private: private})
	if err != nil {
		e.t.Fatalf("Publish(%q, %q): %v", topic, data, err)
	}
	return u
}

// client is a minimal SSE subscriber over a real connection.
type client struct {
	resp *http.Response
	dec  *sse.Decoder
}

func (e *env) subscribe(query string, header http.Header) *client {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.srv.URL+"/?"+query, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("GET ?%s: %v", query, err)
	}
	e.t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("GET ?%s: status %d", query, resp.StatusCode)
	}
	return &client{resp, sse.NewDecoder(resp.Body)}
}

// next returns the next event, failing the test after a generous deadline
// (a hang, not a speed check).
func (c *client) next(t *testing.T) sse.Event {
	t.Helper()
	type res struct {
		ev  sse.Event
		err error
	}
	ch := make(chan res, 1)
	go func() {
		ev, err := c.dec.Next()
		ch <- res{ev, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("Next() error: %v", r.err)
		}
		return r.ev
	case <-time.After(10 * time.Second):
		c.resp.Body.Close()
		<-ch
		t.Fatalf("Next(): no event within 10s")
	}
	return sse.Event{}
}

func TestHeaders(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e := newEnv(t, m.cfg)
			c := e.subscribe("topic=a", nil)
			for k, want := range map[string]string{
				"Content-Type":      "text/event-stream",
				"Cache-Control":     "no-cache",
				"X-Accel-Buffering": "no",
			} {
				if got := c.resp.Header.Get(k); got != want {
					t.Errorf("header %s = %q, want %q", k, got, want)
				}
			}
			if got := c.resp.Header.Get("Last-Event-ID"); got != "" {
				t.Errorf("Last-Event-ID without replay = %q, want none", got)
			}
		})
	}
}

func TestLiveDeliveryInOrder(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e := newEnv(t, m.cfg)
			c := e.subscribe("topic=a", nil)
			waitSubscribers(t, e.b, 1)
			var want []store.Update
			for i := range 50 {
				e.publish("b", "other", false)
				want = append(want, e.publish("a", fmt.Sprintf("line %d\nsecond line", i), false))
			}
			for _, w := range want {
				ev := c.next(t)
				if ev.ID != w.ID || ev.Data != w.Data {
					t.Fatalf("Next() = {ID:%q Data:%q}, want {ID:%q Data:%q}", ev.ID, ev.Data, w.ID, w.Data)
				}
			}
		})
	}
}

// TestPublishBatch checks that a batch is delivered in its order, that a
// stopping batch appends nothing after its first failure, and that a
// batch after Shutdown is refused as a whole.
func TestPublishBatch(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e := newEnv(t, m.cfg)
			c := e.subscribe("topic=a", nil)
			waitSubscribers(t, e.b, 1)
			taken := e.publish("a", "taken", false)
			ups := []store.Update{
				{Topics: []string{"a"}, Data: "1"},
				{Topics: []string{"b"}, Data: "other topic"},
				{Topics: []string{"a"}, Data: "2", ID: "mine"},
				{Topics: []string{"a"}, Data: "dup", ID: taken.ID},
				{Topics: []string{"a"}, Data: "not attempted"},
			}
			stored, errs := e.b.PublishBatch(t.Context(), ups, true)
			for i, want := range []error{nil, nil, nil, store.ErrDuplicateID, store.ErrNotAttempted} {
				if (want == nil && errs[i] != nil) || (want != nil && !errors.Is(errs[i], want)) {
					t.Fatalf("update %d: error %v, want %v", i, errs[i], want)
				}
			}
			if stored[2].ID != "mine" || stored[2].Seq <= stored[0].Seq {
				t.Fatalf("stored %+v, want the given id and the batch's order", stored[:3])
			}
			for _, want := range []store.Update{taken, stored[0], stored[2]} {
				if ev := c.next(t); ev.ID != want.ID || ev.Data != want.Data {
					t.Fatalf("Next() = {ID:%q Data:%q}, want {ID:%q Data:%q}", ev.ID, ev.Data, want.ID, want.Data)
				}
			}
			after := e.publish("a", "after", false) // nothing of the batch comes between
			if ev := c.next(t); ev.ID != after.ID {
				t.Fatalf("Next() = %q, want the update after the batch %q", ev.ID, after.ID)
			}
		})
	}
	t.Run("after shutdown", func(t *testing.T) {
		st := memstore.New(memstore.Config{})
		defer st.Close()
		b, err := broker.New(st, broker.Config{})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Shutdown(t.Context()); err != nil {
			t.Fatal(err)
		}
		_, errs := b.PublishBatch(t.Context(), []store.Update{{Topics: []string{"a"}}, {Topics: []string{"a"}}}, false)
		for i, err := range errs {
			if !errors.Is(err, broker.ErrShutdown) {
				t.Errorf("update %d after Shutdown: %v, want %v", i, err, broker.ErrShutdown)
			}
		}
	})
}

func TestReplayFromLastEventID(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e := newEnv(t, m.cfg)
			var ups []store.Update
			for i := range 5 {
				ups = append(ups, e.publish("a", strconv.Itoa(i), false))
				e.publish("b", "not mine", false)
			}
			c := e.subscribe("topic=a", http.Header{"Last-Event-ID": {ups[1].ID}})
			if got := c.resp.Header.Get("Last-Event-ID"); got != ups[1].ID {
				t.Errorf("reply Last-Event-ID = %q, want %q", got, ups[1].ID)
			}
			live := e.publish("a", "live", false)
			for _, w := range append(ups[2:], live) {
				if ev := c.next(t); ev.ID != w.ID || ev.Data != w.Data {
					t.Fatalf("Next() = {%q %q}, want {%q %q}", ev.ID, ev.Data, w.ID, w.Data)
				}
			}
		})
	}
}

func TestReplayUnknownIDSaysEarliest(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e := newEnv(t, m.cfg)
			first := e.publish("a", "1", false)
			c := e.subscribe("topic=a&lastEventID="+url.QueryEscape("urn:uuid:unknown"), nil)
			if got := c.resp.Header.Get("Last-Event-ID"); got != "earliest" {
				t.Errorf("reply Last-Event-ID = %q, want earliest", got)
			}
			if ev := c.next(t); ev.ID != first.ID {
				t.Errorf("Next().ID = %q, want %q (all retained history)", ev.ID, first.ID)
			}
		})
	}
}

// TestReplaySeam publishes continuously while clients connect with a
// Last-Event-ID: every client must see a gapless, duplicate-free sequence
// across the replay/live seam.
func TestReplaySeam(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e := newEnv(t, m.cfg)
			const total = 400
			ids := make([]string, 0, total)
			var mu sync.Mutex
			first := e.publish("seam", "0", false)
			ids = append(ids, first.ID)
			done := make(chan struct{})
			go func() {
				defer close(done)
				for i := 1; i < total; i++ {
					u, err := e.b.Publish(context.Background(), store.Update{Topics: []string{"seam"}, Data: strconv.Itoa(i)})
					if err != nil {
						t.Errorf("Publish: %v", err)
						return
					}
					mu.Lock()
					ids = append(ids, u.ID)
					mu.Unlock()
					if i%20 == 0 {
						time.Sleep(time.Millisecond)
					}
				}
			}()
			var clients []*client
			for range 8 {
				clients = append(clients, e.subscribe("topic=seam", http.Header{"Last-Event-ID": {first.ID}}))
				time.Sleep(3 * time.Millisecond)
			}
			<-done
			for ci, c := range clients {
				for i := 1; i < total; i++ {
					ev := c.next(t)
					if ev.Data != strconv.Itoa(i) {
						t.Fatalf("client %d: event %d has data %q, want %q (gap or duplicate at the seam)", ci, i, ev.Data, strconv.Itoa(i))
					}
				}
			}
		})
	}
}

func TestPrivateUpdates(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e := newEnv(t, m.cfg)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				sub := broker.Subscription{Topics: []string{"*"}}
				if r.URL.Query().Get("auth") == "1" {
					sub.Private = []string{"https://example.com/users/{id}"}
				}
				e.b.Subscribe(w, r, sub)
			}))
			t.Cleanup(srv.Close) // after the clients' bodies are closed
			get := func(q string) *client {
				resp, err := http.Get(srv.URL + "/?" + q)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { resp.Body.Close() })
				return &client{resp, sse.NewDecoder(resp.Body)}
			}
			anon, authed := get(""), get("auth=1")
			waitSubscribers(t, e.b, 2)
			priv := e.publish("https://example.com/users/7", "secret", true)
			other := e.publish("https://example.com/admin", "admin only", true)
			pub := e.publish("https://example.com/news", "public", false)
			if ev := anon.next(t); ev.ID != pub.ID {
				t.Errorf("anonymous subscriber got %q, want only the public %q", ev.Data, pub.Data)
			}
			for _, w := range []store.Update{priv, pub} {
				if ev := authed.next(t); ev.ID != w.ID {
					t.Errorf("authorized subscriber got %q, want %q (and never %q)", ev.Data, w.Data, other.Data)
				}
			}
		})
	}
}

func TestMultiTopicUpdateDeliveredOnce(t *testing.T) {
	e := newEnv(t, broker.Config{})
	c := e.subscribe("topic=a&topic=b&topic=*", nil)
	waitSubscribers(t, e.b, 1)
	u1, err := e.b.Publish(context.Background(), store.Update{Topics: []string{"a", "b", "c"}, Data: "once"})
	if err != nil {
		t.Fatal(err)
	}
	u2 := e.publish("a", "next", false)
	for _, w := range []store.Update{u1, u2} {
		if ev := c.next(t); ev.ID != w.ID {
			t.Fatalf("Next() = %q, want %q", ev.Data, w.Data)
		}
	}
}

func TestHeartbeat(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			cfg := m.cfg
			cfg.Heartbeat = 20 * time.Millisecond
			e := newEnv(t, cfg)
			c := e.subscribe("topic=a", nil)
			br := bufio.NewReader(c.resp.Body)
			deadline := time.Now().Add(10 * time.Second)
			for time.Now().Before(deadline) {
				line, err := br.ReadString('\n')
				if err != nil {
					t.Fatalf("read: %v", err)
				}
				if strings.HasPrefix(line, ":") {
					return
				}
			}
			t.Fatal("no heartbeat comment")
		})
	}
}

// TestHeartbeatEveryInterval checks that idle streams get their comment
// about once per interval, also for an interval shorter than the broker's
// heartbeat slots can spread over at one slot per millisecond. The bound is
// loose (4 of the ~10 due) so that a loaded machine does not fail it; a
// broker that visited each stream only once per second would send 2.
func TestHeartbeatEveryInterval(t *testing.T) {
	cfg := broker.Config{Heartbeat: 200 * time.Millisecond}
	e := newEnv(t, cfg)
	const streams, window, want = 3, 2 * time.Second, 4
	counts := make(chan int, streams)
	for range streams {
		c := e.subscribe("topic=a", nil)
		go func() {
			n := 0
			br := bufio.NewReader(c.resp.Body)
			deadline := time.Now().Add(window)
			for time.Now().Before(deadline) {
				line, err := br.ReadString('\n')
				if err != nil {
					break
				}
				if strings.HasPrefix(line, ":") {
					n++
				}
			}
			counts <- n
		}()
	}
	for range streams {
		if n := <-counts; n < want {
			t.Errorf("a stream idle for %v got %d heartbeats at a 200ms interval, want at least %d", window, n, want)
		}
	}
}

// TestSlowConsumerIsolated: one client never reads, another does. The reader
// gets every event, the publisher never waits, and the stuck client is
// disconnected once its backlog passes MaxPending.
func TestSlowConsumerIsolated(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			cfg := m.cfg
			cfg.MaxPending = 2 << 20
			cfg.WriteTimeout = 2 * time.Second
			e := newEnv(t, cfg)
			// The stuck client: a raw connection that sends the request and
			// never reads, with a tiny receive buffer.
			addr := strings.TrimPrefix(e.srv.URL, "http://")
			raw, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			raw.(*net.TCPConn).SetReadBuffer(4096)
			fmt.Fprintf(raw, "GET /?topic=a HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
			good := e.subscribe("topic=a", nil)
			waitSubscribers(t, e.b, 2)

			payload := strings.Repeat("x", 8<<10)
			const n = 2000 // 16 MiB in all: far beyond socket buffers and MaxPending
			got := make(chan error, 1)
			var read atomic.Int64
			go func() {
				for i := range n {
					read.Store(int64(i))
					ev, err := good.dec.Next()
					if err != nil {
						got <- err
						return
					}
					if want := strconv.Itoa(i) + payload; ev.Data != want {
						got <- fmt.Errorf("event %d: data %.10q..., want %.10q...", i, ev.Data, want)
						return
					}
				}
				got <- nil
			}()
			for i := range n {
				e.publish("a", strconv.Itoa(i)+payload, false)
				// Stay within a burst the reader can absorb (100 events,
				// 800 KiB): only the stuck client passes MaxPending.
				for deadline := time.Now().Add(10 * time.Second); int64(i)-read.Load() > 100 && time.Now().Before(deadline); {
					time.Sleep(time.Millisecond)
				}
			}
			select {
			case err := <-got:
				if err != nil {
					t.Fatalf("reading client: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("reading client did not receive every event")
			}
			if s := e.b.Stats(); s.Dropped < 1 {
				t.Errorf("Stats().Dropped = %d, want ≥ 1 (the stuck client)", s.Dropped)
			}
		})
	}
}

// TestShutdownEndsStreams checks that Shutdown ends open streams so that
// http.Server.Shutdown returns at once.
func TestShutdownEndsStreams(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			st := memstore.New(memstore.Config{})
			defer st.Close()
			b, err := broker.New(st, m.cfg)
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(b)
			defer srv.Close()
			var bodies []io.ReadCloser
			for range 5 {
				resp, err := http.Get(srv.URL + "/?topic=a")
				if err != nil {
					t.Fatal(err)
				}
				bodies = append(bodies, resp.Body)
			}
			waitSubscribers(t, b, 5)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := b.Shutdown(ctx); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			if err := srv.Config.Shutdown(ctx); err != nil {
				t.Fatalf("http.Server.Shutdown after broker Shutdown: %v", err)
			}
			for i, body := range bodies {
				if _, err := io.ReadAll(body); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Errorf("stream %d: read after shutdown: %v", i, err)
				}
				body.Close()
			}
			if _, err := b.Publish(context.Background(), store.Update{Topics: []string{"a"}}); !errors.Is(err, broker.ErrShutdown) {
				t.Errorf("Publish after Shutdown = %v, want ErrShutdown", err)
			}
		})
	}
}

// noHijack hides the connection's Hijacker, as some middleware does.
type noHijack struct{ http.ResponseWriter }

func (w noHijack) Flush() { w.ResponseWriter.(http.Flusher).Flush() }

func TestBehindMiddlewareWithoutHijack(t *testing.T) {
	e := newEnv(t, broker.Config{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.b.ServeHTTP(noHijack{w}, r)
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/?topic=a")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	waitSubscribers(t, e.b, 1)
	u := e.publish("a", "through middleware", false)
	c := &client{resp, sse.NewDecoder(resp.Body)}
	if ev := c.next(t); ev.ID != u.ID {
		t.Fatalf("Next().ID = %q, want %q", ev.ID, u.ID)
	}
	if s := e.b.Stats(); s.Parked != 0 {
		t.Errorf("Stats().Parked = %d, want 0 behind a wrapper that cannot hijack", s.Parked)
	}
}

func TestMethodNotAllowed(t *testing.T) {
	e := newEnv(t, broker.Config{})
	resp, err := http.Post(e.srv.URL, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST status = %d, want 405", resp.StatusCode)
	}
}

func waitSubscribers(t *testing.T, b *broker.Broker, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for b.Stats().Subscribers < n {
		if time.Now().After(deadline) {
			t.Fatalf("Stats().Subscribers = %d, want %d", b.Stats().Subscribers, n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestMatcher(t *testing.T) {
	tests := []struct {
		selectors []string
		topic     string
		want      bool
	}{
		{[]string{"a"}, "a", true},
		{[]string{"a"}, "b", false},
		{[]string{"*"}, "anything", true},
		{[]string{"https://example.com/books/{id}"}, "https://example.com/books/1", true},
		{[]string{"https://example.com/books/{id}"}, "https://example.com/authors/1", false},
		{[]string{"x", "https://example.com/{+path}"}, "https://example.com/a/b", true},
		{nil, "a", false},
	}
	for _, tt := range tests {
		m, err := broker.NewMatcher(tt.selectors)
		if err != nil {
			t.Fatalf("NewMatcher(%q): %v", tt.selectors, err)
		}
		if got := m.Match(tt.topic); got != tt.want {
			t.Errorf("NewMatcher(%q).Match(%q) = %v, want %v", tt.selectors, tt.topic, got, tt.want)
		}
	}
	for _, bad := range [][]string{{""}, {"https://example.com/{unclosed"}} {
		if _, err := broker.NewMatcher(bad); err == nil {
			t.Errorf("NewMatcher(%q) = nil error, want error", bad)
		}
	}
}

func TestMaxSubscribers(t *testing.T) {
	e := newEnv(t, broker.Config{MaxSubscribers: 2})
	e.subscribe("topic=a", nil)
	e.subscribe("topic=b", nil)
	waitSubscribers(t, e.b, 2)
	resp, err := http.Get(e.srv.URL + "/?topic=c")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("third subscriber: %d (Retry-After %q) %q, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
}
