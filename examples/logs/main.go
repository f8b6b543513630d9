// Command logs is a live log viewer: lines published to the topic "logs"
// (by `herald pub --lines`, one update per line) appear in a page as they
// arrive. It embeds a Mercure hub (package hub) in the application and
// serves the page next to it.
//
//	go run ./examples/logs
//
// prints a publisher token; then, in another terminal,
//
//	export HERALD_TOKEN=<the token>
//	tail -f app.log | herald pub --topic logs --lines
//
// and open http://localhost:8080.
package main

import (
	"context"
	"crypto/rand"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"time"

	"github.com/herald-sse/herald/auth"
	"github.com/herald-sse/herald/broker"
	"github.com/herald-sse/herald/hub"
	"github.com/herald-sse/herald/store/memstore"
)

//go:embed index.html
var page []byte

func main() {
	// localhost:8080 is where `herald pub` publishes by default.
	addr := flag.String("addr", "localhost:8080", "address to listen on")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	key := make([]byte, 32)
	rand.Read(key)
	tok, err := auth.Sign(key, auth.Claims{Publish: []string{"logs"}}, 24*time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	a, err := newApp(key)
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stdout, "Open http://%s, then publish lines with:\n\n"+
		"  export HERALD_TOKEN=%s\n"+
		"  tail -f app.log | herald pub --hub http://%s%s --topic logs --lines\n\n",
		ln.Addr(), tok, ln.Addr(), hub.Path)
	srv := &http.Server{Handler: a.routes(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		a.close() // end the streams, so Shutdown does not wait on them
		_ = srv.Shutdown(context.Background())
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

// app is a hub that keeps the last lines, and the page.
type app struct {
	st  *memstore.Store
	b   *broker.Broker
	hub *hub.Hub
}

// newApp returns the application; publishers need a token signed with
// key.
func newApp(key []byte) (*app, error) {
	// The last 5000 lines: what a page opened late shows first.
	st := memstore.New(memstore.Config{MaxLen: 5000})
	b, err := broker.New(st, broker.Config{})
	if err != nil {
		return nil, err
	}
	h, err := hub.New(b, hub.Config{PublisherKey: key})
	if err != nil {
		_ = b.Shutdown(context.Background())
		return nil, err
	}
	return &app{st: st, b: b, hub: h}, nil
}

// close ends every stream, then closes the log.
func (a *app) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = a.b.Shutdown(ctx)
	_ = a.st.Close()
}

func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(page)
	})
	mux.Handle(hub.Path, a.hub)
	return mux
}
