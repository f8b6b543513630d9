// gosse: the SSE broadcaster people copy from tutorials: net/http, one
// goroutine per connection, a buffered channel per client, a mutex-guarded
// client set, broadcast on POST, flush per event.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"sync"
)

type Broker struct {
	mu      sync.Mutex
	clients map[chan string]struct{}
}

func (b *Broker) add() chan string {
	ch := make(chan string, 64)
	b.mu.Lock()
	b.clients[ch] = struct{}{}
	b.mu.Unlock()
	return ch
}

func (b *Broker) remove(ch chan string) {
	b.mu.Lock()
	delete(b.clients, ch)
	b.mu.Unlock()
}

func (b *Broker) broadcast(msg string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.clients {
		select {
		case ch <- msg:
		default: // slow client: drop
		}
	}
}

func (b *Broker) events(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Connection", "keep-alive")
	w.WriteHeader(http.StatusOK)
	flusher.Flush()
	ch := b.add()
	defer b.remove(ch)
	for {
		select {
		case <-r.Context().Done():
			return
		case msg := <-ch:
			fmt.Fprintf(w, "data: %s\n\n", msg)
			flusher.Flush()
		}
	}
}

func (b *Broker) publish(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	b.broadcast(r.FormValue("data"))
	w.WriteHeader(http.StatusNoContent)
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8090", "listen address")
	flag.Parse()
	b := &Broker{clients: map[chan string]struct{}{}}
	http.HandleFunc("/events", b.events)
	http.HandleFunc("/publish", b.publish)
	log.Fatal(http.ListenAndServe(*addr, nil))
}
