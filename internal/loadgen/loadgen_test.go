package loadgen_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/herald-sse/herald/internal/loadgen"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testHub is a tiny SSE hub: GET subscribes, POST (form field data)
// sends "data: <data>" to every subscriber. It answers with a chunked body
// (net/http's default) or, with identity set, with a close-delimited body
// written on a hijacked connection.
type testHub struct {
	identity bool
	// endAfter, if positive, ends every stream after that many events.
	endAfter int
	// beforeAnswer, if set, runs before each publish is answered.
	beforeAnswer func()
	// posted is closed at the first publish.
	posted     chan struct{}
	postedOnce sync.Once

	mu      sync.Mutex
	subs    map[chan string]struct{}
	sources map[string]int // subscriber remote IPs
	n       int            // events published

	done chan struct{}
	wg   sync.WaitGroup // hijacked streams
}

func newTestHub(t *testing.T, h *testHub) *httptest.Server {
	t.Helper()
	h.subs = make(map[chan string]struct{})
	h.sources = make(map[string]int)
	h.done = make(chan struct{})
	h.posted = make(chan struct{})
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		close(h.done)
		srv.Close()
		h.wg.Wait()
	})
	return srv
}

func (h *testHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost:
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		h.n++
		msg := fmt.Sprintf("id: %d\ndata: %s\n\n", h.n, r.PostForm.Get("data"))
		end := h.endAfter > 0 && h.n >= h.endAfter
		for ch := range h.subs {
			select {
			case ch <- msg:
			default: // the test buffers are large enough; a drop shows as loss
			}
			if end {
				close(ch)
				delete(h.subs, ch)
			}
		}
		n := h.n
		h.mu.Unlock()
		h.postedOnce.Do(func() { close(h.posted) })
		if h.beforeAnswer != nil {
			h.beforeAnswer()
		}
		fmt.Fprintf(w, "urn:uuid:%d", n)
	case http.MethodGet:
		if r.URL.Query().Get("topic") != "bench" {
			http.Error(w, "no topic", http.StatusUnauthorized)
			return
		}
		ch := make(chan string, 256)
		h.mu.Lock()
		h.subs[ch] = struct{}{}
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		h.sources[host]++
		h.mu.Unlock()
		defer func() {
			h.mu.Lock()
			delete(h.subs, ch)
			h.mu.Unlock()
		}()
		if h.identity {
			h.serveIdentity(w, ch)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		fmt.Fprint(w, ": hello\n\n")
		if rc.Flush() != nil {
			return
		}
		for {
			select {
			case msg, ok := <-ch:
				if !ok {
					return
				}
				fmt.Fprint(w, msg)
				if rc.Flush() != nil {
					return
				}
			case <-r.Context().Done():
				return
			case <-h.done:
				return
			}
		}
	}
}

func (h *testHub) serveIdentity(w http.ResponseWriter, ch chan string) {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	h.wg.Add(1)
	defer h.wg.Done()
	defer conn.Close()
	brw.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n: hello\n\n")
	if brw.Flush() != nil {
		return
	}
	for {
		select {
		case msg, ok := <-ch:
			if !ok {
				return
			}
			if _, err := conn.Write([]byte(msg)); err != nil {
				return
			}
		case <-h.done:
			return
		}
	}
}

func (h *testHub) subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

func urls(srv *httptest.Server) (sub, pub string) {
	return srv.URL + "/.well-known/mercure?topic=bench", srv.URL + "/.well-known/mercure"
}

func TestRun(t *testing.T) {
	const subs, events = 200, 20
	for _, tc := range []struct {
		name       string
		identity   bool
		goroutines bool
		pid        bool
	}{
		{name: "chunked"},
		{name: "identity", identity: true},
		{name: "goroutine readers", goroutines: true},
		{name: "identity goroutine readers", identity: true, goroutines: true},
		{name: "pid", pid: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &testHub{identity: tc.identity}
			srv := newTestHub(t, h)
			sub, pub := urls(srv)
			cfg := loadgen.Config{
				SubURL:      sub,
				PubURL:      pub,
				Subscribers: subs,
				Events:      events,
				Rate:        400,
				Settle:      10 * time.Millisecond,
			}
			if tc.goroutines {
				loadgen.UseGoroutineReaders(&cfg)
			}
			if tc.pid {
				cfg.PID = os.Getpid() // the test hub runs in this process
			}
			res, err := loadgen.Run(t.Context(), cfg)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			checks := []struct {
				name      string
				got, want any
			}{
				{"Connected", res.Connected, subs},
				{"ConnectErrors", res.ConnectErrors, 0},
				{"Published", res.Published, uint64(events)},
				{"PublishErrors", res.PublishErrors, uint64(0)},
				{"Expected", res.Expected, uint64(subs * events)},
				{"Received", res.Received, uint64(subs * events)},
				{"Lost", res.Lost, uint64(0)},
				{"OutOfOrder", res.OutOfOrder, uint64(0)},
				{"Duplicates", res.Duplicates, uint64(0)},
				{"Disconnects", res.Disconnects, 0},
				{"LatencyUs.Count", res.LatencyUs.Count, int64(subs * events)},
				{"PublishUs.Count", res.PublishUs.Count, int64(events)},
				{"ConnectUs.Count", res.ConnectUs.Count, int64(subs)},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("Run: %s = %v, want %v", c.name, c.got, c.want)
				}
			}
			wantClock := "kernel"
			if tc.goroutines {
				wantClock = "user"
			}
			if res.ReceiveClock != wantClock {
				t.Errorf("Run: ReceiveClock = %q, want %q", res.ReceiveClock, wantClock)
			}
			l := res.LatencyUs
			if !(l.Min > 0 && l.Min <= l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max) {
				t.Errorf("Run: LatencyUs = %+v, want 0 < min <= p50 <= p90 <= p99 <= p999 <= max", l)
			}
			if l.Max > 10_000_000 {
				t.Errorf("Run: LatencyUs.Max = %dµs, want < 10s on loopback", l.Max)
			}
			if res.DeliveriesPerSec <= 0 || res.PublishesPerSec <= 0 {
				t.Errorf("Run: DeliveriesPerSec = %v, PublishesPerSec = %v, want > 0", res.DeliveriesPerSec, res.PublishesPerSec)
			}
			if tc.pid {
				if res.ServerRSSBeforeBytes <= 0 || res.ServerRSSConnectedBytes <= 0 || res.ServerRSSAfterBytes <= 0 {
					t.Errorf("Run: server RSS = %d, %d, %d, want > 0", res.ServerRSSBeforeBytes, res.ServerRSSConnectedBytes, res.ServerRSSAfterBytes)
				}
				if res.ServerCPUSeconds < 0 || res.ServerCPUSeconds != res.ServerCPUSeconds {
					t.Errorf("Run: ServerCPUSeconds = %v, want >= 0", res.ServerCPUSeconds)
				}
			}
			waitNoSubscribers(t, h)
		})
	}
}

// waitNoSubscribers checks that Run closed its connections.
func waitNoSubscribers(t *testing.T, h *testHub) {
	t.Helper()
	if h.identity {
		return // hijacked streams notice a closed peer only when they write
	}
	deadline := time.Now().Add(5 * time.Second)
	for h.subscribers() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("after Run: %d subscribers still connected, want 0", h.subscribers())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRunJSON(t *testing.T) {
	srv := newTestHub(t, &testHub{})
	sub, pub := urls(srv)
	res, err := loadgen.Run(t.Context(), loadgen.Config{SubURL: sub, PubURL: pub, Subscribers: 10, Events: 5, Rate: 500})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatalf("json.Marshal(Result): %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("json.Unmarshal(%s): %v", b, err)
	}
	for _, k := range []string{
		"sub_url", "pub_url", "pid", "subscribers", "publishers", "rate", "size",
		"connected", "connect_errors", "connect_seconds", "connect_us",
		"server_rss_before_bytes", "server_rss_connected_bytes", "server_rss_after_bytes", "server_rss_per_subscriber_bytes",
		"warmup_events", "published", "publish_errors", "publish_seconds", "publishes_per_sec", "publish_us",
		"expected", "received", "lost", "loss_ratio", "out_of_order", "duplicates", "disconnects",
		"deliveries_per_sec", "latency_us", "receive_clock",
		"server_cpu_seconds", "server_cpu_us_per_delivery", "generator_cpu_seconds", "generator_cpu_us_per_delivery",
	} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON %s: no field %q", b, k)
		}
	}
	lat, _ := m["latency_us"].(map[string]any)
	for _, k := range []string{"count", "min", "mean", "p50", "p90", "p99", "p999", "max"} {
		if v, ok := lat[k].(float64); !ok || v <= 0 {
			t.Errorf("JSON latency_us.%s = %v, want > 0", k, lat[k])
		}
	}
	if got := m["received"]; got != float64(50) {
		t.Errorf("JSON received = %v, want 50", got)
	}
}

func TestRunWarmupAndProgress(t *testing.T) {
	const subs = 20
	srv := newTestHub(t, &testHub{})
	sub, pub := urls(srv)
	var (
		mu     sync.Mutex
		phases = map[string]bool{}
		last   loadgen.Progress
	)
	res, err := loadgen.Run(t.Context(), loadgen.Config{
		SubURL: sub, PubURL: pub, Subscribers: subs,
		Rate: 100, Warmup: 150 * time.Millisecond, Events: 10,
		ProgressInterval: 20 * time.Millisecond,
		Progress: func(p loadgen.Progress) {
			mu.Lock()
			defer mu.Unlock()
			phases[p.Phase] = true
			last = p
		},
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.WarmupEvents < 5 || res.WarmupEvents > 25 {
		t.Errorf("Run: WarmupEvents = %d, want about 15", res.WarmupEvents)
	}
	if res.Published != 10 || res.Received != 10*subs || res.Lost != 0 {
		t.Errorf("Run: Published, Received, Lost = %d, %d, %d, want 10, %d, 0", res.Published, res.Received, res.Lost, 10*subs)
	}
	if res.LatencyUs.Count != 10*subs {
		t.Errorf("Run: LatencyUs.Count = %d, want %d (warmup excluded)", res.LatencyUs.Count, 10*subs)
	}
	mu.Lock()
	defer mu.Unlock()
	if !phases["warmup"] || !phases["publish"] {
		t.Errorf("Progress phases = %v, want warmup and publish", phases)
	}
	if last.Published == 0 || last.Received == 0 {
		t.Errorf("last Progress = %+v, want published and received > 0", last)
	}
}

func TestRunIdle(t *testing.T) {
	h := &testHub{}
	srv := newTestHub(t, h)
	sub, _ := urls(srv)
	var seen int
	res, err := loadgen.Run(t.Context(), loadgen.Config{
		SubURL: sub, Subscribers: 50, Duration: 50 * time.Millisecond, Rate: 5,
		ConnectRate: 2000, PID: os.Getpid(), Settle: 10 * time.Millisecond,
		Progress: func(p loadgen.Progress) {
			if p.Phase == "idle" {
				seen = max(seen, h.subscribers())
			}
		},
		ProgressInterval: 5 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.Connected != 50 || res.Published != 0 || res.Expected != 0 || res.Rate != 0 || res.PubURL != "" {
		t.Errorf("Run(idle): Connected, Published, Expected, Rate, PubURL = %d, %d, %d, %v, %q, want 50, 0, 0, 0, \"\"", res.Connected, res.Published, res.Expected, res.Rate, res.PubURL)
	}
	if seen != 50 {
		t.Errorf("Run(idle): hub saw %d subscribers while idle, want 50", seen)
	}
	// 50 connections paced at 2000/s take at least 24.5ms.
	if res.ConnectSeconds < 0.024 {
		t.Errorf("Run(idle): ConnectSeconds = %v, want >= 0.024 at ConnectRate 2000", res.ConnectSeconds)
	}
	if res.ServerRSSConnectedBytes <= 0 {
		t.Errorf("Run(idle): ServerRSSConnectedBytes = %d, want > 0", res.ServerRSSConnectedBytes)
	}
	waitNoSubscribers(t, h)
}

func TestRunSourceIPs(t *testing.T) {
	h := &testHub{}
	srv := newTestHub(t, h)
	sub, pub := urls(srv)
	srcs, err := loadgen.ParseSourceIPs("127.0.0.1-127.0.0.4")
	if err != nil {
		t.Fatal(err)
	}
	res, err := loadgen.Run(t.Context(), loadgen.Config{SubURL: sub, PubURL: pub, Subscribers: 40, Events: 3, SourceIPs: srcs})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.Received != 120 {
		t.Errorf("Run: Received = %d, want 120", res.Received)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, a := range srcs {
		if h.sources[a.String()] != 10 {
			t.Errorf("hub saw %d subscribers from %s, want 10 (all: %v)", h.sources[a.String()], a, h.sources)
		}
	}
}

func TestRunServerEndsStreams(t *testing.T) {
	for _, identity := range []bool{false, true} {
		t.Run(fmt.Sprintf("identity=%v", identity), func(t *testing.T) {
			h := &testHub{identity: identity, endAfter: 3}
			srv := newTestHub(t, h)
			sub, pub := urls(srv)
			res, err := loadgen.Run(t.Context(), loadgen.Config{
				SubURL: sub, PubURL: pub, Subscribers: 30, Events: 6, Rate: 200,
				DrainTimeout: 200 * time.Millisecond,
			})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if res.Disconnects != 30 || res.Received != 90 || res.Lost != 90 || res.LossRatio != 0.5 {
				t.Errorf("Run: Disconnects, Received, Lost, LossRatio = %d, %d, %d, %v, want 30, 90, 90, 0.5",
					res.Disconnects, res.Received, res.Lost, res.LossRatio)
			}
		})
	}
}

func TestRunErrors(t *testing.T) {
	srv := newTestHub(t, &testHub{})
	sub, pub := urls(srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/"
	ln.Close()
	for _, tc := range []struct {
		name    string
		cfg     loadgen.Config
		wantErr string
	}{
		{"https", loadgen.Config{SubURL: "https://127.0.0.1/x"}, "scheme must be http"},
		{"no placeholder", loadgen.Config{SubURL: sub, PubURL: pub, PubBody: "topic=x&data=y"}, "{{payload}}"},
		{"negative", loadgen.Config{SubURL: sub, Subscribers: -1}, "negative"},
		{"status", loadgen.Config{SubURL: srv.URL + "/?topic=other", Subscribers: 3}, "status 401"},
		{"refused", loadgen.Config{SubURL: closed, Subscribers: 2, ConnectTimeout: time.Second}, "no subscriber connected"},
		{"no such pid", loadgen.Config{SubURL: sub, PID: 1 << 30}, "loadgen: rss"},
		{"too many fds", loadgen.Config{SubURL: sub, Subscribers: 1 << 30}, "RLIMIT_NOFILE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := loadgen.Run(t.Context(), tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Run(%+v) error = %v, want it to contain %q", tc.cfg, err, tc.wantErr)
			}
			if tc.name == "status" && (res.ConnectErrors != 3 || !strings.Contains(res.ConnectError, "401")) {
				t.Errorf("Run: ConnectErrors, ConnectError = %d, %q, want 3, status 401", res.ConnectErrors, res.ConnectError)
			}
		})
	}
}

func TestRunPublishErrors(t *testing.T) {
	srv := newTestHub(t, &testHub{})
	sub, _ := urls(srv)
	res, err := loadgen.Run(t.Context(), loadgen.Config{
		SubURL: sub, PubURL: srv.URL + "/publish", PubBody: "data=%zz{{payload}}",
		Subscribers: 2, Events: 4, Rate: 1000,
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.Published != 0 || res.PublishErrors != 4 || !strings.Contains(res.PublishError, "400") {
		t.Errorf("Run: Published, PublishErrors, PublishError = %d, %d, %q, want 0, 4, status 400", res.Published, res.PublishErrors, res.PublishError)
	}
}

func TestRunCanceled(t *testing.T) {
	srv := newTestHub(t, &testHub{})
	sub, pub := urls(srv)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	res, err := loadgen.Run(ctx, loadgen.Config{SubURL: sub, PubURL: pub, Subscribers: 5, Rate: 50, Duration: time.Hour})
	if err == nil || !strings.Contains(err.Error(), context.DeadlineExceeded.Error()) {
		t.Errorf("Run(canceled) error = %v, want %v", err, context.DeadlineExceeded)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("Run(canceled) took %v, want it to stop soon after ctx", time.Since(start))
	}
	if res.Connected != 5 || res.Published == 0 || res.Received == 0 {
		t.Errorf("Run(canceled): Connected, Published, Received = %d, %d, %d, want 5 and partial figures", res.Connected, res.Published, res.Received)
	}
}

// TestIdleConnPlaceholder checks that {{n}} in an idle run's subscribe URL
// gives every connection its own topic, and is refused when publishing.
func TestIdleConnPlaceholder(t *testing.T) {
	var mu sync.Mutex
	topics := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		topics[r.URL.Query().Get("topic")] = true
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		http.NewResponseController(w).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	_, err := loadgen.Run(t.Context(), loadgen.Config{
		SubURL:      srv.URL + "/?topic=t-{{n}}",
		Subscribers: 20,
		Duration:    100 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for i := range 20 {
		if !topics[fmt.Sprintf("t-%d", i)] {
			t.Errorf("no subscriber asked for topic t-%d; got %v", i, topics)
		}
	}
	if _, err := loadgen.Run(t.Context(), loadgen.Config{SubURL: srv.URL + "/?topic=t-{{n}}", PubURL: srv.URL}); err == nil {
		t.Error("Run with {{n}} and a publish URL = nil error, want an error")
	}
}

// TestRunSeveralURLs spreads the subscribers and the publishers over two
// hubs: connection i goes to hub i mod 2, publisher j to hub j mod 2.
func TestRunSeveralURLs(t *testing.T) {
	h1, h2 := &testHub{}, &testHub{}
	// A publisher has one publish in flight at a time, so holding the
	// first hub's answers until the second hub has a publish makes the
	// second publisher post one: without this, the first publisher could
	// take every event of the shared schedule before the second starts.
	h1.beforeAnswer = func() {
		select {
		case <-h2.posted:
		case <-time.After(10 * time.Second): // fails below, without hanging
		}
	}
	sub1, pub1 := urls(newTestHub(t, h1))
	sub2, pub2 := urls(newTestHub(t, h2))
	cfg := loadgen.Config{
		SubURL: sub1, SubURLs: []string{sub2},
		PubURL: pub1, PubURLs: []string{pub2},
		Subscribers: 6, Publishers: 2, Events: 20, Rate: 0,
		DrainTimeout: time.Millisecond, // the two test hubs do not share updates: half are never delivered
	}
	res, err := loadgen.Run(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.Connected != 6 || res.Published != 20 {
		t.Fatalf("Run over two hubs: connected %d, published %d; want 6 and 20", res.Connected, res.Published)
	}
	h1.mu.Lock()
	n1, s1 := h1.n, h1.sources
	h1.mu.Unlock()
	h2.mu.Lock()
	n2, s2 := h2.n, h2.sources
	h2.mu.Unlock()
	count := func(m map[string]int) (n int) {
		for _, v := range m {
			n += v
		}
		return n
	}
	if count(s1) != 3 || count(s2) != 3 {
		t.Errorf("subscribers per hub = %d, %d; want 3 and 3", count(s1), count(s2))
	}
	if n1 == 0 || n2 == 0 || n1+n2 < 20 {
		t.Errorf("publishes per hub = %d, %d; want both hubs used, 20 or more in all (warmup excluded)", n1, n2)
	}
	if strings.Join(res.SubURLs, " ") != sub2 || strings.Join(res.PubURLs, " ") != pub2 {
		t.Errorf("Result SubURLs %q PubURLs %q, want [%s] [%s]", res.SubURLs, res.PubURLs, sub2, pub2)
	}
}

func TestSeveralURLsErrors(t *testing.T) {
	for _, cfg := range []loadgen.Config{
		{SubURL: "http://127.0.0.1:1/x", SubURLs: []string{"https://127.0.0.1:1/x"}},
		{SubURL: "http://127.0.0.1:1/x", PubURLs: []string{"http://127.0.0.1:1/x"}},
		{SubURL: "http://127.0.0.1:1/x", PubURL: "http://127.0.0.1:1/x", PubURLs: []string{"ftp://127.0.0.1:1/x"}},
	} {
		if _, err := loadgen.Run(t.Context(), cfg); err == nil {
			t.Errorf("Run(%+v) = nil error, want one", cfg)
		}
	}
}
