package broker_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-sse/herald/broker"
	"github.com/herald-sse/herald/sse"
	"github.com/herald-sse/herald/store"
	"github.com/herald-sse/herald/store/memstore"
)

// gateStore wraps a store so that a test can hold one call at a chosen
// moment, count calls, fail Last, or report a log reset: the bad cases of
// the delivery guarantee, driven deterministically.
type gateStore struct {
	store.Store

	mu        sync.Mutex
	holdRead  chan struct{} // when set, the next Read signals entered and waits for it to close
	entered   chan struct{}
	lastErr   error // returned by Last while set
	resetWait bool  // the next Wait returns store.ErrLogReset
	reads     atomic.Int64
}

func (g *gateStore) Read(ctx context.Context, after uint64, limit int) ([]store.Update, error) {
	g.reads.Add(1)
	g.mu.Lock()
	hold, entered := g.holdRead, g.entered
	g.holdRead = nil
	g.mu.Unlock()
	if hold != nil {
		close(entered)
		<-hold
	}
	return g.Store.Read(ctx, after, limit)
}

func (g *gateStore) Wait(ctx context.Context, after uint64) error {
	g.mu.Lock()
	reset := g.resetWait
	g.resetWait = false
	g.mu.Unlock()
	if reset {
		return fmt.Errorf("gate: %w", store.ErrLogReset)
	}
	return g.Store.Wait(ctx, after)
}

func (g *gateStore) Last(ctx context.Context) (uint64, string, error) {
	g.mu.Lock()
	err := g.lastErr
	g.mu.Unlock()
	if err != nil {
		return 0, "", err
	}
	return g.Store.Last(ctx)
}

// holdNextRead makes the next Read wait until release is called; entered
// is closed once that Read has begun.
func (g *gateStore) holdNextRead() (entered <-chan struct{}, release func()) {
	hold, ent := make(chan struct{}), make(chan struct{})
	g.mu.Lock()
	g.holdRead, g.entered = hold, ent
	g.mu.Unlock()
	return ent, func() { close(hold) }
}

func (g *gateStore) failLast(err error) {
	g.mu.Lock()
	g.lastErr = err
	g.mu.Unlock()
}

// newGateEnv is newEnv over a gateStore around a memstore of maxLen.
func newGateEnv(t *testing.T, cfg broker.Config, maxLen int) (*env, *gateStore) {
	t.Helper()
	mem := memstore.New(memstore.Config{MaxLen: maxLen})
	g := &gateStore{Store: mem}
	return newEnvOn(t, cfg, g, mem), g
}

// readToEnd reads events until the stream ends and returns them.
func (c *client) readToEnd(t *testing.T) []sse.Event {
	t.Helper()
	type res struct {
		evs []sse.Event
		err error
	}
	ch := make(chan res, 1)
	go func() {
		var evs []sse.Event
		for {
			ev, err := c.dec.Next()
			if err != nil {
				ch <- res{evs, err}
				return
			}
			evs = append(evs, ev)
		}
	}()
	select {
	case r := <-ch:
		if !errors.Is(r.err, io.EOF) {
			t.Fatalf("stream ended with %v, want EOF", r.err)
		}
		return r.evs
	case <-time.After(10 * time.Second):
		c.resp.Body.Close()
		<-ch
		t.Fatal("stream did not end within 10s")
		return nil
	}
}

func ids(evs []sse.Event) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, ev.ID)
	}
	return out
}

// TestTailCursorGoneEndsStreams: the tail falls behind the retained history
// (its Read is held while more than the whole history is published). The
// stream must end instead of going on with a hole, and the reconnecting
// client must be told Last-Event-ID: earliest.
func TestTailCursorGoneEndsStreams(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e, g := newGateEnv(t, m.cfg, 10)
			c := e.subscribe("topic=a", nil)
			waitSubscribers(t, e.b, 1)
			first := e.publish("a", "0", false)
			if ev := c.next(t); ev.ID != first.ID {
				t.Fatalf("first event %q, want %q", ev.ID, first.ID)
			}
			entered, release := g.holdNextRead()
			e.publish("a", "1", false) // wakes the tail, whose Read is held
			<-entered
			for i := 2; i < 25; i++ { // the memstore keeps 10: "1" and more are trimmed
				e.publish("a", fmt.Sprint(i), false)
			}
			release()
			if evs := c.readToEnd(t); len(evs) != 0 {
				t.Errorf("stream delivered %v after the gap, want it to end", ids(evs))
			}
			if s := e.b.Stats(); s.Gaps != 1 {
				t.Errorf("Stats().Gaps = %d, want 1", s.Gaps)
			}
			waitFor(t, "no subscribers", func() bool { return e.b.Stats().Subscribers == 0 })
			again := e.subscribe("topic=a", http.Header{"Last-Event-Id": {first.ID}})
			if got := again.resp.Header.Get("Last-Event-ID"); got != "earliest" {
				t.Errorf("reconnect: Last-Event-ID header %q, want earliest", got)
			}
			if ev := again.next(t); ev.Data != "15" {
				t.Errorf("reconnect: first event %q, want the oldest retained, 15", ev.Data)
			}
		})
	}
}

// TestReplayCursorGoneEndsStream: a replay from the store loses its cursor
// to trimming half-way. The stream must end after the complete events it
// wrote, and count a gap.
func TestReplayCursorGoneEndsStream(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			cfg := m.cfg
			cfg.ReplayBatch = 2
			cfg.ReplayCache = -1 // replay from the store
			e, g := newGateEnv(t, cfg, 10)
			var us []store.Update
			for i := range 10 {
				us = append(us, e.publish("a", fmt.Sprint(i), false))
			}
			waitFor(t, "the tail to catch up", func() bool { return e.b.Stats().Published == 10 })
			// The replay's first Read (us[1], us[2]) passes; its second is
			// held while ten more updates trim everything it owes.
			ent, rel := g.holdNextRead()
			done := make(chan *client, 1)
			go func() {
				done <- e.subscribe("topic=a", http.Header{"Last-Event-Id": {us[0].ID}})
			}()
			<-ent
			ent2, rel2 := g.holdNextRead()
			rel()
			<-ent2
			for i := 10; i < 20; i++ {
				e.publish("a", fmt.Sprint(i), false)
			}
			rel2()
			c := <-done
			evs := c.readToEnd(t)
			if got, want := ids(evs), ids([]sse.Event{{ID: us[1].ID}, {ID: us[2].ID}}); strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("replay delivered %v before ending, want %v", got, want)
			}
			if s := e.b.Stats(); s.Gaps != 1 {
				t.Errorf("Stats().Gaps = %d, want 1", s.Gaps)
			}
		})
	}
}

// TestLogResetEndsStreams: the store reports that its log was reset. Every
// stream ends, the reset is counted, and new streams follow the new log.
func TestLogResetEndsStreams(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e, g := newGateEnv(t, m.cfg, 100)
			old := e.publish("a", "before", false)
			waitFor(t, "the tail to catch up", func() bool { return e.b.Stats().Published == 1 })
			c := e.subscribe("topic=a", nil)
			waitSubscribers(t, e.b, 1)
			g.mu.Lock()
			g.resetWait = true
			g.mu.Unlock()
			// Wake the tail's pending Wait; the next Wait reports the reset.
			e.publish("a", "wake", false)
			evs := c.readToEnd(t)
			if len(evs) > 1 {
				t.Errorf("stream delivered %v, want at most the wake-up update then the end", ids(evs))
			}
			if s := e.b.Stats(); s.Resets != 1 {
				t.Errorf("Stats().Resets = %d, want 1", s.Resets)
			}
			waitFor(t, "no subscribers", func() bool { return e.b.Stats().Subscribers == 0 })
			c2 := e.subscribe("topic=a", http.Header{"Last-Event-Id": {old.ID}})
			u := e.publish("a", "after", false)
			for {
				ev := c2.next(t)
				if ev.ID == u.ID {
					break
				}
			}
		})
	}
}

// TestStartWhileStoreDown: a broker whose store is unreachable starts
// unready, refuses subscribers with 503 and Retry-After, and follows the log
// once the store answers.
func TestStartWhileStoreDown(t *testing.T) {
	mem := memstore.New(memstore.Config{})
	defer mem.Close()
	g := &gateStore{Store: mem}
	g.failLast(errors.New("connection refused"))
	b, err := broker.New(g, broker.Config{NoPark: true})
	if err != nil {
		t.Fatalf("New with an unreachable store = %v, want a broker that retries", err)
	}
	srv := httptest.NewServer(b)
	defer func() {
		b.Shutdown(context.Background())
		srv.Close()
	}()
	if b.Ready() {
		t.Error("Ready() = true while the store is unreachable")
	}
	resp, err := http.Get(srv.URL + "/?topic=a")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("subscribe while unready: %d Retry-After %q, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	g.failLast(nil)
	waitFor(t, "Ready", b.Ready)
	e := &env{t, mem, b, srv}
	c := e.subscribe("topic=a", nil)
	u := e.publish("a", "up", false)
	if ev := c.next(t); ev.ID != u.ID {
		t.Errorf("event %q, want %q", ev.ID, u.ID)
	}
}

// TestWriteTimeoutCutsStuckClient: a client that keeps its connection open
// but stops reading is cut within the write timeout on both write paths,
// on a topic that then goes quiet (no backlog ever reaches MaxPending).
func TestWriteTimeoutCutsStuckClient(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			cfg := m.cfg
			cfg.WriteTimeout = 300 * time.Millisecond
			cfg.MaxPending = 256 << 20
			e := newEnv(t, cfg)
			addr := strings.TrimPrefix(e.srv.URL, "http://")
			raw, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			raw.(*net.TCPConn).SetReadBuffer(4096)
			fmt.Fprintf(raw, "GET /?topic=a HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
			waitSubscribers(t, e.b, 1)
			payload := strings.Repeat("x", 256<<10)
			for range 64 { // 16 MiB, then nothing: far beyond the sockets' buffers
				e.publish("a", payload, false)
			}
			waitFor(t, "the stuck client to be cut", func() bool { return e.b.Stats().Subscribers == 0 })
			if s := e.b.Stats(); s.WriteTimeouts != 1 || s.Dropped != 0 {
				t.Errorf("Stats() WriteTimeouts %d Dropped %d, want 1 and 0", s.WriteTimeouts, s.Dropped)
			}
		})
	}
}

// wrapListener wraps every accepted connection, as netutil.LimitListener,
// PROXY-protocol or multiplexing listeners do, and counts what is written
// through the wrappers.
type wrapListener struct {
	net.Listener
	written *atomic.Int64
}

type wrappedConn struct {
	net.Conn
	written *atomic.Int64
}

func (l wrapListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return wrappedConn{c, l.written}, nil
}

func (c wrappedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.written.Add(int64(n))
	return n, err
}

// TestWrappedListenerStreams: a connection that is not a plain socket after
// Hijack is served on its handler goroutine through the wrapper, not parked
// behind it (which answered 200 and then EOF).
func TestWrappedListenerStreams(t *testing.T) {
	st := memstore.New(memstore.Config{})
	defer st.Close()
	b, err := broker.New(st, broker.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var written atomic.Int64
	srv := httptest.NewUnstartedServer(b)
	srv.Listener = wrapListener{srv.Listener, &written}
	srv.Start()
	defer func() {
		b.Shutdown(context.Background())
		srv.Close()
	}()
	e := &env{t, st, b, srv}
	c := e.subscribe("topic=a", nil)
	waitSubscribers(t, b, 1)
	for i := range 3 {
		u := e.publish("a", fmt.Sprint(i), false)
		if ev := c.next(t); ev.ID != u.ID {
			t.Fatalf("event %d: %q, want %q", i, ev.ID, u.ID)
		}
	}
	if s := b.Stats(); s.Parked != 0 {
		t.Errorf("Stats().Parked = %d, want 0 behind a wrapping listener", s.Parked)
	}
	if written.Load() == 0 {
		t.Error("nothing was written through the wrapper")
	}
	c.resp.Body.Close()
	waitFor(t, "the stream to end", func() bool { return b.Stats().Subscribers == 0 }) // the client going away ends it
}

// TestParkedCloseDoesNotTakeBrokerLock: the writer pool reports a parked
// stream's end while a fan-out holds the broker's lock. Its callback must
// return at once (netpoll's contract) and the stream is unregistered once
// the lock is free.
func TestParkedCloseDoesNotTakeBrokerLock(t *testing.T) {
	var ended atomic.Int64
	e := newEnv(t, broker.Config{OnSubscription: func(p broker.Presence) {
		if !p.Active {
			ended.Add(1)
		}
	}})
	c := e.subscribe("topic=a", nil)
	waitFor(t, "a parked stream", func() bool { return e.b.Stats().Parked == 1 })
	unlock := sync.OnceFunc(e.b.LockForTest())
	defer unlock() // a failure below must not leave the lock held for the cleanup
	c.resp.Body.Close()
	waitFor(t, "the writer's Closed to return under the lock", func() bool { return e.b.ParkedForTest() == 0 })
	if n := ended.Load(); n != 0 {
		t.Errorf("the end was reported %d times while the lock was held", n)
	}
	unlock()
	waitFor(t, "no subscribers", func() bool { return e.b.Stats().Subscribers == 0 })
	waitFor(t, "the end to be reported", func() bool { return ended.Load() == 1 })
}

// TestReplayFromCache: a replay inside the cache's window reads nothing from
// the store and delivers exactly what a replay from the store delivers.
func TestReplayFromCache(t *testing.T) {
	for _, cache := range []int{0, -1} {
		t.Run(fmt.Sprintf("ReplayCache=%d", cache), func(t *testing.T) {
			e, g := newGateEnv(t, broker.Config{ReplayCache: cache, ReplayBatch: 7}, 1000)
			var us []store.Update
			for i := range 50 {
				topic := "a"
				if i%3 == 0 {
					topic = "b"
				}
				us = append(us, e.publish(topic, fmt.Sprint(i), i%5 == 0))
			}
			waitFor(t, "the tail to catch up", func() bool { return e.b.Stats().Published == 50 })
			reads := g.reads.Load()
			c := e.subscribe("topic=a", http.Header{"Last-Event-Id": {us[9].ID}})
			var want []string
			for _, u := range us[10:] {
				if u.Topics[0] == "a" && !u.Private {
					want = append(want, u.ID)
				}
			}
			var got []string
			for range want {
				got = append(got, c.next(t).ID)
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("replay = %v, want %v", got, want)
			}
			if n := g.reads.Load() - reads; cache == 0 && n != 0 {
				t.Errorf("replay from the cache read the store %d times", n)
			} else if cache < 0 && n == 0 {
				t.Error("replay without the cache did not read the store")
			}
		})
	}
}

// waitFor polls cond until it holds, failing after a generous deadline (a
// hang, not a speed check).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestSubscriptionUntil: a stream with Subscription.Until (a token's expiry)
// ends then, parked or not, and its timer goes with it.
func TestSubscriptionUntil(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e := newEnv(t, m.cfg)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				e.b.Subscribe(w, r, broker.Subscription{Topics: []string{"a"}, Until: time.Now().Add(time.Second)})
			}))
			defer srv.Close()
			resp, err := http.Get(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			c := &client{resp, sse.NewDecoder(resp.Body)}
			u := e.publish("a", "before expiry", false)
			if ev := c.next(t); ev.ID != u.ID {
				t.Fatalf("event %q, want %q", ev.ID, u.ID)
			}
			c.readToEnd(t)
			waitFor(t, "no subscribers", func() bool { return e.b.Stats().Subscribers == 0 })
		})
	}
}

// TestDispatchSharesTemplateMatches: streams that share a URI template are
// matched through the tail's memo, once per distinct template and update.
func TestDispatchSharesTemplateMatches(t *testing.T) {
	st := memstore.New(memstore.Config{})
	defer st.Close()
	b, err := broker.New(st, broker.Config{NoPark: true, Heartbeat: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Shutdown(context.Background())
	var subs []*broker.BenchSubscriber
	for range 100 {
		subs = append(subs, b.RegisterForBench([]string{"https://example.com/books/{id}"}))
	}
	other := b.RegisterForBench([]string{"https://example.com/users/{id}"})
	if _, err := b.Publish(context.Background(), store.Update{Topics: []string{"https://example.com/books/1"}, Data: "x"}); err != nil {
		t.Fatal(err)
	}
	for i, s := range subs {
		waitFor(t, fmt.Sprintf("subscriber %d to get the update", i), func() bool { return s.Drain() == 1 })
	}
	// The tail set its memo before it queued the update: reading it after
	// the queues were drained is ordered after those writes.
	if n := b.MemoEntriesForTest(); n != 2 {
		t.Errorf("templates matched for the update = %d, want 2 (one per distinct template)", n)
	}
	if other.Drain() != 0 {
		t.Error("the users/{id} subscriber got a books update")
	}
}

// TestDrain: Drain gives every stream, parked or not, the events queued to
// it, then a final retry: spread over [Retry, Retry+spread), then the end;
// a stream that starts while draining gets the same; Drain returns once all
// have ended.
func TestDrain(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			cfg := m.cfg
			cfg.Retry = time.Second
			e := newEnv(t, cfg)
			const n, spread = 20, 5 * time.Second
			var cs []*client
			for range n {
				cs = append(cs, e.subscribe("topic=a", nil))
			}
			waitSubscribers(t, e.b, n)
			u := e.publish("a", "last", false)
			for _, c := range cs {
				if ev := c.next(t); ev.ID != u.ID {
					t.Fatalf("event %q, want %q", ev.ID, u.ID)
				}
			}
			drained := make(chan error, 1)
			go func() { drained <- e.b.Drain(context.Background(), spread) }()
			retries := map[time.Duration]bool{}
			for _, c := range cs {
				c.readToEnd(t)
				r := c.dec.Retry()
				if r < cfg.Retry || r >= cfg.Retry+spread {
					t.Errorf("final retry %v, want in [%v, %v)", r, cfg.Retry, cfg.Retry+spread)
				}
				retries[r] = true
			}
			if len(retries) < n/2 {
				t.Errorf("%d distinct final retries among %d streams: not spread", len(retries), n)
			}
			late := e.subscribe("topic=a", nil)
			late.readToEnd(t)
			if r := late.dec.Retry(); r < cfg.Retry {
				t.Errorf("a stream started while draining: final retry %v", r)
			}
			select {
			case err := <-drained:
				if err != nil {
					t.Errorf("Drain = %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Drain did not return after every stream ended")
			}
		})
	}
}

// TestBytesWritten: Stats counts the event bytes written to subscribers on
// both write paths, replay included.
func TestBytesWritten(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			cfg := m.cfg
			cfg.Retry, cfg.Heartbeat = -1, -1
			e := newEnv(t, cfg)
			first := e.publish("a", "replayed", false)
			c := e.subscribe("topic=a", http.Header{"Last-Event-Id": {"earliest"}})
			c.next(t)
			u := e.publish("a", "live", false)
			c.next(t)
			want := 0
			for _, u := range []store.Update{first, u} {
				b, _ := sse.AppendEvent(nil, sse.Event{ID: u.ID, Data: u.Data})
				want += len(b)
			}
			waitFor(t, "the bytes counted", func() bool { return e.b.Stats().BytesWritten == uint64(want) })
		})
	}
}
