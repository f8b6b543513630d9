// Package web serves Herald's dashboard: a page that shows a hub's live
// counters (subscribers, topics, publish and delivery rates, with a small
// chart), publishes with a form and subscribes with EventSource.
//
// The page is plain HTML, CSS and JavaScript embedded in the binary, with
// no build step and nothing loaded from elsewhere. It is fed by Herald's
// own Server-Sent Events: [Dashboard] also serves [StatsPath], a stream of
// the broker's counters as JSON, one "stats" event per interval.
//
// The dashboard publishes and subscribes through the hub's Mercure
// endpoint on the same origin (/.well-known/mercure); publishing needs a
// publisher token, which the user pastes into the form.
package web

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/herald-sse/herald/broker"
	"github.com/herald-sse/herald/sse"
)

// StatsPath is the path of the stats stream served by a [Dashboard].
const StatsPath = "/dashboard/stats"

//go:embed assets
var assets embed.FS

// files maps the paths a Dashboard serves to its embedded assets.
var files = map[string]struct{ name, contentType string }{
	"/":                     {"assets/index.html", "text/html; charset=utf-8"},
	"/dashboard/app.js":     {"assets/app.js", "text/javascript; charset=utf-8"},
	"/dashboard/style.css":  {"assets/style.css", "text/css; charset=utf-8"},
	"/dashboard/index.html": {"assets/index.html", "text/html; charset=utf-8"},
}

// Config configures a [Dashboard]. The zero value is valid.
type Config struct {
	// Interval is the time between two events of the stats stream. Zero
	// means one second.
	Interval time.Duration
}

// Stats is the JSON object of one event of the stats stream: the broker's
// counters and the time they were read, in Unix milliseconds.
type Stats struct {
	Time        int64  `json:"time"`
	Subscribers int    `json:"subscribers"`
	Parked      int    `json:"parked"`
	Topics      int    `json:"topics"`
	Published   uint64 `json:"published"`
	Delivered   uint64 `json:"delivered"`
	Dropped     uint64 `json:"dropped"`
}

// Dashboard is an [http.Handler] that serves the dashboard page at "/" and
// its assets and stats stream under "/dashboard/"; it answers 404 for other
// paths and 405 for methods other than GET and HEAD. Mount it on a
// [http.ServeMux] at "GET /{$}" and "GET /dashboard/", next to the hub.
//
// Each stats stream is served on its request's goroutine and ends when the
// client goes away or [Dashboard.Close] is called. A Dashboard is safe for
// concurrent use. Create it with [New].
type Dashboard struct {
	stats    func() broker.Stats
	interval time.Duration

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // stats streams being served

	mu     sync.Mutex
	closed bool // no stream may start (wg.Add) once set
}

// New returns a dashboard whose stats stream reports stats, typically a
// [broker.Broker]'s Stats method. It panics if stats is nil.
func New(stats func() broker.Stats, cfg Config) *Dashboard {
	if stats == nil {
		panic("web: nil stats func")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Dashboard{stats: stats, interval: cfg.Interval, ctx: ctx, cancel: cancel}
}

// Close ends every stats stream and waits for their handlers to return.
// Later stats requests get 503. Register it with
// [http.Server.RegisterOnShutdown], so that the server's Shutdown does not
// wait on the streams. Close is safe to call more than once.
func (d *Dashboard) Close() {
	d.mu.Lock()
	d.closed = true
	d.cancel()
	d.mu.Unlock()
	d.wg.Wait()
}

// ServeHTTP serves the page, its assets and the stats stream.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if r.URL.Path == StatsPath {
		d.serveStats(w, r)
		return
	}
	f, ok := files[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	body, err := assets.ReadFile(f.name)
	if err != nil { // cannot happen: the names are embedded
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", f.contentType)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	if r.Method == http.MethodGet {
		_, _ = w.Write(body)
	}
}

// serveStats streams the counters: one "stats" event at once, then one
// per interval.
func (d *Dashboard) serveStats(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	d.wg.Add(1)
	d.mu.Unlock()
	defer d.wg.Done()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	rc := http.NewResponseController(w)
	enc := sse.NewEncoder(w)
	if err := enc.Retry(2 * time.Second); err != nil {
		return
	}
	tick := time.NewTicker(d.interval)
	defer tick.Stop()
	for {
		if err := d.send(enc, rc); err != nil {
			return
		}
		select {
		case <-tick.C:
		case <-r.Context().Done():
			return
		case <-d.ctx.Done():
			return
		}
	}
}

func (d *Dashboard) send(enc *sse.Encoder, rc *http.ResponseController) error {
	s := d.stats()
	data, err := json.Marshal(Stats{
		Time:        time.Now().UnixMilli(),
		Subscribers: s.Subscribers,
		Parked:      s.Parked,
		Topics:      s.Topics,
		Published:   s.Published,
		Delivered:   s.Delivered,
		Dropped:     s.Dropped,
	})
	if err != nil {
		return err
	}
	if err := enc.Encode(sse.Event{Type: "stats", Data: string(data)}); err != nil {
		return err
	}
	if err := rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}
