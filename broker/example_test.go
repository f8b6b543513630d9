package broker_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/herald-sse/herald/broker"
	"github.com/herald-sse/herald/store"
	"github.com/herald-sse/herald/store/memstore"
)

// Mount a broker on an application's own mux, subscribe with a plain HTTP
// GET and publish from Go.
func Example() {
	st := memstore.New(memstore.Config{})
	defer st.Close()
	b, err := broker.New(st, broker.Config{Retry: -1, Heartbeat: -1})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/events", b)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer b.Shutdown(context.Background())

	resp, err := http.Get(srv.URL + "/api/events?topic=prices")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	fmt.Println(resp.Header.Get("Content-Type"))

	for b.Stats().Subscribers == 0 { // wait until the stream is registered
		time.Sleep(time.Millisecond)
	}
	b.Publish(context.Background(), store.Update{ID: "1", Topics: []string{"prices"}, Type: "price", Data: `{"BTC":97000}`})

	r := bufio.NewReader(resp.Body)
	for {
		line, _ := r.ReadString('\n')
		if line == "\n" {
			break
		}
		fmt.Print(strings.TrimSuffix(line, "\n"), "\n")
	}
	// Output:
	// text/event-stream
	// id: 1
	// event: price
	// data: {"BTC":97000}
}
