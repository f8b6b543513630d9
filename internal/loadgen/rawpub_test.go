package loadgen_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-sse/herald/internal/loadgen"
)

// scriptServer is a raw HTTP/1.1 server whose every answer is scripted:
// it reads each request with net/http's parser and hands the connection to
// respond, with the number of the request (0, 1, ... over all its
// connections), to write anything or nothing. The connection is closed
// when respond returns false.
type scriptServer struct {
	respond func(i int, c net.Conn) (keep bool)

	ln    net.Listener
	done  chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]bool
	shut  bool
	reqs  []*http.Request // with their bodies read into bodies
	bods  []string
	nconn int
}

func newScriptServer(t testing.TB, respond func(i int, c net.Conn) bool) *scriptServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &scriptServer{respond: respond, ln: ln, done: make(chan struct{}), conns: map[net.Conn]bool{}}
	s.wg.Go(s.accept)
	t.Cleanup(s.close)
	return s
}

// url returns the server's publish URL.
func (s *scriptServer) url() string { return "http://" + s.ln.Addr().String() + "/pub" }

func (s *scriptServer) accept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.shut {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = true
		s.nconn++
		s.mu.Unlock()
		s.wg.Go(func() { s.serve(c) })
	}
}

func (s *scriptServer) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return
		}
		s.mu.Lock()
		i := len(s.reqs)
		s.reqs = append(s.reqs, req)
		s.bods = append(s.bods, string(body))
		s.mu.Unlock()
		if !s.respond(i, c) {
			return
		}
	}
}

func (s *scriptServer) close() {
	close(s.done)
	s.ln.Close()
	s.mu.Lock()
	s.shut = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// counts returns the number of requests and connections seen.
func (s *scriptServer) counts() (reqs, conns int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reqs), s.nconn
}

// reply writes resp and keeps the connection.
func reply(resp string) func(int, net.Conn) bool {
	return func(_ int, c net.Conn) bool {
		_, err := io.WriteString(c, resp)
		return err == nil
	}
}

// replyClose writes resp and closes the connection.
func replyClose(resp string) func(int, net.Conn) bool {
	return func(_ int, c net.Conn) bool {
		io.WriteString(c, resp)
		return false
	}
}

// firstThen answers the first request with first and the others with rest.
func firstThen(first, rest func(int, net.Conn) bool) func(int, net.Conn) bool {
	return func(i int, c net.Conn) bool {
		if i == 0 {
			return first(i, c)
		}
		return rest(i, c)
	}
}

const okResp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

// TestRawPublish runs a few publishes through the raw client against
// scripted servers and checks each outcome, that a failed publish is
// reported once and never retried (the server sees exactly one request per
// publish), and that the client reconnects when it must and only then.
func TestRawPublish(t *testing.T) {
	big := strings.Repeat("b", 2<<20)
	longHeader := "X-Long: " + strings.Repeat("l", 10<<10) + "\r\n"
	type tc struct {
		name    string
		respond func(int, net.Conn) bool
		timeout time.Duration
		gap     time.Duration // between publishes
		want    []string      // per publish: "" for success, else a part of the error
		conns   int           // connections the server should see
		unix    bool          // needs the idle connection check
	}
	ok3 := []string{"", "", ""}
	for _, tc := range []tc{
		{name: "content-length", respond: reply("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"), want: ok3, conns: 1},
		{name: "empty content-length", respond: reply("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"), want: ok3, conns: 1},
		{name: "chunked with trailers", respond: reply("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n" +
			"5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-T: t\r\nX-U: u\r\n\r\n"), want: ok3, conns: 1},
		{name: "chunked overrides content-length", respond: reply("HTTP/1.1 200 OK\r\ntransfer-encoding:  Chunked\r\nContent-Length: 99\r\n\r\n" +
			"2\r\nok\r\n0\r\n\r\n"), want: ok3, conns: 1},
		{name: "connection close", respond: replyClose("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"), want: ok3, conns: 3},
		{name: "connection close, server keeps it", respond: reply("HTTP/1.1 200 OK\r\nConnection: Keep-Alive, close\r\nContent-Length: 2\r\n\r\nok"), want: ok3, conns: 3},
		{name: "close-delimited body", respond: replyClose("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of this, to the end"), want: ok3, conns: 3},
		{name: "transfer-encoding not chunked", respond: replyClose("HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\nto the end"), want: ok3, conns: 3},
		{name: "http/1.0", respond: reply("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"), want: ok3, conns: 3},
		{name: "http/1.0 keep-alive", respond: reply("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok"), want: ok3, conns: 1},
		{name: "http/1.0 keep-alive and close", respond: reply("HTTP/1.0 200 OK\r\nConnection: close\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok"), want: ok3, conns: 3},
		{name: "100 continue", respond: reply("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + okResp), want: ok3, conns: 1},
		{name: "204", respond: reply("HTTP/1.1 204 No Content\r\n\r\n"), want: ok3, conns: 1},
		{name: "long header line", respond: reply("HTTP/1.1 200 OK\r\n" + longHeader + "Content-Length: 2\r\n\r\nok"), want: ok3, conns: 1},
		{name: "body over 1MiB", respond: reply("HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(big)) + "\r\n\r\n" + big), want: ok3, conns: 3},
		{name: "bytes past the response", respond: reply(okResp + "junk"), want: ok3, conns: 3},
		{name: "idle connection closed by the server", respond: replyClose(okResp), gap: 30 * time.Millisecond, want: ok3, conns: 3, unix: true},

		{name: "304", respond: reply("HTTP/1.1 304 Not Modified\r\n\r\n"), want: []string{"loadgen: publish: status 304 Not Modified", "status 304", "status 304"}, conns: 1},
		{name: "4xx with a body", respond: reply("HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nbad request"),
			want: []string{"loadgen: publish: status 400 Bad Request", "status 400", "status 400"}, conns: 1},
		{name: "redirect", respond: reply("HTTP/1.1 307 Temporary Redirect\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n"),
			want: []string{"status 307 Temporary Redirect", "status 307", "status 307"}, conns: 1},
		{name: "5xx chunked", respond: reply("HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbusy\r\n0\r\n\r\n"),
			want: []string{"status 503 Service Unavailable", "status 503", "status 503"}, conns: 1},
		{name: "101", respond: firstThen(reply("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n"), reply(okResp)),
			want: []string{"status 101", "", ""}, conns: 2},
		{name: "closed before the response", respond: firstThen(replyClose(""), reply(okResp)), want: []string{"loadgen: publish: read response: unexpected EOF", "", ""}, conns: 2},
		{name: "closed in the head", respond: firstThen(replyClose("HTTP/1.1 200 OK\r\nContent-Le"), reply(okResp)), want: []string{"unexpected EOF", "", ""}, conns: 2},
		{name: "closed in the body", respond: firstThen(replyClose("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc"), reply(okResp)), want: []string{"unexpected EOF", "", ""}, conns: 2},
		{name: "closed in a chunk", respond: firstThen(replyClose("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel"), reply(okResp)), want: []string{"unexpected EOF", "", ""}, conns: 2},
		{name: "closed in the body of a 5xx", respond: firstThen(replyClose("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 50\r\n\r\nabc"), reply(okResp)),
			want: []string{"status 500 Internal Server Error", "", ""}, conns: 2},
		{name: "malformed status line", respond: firstThen(reply("HTTP/2 200\r\n\r\n"), reply(okResp)), want: []string{"malformed status line", "", ""}, conns: 2},
		{name: "bad content-length", respond: firstThen(reply("HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\nok"), reply(okResp)), want: []string{"Content-Length", "", ""}, conns: 2},
		{name: "bad chunk", respond: firstThen(reply("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"), reply(okResp)), want: []string{"malformed chunked", "", ""}, conns: 2},
		{name: "too many 1xx", respond: firstThen(reply(strings.Repeat("HTTP/1.1 100 Continue\r\n\r\n", 6)+okResp), reply(okResp)), want: []string{"too many 1xx", "", ""}, conns: 2},
		{name: "slow server", timeout: 100 * time.Millisecond, respond: firstThen(func(_ int, c net.Conn) bool {
			// Answer in a second, or once the client gives up.
			c.SetReadDeadline(time.Now().Add(time.Second))
			io.Copy(io.Discard, c)
			io.WriteString(c, okResp)
			return false
		}, reply(okResp)), want: []string{"i/o timeout", "", ""}, conns: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.unix && (runtime.GOOS == "windows" || runtime.GOOS == "plan9") {
				t.Skip("no idle connection check here")
			}
			s := newScriptServer(t, tc.respond)
			p, err := loadgen.NewPoster(t.Context(), loadgen.Config{PubURL: s.url(), PublishTimeout: tc.timeout}, false)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if !p.Raw() {
				t.Fatal("NewPoster: not the raw client for an http URL")
			}
			var ok, failed int
			for i, want := range tc.want {
				if i > 0 {
					time.Sleep(tc.gap)
				}
				err := p.Post(t.Context(), loadgen.AppendPayload(nil, uint64(i+1), time.Now().UnixNano(), 100))
				if err != nil {
					failed++
				} else {
					ok++
				}
				switch {
				case want == "" && err != nil:
					t.Errorf("publish %d: %v, want success", i, err)
				case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
					t.Errorf("publish %d: error %v, want one containing %q", i, err, want)
				}
			}
			var wantOK int
			for _, w := range tc.want {
				if w == "" {
					wantOK++
				}
			}
			if ok != wantOK || failed != len(tc.want)-wantOK {
				t.Errorf("ok, failed = %d, %d, want %d, %d", ok, failed, wantOK, len(tc.want)-wantOK)
			}
			p.Close()
			reqs, conns := s.counts()
			if reqs != len(tc.want) {
				t.Errorf("server saw %d requests, want %d (one per publish, no retries)", reqs, len(tc.want))
			}
			if conns != tc.conns {
				t.Errorf("server saw %d connections, want %d", conns, tc.conns)
			}
		})
	}
}

// TestRawPublishHTTPServer publishes through the raw client to net/http
// servers answering in each of their ways, and checks the outcomes and
// the connections used.
func TestRawPublishHTTPServer(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		wantErr string // "" for success
		conns   int
	}{
		{"content-length", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "urn:uuid:1") }, "", 1},
		{"chunked with trailers", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Trailer", "X-T")
			io.WriteString(w, "part one")
			http.NewResponseController(w).Flush()
			io.WriteString(w, strings.Repeat("two", 5000))
			w.Header().Set("X-T", "done")
		}, "", 1},
		{"connection close", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Connection", "close")
			io.WriteString(w, "bye")
		}, "", 3},
		{"204", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }, "", 1},
		{"4xx with a body", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "no way", http.StatusForbidden) }, "loadgen: publish: status 403 Forbidden", 1},
		{"body over 1MiB", func(w http.ResponseWriter, _ *http.Request) { w.Write(make([]byte, 3<<20)) }, "", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			conns := 0
			srv := httptest.NewUnstartedServer(tc.handler)
			srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
				if st == http.StateNew {
					mu.Lock()
					conns++
					mu.Unlock()
				}
			}
			srv.Start()
			defer srv.Close()
			p, err := loadgen.NewPoster(t.Context(), loadgen.Config{PubURL: srv.URL + "/.well-known/mercure"}, false)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			var ok, failed int
			for i := range 3 {
				err := p.Post(t.Context(), loadgen.AppendPayload(nil, uint64(i+1), time.Now().UnixNano(), 100))
				switch {
				case err == nil:
					ok++
				case tc.wantErr == "" || !strings.Contains(err.Error(), tc.wantErr):
					t.Errorf("publish %d: %v, want error %q", i, err, tc.wantErr)
					fallthrough
				default:
					failed++
				}
			}
			if want := 3 * btoi(tc.wantErr == ""); ok != want || failed != 3-want {
				t.Errorf("ok, failed = %d, %d, want %d, %d", ok, failed, want, 3-want)
			}
			mu.Lock()
			defer mu.Unlock()
			if conns != tc.conns {
				t.Errorf("server saw %d connections, want %d", conns, tc.conns)
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestRawPublishRequest checks that the raw client sends what the net/http
// client sends: method, target, Host, headers and body.
func TestRawPublishRequest(t *testing.T) {
	type got struct {
		method, uri, host, proto, body string
		header                         http.Header
		length                         int64
		te                             []string
	}
	var (
		mu   sync.Mutex
		reqs []got
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		reqs = append(reqs, got{r.Method, r.RequestURI, r.Host, r.Proto, string(b), r.Header, r.ContentLength, r.TransferEncoding})
		mu.Unlock()
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	for _, tc := range []struct {
		name string
		cfg  loadgen.Config
	}{
		{"default", loadgen.Config{PubURL: srv.URL + "/.well-known/mercure"}},
		{"headers and query", loadgen.Config{
			PubURL:    srv.URL + "/p/a%20th?x=1&y=%2F&z",
			PubBody:   "topic=a&data={{payload}}&again={{payload}}&end",
			Header:    http.Header{"X-Both": {"1", "2"}, "x-lower": {"v"}, "Content-Length": {"999"}, "Host": {"elsewhere"}},
			PubHeader: http.Header{"Authorization": {"Bearer t"}, "User-Agent": {"mine"}, "X-Both": {"3"}},
		}},
		{"json", loadgen.Config{PubURL: srv.URL + "/", PubBody: ` {"data":"{{payload}}"}`}},
		{"content type", loadgen.Config{PubURL: srv.URL + "/", PubBody: `{{payload}}`, PubHeader: http.Header{"Content-Type": {"text/plain"}}}},
		{"user info", loadgen.Config{PubURL: strings.Replace(srv.URL, "http://", "http://us%20er:p%40ss@", 1) + "/"}},
		{"user info and authorization", loadgen.Config{PubURL: strings.Replace(srv.URL, "http://", "http://user@", 1) + "/", Header: http.Header{"Authorization": {"Bearer x"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			payload := loadgen.AppendPayload(nil, 7, time.Now().UnixNano(), 60)
			var all [2]got
			for i, netHTTP := range []bool{false, true} {
				p, err := loadgen.NewPoster(t.Context(), tc.cfg, netHTTP)
				if err != nil {
					t.Fatal(err)
				}
				if p.Raw() == netHTTP {
					t.Fatalf("NewPoster(netHTTP=%v).Raw() = %v", netHTTP, p.Raw())
				}
				err = p.Post(t.Context(), payload)
				p.Close()
				if err != nil {
					t.Fatalf("publish (net/http %v): %v", netHTTP, err)
				}
				mu.Lock()
				all[i] = reqs[len(reqs)-1]
				mu.Unlock()
			}
			if !reflect.DeepEqual(all[0], all[1]) {
				t.Errorf("raw client sent\n%+v\nnet/http sent\n%+v", all[0], all[1])
			}
			if r := all[0]; r.method != "POST" || r.proto != "HTTP/1.1" || !strings.Contains(r.body, string(payload)) ||
				r.length != int64(len(r.body)) || r.header.Get("User-Agent") == "" {
				t.Errorf("raw client sent %+v", r)
			}
		})
	}
}

// TestRawPublishFallback checks which publish URLs and headers go through
// net/http, and that the errors of those net/http refuses are unchanged.
func TestRawPublishFallback(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     loadgen.Config
		raw     bool
		wantErr string
	}{
		{"http", loadgen.Config{PubURL: "http://127.0.0.1:1/"}, true, ""},
		{"https", loadgen.Config{PubURL: "https://127.0.0.1:1/"}, false, ""},
		{"bad header name", loadgen.Config{PubURL: "http://127.0.0.1:1/", Header: http.Header{"Bad Name": {"x"}}}, false, "invalid header field name"},
		{"bad header value", loadgen.Config{PubURL: "http://127.0.0.1:1/", PubHeader: http.Header{"X-A": {"a\r\nX-B: b"}}}, false, "invalid header field value"},
		{"no host", loadgen.Config{PubURL: "http:///x"}, false, "no Host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := loadgen.NewPoster(t.Context(), tc.cfg, false)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if p.Raw() != tc.raw {
				t.Errorf("Raw() = %v, want %v", p.Raw(), tc.raw)
			}
			if tc.wantErr != "" {
				err := p.Post(t.Context(), []byte("~1~2~"))
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.HasPrefix(err.Error(), "loadgen: publish: ") {
					t.Errorf("publish: error %v, want loadgen: publish: ...%s...", err, tc.wantErr)
				}
			}
		})
	}
}

// TestRawPublishRefused checks a publish to a closed port, then to the
// same address once a server listens there.
func TestRawPublishRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p, err := loadgen.NewPoster(t.Context(), loadgen.Config{PubURL: "http://" + addr + "/", PublishTimeout: time.Second}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Post(t.Context(), []byte("x")); err == nil || !strings.Contains(err.Error(), "loadgen: publish: dial tcp") {
		t.Fatalf("publish to a closed port: %v, want a dial error", err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv.Listener, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("port %s taken again: %v", addr, err)
	}
	srv.Start()
	defer srv.Close()
	if err := p.Post(t.Context(), []byte("x")); err != nil {
		t.Fatalf("publish once the server is up: %v", err)
	}
}

// TestRawPublishCanceled checks that a publish waiting for a server that
// does not answer stops when its context is done, and that the client's
// context closes its connection.
func TestRawPublishCanceled(t *testing.T) {
	s := newScriptServer(t, func(_ int, c net.Conn) bool {
		io.Copy(io.Discard, c) // never answer; wait for the client to close
		return false
	})
	for _, clientCtx := range []bool{false, true} {
		ctx, cancel := context.WithCancel(t.Context())
		pctx := t.Context()
		if clientCtx {
			pctx = ctx
		}
		p, err := loadgen.NewPoster(pctx, loadgen.Config{PubURL: s.url(), PublishTimeout: time.Minute}, false)
		if err != nil {
			t.Fatal(err)
		}
		time.AfterFunc(50*time.Millisecond, cancel)
		start := time.Now()
		err = p.Post(ctx, []byte("x"))
		if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "loadgen: publish: ") {
			t.Errorf("publish, canceled (client context %v): %v, want loadgen: publish: context canceled", clientCtx, err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("publish, canceled: took %v", d)
		}
		p.Close()
	}
}

// TestRunPublishReconnects checks the publish counts of a run whose
// publish server drops every third request in the middle of its response.
func TestRunPublishReconnects(t *testing.T) {
	hub := newTestHub(t, &testHub{})
	sub, _ := urls(hub)
	s := newScriptServer(t, func(i int, c net.Conn) bool {
		if i%3 == 2 {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
			return false
		}
		return reply(okResp)(i, c)
	})
	res, err := loadgen.Run(t.Context(), loadgen.Config{
		SubURL: sub, PubURL: s.url(), Subscribers: 1, Events: 9, DrainTimeout: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	reqs, conns := s.counts()
	if res.Published != 6 || res.PublishErrors != 3 || !strings.Contains(res.PublishError, "unexpected EOF") || reqs != 9 || conns != 3 {
		t.Errorf("Run: Published, PublishErrors, PublishError = %d, %d, %q; server saw %d requests on %d connections; want 6, 3, unexpected EOF, 9 on 3",
			res.Published, res.PublishErrors, res.PublishError, reqs, conns)
	}
}

// miniServer answers every request with resp, parsing no more than it
// must (the end of the head, the Content-Length) so that it does not
// allocate per request: a benchmark's allocations are then the client's.
func miniServer(tb testing.TB, resp string) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		shut  bool
		conns []net.Conn
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			if shut {
				mu.Unlock()
				c.Close()
				return
			}
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { serveMini(c, []byte(resp)) })
		}
	})
	tb.Cleanup(func() {
		ln.Close()
		mu.Lock()
		shut = true
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "http://" + ln.Addr().String() + "/.well-known/mercure"
}

var (
	headEnd    = []byte("\r\n\r\n")
	contentLen = []byte("\nContent-Length: ")
)

func serveMini(c net.Conn, resp []byte) {
	defer c.Close()
	buf := make([]byte, 64<<10)
	n := 0
	for {
		for {
			end := bytes.Index(buf[:n], headEnd)
			if end < 0 {
				break
			}
			size := 0
			if i := bytes.Index(buf[:end], contentLen); i >= 0 {
				for _, d := range buf[i+len(contentLen) : end] {
					if d < '0' || d > '9' {
						break
					}
					size = size*10 + int(d-'0')
				}
			}
			total := end + len(headEnd) + size
			if total > n {
				break
			}
			if _, err := c.Write(resp); err != nil {
				return
			}
			n = copy(buf, buf[total:n])
		}
		m, err := c.Read(buf[n:])
		if err != nil {
			return
		}
		n += m
	}
}

// TestRawPublishAllocs checks that a publish on the raw client does not
// allocate once its connection is open.
func TestRawPublishAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocations are not counted under the race detector")
	}
	url := miniServer(t, okResp)
	p, err := loadgen.NewPoster(t.Context(), loadgen.Config{PubURL: url}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := t.Context()
	payload := make([]byte, 0, 128)
	var seq uint64
	var perr error
	allocs := testing.AllocsPerRun(500, func() {
		seq++
		payload = loadgen.AppendPayload(payload[:0], seq, time.Now().UnixNano(), 100)
		if err := p.Post(ctx, payload); err != nil {
			perr = err
		}
	})
	if perr != nil {
		t.Fatal(perr)
	}
	if allocs != 0 {
		t.Errorf("raw publish: %v allocations, want 0", allocs)
	}
}

// BenchmarkPublisher compares one publisher goroutine's raw HTTP/1.1
// client with the net/http client, against a minimal local server that
// does not allocate. Allocations are the client's.
func BenchmarkPublisher(b *testing.B) {
	url := miniServer(b, okResp)
	for _, bc := range []struct {
		name    string
		netHTTP bool
	}{{"raw", false}, {"net-http", true}} {
		b.Run(bc.name, func(b *testing.B) {
			p, err := loadgen.NewPoster(b.Context(), loadgen.Config{PubURL: url, PubBody: loadgen.DefaultPubBody}, bc.netHTTP)
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			ctx := b.Context()
			payload := make([]byte, 0, 128)
			b.ReportAllocs()
			var seq uint64
			for b.Loop() {
				seq++
				payload = loadgen.AppendPayload(payload[:0], seq, time.Now().UnixNano(), 100)
				if err := p.Post(ctx, payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
