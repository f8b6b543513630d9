package hub_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/herald-sse/herald/auth"
	"github.com/herald-sse/herald/broker"
	"github.com/herald-sse/herald/hub"
	"github.com/herald-sse/herald/store/memstore"
)

func ExampleNew() {
	key := []byte("an example publisher secret, 32+ bytes")
	st := memstore.New(memstore.Config{})
	defer st.Close()
	b, err := broker.New(st, broker.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Shutdown(context.Background())
	h, err := hub.New(b, hub.Config{PublisherKey: key})
	if err != nil {
		fmt.Println(err)
		return
	}

	// A publisher allowed to publish to every book.
	token, err := auth.Sign(key, auth.Claims{Publish: []string{"https://example.com/books/{id}"}}, time.Minute)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, topic := range []string{"https://example.com/books/1", "https://example.com/authors/1"} {
		r := httptest.NewRequest(http.MethodPost, hub.Path, strings.NewReader("id=update-1&data=hello&topic="+topic))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Print(w.Code, " ", w.Body.String(), "\n")
	}
	// Output:
	// 200 update-1
	// 403 not authorized to publish to topic "https://example.com/authors/1"
}

func ExampleDiscovery() {
	// A publisher's handler for https://example.com/books/1 tells clients
	// where its hub is, and from which update to resume.
	w := httptest.NewRecorder()
	hub.Discovery{HubURL: "https://example.com/.well-known/mercure", LastEventID: "urn:uuid:1"}.SetLink(w.Header())
	w.Header().Add("Link", `</books/1>; rel="self"`)
	for _, l := range w.Header().Values("Link") {
		fmt.Println(l)
	}
	// Output:
	// <https://example.com/.well-known/mercure>; rel="mercure"; last-event-id="urn:uuid:1"
	// </books/1>; rel="self"
}
