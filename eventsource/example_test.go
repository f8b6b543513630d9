package eventsource_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/herald-sse/herald/eventsource"
	"github.com/herald-sse/herald/sse"
)

// The server sends two events and a short retry, then answers the
// reconnection, which carries Last-Event-ID, with 204 No Content: the
// client stops for good.
func Example() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id := r.Header.Get("Last-Event-ID"); id != "" {
			fmt.Println("reconnected with Last-Event-ID", id)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "retry: 10\nid: 1\ndata: hello\n\nid: 2\nevent: greeting\ndata: world\n\n")
	}))
	defer srv.Close()

	c, err := eventsource.New(srv.URL, eventsource.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	for ev, err := range c.Events(context.Background()) {
		if errors.Is(err, eventsource.ErrNoContent) {
			fmt.Println("server said stop")
			break
		}
		if err != nil {
			fmt.Println(err)
			break
		}
		fmt.Println(ev.ID, ev.Type, ev.Data)
	}
	// Output:
	// 1 message hello
	// 2 greeting world
	// reconnected with Last-Event-ID 2
	// server said stop
}

// A streaming API in the style of chat-completion endpoints: a POST with a
// JSON body, answered with an event stream that ends with "data: [DONE]".
// The client does not reconnect (a POST is one-shot by default) and stops
// at the terminal event.
func Example_post() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Prompt string }
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || r.Method != http.MethodPost {
			http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for _, tok := range strings.Fields(req.Prompt) {
			fmt.Fprintf(w, "data: {\"text\":%q}\n\n", tok+" ")
		}
		_, _ = io.WriteString(w, "data: [DONE]\n\n")
	}))
	defer srv.Close()

	body, _ := json.Marshal(map[string]string{"prompt": "streams arrive token by token"})
	c, err := eventsource.New(srv.URL, eventsource.Config{
		Method: http.MethodPost,
		Body:   func() (io.Reader, error) { return bytes.NewReader(body), nil },
		Header: http.Header{"Content-Type": {"application/json"}},
		Until:  func(ev sse.Event) bool { return ev.Data == "[DONE]" },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	var text strings.Builder
	for ev, err := range c.Events(context.Background()) {
		if err != nil {
			fmt.Println(err)
			return
		}
		var chunk struct{ Text string }
		if err := json.Unmarshal([]byte(ev.Data), &chunk); err != nil {
			fmt.Println(err)
			return
		}
		text.WriteString(chunk.Text)
	}
	fmt.Println(strings.TrimSpace(text.String()))
	// Output:
	// streams arrive token by token
}

// Comments are ignored unless Config.OnComment is set; the usual
// heartbeat, a bare ":", gives an empty text.
func ExampleConfig_onComment() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, ": queued, position 3\n:\ndata: started\n\n")
	}))
	defer srv.Close()

	c, err := eventsource.New(srv.URL, eventsource.Config{
		Reconnect: eventsource.ReconnectNever,
		OnComment: func(text string) error {
			fmt.Printf("comment %q\n", text)
			return nil
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	err = c.Run(context.Background(), func(ev sse.Event) error {
		fmt.Println("event", ev.Data)
		return nil
	})
	fmt.Println("end:", err)
	// Output:
	// comment "queued, position 3"
	// comment ""
	// event started
	// end: <nil>
}

// A non-2xx answer is a *ResponseError with the status, the headers and
// the start of the body, where APIs explain the refusal.
func ExampleResponseError() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"error":{"message":"invalid api key"}}`)
	}))
	defer srv.Close()

	c, err := eventsource.New(srv.URL, eventsource.Config{Method: http.MethodPost})
	if err != nil {
		fmt.Println(err)
		return
	}
	err = c.Run(context.Background(), func(sse.Event) error { return nil })
	var re *eventsource.ResponseError
	if errors.As(err, &re) {
		var apiErr struct{ Error struct{ Message string } }
		_ = json.Unmarshal(re.RawBody, &apiErr)
		fmt.Println(re.StatusCode, re.Header.Get("Content-Type"), apiErr.Error.Message)
	}
	// Output:
	// 401 application/json invalid api key
}

// OnRequest runs before every connection attempt: here it puts a fresh
// token in each request, as a program whose tokens expire would.
func ExampleConfig_onRequest() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Printf("server got %s, Last-Event-ID %q\n", r.Header.Get("Authorization"), r.Header.Get("Last-Event-ID"))
		if r.Header.Get("Last-Event-ID") != "" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "retry: 10\nid: 1\ndata: hello\n\n")
	}))
	defer srv.Close()

	n := 0
	c, err := eventsource.New(srv.URL, eventsource.Config{
		OnRequest: func(r *http.Request) error {
			n++
			r.Header.Set("Authorization", fmt.Sprintf("Bearer token-%d", n))
			return nil
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	err = c.Run(context.Background(), func(ev sse.Event) error {
		fmt.Println("event", ev.Data)
		return nil
	})
	fmt.Println("end:", err)
	// Output:
	// server got Bearer token-1, Last-Event-ID ""
	// event hello
	// server got Bearer token-2, Last-Event-ID "1"
	// end: eventsource: server answered 204 no content
}
