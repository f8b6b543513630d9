package eventsource_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-sse/herald/eventsource"
	"github.com/herald-sse/herald/sse"
)

// bodies records the request bodies a server's steps read.
type bodies struct {
	mu  sync.Mutex
	got []string
}

// read returns a step that records the request body, then runs step.
func (b *bodies) read(step http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			body = []byte("read error: " + err.Error())
		}
		b.mu.Lock()
		b.got = append(b.got, string(body))
		b.mu.Unlock()
		step(w, r)
	}
}

func (b *bodies) list() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.got)
}

// jsonBody returns a Config.Body that sends s and counts its calls.
func jsonBody(s string, calls *int) func() (io.Reader, error) {
	return func() (io.Reader, error) {
		*calls++
		return strings.NewReader(s), nil
	}
}

const prompt = `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`

func TestClientPostOneShotByDefault(t *testing.T) {
	var b bodies
	s := newScript(t, b.read(stream(
		"data: {\"t\":\"Hel\"}\n\n",
		"data: {\"t\":\"lo\"}\n\n",
	)))
	calls := 0
	c := newClient(t, s, eventsource.Config{
		Method: http.MethodPost,
		Body:   jsonBody(prompt, &calls),
		Header: http.Header{"Content-Type": {"application/json"}, "X-Api-Key": {"k"}, "Host": {"api.test"}},
	})
	evs, err := collect(t, c)
	if err != nil {
		t.Fatalf("Events of a one-shot POST stream: final error %v, want none", err)
	}
	want := []sse.Event{ev("", "message", `{"t":"Hel"}`), ev("", "message", `{"t":"lo"}`)}
	if !slices.Equal(evs, want) {
		t.Errorf("Events = %q, want %q", evs, want)
	}
	reqs := s.requests()
	if len(reqs) != 1 {
		t.Fatalf("server got %d requests, want 1 (a POST does not reconnect by default)", len(reqs))
	}
	r := reqs[0]
	if r.Method != http.MethodPost {
		t.Errorf("method = %s, want POST", r.Method)
	}
	for k, v := range map[string]string{"Content-Type": "application/json", "X-Api-Key": "k", "Accept": "text/event-stream"} {
		if got := r.Header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	if got := b.list(); !slices.Equal(got, []string{prompt}) {
		t.Errorf("server read bodies %q, want [%q]", got, prompt)
	}
	if r.Host != "api.test" {
		t.Errorf("Host = %q, want api.test from Config.Header", r.Host)
	}
	if r.ContentLength != int64(len(prompt)) {
		t.Errorf("Content-Length = %d, want %d", r.ContentLength, len(prompt))
	}
	if calls != 1 {
		t.Errorf("Body called %d times, want 1", calls)
	}
}

func TestClientPostBrokenStreamIsAnError(t *testing.T) {
	// Without reconnection, a stream that breaks is an error, and the
	// unfinished event is not delivered.
	s := newScript(t, abort("data: a\n\n", "data: part"))
	c := newClient(t, s, eventsource.Config{Method: http.MethodPost})
	evs, err := collect(t, c)
	if err == nil || !strings.Contains(err.Error(), "unexpected EOF") {
		t.Errorf("Events: final error %v, want one for the broken stream (unexpected EOF)", err)
	}
	if want := []sse.Event{ev("", "message", "a")}; !slices.Equal(evs, want) {
		t.Errorf("Events = %q, want %q", evs, want)
	}
	if n := len(s.requests()); n != 1 {
		t.Errorf("server got %d requests, want 1", n)
	}
}

func TestClientPostReconnectResendsBody(t *testing.T) {
	// The server drops the connection in the middle of an event of a POST
	// stream; with ReconnectAlways the client sends the same body again
	// with Last-Event-ID, and the partial event is discarded.
	var b bodies
	s := newScript(t,
		b.read(abort("retry: 1\nid: 1\ndata: a\n\n", "id: 2\ndata: partial\ndata: more")),
		b.read(func(w http.ResponseWriter, r *http.Request) {
			stream("data: b\n\n", "data: [DONE]\n\n", "data: after done\n\n")(w, r)
		}),
	)
	calls := 0
	c := newClient(t, s, eventsource.Config{
		Method:       http.MethodPost,
		Body:         jsonBody(prompt, &calls),
		Header:       http.Header{"Content-Type": {"application/json"}},
		Reconnect:    eventsource.ReconnectAlways,
		Until:        func(ev sse.Event) bool { return ev.Data == "[DONE]" },
		InitialRetry: time.Hour,
	})
	evs, err := collect(t, c)
	if err != nil {
		t.Fatalf("Events: final error %v, want none after [DONE]", err)
	}
	// "b" has no id: it carries the last event ID of the first connection.
	want := []sse.Event{ev("1", "message", "a"), ev("1", "message", "b")}
	if !slices.Equal(evs, want) {
		t.Errorf("Events = %q, want %q", evs, want)
	}
	reqs := s.requests()
	if len(reqs) != 2 {
		t.Fatalf("server got %d requests, want 2", len(reqs))
	}
	if got := reqs[1].Header.Get("Last-Event-ID"); got != "1" {
		t.Errorf("reconnection Last-Event-ID = %q, want 1 (the partial event's id 2 is discarded)", got)
	}
	for i, r := range reqs {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("request %d: %s, Content-Type %q; want POST, application/json", i, r.Method, r.Header.Get("Content-Type"))
		}
	}
	if got := b.list(); !slices.Equal(got, []string{prompt, prompt}) {
		t.Errorf("server read bodies %q, want the prompt twice", got)
	}
	if calls != 2 {
		t.Errorf("Body called %d times, want 2 (a fresh reader per attempt)", calls)
	}
}

func TestClientPostRedirectResendsBody(t *testing.T) {
	var b bodies
	s := newScript(t, b.read(stream("data: moved\n\n")))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/old" {
			http.Redirect(w, r, "/new", http.StatusTemporaryRedirect)
			return
		}
		s.ServeHTTP(w, r)
	}))
	defer srv.Close()
	calls := 0
	c, err := eventsource.New(srv.URL+"/old", eventsource.Config{
		Client: srv.Client(),
		Method: http.MethodPost,
		// Not a bytes or strings reader: net/http cannot rewind it.
		Body: func() (io.Reader, error) {
			calls++
			return io.MultiReader(strings.NewReader(prompt)), nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	evs, err := collect(t, c)
	if err != nil || len(evs) != 1 {
		t.Fatalf("Events = %v, %v; want one event, no error", evs, err)
	}
	if got := b.list(); !slices.Equal(got, []string{prompt}) {
		t.Errorf("body after a 307 redirect = %q, want [%q]", got, prompt)
	}
	if calls != 2 {
		t.Errorf("Body called %d times, want 2 (the request, then the redirect)", calls)
	}
}

func TestClientOneShot(t *testing.T) {
	t.Run("GET ends with the response", func(t *testing.T) {
		s := newScript(t, stream("id: 1\ndata: a\n\n", "data: b\n\n", "data: unfinished"))
		c := newClient(t, s, eventsource.Config{Reconnect: eventsource.ReconnectNever})
		evs, err := collect(t, c)
		if err != nil {
			t.Fatalf("Events: final error %v, want none", err)
		}
		if want := []sse.Event{ev("1", "message", "a"), ev("1", "message", "b")}; !slices.Equal(evs, want) {
			t.Errorf("Events = %q, want %q", evs, want)
		}
		if n := len(s.requests()); n != 1 {
			t.Errorf("server got %d requests, want 1", n)
		}
	})
	t.Run("Run returns nil", func(t *testing.T) {
		s := newScript(t, stream("data: a\n\n"))
		c := newClient(t, s, eventsource.Config{Reconnect: eventsource.ReconnectNever})
		n := 0
		if err := c.Run(t.Context(), func(sse.Event) error { n++; return nil }); err != nil || n != 1 {
			t.Errorf("Run = %v after %d events, want nil after 1", err, n)
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		url := "http://" + ln.Addr().String() + "/"
		ln.Close()
		c, err := eventsource.New(url, eventsource.Config{Reconnect: eventsource.ReconnectNever})
		if err != nil {
			t.Fatal(err)
		}
		waits := recordSleep(c)
		_, err = collect(t, c)
		if err == nil || !strings.Contains(err.Error(), "connect") {
			t.Errorf("Events to a closed port: final error %v, want a connect error", err)
		}
		if len(*waits) != 0 {
			t.Errorf("one-shot client waited %v, want no reconnection", *waits)
		}
	})
	t.Run("retry fields ignored", func(t *testing.T) {
		s := newScript(t, status(500, "text/plain", "boom"))
		c := newClient(t, s, eventsource.Config{Reconnect: eventsource.ReconnectNever, RetryNonStreamErrors: true})
		_, err := collect(t, c)
		var re *eventsource.ResponseError
		if !errors.As(err, &re) || re.StatusCode != 500 {
			t.Errorf("Events: final error %v, want a 500 *ResponseError (a one-shot client never retries)", err)
		}
	})
}

func TestClientUntil(t *testing.T) {
	gone := make(chan struct{})
	s := newScript(t, func(w http.ResponseWriter, r *http.Request) {
		stream("id: 1\ndata: a\n\n", "event: end\ndata: [DONE]\n\n", "data: never\n\n")(w, r)
		<-r.Context().Done() // the client closes the response at the terminal event
		close(gone)
	})
	var seen []sse.Event
	c := newClient(t, s, eventsource.Config{Until: func(ev sse.Event) bool {
		seen = append(seen, ev)
		return ev.Data == "[DONE]"
	}})
	evs, err := collect(t, c)
	if err != nil {
		t.Fatalf("Events: final error %v, want none", err)
	}
	if want := []sse.Event{ev("1", "message", "a")}; !slices.Equal(evs, want) {
		t.Errorf("Events = %q, want %q (the terminal event is not yielded)", evs, want)
	}
	if want := []sse.Event{ev("1", "message", "a"), ev("1", "end", "[DONE]")}; !slices.Equal(seen, want) {
		t.Errorf("Until saw %q, want %q", seen, want)
	}
	select {
	case <-gone:
	case <-time.After(testTimeout):
		t.Fatal("the server did not see the client leave after the terminal event")
	}
	if n := len(s.requests()); n != 1 {
		t.Errorf("server got %d requests, want 1", n)
	}
}

func TestClientOnRequest(t *testing.T) {
	s := newScript(t, stream("id: 1\ndata: a\n\n"), stream("data: b\n\n"), stream("data: c\n\n"))
	refused := errors.New("no more tokens")
	n := 0
	c := newClient(t, s, eventsource.Config{
		Header: http.Header{"Authorization": {"Bearer static"}},
		OnRequest: func(r *http.Request) error {
			n++
			if n == 3 {
				return refused
			}
			if got := r.Header.Get("Accept"); got != "text/event-stream" {
				t.Errorf("OnRequest %d: Accept = %q, want the client's headers already set", n, got)
			}
			r.Header.Set("Authorization", fmt.Sprintf("Bearer t%d", n))
			return nil
		},
	})
	evs, err := collect(t, c)
	if !errors.Is(err, refused) {
		t.Fatalf("Events: final error %v, want the OnRequest error", err)
	}
	if len(evs) != 2 {
		t.Errorf("Events = %v, want 2", evs)
	}
	reqs := s.requests()
	if len(reqs) != 2 {
		t.Fatalf("server got %d requests, want 2 (none after OnRequest failed)", len(reqs))
	}
	for i, r := range reqs {
		if got, want := r.Header.Get("Authorization"), fmt.Sprintf("Bearer t%d", i+1); got != want {
			t.Errorf("request %d: Authorization = %q, want %q", i, got, want)
		}
	}
	if got := reqs[1].Header.Get("Last-Event-ID"); got != "1" {
		t.Errorf("request 1: Last-Event-ID = %q, want 1", got)
	}
}

func TestClientBodyError(t *testing.T) {
	s := newScript(t, stream("data: a\n\n"))
	bad := errors.New("file gone")
	c := newClient(t, s, eventsource.Config{Method: http.MethodPost, Body: func() (io.Reader, error) { return nil, bad }})
	if _, err := collect(t, c); !errors.Is(err, bad) {
		t.Errorf("Events with a failing Body: final error %v, want it to wrap %v", err, bad)
	}
	if n := len(s.requests()); n != 0 {
		t.Errorf("server got %d requests, want 0", n)
	}
}

func TestClientComments(t *testing.T) {
	s := newScript(t, stream(": welcome\n", "data: a\n\n", ":\n", ":\n", ": progress 50%\ndata: b\n\n", ":bye\n"))
	var items []string
	c := newClient(t, s, eventsource.Config{
		Reconnect: eventsource.ReconnectNever,
		OnComment: func(text string) error {
			items = append(items, "comment "+text)
			return nil
		},
	})
	for ev, err := range c.Events(t.Context()) {
		if err != nil {
			t.Fatalf("Events: %v", err)
		}
		items = append(items, "event "+ev.Data)
	}
	want := []string{"comment welcome", "event a", "comment ", "comment ", "comment progress 50%", "event b", "comment bye"}
	if !slices.Equal(items, want) {
		t.Errorf("comments and events = %q, want %q", items, want)
	}

	t.Run("error ends the iteration", func(t *testing.T) {
		s := newScript(t, stream("data: a\n\n: stop\ndata: b\n\n"))
		stop := errors.New("stop")
		c := newClient(t, s, eventsource.Config{OnComment: func(text string) error {
			if text == "stop" {
				return stop
			}
			return nil
		}})
		evs, err := collect(t, c)
		if !errors.Is(err, stop) || len(evs) != 1 {
			t.Errorf("Events = %v, %v; want 1 event, then the OnComment error", evs, err)
		}
		if n := len(s.requests()); n != 1 {
			t.Errorf("server got %d requests, want 1", n)
		}
	})
}

func TestClientResponseErrorDetails(t *testing.T) {
	body := `{"error":{"message":"invalid model","type":"invalid_request_error"}}` + strings.Repeat(" ", 5000)
	s := newScript(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", "req-1")
		status(http.StatusBadRequest, "application/json", body)(w, r)
	})
	c := newClient(t, s, eventsource.Config{Method: http.MethodPost})
	_, err := collect(t, c)
	var re *eventsource.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("Events: final error %v, want *ResponseError", err)
	}
	if re.StatusCode != 400 || re.Header.Get("X-Request-Id") != "req-1" || re.ContentType != "application/json" {
		t.Errorf("ResponseError = status %d, X-Request-Id %q, content type %q; want 400, req-1, application/json",
			re.StatusCode, re.Header.Get("X-Request-Id"), re.ContentType)
	}
	if want := body[:4096]; string(re.RawBody) != want {
		t.Errorf("ResponseError.RawBody has %d bytes, want the first 4096 of the body", len(re.RawBody))
	}
	if !bytes.HasPrefix(re.RawBody, []byte(`{"error":{"message":"invalid model"`)) {
		t.Errorf("ResponseError.RawBody = %.80q..., want the JSON error", re.RawBody)
	}
	if len(re.Body) > 256 || !strings.Contains(err.Error(), "invalid model") {
		t.Errorf("error %q (Body %d bytes), want the excerpt in the message, at most 256 bytes", err, len(re.Body))
	}
}

func TestClientRetryAfter(t *testing.T) {
	busy := func(code int, after string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", after)
			status(code, "application/json", `{"error":"busy"}`)(w, r)
		}
	}
	date := time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)
	for _, tc := range []struct {
		name     string
		step     http.HandlerFunc
		cfg      eventsource.Config
		wantWait time.Duration // 0: no retry, the iteration fails
		minWait  time.Duration // for dates: at least this
	}{
		{"503 seconds", busy(503, "7"), eventsource.Config{}, 7 * time.Second, 0},
		{"429 seconds", busy(429, " 120 "), eventsource.Config{}, 120 * time.Second, 0},
		{"429 date", busy(429, date), eventsource.Config{}, 0, 58 * time.Minute},
		{"503 zero", busy(503, "0"), eventsource.Config{}, time.Millisecond, 0},
		{"shorter than the reconnection time", busy(503, "1"), eventsource.Config{InitialRetry: 5 * time.Second}, 5 * time.Second, 0},
		{"POST reconnecting", busy(429, "3"), eventsource.Config{Method: "POST", Reconnect: eventsource.ReconnectAlways}, 3 * time.Second, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newScript(t, tc.step, stream("data: ok\n\n"))
			c := newClient(t, s, tc.cfg)
			waits := recordSleep(c)
			evs, err := collect(t, c)
			if !errors.Is(err, eventsource.ErrNoContent) || len(evs) != 1 {
				t.Fatalf("Events = %v, %v; want the event after the retry, then ErrNoContent", evs, err)
			}
			if len(*waits) == 0 {
				t.Fatal("no wait before the retry")
			}
			w := (*waits)[0]
			if tc.wantWait != 0 && w != tc.wantWait || w < tc.minWait || w > time.Hour {
				t.Errorf("wait after Retry-After = %v, want %v (at least %v)", w, tc.wantWait, tc.minWait)
			}
		})
	}
	for _, tc := range []struct {
		name string
		step http.HandlerFunc
		cfg  eventsource.Config
	}{
		{"one-shot POST", busy(429, "3"), eventsource.Config{Method: "POST"}},
		{"no Retry-After", status(503, "text/plain", "down"), eventsource.Config{}},
		{"invalid Retry-After", busy(503, "soon"), eventsource.Config{}},
		{"negative Retry-After", busy(503, "-5"), eventsource.Config{}},
		{"other status", busy(500, "3"), eventsource.Config{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newScript(t, tc.step, stream("data: ok\n\n"))
			c := newClient(t, s, tc.cfg)
			_, err := collect(t, c)
			var re *eventsource.ResponseError
			if !errors.As(err, &re) {
				t.Fatalf("Events: final error %v, want a *ResponseError without retry", err)
			}
			if n := len(s.requests()); n != 1 {
				t.Errorf("server got %d requests, want 1", n)
			}
		})
	}
}

func TestClientRetryAfterField(t *testing.T) {
	s := newScript(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "30")
		status(429, "text/plain", "slow down")(w, r)
	})
	c := newClient(t, s, eventsource.Config{Reconnect: eventsource.ReconnectNever})
	_, err := collect(t, c)
	var re *eventsource.ResponseError
	if !errors.As(err, &re) || re.RetryAfter != 30*time.Second {
		t.Errorf("Events: final error %#v, want a *ResponseError with RetryAfter 30s", err)
	}
}

// TestLastEventIDPersists checks the spec's rule that the last event ID
// string persists across connections (issue: each connection used to start
// from an empty ID).
func TestClientLastEventIDPersists(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start string // Config.LastEventID
		steps []http.HandlerFunc
		want  []sse.Event
		sent  []string // Last-Event-ID of each request ("" for none)
		last  string   // LastEventID() at the end
	}{
		{
			name:  "event without id on a new connection",
			steps: []http.HandlerFunc{stream("id: 1\ndata: a\n\n"), stream("data: b\n\n")},
			want:  []sse.Event{ev("1", "message", "a"), ev("1", "message", "b")},
			sent:  []string{"", "1", "1"},
			last:  "1",
		},
		{
			name:  "stream that ends with no event",
			steps: []http.HandlerFunc{stream("id: 1\ndata: a\n\n"), stream(": nothing\nretry: 1\n\n"), abort("data: part")},
			want:  []sse.Event{ev("1", "message", "a")},
			sent:  []string{"", "1", "1", "1"},
			last:  "1",
		},
		{
			name:  "Config.LastEventID is the start",
			start: "5",
			steps: []http.HandlerFunc{stream("data: a\n\n"), stream("id: 6\ndata: b\n\n")},
			want:  []sse.Event{ev("5", "message", "a"), ev("6", "message", "b")},
			sent:  []string{"5", "5", "6"},
			last:  "6",
		},
		{
			name:  "Config.LastEventID kept by an empty stream",
			start: "5",
			steps: []http.HandlerFunc{stream(), stream("data: a\n\n")},
			want:  []sse.Event{ev("5", "message", "a")},
			sent:  []string{"5", "5", "5"},
			last:  "5",
		},
		{
			name:  "empty id clears it on a later connection",
			start: "5",
			steps: []http.HandlerFunc{stream("id\ndata: a\n\n"), stream("data: b\n\n")},
			want:  []sse.Event{ev("", "message", "a"), ev("", "message", "b")},
			sent:  []string{"5", "", ""},
			last:  "",
		},
		{
			name:  "id without data on a later connection",
			steps: []http.HandlerFunc{stream("id: 1\ndata: a\n\n"), stream("id: 2\n\n"), stream("data: c\n\n")},
			want:  []sse.Event{ev("1", "message", "a"), ev("2", "message", "c")},
			sent:  []string{"", "1", "2", "2"},
			last:  "2",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newScript(t, tc.steps...)
			c := newClient(t, s, eventsource.Config{LastEventID: tc.start})
			recordSleep(c)
			evs, err := collect(t, c)
			if !errors.Is(err, eventsource.ErrNoContent) {
				t.Fatalf("Events: final error %v, want ErrNoContent", err)
			}
			if !slices.Equal(evs, tc.want) {
				t.Errorf("Events = %q, want %q", evs, tc.want)
			}
			var sent []string
			for _, r := range s.requests() {
				sent = append(sent, r.Header.Get("Last-Event-ID"))
			}
			if !slices.Equal(sent, tc.sent) {
				t.Errorf("requests sent Last-Event-ID %q, want %q", sent, tc.sent)
			}
			if got := c.LastEventID(); got != tc.last {
				t.Errorf("LastEventID() = %q, want %q", got, tc.last)
			}
		})
	}
}

func TestClientNewRejectsRequestConfig(t *testing.T) {
	for _, cfg := range []eventsource.Config{
		{Method: "BAD METHOD"},
		{Method: "GET\n"},
		{Reconnect: eventsource.Reconnect(9)},
		{Reconnect: eventsource.Reconnect(-1)},
	} {
		if _, err := eventsource.New("http://example.com/", cfg); err == nil {
			t.Errorf("New(%+v) = nil error, want one", cfg)
		}
	}
}

func TestClientCancelDuringPost(t *testing.T) {
	gone := make(chan struct{})
	s := newScript(t, func(w http.ResponseWriter, r *http.Request) {
		stream("data: a\n\n")(w, r)
		<-r.Context().Done()
		close(gone)
	})
	c := newClient(t, s, eventsource.Config{Method: "POST", Body: jsonBody(prompt, new(int))})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var last error
	for _, err := range c.Events(ctx) {
		if err != nil {
			last = err
			continue
		}
		cancel()
	}
	if !errors.Is(last, context.Canceled) {
		t.Errorf("Events: final error %v, want context.Canceled", last)
	}
	select {
	case <-gone:
	case <-time.After(testTimeout):
		t.Fatal("server did not see the client leave")
	}
}
