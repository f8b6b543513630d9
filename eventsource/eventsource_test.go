package eventsource_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/herald-sse/herald/eventsource"
	"github.com/herald-sse/herald/sse"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testTimeout bounds every iteration in these tests.
const testTimeout = 10 * time.Second

// script is a test server that answers its n-th request with its n-th
// step and records every request. Requests beyond the steps get 204, which
// ends the client's iteration.
type script struct {
	srv   *httptest.Server
	steps []http.HandlerFunc

	mu   sync.Mutex
	reqs []*http.Request
}

func newScript(t *testing.T, steps ...http.HandlerFunc) *script {
	t.Helper()
	s := &script{steps: steps}
	s.srv = httptest.NewServer(s)
	t.Cleanup(s.srv.Close)
	return s
}

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	i := len(s.reqs)
	s.reqs = append(s.reqs, r.Clone(context.Background()))
	s.mu.Unlock()
	if i >= len(s.steps) {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	s.steps[i](w, r)
}

// requests returns the requests received so far.
func (s *script) requests() []*http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reqs)
}

// stream returns a step that answers with an event stream made of parts,
// flushing after each, and then ends the response.
func stream(parts ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		for _, p := range parts {
			if _, err := w.Write([]byte(p)); err != nil {
				return
			}
			if err := http.NewResponseController(w).Flush(); err != nil {
				return
			}
		}
	}
}

// abort returns a step that streams parts and then breaks the connection
// without ending the response.
func abort(parts ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		stream(parts...)(w, r)
		panic(http.ErrAbortHandler)
	}
}

// status returns a step that answers with code, content type ct and body.
func status(code int, ct, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if ct != "" {
			w.Header().Set("Content-Type", ct)
		}
		w.WriteHeader(code)
		_, _ = w.Write([]byte(body))
	}
}

// collect iterates c until the iteration ends and returns the events and
// the final error. It fails the test if any error but the last is non-nil.
func collect(t *testing.T, c *eventsource.Client) ([]sse.Event, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	var evs []sse.Event
	var last error
	for ev, err := range c.Events(ctx) {
		if last != nil {
			t.Fatalf("Events yielded %v after error %v", ev, last)
		}
		if err != nil {
			last = err
			continue
		}
		evs = append(evs, ev)
	}
	return evs, last
}

// newClient is New that fails the test on error. Unless cfg says
// otherwise, it uses the server's client and a 1 ms initial retry.
func newClient(t *testing.T, s *script, cfg eventsource.Config) *eventsource.Client {
	t.Helper()
	if cfg.Client == nil {
		cfg.Client = s.srv.Client()
	}
	if cfg.InitialRetry == 0 {
		cfg.InitialRetry = time.Millisecond
	}
	c, err := eventsource.New(s.srv.URL, cfg)
	if err != nil {
		t.Fatalf("New(%q) = %v", s.srv.URL, err)
	}
	return c
}

// recordSleep makes c record its waits instead of sleeping.
func recordSleep(c *eventsource.Client) *[]time.Duration {
	var waits []time.Duration
	eventsource.SetSleep(c, func(ctx context.Context, d time.Duration) error {
		waits = append(waits, d)
		return ctx.Err()
	})
	return &waits
}

func ev(id, typ, data string) sse.Event {
	return sse.Event{ID: id, Type: typ, Data: data}
}

// countingTransport counts the requests sent through it.
type countingTransport struct {
	base http.RoundTripper
	mu   sync.Mutex
	n    int
}

func (ct *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	ct.mu.Lock()
	ct.n++
	ct.mu.Unlock()
	return ct.base.RoundTrip(r)
}

func TestRequestHeaders(t *testing.T) {
	s := newScript(t, stream("id: 8\ndata: x\n\n"))
	tr := &countingTransport{base: s.srv.Client().Transport}
	c := newClient(t, s, eventsource.Config{
		Client: &http.Client{Transport: tr},
		Header: http.Header{
			"Authorization": {"Bearer tok"},
			"X-Custom":      {"yes"},
			"Accept":        {"text/html"}, // overridden
			"Last-Event-ID": {"bogus"},     // overridden by Config.LastEventID
		},
		LastEventID: "7",
	})
	evs, err := collect(t, c)
	if !errors.Is(err, eventsource.ErrNoContent) {
		t.Fatalf("Events: final error %v, want ErrNoContent", err)
	}
	if want := []sse.Event{ev("8", "message", "x")}; !slices.Equal(evs, want) {
		t.Errorf("Events = %v, want %v", evs, want)
	}
	reqs := s.requests()
	if len(reqs) != 2 {
		t.Fatalf("server got %d requests, want 2", len(reqs))
	}
	if tr.n != 2 {
		t.Errorf("custom transport saw %d requests, want 2", tr.n)
	}
	for i, wantID := range []string{"7", "8"} {
		r := reqs[i]
		for _, h := range []struct{ name, want string }{
			{"Accept", "text/event-stream"},
			{"Cache-Control", "no-cache"},
			{"Authorization", "Bearer tok"},
			{"X-Custom", "yes"},
			{"Last-Event-ID", wantID},
		} {
			if got := r.Header.Values(h.name); len(got) != 1 || got[0] != h.want {
				t.Errorf("request %d: header %s = %q, want [%q]", i, h.name, got, h.want)
			}
		}
		if r.Method != http.MethodGet {
			t.Errorf("request %d: method %s, want GET", i, r.Method)
		}
	}
}

func TestNoLastEventIDHeaderWhenEmpty(t *testing.T) {
	// The first request has no ID; the server sets one, then clears it
	// with an empty id field: no header is sent for an empty ID.
	s := newScript(t,
		stream("id: 3\ndata: a\n\n"),
		stream("id\ndata: b\n\n"),
	)
	c := newClient(t, s, eventsource.Config{Header: http.Header{"Last-Event-ID": {"bogus"}}})
	evs, err := collect(t, c)
	if !errors.Is(err, eventsource.ErrNoContent) {
		t.Fatalf("Events: final error %v, want ErrNoContent", err)
	}
	if want := []sse.Event{ev("3", "message", "a"), ev("", "message", "b")}; !slices.Equal(evs, want) {
		t.Errorf("Events = %v, want %v", evs, want)
	}
	reqs := s.requests()
	for i, want := range [][]string{nil, {"3"}, nil} {
		if got := reqs[i].Header.Values("Last-Event-ID"); !slices.Equal(got, want) {
			t.Errorf("request %d: Last-Event-ID = %q, want %q", i, got, want)
		}
	}
}

func TestEventsInOrder(t *testing.T) {
	s := newScript(t, stream(
		"\xEF\xBB\xBF: a comment\n",
		"data: first\n\n",
		"event: add\nid: 1\ndata: second\ndata: line\n\n",
		"data: third\n\n", // id 1 stays in effect
		"event: add\ndata: fourth\n\n",
		"id: 5\n\n",                    // no data: no event, but the id is taken
		"data: fifth\n\n",              // id 5
		"id: bad\x00\ndata: sixth\n\n", // id with NUL ignored
		"data: unfinished\n",
	))
	c := newClient(t, s, eventsource.Config{})
	evs, err := collect(t, c)
	if !errors.Is(err, eventsource.ErrNoContent) {
		t.Fatalf("Events: final error %v, want ErrNoContent", err)
	}
	want := []sse.Event{
		ev("", "message", "first"),
		ev("1", "add", "second\nline"),
		ev("1", "message", "third"),
		ev("1", "add", "fourth"),
		ev("5", "message", "fifth"),
		ev("5", "message", "sixth"),
	}
	if !slices.Equal(evs, want) {
		t.Errorf("Events =\n%q\nwant\n%q", evs, want)
	}
	if got := c.LastEventID(); got != "5" {
		t.Errorf("LastEventID() = %q, want %q", got, "5")
	}
	if got := s.requests()[1].Header.Get("Last-Event-ID"); got != "5" {
		t.Errorf("reconnection Last-Event-ID = %q, want %q", got, "5")
	}
}

func TestIDWithoutDataIsKept(t *testing.T) {
	// A block with an id and no data dispatches nothing, but sets the last
	// event ID, which the reconnection sends.
	s := newScript(t, stream("id: 1\ndata: a\n\nid: 9\n\nid: 10\n"))
	c := newClient(t, s, eventsource.Config{})
	evs, err := collect(t, c)
	if !errors.Is(err, eventsource.ErrNoContent) || len(evs) != 1 {
		t.Fatalf("Events = %v, %v; want 1 event, ErrNoContent", evs, err)
	}
	if got := s.requests()[1].Header.Get("Last-Event-ID"); got != "9" {
		t.Errorf("reconnection Last-Event-ID = %q, want %q", got, "9")
	}
	if got := c.LastEventID(); got != "9" {
		t.Errorf("LastEventID() = %q, want %q", got, "9")
	}
}

func TestLineEndings(t *testing.T) {
	for _, tc := range []struct{ name, body string }{
		{"LF", "id: 1\ndata: a\n\ndata: b\ndata: c\n\n"},
		{"CR", "id: 1\rdata: a\r\rdata: b\rdata: c\r\r"},
		{"CRLF", "id: 1\r\ndata: a\r\n\r\ndata: b\r\ndata: c\r\n\r\n"},
		{"mixed", "id: 1\rdata: a\r\n\ndata: b\ndata: c\r\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newScript(t, stream(tc.body))
			c := newClient(t, s, eventsource.Config{})
			evs, err := collect(t, c)
			if !errors.Is(err, eventsource.ErrNoContent) {
				t.Fatalf("Events: final error %v, want ErrNoContent", err)
			}
			want := []sse.Event{ev("1", "message", "a"), ev("1", "message", "b\nc")}
			if !slices.Equal(evs, want) {
				t.Errorf("Events(%q) = %q, want %q", tc.body, evs, want)
			}
		})
	}
}

func TestServerRetryChangesWait(t *testing.T) {
	s := newScript(t,
		stream("retry: 10\ndata: a\n\n"),
		stream("retry: x\nretry: 25\n"), // takes effect unfinished; invalid ignored
		stream("retry: 1.5\ndata: b\n\n"),
	)
	c := newClient(t, s, eventsource.Config{InitialRetry: time.Hour, MaxRetry: time.Hour})
	waits := recordSleep(c)
	eventsource.SetJitter(c, func() float64 { return 0 })
	evs, err := collect(t, c)
	if !errors.Is(err, eventsource.ErrNoContent) {
		t.Fatalf("Events: final error %v, want ErrNoContent", err)
	}
	if len(evs) != 2 {
		t.Errorf("Events = %v, want 2 events", evs)
	}
	want := []time.Duration{10 * time.Millisecond, 25 * time.Millisecond, 25 * time.Millisecond}
	if !slices.Equal(*waits, want) {
		t.Errorf("waits = %v, want %v", *waits, want)
	}
}

func TestReconnectWaitsRetry(t *testing.T) {
	// Real time: with a one-hour initial retry, the test finishes only if
	// the server's "retry: 30" is used, and not before 30 ms have passed.
	var mu sync.Mutex
	var ended, again time.Time
	s := newScript(t,
		func(w http.ResponseWriter, r *http.Request) {
			stream("retry: 30\ndata: a\n\n")(w, r)
			mu.Lock()
			ended = time.Now()
			mu.Unlock()
		},
		func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			again = time.Now()
			mu.Unlock()
			w.WriteHeader(http.StatusNoContent)
		},
	)
	c := newClient(t, s, eventsource.Config{InitialRetry: time.Hour})
	evs, err := collect(t, c)
	if !errors.Is(err, eventsource.ErrNoContent) || len(evs) != 1 {
		t.Fatalf("Events = %v, %v; want 1 event, ErrNoContent", evs, err)
	}
	mu.Lock()
	defer mu.Unlock()
	// The handler returns before the client sees the end of the stream,
	// so the gap measured here is at most the client's wait.
	if gap := again.Sub(ended); gap < 30*time.Millisecond {
		t.Errorf("reconnected %v after the stream ended, want at least 30ms", gap)
	}
}

func TestDropMidEvent(t *testing.T) {
	const first = "retry: 1\nid: 1\ndata: a\n\nid: 2\ndata: partial"
	for _, tc := range []struct {
		name string
		step http.HandlerFunc
	}{
		{"clean end", stream(first)},
		{"broken connection", abort(first)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newScript(t, tc.step, stream("id: 3\ndata: c\n\n"))
			c := newClient(t, s, eventsource.Config{InitialRetry: time.Hour})
			evs, err := collect(t, c)
			if !errors.Is(err, eventsource.ErrNoContent) {
				t.Fatalf("Events: final error %v, want ErrNoContent", err)
			}
			want := []sse.Event{ev("1", "message", "a"), ev("3", "message", "c")}
			if !slices.Equal(evs, want) {
				t.Errorf("Events = %q, want %q", evs, want)
			}
			if got := s.requests()[1].Header.Get("Last-Event-ID"); got != "1" {
				t.Errorf("reconnection Last-Event-ID = %q, want %q", got, "1")
			}
		})
	}
}

func TestNoContentStops(t *testing.T) {
	for _, retryNon := range []bool{false, true} {
		s := newScript(t) // every request gets 204
		c := newClient(t, s, eventsource.Config{RetryNonStreamErrors: retryNon})
		evs, err := collect(t, c)
		if !errors.Is(err, eventsource.ErrNoContent) || len(evs) != 0 {
			t.Errorf("RetryNonStreamErrors=%v: Events = %v, %v; want no events, ErrNoContent", retryNon, evs, err)
		}
		if n := len(s.requests()); n != 1 {
			t.Errorf("RetryNonStreamErrors=%v: server got %d requests, want 1", retryNon, n)
		}
	}
}

func TestNonStreamResponseFails(t *testing.T) {
	for _, tc := range []struct {
		name       string
		step       http.HandlerFunc
		wantStatus int
		wantMsg    []string
	}{
		{"500", status(500, "text/plain", "boom: disk full\n"), 500, []string{"500", "boom: disk full"}},
		{"404 empty", status(404, "", ""), 404, []string{"404", "Not Found"}},
		{"401", status(401, "application/json", `{"error":"token"}`), 401, []string{"401", `{"error":"token"}`}},
		{"long body", status(503, "text/plain", strings.Repeat("x", 1000)), 503, []string{strings.Repeat("x", 256)}},
		{"text/plain", status(200, "text/plain", "hello"), 200, []string{`"text/plain"`}},
		{"no content type", status(200, "", "data: x\n\n"), 200, []string{"content type"}},
		{"similar type", status(200, "text/event-streams", "data: x\n\n"), 200, []string{`"text/event-streams"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newScript(t, tc.step, stream("data: never\n\n"))
			c := newClient(t, s, eventsource.Config{})
			evs, err := collect(t, c)
			var re *eventsource.ResponseError
			if !errors.As(err, &re) {
				t.Fatalf("Events: final error %v (%T), want *ResponseError", err, err)
			}
			if re.StatusCode != tc.wantStatus {
				t.Errorf("ResponseError.StatusCode = %d, want %d", re.StatusCode, tc.wantStatus)
			}
			if len(re.Body) > 256 {
				t.Errorf("ResponseError.Body has %d bytes, want at most 256", len(re.Body))
			}
			for _, w := range tc.wantMsg {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if len(evs) != 0 {
				t.Errorf("Events = %v, want none", evs)
			}
			if n := len(s.requests()); n != 1 {
				t.Errorf("server got %d requests, want 1 (no reconnection)", n)
			}
		})
	}
}

func TestStreamContentTypes(t *testing.T) {
	for _, ct := range []string{
		"text/event-stream",
		"text/event-stream; charset=utf-8",
		"text/event-stream;charset=UTF-8",
		"Text/Event-Stream",
	} {
		s := newScript(t, status(200, ct, "data: ok\n\n"))
		c := newClient(t, s, eventsource.Config{})
		evs, err := collect(t, c)
		if !errors.Is(err, eventsource.ErrNoContent) || len(evs) != 1 {
			t.Errorf("Content-Type %q: Events = %v, %v; want one event, ErrNoContent", ct, evs, err)
		}
	}
}

func TestBackoffAndReset(t *testing.T) {
	// Failures 1..4 grow the wait (jitter 1 gives the ceiling) up to the
	// cap; an event resets it.
	s := newScript(t,
		status(500, "text/plain", "a"),
		status(502, "", ""),
		stream(), // 200 stream that ends without an event: a failure
		status(200, "text/html", "<p>"),
		stream("data: ok\n\n"),
		status(500, "", ""),
	)
	c := newClient(t, s, eventsource.Config{
		InitialRetry:         time.Second,
		MaxRetry:             3 * time.Second,
		RetryNonStreamErrors: true,
	})
	waits := recordSleep(c)
	eventsource.SetJitter(c, func() float64 { return 1 })
	evs, err := collect(t, c)
	if !errors.Is(err, eventsource.ErrNoContent) {
		t.Fatalf("Events: final error %v, want ErrNoContent", err)
	}
	if want := []sse.Event{ev("", "message", "ok")}; !slices.Equal(evs, want) {
		t.Errorf("Events = %v, want %v", evs, want)
	}
	want := []time.Duration{1, 2, 3, 3, 1, 1}
	for i := range want {
		want[i] *= time.Second
	}
	if !slices.Equal(*waits, want) {
		t.Errorf("waits = %v, want %v", *waits, want)
	}
	if n := len(s.requests()); n != 7 {
		t.Errorf("server got %d requests, want 7", n)
	}
}

func TestRetryNonStreamErrorsReconnects(t *testing.T) {
	// Real waits of 1 ms: the opt-in reconnects after 500 and a wrong
	// content type.
	s := newScript(t,
		status(500, "text/plain", "boom"),
		status(200, "text/plain", "hello"),
		stream("id: 1\ndata: ok\n\n"),
	)
	c := newClient(t, s, eventsource.Config{RetryNonStreamErrors: true, MaxRetry: 2 * time.Millisecond})
	evs, err := collect(t, c)
	if !errors.Is(err, eventsource.ErrNoContent) {
		t.Fatalf("Events: final error %v, want ErrNoContent", err)
	}
	if want := []sse.Event{ev("1", "message", "ok")}; !slices.Equal(evs, want) {
		t.Errorf("Events = %v, want %v", evs, want)
	}
	if n := len(s.requests()); n != 4 {
		t.Errorf("server got %d requests, want 4", n)
	}
}

func TestBackoff(t *testing.T) {
	const s = time.Second
	for _, tc := range []struct {
		base, limit time.Duration
		failures    int
		r           float64
		want        time.Duration
	}{
		{3 * s, 30 * s, 0, 0.9, 3 * s}, // after events: the reconnection time
		{3 * s, 30 * s, 1, 0.9, 3 * s}, // first failure: the reconnection time
		{3 * s, 30 * s, 2, 0, 3 * s},   // jitter 0: never below base
		{3 * s, 30 * s, 2, 1, 6 * s},
		{3 * s, 30 * s, 2, 0.5, 4500 * time.Millisecond},
		{3 * s, 30 * s, 3, 1, 12 * s},
		{3 * s, 30 * s, 4, 1, 24 * s},
		{3 * s, 30 * s, 5, 1, 30 * s}, // capped
		{3 * s, 30 * s, 5, 0.5, 16500 * time.Millisecond},
		{3 * s, 30 * s, 1000, 1, 30 * s}, // no overflow
		{3 * s, 30 * s, 1000, 0, 3 * s},
		{time.Millisecond, time.Duration(1<<63 - 1), 200, 1, time.Duration(1<<63 - 1)},
		{60 * s, 30 * s, 5, 1, 60 * s}, // the server's retry wins over the cap
		{3 * s, 30 * s, 3, 2, 12 * s},  // jitter clamped to [0, 1]
		{3 * s, 30 * s, 3, -1, 3 * s},
	} {
		if got := eventsource.Backoff(tc.base, tc.limit, tc.failures, tc.r); got != tc.want {
			t.Errorf("backoff(%v, %v, %d, %v) = %v, want %v", tc.base, tc.limit, tc.failures, tc.r, got, tc.want)
		}
	}
}

func TestBackoffJitterRange(t *testing.T) {
	// With the default random jitter, the waits stay within [base, ceiling].
	s := newScript(t, stream(), stream(), stream(), stream())
	c := newClient(t, s, eventsource.Config{InitialRetry: time.Second, MaxRetry: 5 * time.Second})
	waits := recordSleep(c)
	if _, err := collect(t, c); !errors.Is(err, eventsource.ErrNoContent) {
		t.Fatalf("Events: final error %v, want ErrNoContent", err)
	}
	ceilings := []time.Duration{1, 2, 4, 5}
	if len(*waits) != len(ceilings) {
		t.Fatalf("waits = %v, want %d of them", *waits, len(ceilings))
	}
	for i, w := range *waits {
		if w < time.Second || w > ceilings[i]*time.Second {
			t.Errorf("wait %d = %v, want within [1s, %v]", i, w, ceilings[i]*time.Second)
		}
	}
}

func TestRedirect(t *testing.T) {
	for _, code := range []int{301, 302, 303, 307, 308} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			var mu sync.Mutex
			var old int
			s := newScript(t, stream("id: 2\ndata: moved\n\n"))
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/old" {
					mu.Lock()
					old++
					mu.Unlock()
					http.Redirect(w, r, "/new", code)
					return
				}
				s.ServeHTTP(w, r)
			}))
			defer srv.Close()
			c, err := eventsource.New(srv.URL+"/old", eventsource.Config{
				Client:       srv.Client(),
				Header:       http.Header{"Authorization": {"Bearer tok"}},
				LastEventID:  "1",
				InitialRetry: time.Millisecond,
			})
			if err != nil {
				t.Fatal(err)
			}
			evs, err := collect(t, c)
			if !errors.Is(err, eventsource.ErrNoContent) {
				t.Fatalf("Events: final error %v, want ErrNoContent", err)
			}
			if want := []sse.Event{ev("2", "message", "moved")}; !slices.Equal(evs, want) {
				t.Errorf("Events = %v, want %v", evs, want)
			}
			reqs := s.requests()
			for i, wantID := range []string{"1", "2"} {
				r := reqs[i]
				if r.URL.Path != "/new" || r.Method != http.MethodGet {
					t.Errorf("request %d: %s %s, want GET /new", i, r.Method, r.URL.Path)
				}
				for _, h := range [][2]string{
					{"Authorization", "Bearer tok"},
					{"Last-Event-ID", wantID},
					{"Accept", "text/event-stream"},
					{"Cache-Control", "no-cache"},
				} {
					if got := r.Header.Get(h[0]); got != h[1] {
						t.Errorf("request %d after %d redirect: %s = %q, want %q", i, code, h[0], got, h[1])
					}
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if old != 2 {
				t.Errorf("original URL got %d requests, want 2 (reconnection starts from it)", old)
			}
		})
	}
}

func TestRedirectCrossHostDropsAuthorization(t *testing.T) {
	// net/http strips Authorization on a redirect to another host; the
	// other headers stay. Both names resolve to the loopback test server.
	s := newScript(t, stream("data: x\n\n"))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host == "origin.test" {
			http.Redirect(w, r, "http://other.test/", http.StatusFound)
			return
		}
		s.ServeHTTP(w, r)
	}))
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	defer tr.CloseIdleConnections()
	c, err := eventsource.New("http://origin.test/", eventsource.Config{
		Client:       &http.Client{Transport: tr},
		Header:       http.Header{"Authorization": {"Bearer tok"}},
		LastEventID:  "9",
		InitialRetry: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := collect(t, c); !errors.Is(err, eventsource.ErrNoContent) {
		t.Fatalf("Events: final error %v, want ErrNoContent", err)
	}
	r := s.requests()[0]
	if got := r.Header.Get("Authorization"); got != "" {
		t.Errorf("Authorization after cross-host redirect = %q, want none", got)
	}
	if got := r.Header.Get("Last-Event-ID"); got != "9" {
		t.Errorf("Last-Event-ID after cross-host redirect = %q, want %q", got, "9")
	}
}

func TestEventTooLarge(t *testing.T) {
	s := newScript(t,
		stream("id: 1\ndata: small\n\n", "data: "+strings.Repeat("x", 100)+"\n\n", "data: after\n\n"),
		stream("data: never\n\n"),
	)
	c := newClient(t, s, eventsource.Config{MaxEventSize: 64})
	evs, err := collect(t, c)
	if !errors.Is(err, sse.ErrTooLarge) {
		t.Fatalf("Events: final error %v, want sse.ErrTooLarge", err)
	}
	if want := []sse.Event{ev("1", "message", "small")}; !slices.Equal(evs, want) {
		t.Errorf("Events = %v, want %v", evs, want)
	}
	if n := len(s.requests()); n != 1 {
		t.Errorf("server got %d requests, want 1", n)
	}
	if got := c.LastEventID(); got != "1" {
		t.Errorf("LastEventID() = %q, want %q", got, "1")
	}
}

func TestOnOpen(t *testing.T) {
	earliest := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Last-Event-ID", "earliest")
		stream("id: 1\ndata: a\n\n")(w, r)
	}
	s := newScript(t, earliest, earliest)
	stop := errors.New("stop")
	var seen []string
	c := newClient(t, s, eventsource.Config{OnOpen: func(resp *http.Response) error {
		seen = append(seen, resp.Header.Get("Last-Event-ID"))
		if len(seen) == 2 {
			return stop
		}
		return nil
	}})
	evs, err := collect(t, c)
	if !errors.Is(err, stop) {
		t.Fatalf("Events: final error %v, want the OnOpen error", err)
	}
	if len(evs) != 1 {
		t.Errorf("Events = %v, want 1 event (none after OnOpen failed)", evs)
	}
	if want := []string{"earliest", "earliest"}; !slices.Equal(seen, want) {
		t.Errorf("OnOpen saw Last-Event-ID %q, want %q", seen, want)
	}
}

func TestCancel(t *testing.T) {
	// hang streams one event, then waits for the client to go away.
	hang := func(gone chan<- struct{}) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			stream("data: a\n\n")(w, r)
			<-r.Context().Done()
			close(gone)
		}
	}
	waitGone := func(t *testing.T, gone <-chan struct{}) {
		t.Helper()
		select {
		case <-gone:
		case <-time.After(5 * time.Second):
			t.Fatal("server did not see the client disconnect")
		}
	}
	// iterate runs c.Events(ctx), calling onEvent for each event, and
	// returns the final error after checking it came promptly.
	iterate := func(t *testing.T, c *eventsource.Client, ctx context.Context, onEvent func()) error {
		t.Helper()
		var last error
		for _, err := range c.Events(ctx) {
			if err != nil {
				last = err
				continue
			}
			onEvent()
		}
		return last
	}

	t.Run("while reading", func(t *testing.T) {
		gone := make(chan struct{})
		s := newScript(t, hang(gone))
		c := newClient(t, s, eventsource.Config{})
		ctx, cancel := context.WithCancel(t.Context())
		var canceled time.Time
		err := iterate(t, c, ctx, func() { canceled = time.Now(); cancel() })
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Events: final error %v, want context.Canceled", err)
		}
		if d := time.Since(canceled); d > 2*time.Second {
			t.Errorf("Events ended %v after cancel", d)
		}
		waitGone(t, gone)
	})

	t.Run("while connecting", func(t *testing.T) {
		gone := make(chan struct{})
		s := newScript(t, func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
			close(gone)
		})
		c := newClient(t, s, eventsource.Config{})
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := iterate(t, c, ctx, func() { t.Error("unexpected event") })
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Events: final error %v, want context.DeadlineExceeded", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("Events ended %v after start, want about 50ms", d)
		}
		waitGone(t, gone)
	})

	t.Run("while waiting to reconnect", func(t *testing.T) {
		s := newScript(t, stream("data: a\n\n"))
		c := newClient(t, s, eventsource.Config{InitialRetry: time.Hour})
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		n := 0
		err := iterate(t, c, ctx, func() { n++ })
		if !errors.Is(err, context.DeadlineExceeded) || n != 1 {
			t.Errorf("Events = %d events, %v; want 1, context.DeadlineExceeded", n, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("Events ended %v after start, want about 50ms", d)
		}
		if n := len(s.requests()); n != 1 {
			t.Errorf("server got %d requests, want 1", n)
		}
	})

	t.Run("break", func(t *testing.T) {
		gone := make(chan struct{})
		s := newScript(t, hang(gone))
		c := newClient(t, s, eventsource.Config{})
		for _, err := range c.Events(t.Context()) {
			if err != nil {
				t.Fatalf("Events: %v", err)
			}
			break
		}
		waitGone(t, gone)
	})
}

func TestIdleTimeout(t *testing.T) {
	// wait blocks until the client goes away.
	wait := func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }
	silentAfterEvent := func(w http.ResponseWriter, r *http.Request) {
		stream("id: 1\ndata: a\n\n")(w, r)
		wait(w, r)
	}
	// paced streams parts with a pause before each but the first.
	paced := func(gap time.Duration, parts ...string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			rc := http.NewResponseController(w)
			for i, p := range parts {
				if i > 0 {
					time.Sleep(gap)
				}
				if _, err := w.Write([]byte(p)); err != nil {
					return
				}
				if err := rc.Flush(); err != nil {
					return
				}
			}
		}
	}
	heartbeats := []string{"id: 1\n"}
	for range 10 {
		heartbeats = append(heartbeats, ":\n")
	}
	heartbeats = append(heartbeats, "data: a\n\n")
	// The server sends every 100 ms, the consumer takes 200 ms per event:
	// the server is never silent for 150 ms, though the connection would
	// be if the consumer's time counted.
	slow := []string{"data: a\n\n", "data: b\n\n", "data: c\n\n", "data: d\n\n"}
	for _, tc := range []struct {
		name  string
		steps []http.HandlerFunc
		want  []sse.Event
		ids   []string // Last-Event-ID of each request
	}{
		{"silent stream", []http.HandlerFunc{silentAfterEvent}, []sse.Event{ev("1", "message", "a")}, []string{"", "1"}},
		{"no response headers", []http.HandlerFunc{wait, stream("data: b\n\n")}, []sse.Event{ev("", "message", "b")}, []string{"", "", ""}},
		{"heartbeats keep it open", []http.HandlerFunc{paced(20*time.Millisecond, heartbeats...)}, []sse.Event{ev("1", "message", "a")}, []string{"", "1"}},
		{"slow consumer is not silence", []http.HandlerFunc{paced(100*time.Millisecond, slow...)}, []sse.Event{ev("", "message", "a"), ev("", "message", "b"), ev("", "message", "c"), ev("", "message", "d")}, []string{"", ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newScript(t, tc.steps...)
			c := newClient(t, s, eventsource.Config{IdleTimeout: 150 * time.Millisecond})
			var evs []sse.Event
			err := c.Run(t.Context(), func(e sse.Event) error {
				evs = append(evs, e)
				time.Sleep(200 * time.Millisecond) // longer than IdleTimeout
				return nil
			})
			if !errors.Is(err, eventsource.ErrNoContent) {
				t.Fatalf("Run: error %v, want ErrNoContent", err)
			}
			if !slices.Equal(evs, tc.want) {
				t.Errorf("Run saw %v, want %v", evs, tc.want)
			}
			var ids []string
			for _, r := range s.requests() {
				ids = append(ids, r.Header.Get("Last-Event-ID"))
			}
			if !slices.Equal(ids, tc.ids) {
				t.Errorf("requests had Last-Event-ID %q, want %q", ids, tc.ids)
			}
		})
	}
}

func TestEventsNotConcurrent(t *testing.T) {
	s := newScript(t, stream("data: a\n\n"))
	c := newClient(t, s, eventsource.Config{})
	for _, err := range c.Events(t.Context()) {
		if err != nil {
			t.Fatalf("Events: %v", err)
		}
		var inner error
		for _, err := range c.Events(t.Context()) {
			inner = err
		}
		if inner == nil {
			t.Error("nested Events yielded no error, want one")
		}
		break
	}
	// After the first iteration ended, a new one resumes.
	if _, err := collect(t, c); !errors.Is(err, eventsource.ErrNoContent) {
		t.Errorf("second Events: final error %v, want ErrNoContent", err)
	}
}

func TestRun(t *testing.T) {
	s := newScript(t, stream("data: a\n\ndata: b\n\ndata: c\n\n"))
	c := newClient(t, s, eventsource.Config{})
	stop := errors.New("stop")
	var got []string
	err := c.Run(t.Context(), func(ev sse.Event) error {
		got = append(got, ev.Data)
		if len(got) == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("Run = %v after %q, want stop after [a b]", err, got)
	}
	got = nil
	err = c.Run(t.Context(), func(ev sse.Event) error { got = append(got, ev.Data); return nil })
	if !errors.Is(err, eventsource.ErrNoContent) || len(got) != 0 {
		t.Errorf("second Run = %v after %q, want ErrNoContent after none", err, got)
	}
}

func TestNewRejects(t *testing.T) {
	for _, tc := range []struct {
		url string
		cfg eventsource.Config
	}{
		{"ftp://example.com/", eventsource.Config{}},
		{"/relative", eventsource.Config{}},
		{"http://", eventsource.Config{}},
		{"http://a b/", eventsource.Config{}},
		{"http://example.com/", eventsource.Config{MaxEventSize: -1}},
		{"http://example.com/", eventsource.Config{InitialRetry: -1}},
		{"http://example.com/", eventsource.Config{MaxRetry: -1}},
		{"http://example.com/", eventsource.Config{IdleTimeout: -1}},
		{"http://example.com/", eventsource.Config{LastEventID: "a\x01b"}},
	} {
		if _, err := eventsource.New(tc.url, tc.cfg); err == nil {
			t.Errorf("New(%q, %+v) = nil error, want one", tc.url, tc.cfg)
		}
	}
	c, err := eventsource.New("https://example.com/events", eventsource.Config{LastEventID: "42"})
	if err != nil {
		t.Fatalf("New with zero config = %v", err)
	}
	if got := c.LastEventID(); got != "42" {
		t.Errorf("LastEventID() = %q, want %q", got, "42")
	}
}

func TestResponseErrorMessage(t *testing.T) {
	for _, tc := range []struct {
		err  *eventsource.ResponseError
		want string
	}{
		{&eventsource.ResponseError{StatusCode: 500, Body: "boom"}, "eventsource: unexpected status 500 Internal Server Error: boom"},
		{&eventsource.ResponseError{StatusCode: 404}, "eventsource: unexpected status 404 Not Found"},
		{&eventsource.ResponseError{StatusCode: 200, ContentType: "text/html"}, `eventsource: content type "text/html" is not text/event-stream`},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("%+v.Error() = %q, want %q", *tc.err, got, tc.want)
		}
	}
}
