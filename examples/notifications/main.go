// Command notifications delivers per-user notifications: each user has a
// topic, /users/{id}/notifications, and a page that subscribes to it. The
// updates are private, so a user receives only their own: the page's
// EventSource carries a subscriber token, set by the application as the
// mercureAuthorization cookie, that covers that one topic.
//
// It embeds a Mercure hub (package hub) in the application: the browser
// subscribes on /.well-known/mercure, and the application's backend
// publishes with the broker directly.
//
//	go run ./examples/notifications
//
// then open http://localhost:8080/?user=alice and, in another browser (or
// a private window: the cookie is per browser), http://localhost:8080/?user=bob.
package main

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"regexp"
	"time"
	"unicode/utf8"

	"github.com/herald-sse/herald/auth"
	"github.com/herald-sse/herald/broker"
	"github.com/herald-sse/herald/hub"
	"github.com/herald-sse/herald/store"
	"github.com/herald-sse/herald/store/memstore"
)

//go:embed index.html
var page []byte

func main() {
	addr := flag.String("addr", "localhost:8080", "address to listen on")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	key := make([]byte, 32) // signs the subscriber cookies; a real app keeps it in its config
	rand.Read(key)
	a, err := newApp(key)
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("notifications: open http://%s/?user=alice", ln.Addr())
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

// userID is what this example accepts as a user id.
var userID = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)

// topicOf returns the topic of user's notifications.
func topicOf(user string) string { return "/users/" + user + "/notifications" }

// app is the application: a log, a broker, and the Mercure hub the pages
// subscribe to.
type app struct {
	key []byte
	st  *memstore.Store
	b   *broker.Broker
	hub *hub.Hub
}

func newApp(key []byte) (*app, error) {
	st := memstore.New(memstore.Config{MaxLen: 10_000})
	b, err := broker.New(st, broker.Config{})
	if err != nil {
		return nil, err
	}
	// Subscribers' tokens are signed with key. Nobody publishes over HTTP
	// here (the backend calls b.Publish), so the publisher key is a
	// different secret that nobody has.
	noPublisher := make([]byte, 32)
	rand.Read(noPublisher)
	h, err := hub.New(b, hub.Config{PublisherKey: noPublisher, SubscriberKey: key})
	if err != nil {
		_ = b.Shutdown(context.Background())
		return nil, err
	}
	return &app{key: key, st: st, b: b, hub: h}, nil
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
	mux.HandleFunc("GET /{$}", a.index)
	mux.Handle(hub.Path, a.hub)
	mux.HandleFunc("POST /api/notify", a.notify)
	return mux
}

// index serves the page. With ?user=ID it also "signs the user in": a real
// application would do this after its own login. The cookie holds a token
// that lets the browser receive the private updates of this user's topic,
// and only those; it is HttpOnly, so the page's scripts cannot read it,
// and sent only to the Mercure endpoint.
func (a *app) index(w http.ResponseWriter, r *http.Request) {
	if user := r.URL.Query().Get("user"); user != "" {
		if !userID.MatchString(user) {
			http.Error(w, "a user id is 1 to 32 of a-z, 0-9, _ and -", http.StatusBadRequest)
			return
		}
		const ttl = 12 * time.Hour
		tok, err := auth.Sign(a.key, auth.Claims{Subscribe: []string{topicOf(user)}}, ttl)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		http.SetCookie(w, &http.Cookie{
			Name: auth.CookieName, Value: tok, Path: hub.Path, MaxAge: int(ttl / time.Second),
			HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
		})
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(page)
}

// notification is the data of one update.
type notification struct {
	Text string    `json:"text"`
	Time time.Time `json:"time"`
}

// notify is the backend's side: something happened for a user, so it
// publishes a private update to that user's topic. Here the page's demo
// form calls it; in a real application it is an event of the domain (a
// comment, a payment, a finished job).
func (a *app) notify(w http.ResponseWriter, r *http.Request) {
	user, text := r.FormValue("user"), r.FormValue("text")
	if !userID.MatchString(user) || text == "" || utf8.RuneCountInString(text) > 280 {
		http.Error(w, "want a user id and a text of at most 280 characters", http.StatusBadRequest)
		return
	}
	data, _ := json.Marshal(notification{Text: text, Time: time.Now().UTC()})
	u, err := a.b.Publish(r.Context(), store.Update{
		Topics:  []string{topicOf(user)},
		Type:    "notification",
		Data:    string(data),
		Private: true, // only subscribers whose token covers the topic get it
	})
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte(u.ID))
}
