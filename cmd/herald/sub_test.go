package main

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-sse/herald/eventsource"
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
	// The event has no id field: it carries the last event ID in effect,
	// which starts as --last-event-id.
	if want := "[message] 41: 41\n"; res.code != 0 || res.stdout != want {
		t.Errorf("herald sub --last-event-id 41 = exit %d, stdout %q, stderr %q; want 0, %q", res.code, res.stdout, res.stderr, want)
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

// bodyLog records the request bodies a scriptServer's handler read.
type bodyLog struct {
	mu  sync.Mutex
	got []string
}

// read reads and records the body of r.
func (b *bodyLog) read(r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		body = []byte("read error: " + err.Error())
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.got = append(b.got, string(body))
}

func (b *bodyLog) list() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.got...)
}

// abortStream streams chunks, then breaks the connection without ending
// the response.
func abortStream(w http.ResponseWriter, chunks ...string) {
	stream(w, chunks...)
	panic(http.ErrAbortHandler)
}

const chatBody = `{"model":"m","stream":true,"messages":[{"role":"user","content":"Hi"}]}`

func TestSubPostUntilDone(t *testing.T) {
	var bodies bodyLog
	s := newScriptServer(t, func(s *scriptServer, w http.ResponseWriter, r *http.Request, n int) {
		bodies.read(r)
		stream(w, `data: {"text":"Hel"}`+"\n\n", `data: {"text":"lo"}`+"\n\n", "data: [DONE]\n\n", "data: after\n\n")
		s.hold(r) // the command leaves at [DONE] without waiting for the end
	})
	res := runCmd(t, "sub", "--json", "-H", "Authorization: Bearer sk-1", "-d", chatBody, "--until", "[DONE]", s.url)
	want := `{"type":"message","data":"{\"text\":\"Hel\"}","id":""}` + "\n" + `{"type":"message","data":"{\"text\":\"lo\"}","id":""}` + "\n"
	if res.code != 0 || res.stdout != want || res.stderr != "" {
		t.Errorf("herald sub -d ... --until [DONE] = exit %d, stdout\n%s\nstderr %q; want exit 0, no stderr, stdout\n%s", res.code, res.stdout, res.stderr, want)
	}
	reqs := s.requests()
	if len(reqs) != 1 {
		t.Fatalf("server got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	for k, v := range map[string]string{"Content-Type": "application/json", "Authorization": "Bearer sk-1", "Accept": "text/event-stream"} {
		if got := r.Header.Get(k); got != v {
			t.Errorf("request header %s = %q, want %q", k, got, v)
		}
	}
	if r.Method != http.MethodPost {
		t.Errorf("method = %s, want POST (implied by -d)", r.Method)
	}
	if got := bodies.list(); len(got) != 1 || got[0] != chatBody {
		t.Errorf("server read bodies %q, want [%q]", got, chatBody)
	}
}

func TestSubRequestBodies(t *testing.T) {
	dir := t.TempDir()
	jsonFile := filepath.Join(dir, "req.json")
	if err := os.WriteFile(jsonFile, []byte("\n  [1, 2]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		args       []string
		method     string
		body       string
		contentTyp string
	}{
		{"JSON object", []string{"-d", `{"a":1}`}, "POST", `{"a":1}`, "application/json"},
		{"not JSON", []string{"-d", "a=1&b=2"}, "POST", "a=1&b=2", "application/x-www-form-urlencoded"},
		{"broken JSON", []string{"-d", `{"a":`}, "POST", `{"a":`, "application/x-www-form-urlencoded"},
		{"JSON scalar", []string{"-d", `42`}, "POST", `42`, "application/x-www-form-urlencoded"},
		{"-H overrides", []string{"-d", `{"a":1}`, "-H", "content-type: text/plain"}, "POST", `{"a":1}`, "text/plain"},
		{"--data-file", []string{"--data-file", jsonFile}, "POST", "\n  [1, 2]\n", "application/json"},
		{"-d @file", []string{"-d", "@" + jsonFile}, "POST", "\n  [1, 2]\n", "application/json"},
		{"-X PUT", []string{"-X", "put", "-d", `{}`}, "PUT", `{}`, "application/json"},
		{"-X POST, no body", []string{"-X", "POST"}, "POST", "", ""},
		{"--header and -H", []string{"--header", "X-A: 1", "-H", "X-B: 2"}, "GET", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var bodies bodyLog
			s := newScriptServer(t, func(s *scriptServer, w http.ResponseWriter, r *http.Request, n int) {
				bodies.read(r)
				stream(w, "data: ok\n\n")
			})
			res := runCmd(t, append(append([]string{"sub", "--no-reconnect"}, tt.args...), s.url)...)
			if res.code != 0 || res.stdout != "[message] ok\n" {
				t.Errorf("herald sub %q = exit %d, stdout %q, stderr %q; want exit 0, one event", tt.args, res.code, res.stdout, res.stderr)
			}
			reqs := s.requests()
			if len(reqs) != 1 {
				t.Fatalf("server got %d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.Method != tt.method || r.Header.Get("Content-Type") != tt.contentTyp {
				t.Errorf("herald sub %q sent %s with Content-Type %q; want %s, %q", tt.args, r.Method, r.Header.Get("Content-Type"), tt.method, tt.contentTyp)
			}
			if got := bodies.list(); got[0] != tt.body {
				t.Errorf("herald sub %q sent body %q, want %q", tt.args, got[0], tt.body)
			}
			if tt.name == "--header and -H" && (r.Header.Get("X-A") != "1" || r.Header.Get("X-B") != "2") {
				t.Errorf("headers X-A %q, X-B %q; want 1 and 2", r.Header.Get("X-A"), r.Header.Get("X-B"))
			}
		})
	}
}

func TestSubHeaderFlagWinsOverEnv(t *testing.T) {
	t.Setenv("HERALD_HEADER", "X-Env: 1")
	s := newScriptServer(t, func(s *scriptServer, w http.ResponseWriter, r *http.Request, n int) {
		stream(w, "data: ok\n\n")
	})
	if res := runCmd(t, "sub", "--no-reconnect", "-H", "X-Cmd: 2", s.url); res.code != 0 {
		t.Fatalf("herald sub -H: exit %d, stderr %q", res.code, res.stderr)
	}
	if res := runCmd(t, "sub", "--no-reconnect", s.url); res.code != 0 {
		t.Fatalf("herald sub: exit %d, stderr %q", res.code, res.stderr)
	}
	reqs := s.requests()
	if got := reqs[0].Header; got.Get("X-Env") != "" || got.Get("X-Cmd") != "2" {
		t.Errorf("with -H on the command line: X-Env %q, X-Cmd %q; want only X-Cmd: 2", got.Get("X-Env"), got.Get("X-Cmd"))
	}
	if got := reqs[1].Header.Get("X-Env"); got != "1" {
		t.Errorf("without -H: X-Env %q, want 1 from HERALD_HEADER", got)
	}
}

func TestSubOneShot(t *testing.T) {
	t.Run("POST ends with the response", func(t *testing.T) {
		s := newScriptServer(t, func(s *scriptServer, w http.ResponseWriter, r *http.Request, n int) {
			stream(w, "retry: 10\nid: 1\ndata: a\n\n", "data: b\n\n")
		})
		res := runCmd(t, "sub", "-d", "{}", s.url)
		if want := "[message] 1: a\n[message] 1: b\n"; res.code != 0 || res.stdout != want || res.stderr != "" {
			t.Errorf("herald sub -d {} = exit %d, stdout %q, stderr %q; want exit 0, %q", res.code, res.stdout, res.stderr, want)
		}
		if n := len(s.requests()); n != 1 {
			t.Errorf("server got %d requests, want 1 (a POST is read once)", n)
		}
	})
	t.Run("GET with --no-reconnect", func(t *testing.T) {
		s := newScriptServer(t, func(s *scriptServer, w http.ResponseWriter, r *http.Request, n int) {
			stream(w, "retry: 10\ndata: a\n\n")
		})
		res := runCmd(t, "sub", "--no-reconnect", s.url)
		if res.code != 0 || res.stdout != "[message] a\n" {
			t.Errorf("herald sub --no-reconnect = exit %d, stdout %q, stderr %q; want exit 0, one event", res.code, res.stdout, res.stderr)
		}
		if n := len(s.requests()); n != 1 {
			t.Errorf("server got %d requests, want 1", n)
		}
	})
	t.Run("broken POST stream", func(t *testing.T) {
		s := newScriptServer(t, func(s *scriptServer, w http.ResponseWriter, r *http.Request, n int) {
			abortStream(w, "data: a\n\n", "data: part")
		})
		res := runCmd(t, "sub", "-d", "{}", s.url)
		wantErr := "herald sub: " + s.url + ": read: unexpected EOF\n"
		if res.code != 1 || res.stdout != "[message] a\n" || res.stderr != wantErr {
			t.Errorf("herald sub on a broken POST stream = exit %d, stdout %q, stderr %q; want exit 1, stderr %q", res.code, res.stdout, res.stderr, wantErr)
		}
	})
	t.Run("API error", func(t *testing.T) {
		s := newScriptServer(t, func(s *scriptServer, w http.ResponseWriter, r *http.Request, n int) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":{"message":"model not found"}}`)
		})
		res := runCmd(t, "sub", "-d", "{}", s.url)
		wantErr := "herald sub: " + s.url + `: 400 Bad Request: {"error":{"message":"model not found"}}` + "\n"
		if res.code != 1 || res.stderr != wantErr {
			t.Errorf("herald sub to a refusing API = exit %d, stderr %q; want exit 1, %q", res.code, res.stderr, wantErr)
		}
	})
}

func TestSubPostReconnect(t *testing.T) {
	// --reconnect: the server drops the connection in the middle of an
	// event; the command sends the same body again with Last-Event-ID and
	// the partial event is never printed.
	var bodies bodyLog
	s := newScriptServer(t, func(s *scriptServer, w http.ResponseWriter, r *http.Request, n int) {
		bodies.read(r)
		switch n {
		case 1:
			abortStream(w, "retry: 10\nid: 1\ndata: a\n\n", "id: 2\ndata: par")
		default:
			stream(w, "data: b\n\n", "data: [DONE]\n\n")
		}
	})
	res := runCmd(t, "sub", "--reconnect", "-d", chatBody, "--until", "[DONE]", s.url)
	if want := "[message] 1: a\n[message] 1: b\n"; res.code != 0 || res.stdout != want {
		t.Errorf("herald sub --reconnect -d = exit %d, stdout %q, stderr %q; want exit 0, %q", res.code, res.stdout, res.stderr, want)
	}
	reqs := s.requests()
	if len(reqs) != 2 {
		t.Fatalf("server got %d requests, want 2", len(reqs))
	}
	if got := reqs[1].Header.Get("Last-Event-ID"); got != "1" || reqs[1].Method != http.MethodPost {
		t.Errorf("reconnection: %s with Last-Event-ID %q, want POST with 1", reqs[1].Method, got)
	}
	if got := bodies.list(); len(got) != 2 || got[0] != chatBody || got[1] != chatBody {
		t.Errorf("server read bodies %q, want the body twice", got)
	}
	for _, want := range []string{
		"herald sub: connection lost (read: unexpected EOF); reconnecting in 10ms\n",
		`herald sub: reconnected to ` + s.url + `, resuming after event "1"` + "\n",
	} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("herald sub stderr = %q, want it to contain %q", res.stderr, want)
		}
	}
}

func TestSubComments(t *testing.T) {
	s := newScriptServer(t, func(s *scriptServer, w http.ResponseWriter, r *http.Request, n int) {
		stream(w, ": queued\n", "data: a\n\n", ":\n", ":bell\x07\n", "data: b\n\n")
		s.hold(r)
	})
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--count", "2"}, "[message] a\n[message] b\n"},
		{[]string{"--count", "2", "--comments"}, ": queued\n[message] a\n: \n: bell\\x07\n[message] b\n"},
		{[]string{"--count", "2", "--comments", "--json"}, `{"comment":"queued"}` + "\n" + `{"type":"message","data":"a","id":""}` + "\n" +
			`{"comment":""}` + "\n" + `{"comment":"bell\u0007"}` + "\n" + `{"type":"message","data":"b","id":""}` + "\n"},
	}
	for _, tt := range tests {
		res := runCmd(t, append(append([]string{"sub"}, tt.args...), s.url)...)
		if res.code != 0 || res.stdout != tt.want {
			t.Errorf("herald sub %q = exit %d, stdout\n%q\nwant\n%q", tt.args, res.code, res.stdout, tt.want)
		}
	}
}

func TestSubTokenOrigin(t *testing.T) {
	s := newScriptServer(t, func(s *scriptServer, w http.ResponseWriter, r *http.Request, n int) {
		stream(w, "data: ok\n\n")
	})
	origin := strings.TrimSuffix(s.url, "/events")
	tests := []struct {
		name string
		env  string // HERALD_TOKEN
		args []string
		want string // Authorization received
	}{
		{"env token, other origin", "envtok", []string{s.url}, ""},
		{"env token, --hub origin", "envtok", []string{"--hub", origin + "/.well-known/mercure", s.url}, "Bearer envtok"},
		{"env token, topics on --hub", "envtok", []string{"--hub", origin + "/events", "news"}, "Bearer envtok"},
		{"explicit token, other origin", "", []string{"--token", "cmdtok", s.url}, "Bearer cmdtok"},
		{"explicit token wins over env", "envtok", []string{"--token", "cmdtok", s.url}, "Bearer cmdtok"},
		{"-H Authorization, other origin", "envtok", []string{"-H", "Authorization: Bearer api", s.url}, "Bearer api"},
		{"-H Authorization wins over --token", "", []string{"--token", "cmdtok", "-H", "Authorization: Bearer api", s.url}, "Bearer api"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("HERALD_TOKEN", tt.env)
			if tt.env == "" {
				os.Unsetenv("HERALD_TOKEN")
			}
			res := runCmd(t, append([]string{"sub", "--no-reconnect"}, tt.args...)...)
			if res.code != 0 {
				t.Fatalf("herald sub %q: exit %d, stderr %q", tt.args, res.code, res.stderr)
			}
			if got := s.requests()[i].Header.Get("Authorization"); got != tt.want {
				t.Errorf("herald sub %q with HERALD_TOKEN=%q sent Authorization %q, want %q", tt.args, tt.env, got, tt.want)
			}
		})
	}

	t.Run("401 explains the withheld token", func(t *testing.T) {
		t.Setenv("HERALD_TOKEN", "envtok")
		s := newScriptServer(t, func(s *scriptServer, w http.ResponseWriter, r *http.Request, n int) {
			http.Error(w, "missing token", http.StatusUnauthorized)
		})
		res := runCmd(t, "sub", s.url)
		want := "herald sub: " + s.url + ": 401 Unauthorized: missing token (HERALD_TOKEN is sent only to --hub's origin: give --token to send it to this URL)\n"
		if res.code != 1 || res.stderr != want {
			t.Errorf("herald sub = exit %d, stderr %q; want exit 1, %q", res.code, res.stderr, want)
		}
	})
}

func TestSubHelp(t *testing.T) {
	res := runCmd(t, "sub", "-h")
	if res.code != 0 {
		t.Fatalf("herald sub -h: exit %d", res.code)
	}
	for l := range strings.Lines(res.stderr) {
		if strings.Contains(l, "herald sub") && strings.Contains(l, "--token") {
			t.Errorf("herald sub -h example %q puts a token on the command line", strings.TrimSpace(l))
		}
		if strings.Contains(l, "herald sub") && strings.Contains(l, "HERALD_TOKEN") && strings.Contains(l, "example.com") {
			t.Errorf("herald sub -h example %q sends the token to another server", strings.TrimSpace(l))
		}
	}
	for _, flag := range []string{"-X", "-d", "-data-file", "-H", "-no-reconnect", "-reconnect", "-until", "-comments", "application/json"} {
		if !strings.Contains(res.stderr, flag) {
			t.Errorf("herald sub -h does not mention %s", flag)
		}
	}
}

func TestSubConnectNotices(t *testing.T) {
	s := newScriptServer(t, func(s *scriptServer, w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			stream(w, "retry: 10\nid: 7\ndata: a\n\n")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	res := runCmd(t, "sub", "--verbose", s.url)
	want := "herald sub: connected to " + s.url + "\n" +
		"herald sub: connection lost (stream ended); reconnecting in 10ms\n"
	if res.code != 0 || res.stderr != want {
		t.Errorf("herald sub --verbose = exit %d, stderr %q; want exit 0, %q", res.code, res.stderr, want)
	}
}

func TestSubNoticeFormat(t *testing.T) {
	tests := []struct {
		err   error
		delay time.Duration
		want  string
	}{
		{errors.New("eventsource: stream ended"), 3*time.Second + 123456789, "herald sub: connection lost (stream ended); reconnecting in 3.1s\n"},
		{errors.New("eventsource: read: sse: read: unexpected EOF"), 1234567, "herald sub: connection lost (read: unexpected EOF); reconnecting in 1ms\n"},
		{errors.New("eventsource: stream ended"), 95*time.Second + 600*time.Millisecond, "herald sub: connection lost (stream ended); reconnecting in 1m36s\n"},
		{&eventsource.ResponseError{StatusCode: 503}, 7 * time.Second, "herald sub: the server answered 503 Service Unavailable; retrying in 7s\n"},
		{&eventsource.ResponseError{StatusCode: 429}, 2500 * time.Millisecond, "herald sub: the server answered 429 Too Many Requests; retrying in 2.5s\n"},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		log := slog.New(&noticeHandler{mu: new(sync.Mutex), w: &b})
		log.Warn("eventsource: reconnecting", "url", "http://x", "err", tt.err, "failures", 2, "delay", tt.delay)
		if b.String() != tt.want {
			t.Errorf("notice for %v after %v = %q, want %q", tt.err, tt.delay, b.String(), tt.want)
		}
	}
}

func TestSubRequestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--reconnect", "--no-reconnect", "http://a.example/"}, "not both"},
		{[]string{"-d", "x", "--data-file", "f", "http://a.example/"}, "give -d or --data-file, not both"},
		{[]string{"--data-file", "/nonexistent/req.json", "http://a.example/"}, "--data-file: open /nonexistent/req.json"},
		{[]string{"-d", "@/nonexistent/req.json", "http://a.example/"}, "-d: open /nonexistent/req.json"},
		{[]string{"-d", "@", "http://a.example/"}, "-d: no file name"},
		{[]string{"-X", "BAD METHOD", "http://a.example/"}, "invalid method"},
	}
	for _, tt := range tests {
		res := runCmd(t, append([]string{"sub"}, tt.args...)...)
		if res.code != 2 || !strings.Contains(res.stderr, tt.want) {
			t.Errorf("herald sub %q = exit %d, stderr %q; want exit 2, stderr containing %q", tt.args, res.code, res.stderr, tt.want)
		}
	}
}
