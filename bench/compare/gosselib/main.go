// gossebench: an SSE hub on github.com/tmaxmax/go-sse (default Joe provider,
// no replay): GET /events, POST /publish with form field data.
package main

import (
	"flag"
	"log"
	"net/http"

	sse "github.com/tmaxmax/go-sse"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8092", "listen address")
	flag.Parse()
	s := &sse.Server{
		// go-sse sends the response head only with the first event; flush
		// it at once so that a client sees the stream open.
		OnSession: func(w http.ResponseWriter, r *http.Request) ([]string, bool) {
			w.Header().Set("Content-Type", "text/event-stream")
			_ = http.NewResponseController(w).Flush()
			return []string{sse.DefaultTopic}, true
		},
	}
	mux := http.NewServeMux()
	mux.Handle("/events", s)
	mux.HandleFunc("/publish", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		m := &sse.Message{}
		m.AppendData(r.FormValue("data"))
		if err := s.Publish(m); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	log.Fatal(http.ListenAndServe(*addr, mux))
}
