package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/herald-sse/herald/internal/browsertest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestTickerInBrowser(t *testing.T) {
	a, err := newApp()
	if err != nil {
		t.Fatal(err)
	}
	var streams atomic.Int32
	routes := a.routes()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/events" {
			streams.Add(1)
		}
		routes.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		a.close()
		srv.Close()
	})

	b := browsertest.New(t)
	p := b.Page()
	p.Open(srv.URL)
	const state = `document.getElementById("state").textContent`
	p.WaitFor(state+`.startsWith("live")`, 10*time.Second, state)

	a.start(5 * time.Millisecond) // 200 updates a second
	p.WaitFor("window.received >= 300", 20*time.Second, "window.received")
	a.stop()
	want := a.latest()

	// Once the last events are in, every row shows the latest price.
	for symbol, price := range want {
		cell := fmt.Sprintf(`document.querySelector("#row-%s .price").textContent`, symbol)
		p.WaitFor(fmt.Sprintf(`%s === %q`, cell, fmt.Sprintf("%.2f", price)), 10*time.Second, cell)
	}
	var rows int
	p.Eval(`document.querySelectorAll("#rows tr").length`, &rows)
	if rows != len(symbols) {
		t.Errorf("table has %d rows, want %d", rows, len(symbols))
	}
	if n := streams.Load(); n != 1 {
		t.Errorf("the page opened %d streams, want 1 for all %d symbols", n, len(symbols))
	}
	if s := a.b.Stats(); s.Subscribers != 1 || s.Topics != len(symbols) {
		t.Errorf("broker stats %+v, want 1 subscriber on %d topics", s, len(symbols))
	}
	p.Screenshot("example-ticker")
}
