// Command chat is a chat room built with Herald's Go library only: the
// page posts messages with fetch (POST /api/messages) and receives them
// with EventSource (GET /api/events), the shape of the seed article. A
// broker is mounted on the application's own mux; there is no hub and no
// token.
//
//	go run ./examples/chat
//
// then open http://localhost:8080 in two browser windows.
package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/herald-sse/herald/broker"
	"github.com/herald-sse/herald/store"
	"github.com/herald-sse/herald/store/memstore"
)

//go:embed index.html
var page []byte

// topic is the one room of this example. A real application would have a
// topic per room: "/rooms/{id}".
const topic = "/rooms/lobby"

func main() {
	addr := flag.String("addr", "localhost:8080", "address to listen on")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("chat: open http://%s in two windows", ln.Addr())
	if err := serve(ctx, ln); err != nil {
		log.Fatal(err)
	}
}

// serve runs the chat on ln until ctx is done.
func serve(ctx context.Context, ln net.Listener) error {
	a, err := newApp()
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: a.routes(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		a.close() // end the streams first, so Shutdown does not wait on them
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// app is the chat application: a log of the last messages and a broker
// that fans them out.
type app struct {
	st *memstore.Store
	b  *broker.Broker
}

func newApp() (*app, error) {
	st := memstore.New(memstore.Config{MaxLen: 100}) // the room's history
	b, err := broker.New(st, broker.Config{})
	if err != nil {
		return nil, err
	}
	return &app{st: st, b: b}, nil
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
	// Receive: the broker is an http.Handler. The page asks for
	// ?topic=/rooms/lobby&lastEventID=earliest, so it first gets the
	// room's history, then live messages; after a reconnection the
	// browser's Last-Event-ID header takes over and it gets what it missed.
	mux.Handle("GET /api/events", a.b)
	// Send: the application validates, then publishes.
	mux.HandleFunc("POST /api/messages", a.post)
	return mux
}

// message is what the page posts, and what every subscriber receives.
type message struct {
	Name string    `json:"name"`
	Text string    `json:"text"`
	Time time.Time `json:"time"`
}

func (a *app) post(w http.ResponseWriter, r *http.Request) {
	var m message
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&m); err != nil {
		http.Error(w, "bad message: "+err.Error(), http.StatusBadRequest)
		return
	}
	m.Name, m.Text = strings.TrimSpace(m.Name), strings.TrimSpace(m.Text)
	if m.Name == "" || m.Text == "" || utf8.RuneCountInString(m.Name) > 32 || utf8.RuneCountInString(m.Text) > 500 {
		http.Error(w, "a message needs a name (at most 32 characters) and a text (at most 500)", http.StatusBadRequest)
		return
	}
	m.Time = time.Now().UTC()
	data, _ := json.Marshal(m)
	u, err := a.b.Publish(r.Context(), store.Update{Topics: []string{topic}, Data: string(data)})
	if err != nil {
		http.Error(w, "publish: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, "{\"id\":%q}\n", u.ID)
}
