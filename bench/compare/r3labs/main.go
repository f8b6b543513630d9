// r3bench: an SSE hub on github.com/r3labs/sse/v2: GET /events?stream=bench,
// POST /publish with form field data.
package main

import (
	"flag"
	"log"
	"net/http"

	"github.com/r3labs/sse/v2"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8091", "listen address")
	replay := flag.Bool("replay", false, "keep and replay every event (the library's default AutoReplay)")
	flag.Parse()
	s := sse.New()
	s.AutoReplay = *replay
	s.CreateStream("bench")
	mux := http.NewServeMux()
	mux.HandleFunc("/events", s.ServeHTTP)
	mux.HandleFunc("/publish", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		s.Publish("bench", &sse.Event{Data: []byte(r.FormValue("data"))})
		w.WriteHeader(http.StatusNoContent)
	})
	log.Fatal(http.ListenAndServe(*addr, mux))
}
