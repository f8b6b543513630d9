package main

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-sse/herald/hub"
)

// setStdin makes r the stdin of `herald pub` for the rest of the test.
func setStdin(t *testing.T, r io.Reader) {
	t.Helper()
	old := stdin
	stdin = r
	t.Cleanup(func() { stdin = old })
}

func TestPubThenSub(t *testing.T) {
	th := newTestHub(t, hub.Config{})
	tok := mintToken(t, "--publish", "*")
	sub := startCmd(t, "sub", "--hub", th.url, "--json", "--count", "3", "news", "other")
	th.waitSubscribers(t, 1)

	res := runCmd(t, "pub", "--hub", th.url, "--token", tok, "--topic", "news", "--data", `hello <b>&"world"`, "--id", "id-1", "--type", "greeting")
	if res.code != 0 || res.stdout != "id-1\n" || res.stderr != "" {
		t.Fatalf("herald pub --id id-1 = exit %d, stdout %q, stderr %q; want 0, %q", res.code, res.stdout, res.stderr, "id-1\n")
	}
	setStdin(t, strings.NewReader("line one\nline two\n"))
	res = runCmd(t, "pub", "--hub", th.url, "--token", tok, "--topic", "other")
	id2 := strings.TrimSuffix(res.stdout, "\n")
	if res.code != 0 || id2 == "" || strings.Contains(id2, "\n") {
		t.Fatalf("herald pub (data from stdin) = exit %d, stdout %q, stderr %q; want 0 and one id", res.code, res.stdout, res.stderr)
	}
	t.Setenv("HERALD_TOKEN", tok) // the token from the environment
	t.Setenv("HERALD_HUB", th.url)
	res = runCmd(t, "pub", "--topic", "unrelated", "--topic", "news", "--data", "")
	id3 := strings.TrimSuffix(res.stdout, "\n")
	if res.code != 0 || id3 == "" {
		t.Fatalf("herald pub with HERALD_TOKEN and HERALD_HUB = exit %d, stdout %q, stderr %q; want 0 and an id", res.code, res.stdout, res.stderr)
	}

	got := sub.wait(t)
	want := `{"type":"greeting","data":"hello <b>&\"world\"","id":"id-1"}` + "\n" +
		`{"type":"message","data":"line one\nline two","id":"` + id2 + `"}` + "\n" +
		`{"type":"message","data":"","id":"` + id3 + `"}` + "\n"
	if got.code != 0 || got.stdout != want {
		t.Errorf("herald sub --json --count 3 = exit %d, stdout\n%s\nstderr %q; want exit 0, stdout\n%s", got.code, got.stdout, got.stderr, want)
	}
}

func TestPubLinesFromPipe(t *testing.T) {
	th := newTestHub(t, hub.Config{})
	tok := mintToken(t, "--publish", "logs")
	sub := startCmd(t, "sub", "--hub", th.url, "--json", "--count", "4", "logs")
	th.waitSubscribers(t, 1)

	pr, pw := io.Pipe()
	setStdin(t, pr)
	t.Cleanup(func() { pw.Close() })
	pub := startCmd(t, "pub", "--hub", th.url, "--token", tok, "--topic", "logs", "--lines")

	// Each line is published as soon as it is read, before EOF.
	if _, err := io.WriteString(pw, "first line\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the id of the first line", func() bool { return strings.HasSuffix(pub.stdout.String(), "\n") })
	waitFor(t, "the first line at the subscriber", func() bool { return strings.Contains(sub.stdout.String(), "first line") })
	if _, err := io.WriteString(pw, "second\r\n\nlast without newline"); err != nil {
		t.Fatal(err)
	}
	pw.Close()

	res := pub.wait(t)
	ids := strings.Split(strings.TrimSuffix(res.stdout, "\n"), "\n")
	if res.code != 0 || len(ids) != 4 || res.stderr != "" {
		t.Fatalf("herald pub --lines = exit %d, stdout %q, stderr %q; want 0 and 4 ids", res.code, res.stdout, res.stderr)
	}
	got := sub.wait(t)
	var want strings.Builder
	for i, data := range []string{"first line", "second", "", "last without newline"} {
		want.WriteString(`{"type":"message","data":"` + data + `","id":"` + ids[i] + `"}` + "\n")
	}
	if got.code != 0 || got.stdout != want.String() {
		t.Errorf("herald sub --json = exit %d, stdout\n%s\nwant\n%s", got.code, got.stdout, want.String())
	}
	if n := th.publishConnections(); n != 1 {
		t.Errorf("herald pub --lines used %d connections, want 1 (keep-alive)", n)
	}
}

func TestPubLinesStopsAtFirstRefusal(t *testing.T) {
	for _, tt := range []struct{ batch, reason string }{
		{"1", "request body larger than 300 bytes"},          // a form publish per line
		{"100", "update of 481 bytes larger than 300 bytes"}, // batches: the JSON line's size
	} {
		t.Run("batch "+tt.batch, func(t *testing.T) {
			th := newTestHub(t, hub.Config{MaxBodyBytes: 300})
			tok := mintToken(t, "--publish", "*")
			setStdin(t, strings.NewReader("ok\n"+strings.Repeat("x", 400)+"\nnever sent\n"))
			res := runCmd(t, "pub", "--hub", th.url, "--token", tok, "--topic", "logs", "--lines", "--batch", tt.batch)
			wantErr := "herald pub: line 2: 413 Request Entity Too Large: " + tt.reason + "\n"
			if res.code != 1 || res.stderr != wantErr || strings.Count(res.stdout, "\n") != 1 {
				t.Errorf("herald pub --lines = exit %d, stdout %q, stderr %q; want exit 1, one id, stderr %q", res.code, res.stdout, res.stderr, wantErr)
			}
			if n := th.lastSeq(t); n != 1 {
				t.Errorf("hub holds %d updates, want 1 (nothing after the refused line)", n)
			}
		})
	}
}

func TestPubForm(t *testing.T) {
	type request struct {
		header http.Header
		form   url.Values
	}
	got := make(chan request, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			t.Errorf("ParseForm: %v", err)
		}
		got <- request{r.Header, r.PostForm}
		io.WriteString(w, "assigned-id\n")
	}))
	defer srv.Close()

	res := runCmd(t, "pub", "--hub", srv.URL+"/hub", "--token", "T0K", "--topic", "a", "--topic", "b",
		"--data", "d\nd2", "--id", "x", "--type", "t", "--retry", "1500ms", "--private", "--header", "X-Trace: 7")
	if res.code != 0 || res.stdout != "assigned-id\n" {
		t.Fatalf("herald pub = exit %d, stdout %q, stderr %q; want 0, %q", res.code, res.stdout, res.stderr, "assigned-id\n")
	}
	r := <-got
	want := url.Values{"topic": {"a", "b"}, "data": {"d\nd2"}, "id": {"x"}, "type": {"t"}, "retry": {"1500"}, "private": {"on"}}
	if !reflect.DeepEqual(r.form, want) {
		t.Errorf("published form = %v, want %v", r.form, want)
	}
	for k, v := range map[string]string{"Authorization": "Bearer T0K", "X-Trace": "7", "Content-Type": "application/x-www-form-urlencoded"} {
		if r.header.Get(k) != v {
			t.Errorf("request header %s = %q, want %q", k, r.header.Get(k), v)
		}
	}

	// Only the fields that are given are sent; --retry rounds up to whole
	// milliseconds; stdin loses one final newline only.
	setStdin(t, strings.NewReader("payload\n\n"))
	res = runCmd(t, "pub", "--hub", srv.URL, "--anonymous", "--topic", "a", "--retry", "1100us")
	r = <-got
	if id := r.form.Get("id"); !strings.HasPrefix(id, "urn:uuid:") {
		t.Errorf("herald pub without --id sent id %q, want a fresh urn:uuid:", id)
	}
	r.form.Del("id")
	want = url.Values{"topic": {"a"}, "data": {"payload\n"}, "retry": {"2"}}
	if res.code != 0 || !reflect.DeepEqual(r.form, want) || r.header.Get("Authorization") != "" {
		t.Errorf("herald pub --anonymous = exit %d (stderr %q), form %v, Authorization %q; want 0, %v, none",
			res.code, res.stderr, r.form, r.header.Get("Authorization"), want)
	}
}

func TestPubErrors(t *testing.T) {
	th := newTestHub(t, hub.Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/.well-known/mercure"
	ln.Close()
	t.Setenv("HERALD_TOKEN", "")
	newsOnly := mintToken(t, "--publish", "news")

	tests := []struct {
		name       string
		args       []string
		code       int
		wantStderr string // exact, or a substring when contains is set
		contains   bool
	}{
		{"no token", []string{"--hub", th.url, "--topic", "news", "--data", "x"}, 2,
			"herald pub: no token: give --token or set HERALD_TOKEN; mint one with: herald token --key KEY --publish '*' (KEY is the hub's --publisher-key); " +
				"use --anonymous only with a hub started with --allow-anonymous-publish\n", false},
		{"forbidden topic", []string{"--hub", th.url, "--token", newsOnly, "--topic", "sports", "--data", "x"}, 1,
			"herald pub: 403 Forbidden: not authorized to publish to topic \"sports\"\n", false},
		{"bad token", []string{"--hub", th.url, "--token", "not-a-jwt", "--topic", "news", "--data", "x"}, 1,
			"herald pub: 401 Unauthorized: invalid access token", true},
		{"anonymous refused", []string{"--hub", th.url, "--anonymous", "--topic", "news", "--data", "x"}, 1,
			"herald pub: 401 Unauthorized: missing access token\n", false},
		{"unreachable", []string{"--hub", closed, "--token", newsOnly, "--topic", "news", "--data", "x", "--retries", "0"}, 1,
			"herald pub: cannot reach " + closed + ": connection refused\n", false},
		{"unreachable after retries", []string{"--hub", closed, "--token", newsOnly, "--topic", "news", "--data", "x", "--retries", "1"}, 1,
			"herald pub: cannot reach " + closed + ": connection refused (after 2 attempts)\n", false},
		{"negative retries", []string{"--token", newsOnly, "--topic", "news", "--data", "x", "--retries", "-1"}, 2, "--retries must not be negative", true},
		{"no topic", []string{"--hub", th.url, "--token", newsOnly, "--data", "x"}, 2, "herald pub: no topic: give --topic (repeatable)\n", false},
		{"bad hub", []string{"--hub", "localhost:8080", "--token", newsOnly, "--topic", "news", "--data", "x"}, 2,
			"herald pub: --hub \"localhost:8080\" is not an http:// or https:// URL\n", false},
		{"lines and data", []string{"--token", newsOnly, "--topic", "news", "--lines", "--data", "x"}, 2, "--data cannot be used with it", true},
		{"lines and id", []string{"--token", newsOnly, "--topic", "news", "--lines", "--id", "x"}, 2, "--id cannot be used with --lines", true},
		{"negative retry", []string{"--token", newsOnly, "--topic", "news", "--data", "x", "--retry", "-1s"}, 2, "--retry must not be negative", true},
		{"bad header", []string{"--token", newsOnly, "--topic", "news", "--data", "x", "--header", "nocolon"}, 2, `--header "nocolon"`, true},
		{"argument", []string{"--token", newsOnly, "--topic", "news", "hello"}, 2, `unexpected argument "hello"`, true},
		{"bad flag", []string{"--nope"}, 2, "flag provided but not defined: -nope", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := runCmd(t, append([]string{"pub"}, tt.args...)...)
			ok := res.stderr == tt.wantStderr
			if tt.contains {
				ok = strings.Contains(res.stderr, tt.wantStderr)
			}
			if res.code != tt.code || !ok || res.stdout != "" {
				t.Errorf("herald pub %q = exit %d, stdout %q, stderr %q; want exit %d, no stdout, stderr %q",
					tt.args, res.code, res.stdout, res.stderr, tt.code, tt.wantStderr)
			}
		})
	}
	if n := th.lastSeq(t); n != 0 {
		t.Errorf("hub holds %d updates after refused publishes, want 0", n)
	}
}

func TestPubTerminalStdin(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("needs /dev/null")
	}
	f, err := os.Open(os.DevNull) // a character device, like a terminal
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	setStdin(t, f)
	res := runCmd(t, "pub", "--hub", "http://127.0.0.1:1/", "--token", "t", "--topic", "news")
	if res.code != 2 || !strings.Contains(res.stderr, "no data: give --data") {
		t.Errorf("herald pub without --data on a terminal = exit %d, stderr %q; want exit 2, a message about --data", res.code, res.stderr)
	}
}

func TestPubLinesInterrupted(t *testing.T) {
	th := newTestHub(t, hub.Config{})
	tok := mintToken(t, "--publish", "logs")
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() }) // ends the reader blocked on the silent pipe
	setStdin(t, pr)
	pub := startCmd(t, "pub", "--hub", th.url, "--token", tok, "--topic", "logs", "--lines")
	if _, err := io.WriteString(pw, "one\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the id of the first line", func() bool { return strings.HasSuffix(pub.stdout.String(), "\n") })
	pub.cancel() // stdin stays open and silent: the command must stop anyway
	res := pub.wait(t)
	if res.code != 0 || strings.Count(res.stdout, "\n") != 1 || res.stderr != "" {
		t.Errorf("interrupted herald pub --lines = exit %d, stdout %q, stderr %q; want exit 0, one id", res.code, res.stdout, res.stderr)
	}
	if n := th.lastSeq(t); n != 1 {
		t.Errorf("hub holds %d updates, want 1", n)
	}
}

// TestPubRetries answers publishes with a scripted sequence of statuses
// (or a dropped connection) and checks that herald pub retries exactly
// the ones whose outcome was unknown or temporary, always with the same
// id, and takes a 409 on a retry as success.
func TestPubRetries(t *testing.T) {
	const drop = 0 // a dropped connection instead of an answer
	tests := []struct {
		name     string
		statuses []int
		args     []string
		code     int
		attempts int
		stderr   string // a substring
	}{
		{"504 then stored", []int{504, 200}, nil, 0, 2, ""},
		{"dropped then stored", []int{drop, 200}, nil, 0, 2, ""},
		{"503 then 502 then stored", []int{503, 502, 200}, nil, 0, 3, ""},
		{"504 then 409: the first was stored", []int{504, 409}, nil, 0, 2, ""},
		{"409 at once: a real duplicate", []int{409}, nil, 1, 1, "409 Conflict"},
		{"400 is not retried", []int{400}, nil, 1, 1, "400 Bad Request"},
		{"504 until the retries are spent", []int{504, 504, 504}, []string{"--retries", "2"}, 1, 3, "(after 3 attempts)"},
		{"no retries", []int{504}, []string{"--retries", "0"}, 1, 1, "504 Gateway Timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var ids []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				r.ParseForm()
				mu.Lock()
				n := len(ids)
				ids = append(ids, r.PostForm.Get("id"))
				mu.Unlock()
				status := 200
				if n < len(tt.statuses) {
					status = tt.statuses[n]
				}
				switch status {
				case drop:
					conn, _, _ := http.NewResponseController(w).Hijack()
					conn.Close()
				case 200:
					io.WriteString(w, r.PostForm.Get("id"))
				default:
					http.Error(w, "scripted", status)
				}
			}))
			defer srv.Close()
			args := append([]string{"pub", "--hub", srv.URL, "--anonymous", "--topic", "a", "--data", "x"}, tt.args...)
			defer func(d time.Duration) { retryBackoff = d }(retryBackoff)
			retryBackoff = time.Millisecond
			res := runCmd(t, args...)
			mu.Lock()
			defer mu.Unlock()
			if res.code != tt.code || len(ids) != tt.attempts || !strings.Contains(res.stderr, tt.stderr) {
				t.Fatalf("herald pub against %v = exit %d after %d attempts, stderr %q; want exit %d after %d, stderr with %q",
					tt.statuses, res.code, len(ids), res.stderr, tt.code, tt.attempts, tt.stderr)
			}
			for _, id := range ids {
				if id != ids[0] || !strings.HasPrefix(id, "urn:uuid:") {
					t.Fatalf("ids sent = %q, want one fresh urn:uuid: id for every attempt", ids)
				}
			}
			if tt.code == 0 && res.stdout != ids[0]+"\n" {
				t.Fatalf("stdout = %q, want the id %q", res.stdout, ids[0])
			}
		})
	}
}

func TestPubQuiet(t *testing.T) {
	th := newTestHub(t, hub.Config{})
	tok := mintToken(t, "--publish", "*")
	setStdin(t, strings.NewReader("one\ntwo\nthree\n"))
	res := runCmd(t, "pub", "--hub", th.url, "--token", tok, "--topic", "q", "--lines", "--quiet")
	if res.code != 0 || res.stdout != "" {
		t.Fatalf("herald pub --lines --quiet = exit %d, stdout %q, stderr %q; want 0, no output", res.code, res.stdout, res.stderr)
	}
	if n := th.lastSeq(t); n != 3 {
		t.Fatalf("hub holds %d updates after --lines --quiet of 3 lines, want 3", n)
	}
}
