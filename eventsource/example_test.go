package eventsource_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/herald-sse/herald/eventsource"
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
