package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func chatRequest(prompt string) request {
	return request{Model: "demo", Stream: true, Messages: []message{{Role: "user", Content: prompt}}}
}

func TestStreamChat(t *testing.T) {
	srv := httptest.NewServer(newServer(0))
	defer srv.Close()
	var out strings.Builder
	if err := streamChat(t.Context(), srv.URL+"/v1/chat/completions", "", chatRequest("Hi"), &out); err != nil {
		t.Fatalf("streamChat = %v", err)
	}
	if want := reply("Hi"); out.String() != want {
		t.Errorf("streamChat printed %q, want %q", out.String(), want)
	}
}

// gateWriter closes first at its first write.
type gateWriter struct {
	once  sync.Once
	first chan struct{}
	mu    sync.Mutex
	b     strings.Builder
}

func (g *gateWriter) Write(p []byte) (int, error) {
	g.mu.Lock()
	g.b.Write(p)
	g.mu.Unlock()
	g.once.Do(func() { close(g.first) })
	return len(p), nil
}

func TestStreamChatPrintsAsTextArrives(t *testing.T) {
	// The server sends one token, then waits until the client has printed
	// it: a client that printed only at the end would never get the rest.
	out := &gateWriter{first: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		io.WriteString(w, `data: {"choices":[{"delta":{"content":"first "}}]}`+"\n\n")
		rc.Flush()
		select {
		case <-out.first:
		case <-r.Context().Done():
			return
		case <-time.After(10 * time.Second):
			t.Error("the client did not print the first token before the stream ended")
			return
		}
		io.WriteString(w, `data: {"choices":[{"delta":{"content":"second"}}]}`+"\n\ndata: [DONE]\n\n")
	}))
	defer srv.Close()
	if err := streamChat(t.Context(), srv.URL, "", chatRequest("Hi"), out); err != nil {
		t.Fatalf("streamChat = %v", err)
	}
	if got := out.b.String(); got != "first second" {
		t.Errorf("streamChat printed %q, want %q", got, "first second")
	}
}

func TestStreamChatRequest(t *testing.T) {
	var got *http.Request
	var body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got, body = r.Clone(context.Background()), string(b)
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: [DONE]\n\n")
	}))
	defer srv.Close()
	if err := streamChat(t.Context(), srv.URL, "sk-test", chatRequest("Hi"), io.Discard); err != nil {
		t.Fatalf("streamChat = %v", err)
	}
	want := `{"model":"demo","stream":true,"messages":[{"role":"user","content":"Hi"}]}`
	if got.Method != http.MethodPost || body != want {
		t.Errorf("request = %s %q, want POST %q", got.Method, body, want)
	}
	for k, v := range map[string]string{"Authorization": "Bearer sk-test", "Content-Type": "application/json", "Accept": "text/event-stream"} {
		if g := got.Header.Get(k); g != v {
			t.Errorf("request header %s = %q, want %q", k, g, v)
		}
	}
}

func TestStreamChatAPIError(t *testing.T) {
	srv := httptest.NewServer(newServer(0))
	defer srv.Close()
	req := chatRequest("Hi")
	req.Stream = false
	err := streamChat(t.Context(), srv.URL+"/v1/chat/completions", "", req, io.Discard)
	want := `chatstream: 400 Bad Request: this server only streams: send "stream": true and at least one message`
	if err == nil || err.Error() != want {
		t.Errorf("streamChat without stream = %v, want %q", err, want)
	}
}

func TestStreamChatStopsAtDone(t *testing.T) {
	// The stream stays open after [DONE]: the client leaves at once.
	gone := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, `data: {"choices":[{"delta":{"content":"ok"}}]}`+"\n\ndata: [DONE]\n\n")
		http.NewResponseController(w).Flush()
		<-r.Context().Done()
		close(gone)
	}))
	defer srv.Close()
	var out strings.Builder
	if err := streamChat(t.Context(), srv.URL, "", chatRequest("Hi"), &out); err != nil || out.String() != "ok" {
		t.Fatalf("streamChat = %v after %q, want nil after %q", err, out.String(), "ok")
	}
	select {
	case <-gone:
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not see the client leave after [DONE]")
	}
}

func TestTokens(t *testing.T) {
	for _, s := range []string{"", "one", "one two", "a  b ", reply("x")} {
		if got := strings.Join(tokens(s), ""); got != s {
			t.Errorf("join(tokens(%q)) = %q", s, got)
		}
	}
	if got := fmt.Sprint(tokens("a b c")); got != "[a  b  c]" {
		t.Errorf("tokens(%q) = %s, want [a  b  c]", "a b c", got)
	}
}
