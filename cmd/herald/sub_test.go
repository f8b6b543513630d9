package main

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/herald-sse/herald/hub"
)

// scriptServer is a plain SSE server whose n-th connection (from 1) is
// answered by handle. It records the requests it received.
type scriptServer struct {
	url  string
	stop chan struct{} // closed at the end of the test: handlers holding a stream return

	mu   sync.Mutex
	reqs []*http.Request
}

func newScriptServer(t *testing.T, handle func(s *scriptServer, w http.ResponseWriter, r *http.Request, n int)) *scriptServer {
	t.Helper()
	s := &scriptServer{stop: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.reqs = append(s.reqs, r.Clone(r.Context()))
		n := len(s.reqs)
		s.mu.Unlock()
		handle(s, w, r, n)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(s.stop) }) // runs before srv.Close
	s.url = srv.URL + "/events"
	return s
}

// requests returns the requests received so far.
func (s *scriptServer) requests() []*http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*http.Request(nil), s.reqs...)
}

// stream answers an event stream with each chunk written and flushed in
// turn.
func stream(w http.ResponseWriter, chunks ...string) {
	w.Header().Set("Content-Type", "text/event-stream")
	for _, c := range chunks {
		io.WriteString(w, c)
		http.NewResponseController(w).Flush()
	}
}

// hold keeps a stream open until the client leaves or the test ends.
func (s *scriptServer) hold(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-s.stop:
	}
}

func TestSubResumesAfterDrop(t *testing.T) {
	s := newScriptServer(t, func(s *scriptServer, w http.ResponseWriter, r *http.Request, n int) {
		switch n {
		case 1: // two events, then the connection drops in the middle of the third
			stream(w, "retry: 10\n\n", "id: 1\ndata: a\n\n", "id: 2\nevent: t\ndata: b\n", "\n", "id: 3\ndata: part")
		case 2:
			stream(w, "id: 3\ndata: c\n\n")
			s.hold(r)
		default:
			t.Errorf("connection %d, want 2", n)
			w.WriteHeader(http.StatusNoContent)
		}
	})
	res := runCmd(t, "sub", "--json", "--count", "3", s.url)
	want := `{"type":"message","data":"a","id":"1"}` + "\n" +
		`{"type":"t","data":"b","id":"2"}` + "\n" +
		`{"type":"message","data":"c","id":"3"}` + "\n"
	if res.code != 0 || res.stdout != want {
		t.Errorf("herald sub --json --count 3 = exit %d, stdout\n%s\nstderr %q; want exit 0, stdout\n%s", res.code, res.stdout, res.stderr, want)
	}
	reqs := s.requests()
	if len(reqs) != 2 {
		t.Fatalf("server got %d connections, want 2", len(reqs))
	}
	if got := reqs[0].Header.Get("Last-Event-ID"); got != "" {
		t.Errorf("first connection Last-Event-ID = %q, want none", got)
	}
	if got := reqs[1].Header.Get("Last-Event-ID"); got != "2" {
		t.Errorf("reconnection Last-Event-ID = %q, want 2 (the last complete event)", got)
	}
	if !strings.Contains(res.stderr, "herald sub: connection lost (stream ended); reconnecting in 10ms\n") {
		t.Errorf("herald sub stderr = %q, want a reconnection notice", res.stderr)
	}
}

func TestSubEndsOnNoContent(t *testing.T) {
	s := newScriptServer(t, func(s *scriptServer, w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			stream(w, "retry: 10\nid: 1\ndata: a\n\n")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	res := runCmd(t, "sub", "--json", s.url)
	if want := `{"type":"message","data":"a","id":"1"}` + "\n"; res.code != 0 || res.stdout != want {
		t.Errorf("herald sub = exit %d, stdout %q, stderr %q; want exit 0 after 204, stdout %q", res.code, res.stdout, res.stderr, want)
	}
	if n := len(s.requests()); n != 2 {
		t.Errorf("server got %d connections, want 2", n)
	}
}

func TestSubFatalResponses(t *testing.T) {
	tests := []struct {
		name   string
		handle func(w http.ResponseWriter)
		args   []string
		want   string // stderr after the URL
	}{
		{"wrong content type", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, "<html>hello</html>")
		}, nil, `: content type "text/html" is not text/event-stream: not an SSE endpoint`},
		{"unauthorized", func(w http.ResponseWriter) {
			w.Header().Set("WWW-Authenticate", "Bearer")
			http.Error(w, "missing access token", http.StatusUnauthorized)
		}, nil, ": 401 Unauthorized: missing access token (give --token or set HERALD_TOKEN)"},
		{"unauthorized with token", func(w http.ResponseWriter) {
			http.Error(w, "invalid access token: token is expired\nsecond line", http.StatusUnauthorized)
		}, []string{"--token", "old"}, ": 401 Unauthorized: invalid access token: token is expired"},
		{"not found", func(w http.ResponseWriter) {
			http.NotFound(w, nil)
		}, nil, ": 404 Not Found: 404 page not found"},
		{"server error without body", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusBadGateway)
		}, nil, ": 502 Bad Gateway"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newScriptServer(t, func(s *scriptServer, w http.ResponseWriter, r *http.Request, n int) { tt.handle(w) })
			res := runCmd(t, append(append([]string{"sub"}, tt.args...), s.url)...)
			want := "herald sub: " + s.url + tt.want + "\n"
			if res.code != 1 || res.stderr != want || res.stdout != "" {
				t.Errorf("herald sub = exit %d, stdout %q, stderr %q; want exit 1, stderr %q", res.code, res.stdout, res.stderr, want)
			}
			if n := len(s.requests()); n != 1 {
				t.Errorf("server got %d connections, want 1 (no retry)", n)
			}
		})
	}
}

func TestSubCRLineEndings(t *testing.T) {
	s := newScriptServer(t, func(s *scriptServer, w http.ResponseWriter, r *http.Request, n int) {
		stream(w, "id: 1\rdata: x\rdata: y\r\r:comment\revent: e\rdata: z\r", "\r")
		s.hold(r)
	})
	res := runCmd(t, "sub", "--json", "--count", "2", s.url)
	want := `{"type":"message","data":"x\ny","id":"1"}` + "\n" + `{"type":"e","data":"z","id":"1"}` + "\n"
	if res.code != 0 || res.stdout != want {
		t.Errorf("herald sub on a CR-only stream = exit %d, stdout\n%s\nstderr %q; want\n%s", res.code, res.stdout, res.stderr, want)
	}
}

func TestSubEventTooLarge(t *testing.T) {
	s := newScriptServer(t, func(s *scriptServer, w http.ResponseWriter, r *http.Request, n int) {
		stream(w, "id: 1\ndata: small\n\n", "id: 2\ndata: "+strings.Repeat("x", 4096)+"\n\n")
		s.hold(r)
	})
	res := runCmd(t, "sub", "--json", "--max-event-size", "1024", s.url)
	wantOut := `{"type":"message","data":"small","id":"1"}` + "\n"
	wantErr := "herald sub: " + s.url + ": an event is larger than 1024 bytes (--max-event-size)\n"
	if res.code != 1 || res.stdout != wantOut || res.stderr != wantErr {
		t.Errorf("herald sub with a huge event = exit %d, stdout %q, stderr %q; want exit 1, stdout %q, stderr %q",
			res.code, res.stdout, res.stderr, wantOut, wantErr)
	}
	if n := len(s.requests()); n != 1 {
		t.Errorf("server got %d connections, want 1 (no retry)", n)
	}
}

func TestSubHumanFormat(t *testing.T) {
	s := newScriptServer(t, func(s *scriptServer, w http.ResponseWriter, r *http.Request, n int) {
		stream(w, "id: 7\nevent: alert\ndata: line1\ndata: line2\ndata:\ndata: line4\n\n",
			"id\ndata: plain\n\n",
			"id: 8\ndata: bell\x07 and \x1b[31mred\n\n",
			"data\n\n")
		s.hold(r)
	})
	res := runCmd(t, "sub", "--count", "4", s.url)
	want := "[alert] 7: line1\n    line2\n    \n    line4\n" +
		"[message] plain\n" +
		"[message] 8: bell\\x07 and \\x1b[31mred\n" +
		"[message] 8: \n"
	if res.code != 0 || res.stdout != want {
		t.Errorf("herald sub = exit %d, stdout\n%q\nwant\n%q", res.code, res.stdout, want)
	}
}

func TestSubRequest(t *testing.T) {
	s := newScriptServer(t, func(s *scriptServer, w http.ResponseWriter, r *http.Request, n int) {
		stream(w, "data: "+r.Header.Get("Last-Event-ID")+"\n\n")
		s.hold(r)
	})
	hubURL := strings.TrimSuffix(s.url, "/events") + "/.well-known/mercure?x=1"
	res := runCmd(t, "sub", "--hub", hubURL, "--token", "T0K", "--header", "X-Test: yes", "--last-event-id", "41",
		"--count", "1", "--topic", "https://example.com/books/1", "a", "b c")
	if res.code != 0 || res.stdout != "[message] 41\n" {
		t.Errorf("herald sub --last-event-id 41 = exit %d, stdout %q, stderr %q; want 0, %q", res.code, res.stdout, res.stderr, "[message] 41\n")
	}
	r := s.requests()[0]
	if want := []string{"https://example.com/books/1", "a", "b c"}; !reflect.DeepEqual(r.URL.Query()["topic"], want) {
		t.Errorf("topic parameters = %q, want %q", r.URL.Query()["topic"], want)
	}
	for k, v := range map[string]string{"Authorization": "Bearer T0K", "X-Test": "yes", "Accept": "text/event-stream", "Last-Event-ID": "41"} {
		if got := r.Header.Get(k); got != v {
			t.Errorf("request header %s = %q, want %q", k, got, v)
		}
	}
	if r.URL.Path != "/.well-known/mercure" || r.URL.Query().Get("x") != "1" {
		t.Errorf("request URL = %v, want the --hub path with its query kept", r.URL)
	}
}

func TestSubLastEventIDOnHub(t *testing.T) {
	th := newTestHub(t, hub.Config{})
	tok := mintToken(t, "--publish", "*")
	for _, id := range []string{"e1", "e2", "e3"} {
		if res := runCmd(t, "pub", "--hub", th.url, "--token", tok, "--topic", "news", "--data", "data "+id, "--id", id); res.code != 0 {
			t.Fatalf("herald pub --id %s: exit %d, stderr %q", id, res.code, res.stderr)
		}
	}
	line := func(id string) string { return `{"type":"message","data":"data ` + id + `","id":"` + id + `"}` + "\n" }

	res := runCmd(t, "sub", "--hub", th.url, "--json", "--count", "2", "--last-event-id", "e1", "news")
	if want := line("e2") + line("e3"); res.code != 0 || res.stdout != want || res.stderr != "" {
		t.Errorf("herald sub --last-event-id e1 = exit %d, stdout\n%s\nstderr %q; want exit 0, no stderr, stdout\n%s", res.code, res.stdout, res.stderr, want)
	}

	res = runCmd(t, "sub", "--hub", th.url, "--json", "--count", "3", "--last-event-id", "gone", "news")
	if want := line("e1") + line("e2") + line("e3"); res.code != 0 || res.stdout != want {
		t.Errorf("herald sub --last-event-id gone = exit %d, stdout\n%s\nwant\n%s", res.code, res.stdout, want)
	}
	wantErr := `herald sub: warning: the hub cannot resume after event "gone" (unknown, or no longer in its history): ` +
		"it replays all the history it holds; events may have been missed\n"
	if res.stderr != wantErr {
		t.Errorf("herald sub --last-event-id gone stderr = %q, want %q", res.stderr, wantErr)
	}
}

func TestSubPrivateNeedsToken(t *testing.T) {
	th := newTestHub(t, hub.Config{RequireSubscriberToken: true})
	res := runCmd(t, "sub", "--hub", th.url, "news")
	want := "herald sub: " + th.url + ": 401 Unauthorized: missing access token (give --token or set HERALD_TOKEN)\n"
	if res.code != 1 || res.stderr != want {
		t.Errorf("herald sub without token = exit %d, stderr %q; want exit 1, %q", res.code, res.stderr, want)
	}

	pubTok := mintToken(t, "--publish", "*")
	subTok := mintToken(t, "--subscribe", "news")
	sub := startCmd(t, "sub", "--hub", th.url, "--token", subTok, "--json", "--count", "1", "news")
	th.waitSubscribers(t, 1)
	if res := runCmd(t, "pub", "--hub", th.url, "--token", pubTok, "--topic", "news", "--data", "secret", "--id", "p1", "--private"); res.code != 0 {
		t.Fatalf("herald pub --private: exit %d, stderr %q", res.code, res.stderr)
	}
	if got, want := sub.wait(t), `{"type":"message","data":"secret","id":"p1"}`+"\n"; got.code != 0 || got.stdout != want {
		t.Errorf("herald sub --token = exit %d, stdout %q, stderr %q; want 0, %q", got.code, got.stdout, got.stderr, want)
	}
}

func TestSubInterrupted(t *testing.T) {
	th := newTestHub(t, hub.Config{})
	sub := startCmd(t, "sub", "--hub", th.url, "news")
	th.waitSubscribers(t, 1)
	sub.cancel()
	if res := sub.wait(t); res.code != 0 || res.stdout != "" || res.stderr != "" {
		t.Errorf("interrupted herald sub = exit %d, stdout %q, stderr %q; want a silent exit 0", res.code, res.stdout, res.stderr)
	}
	th.waitSubscribers(t, 0)
}

func TestSubUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hubURL := "http://" + ln.Addr().String() + "/.well-known/mercure"
	ln.Close()
	res := runCmd(t, "sub", "--hub", hubURL, "news")
	if want := "herald sub: cannot reach " + hubURL + ": connection refused\n"; res.code != 1 || res.stderr != want {
		t.Errorf("herald sub to a closed port = exit %d, stderr %q; want exit 1, %q", res.code, res.stderr, want)
	}
}

func TestSubUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, "nothing to subscribe to"},
		{[]string{"http://a.example/1", "https://b.example/2"}, "several URLs"},
		{[]string{"http://a.example/1", "news"}, "give one SSE URL or topics, not both"},
		{[]string{"--topic", "news", "http://a.example/1"}, "give one SSE URL or topics, not both"},
		{[]string{"--hub", "ftp://x", "news"}, `--hub "ftp://x" is not an http:// or https:// URL`},
		{[]string{"--count", "-1", "news"}, "--count must not be negative"},
		{[]string{"--max-event-size", "0", "news"}, "--max-event-size must be positive"},
		{[]string{"--header", "bad", "news"}, `--header "bad"`},
		{[]string{"--last-event-id", "a\nb", "news"}, "control character"},
		{[]string{"--nope"}, "flag provided but not defined: -nope"},
	}
	for _, tt := range tests {
		res := runCmd(t, append([]string{"sub"}, tt.args...)...)
		if res.code != 2 || !strings.Contains(res.stderr, tt.want) {
			t.Errorf("herald sub %q = exit %d, stderr %q; want exit 2, stderr containing %q", tt.args, res.code, res.stderr, tt.want)
		}
	}
}

func TestSubIdleTimeout(t *testing.T) {
	s := newScriptServer(t, func(s *scriptServer, w http.ResponseWriter, r *http.Request, n int) {
		stream(w, "retry: 10\nid: "+strconv.Itoa(n)+"\ndata: event "+strconv.Itoa(n)+"\n\n")
		s.hold(r) // then silence
	})
	res := runCmd(t, "sub", "--json", "--count", "2", "--idle-timeout", "200ms", s.url)
	want := `{"type":"message","data":"event 1","id":"1"}` + "\n" + `{"type":"message","data":"event 2","id":"2"}` + "\n"
	if res.code != 0 || res.stdout != want {
		t.Errorf("herald sub --idle-timeout = exit %d, stdout\n%s\nstderr %q; want\n%s", res.code, res.stdout, res.stderr, want)
	}
	if reqs := s.requests(); len(reqs) != 2 || reqs[1].Header.Get("Last-Event-ID") != "1" {
		t.Errorf("server got %d connections, want 2, the second resuming after id 1", len(reqs))
	}
	if !strings.Contains(res.stderr, "silent for 200ms") {
		t.Errorf("herald sub stderr = %q, want a notice about the silent connection", res.stderr)
	}
}
