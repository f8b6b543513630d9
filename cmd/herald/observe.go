package main

// Observability of `herald serve`: latency histograms, the access log,
// and the Redis and NATS clients' own logs routed through log/slog.

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/herald-sse/herald/hub"
	"github.com/herald-sse/herald/store"
)

// obsConfig is the observability part of serveConfig.
type obsConfig struct {
	accessLog bool
}

func (c *obsConfig) flags(fs *flag.FlagSet) {
	fs.BoolVar(&c.accessLog, "access-log", false, "log every request (method, path, status, bytes, duration; never tokens or cookies) at info level; a stream is logged when it ends")
}

// metrics are the command's own Prometheus collectors.
type metrics struct {
	publish *prometheus.HistogramVec // by status code
	append  *prometheus.HistogramVec // by result
	lookups *prometheus.CounterVec   // by result
	answers *prometheus.CounterVec   // by route and status code
}

func newMetrics() *metrics {
	buckets := []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}
	return &metrics{
		publish: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "herald", Name: "publish_duration_seconds",
			Help:    "Time to serve a publish request (POST to the Mercure endpoint), body read to response, by status code.",
			Buckets: buckets,
		}, []string{"code"}),
		append: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "herald", Name: "store_append_duration_seconds",
			Help:    "Time the history store takes to append an update, by result (ok or error).",
			Buckets: buckets,
		}, []string{"result"}),
		answers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "herald", Name: "responses_total",
			Help: "Responses by route (publish, subscribe, subscriptions, other) and status code: refusals are the 4xx and 5xx " +
				"(401 no or bad token, 403 topic not authorized, 400 bad request, 413 body too large, 503 subscriber limit or shutdown).",
		}, []string{"route", "code"}),
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "herald", Name: "replay_lookups_total",
			Help: "Last-Event-ID lookups of reconnecting subscribers, by result: hit (replay from it), miss (id not in history), error.",
		}, []string{"result"}),
	}
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.publish, m.append, m.lookups, m.answers}
}

// timedStore measures a store's appends and lookups. The broker only
// uses the store.Store methods, so embedding hides nothing from it.
type timedStore struct {
	store.Store
	m *metrics
}

func (s timedStore) Append(ctx context.Context, u store.Update) (store.Update, error) {
	start := time.Now()
	u, err := s.Store.Append(ctx, u)
	result := "ok"
	if err != nil {
		result = "error"
	}
	s.m.append.WithLabelValues(result).Observe(time.Since(start).Seconds())
	return u, err
}

// AppendBatch passes a batch on as one call, so that the store commits it
// at once, and observes its time once per update appended or refused.
func (s timedStore) AppendBatch(ctx context.Context, ups []store.Update, stop bool) ([]store.Update, []error) {
	start := time.Now()
	stored, errs := store.AppendBatch(ctx, s.Store, ups, stop)
	d := time.Since(start).Seconds()
	for _, err := range errs {
		switch {
		case err == nil:
			s.m.append.WithLabelValues("ok").Observe(d)
		case !errors.Is(err, store.ErrNotAttempted):
			s.m.append.WithLabelValues("error").Observe(d)
		}
	}
	return stored, errs
}

func (s timedStore) Lookup(ctx context.Context, id string) (uint64, error) {
	seq, err := s.Store.Lookup(ctx, id)
	switch {
	case err == nil:
		s.m.lookups.WithLabelValues("hit").Inc()
	case errors.Is(err, store.ErrNotFound):
		s.m.lookups.WithLabelValues("miss").Inc()
	default:
		s.m.lookups.WithLabelValues("error").Inc()
	}
	return seq, err
}

// observe wraps h: responses by route and code and publish latency
// always, and the access log when access is not nil.
func observe(h http.Handler, m *metrics, access *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route := routeOf(r)
		start := time.Now()
		rec := &recorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		d := time.Since(start)
		code := rec.status()
		status := strconv.Itoa(code)
		m.answers.WithLabelValues(route, status).Inc()
		if route == "publish" {
			m.publish.WithLabelValues(status).Observe(d.Seconds())
		}
		if access != nil {
			access.Info("http request",
				"method", r.Method,
				"path", r.URL.Path,
				"query", redactQuery(r.URL.RawQuery),
				"proto", r.Proto,
				"status", code,
				"bytes", rec.bytes,
				"hijacked", rec.hijacked,
				"duration", d,
				"remote", r.RemoteAddr,
				"user_agent", r.UserAgent(),
			)
		}
	})
}

// routeOf classifies a request for the response counters.
func routeOf(r *http.Request) string {
	switch {
	case r.URL.Path == hub.Path && r.Method == http.MethodPost:
		return "publish"
	case r.URL.Path == hub.Path && r.Method == http.MethodGet:
		return "subscribe"
	case strings.HasPrefix(r.URL.Path, hub.Path+"/subscriptions"):
		return "subscriptions"
	}
	return "other"
}

// redactQuery hides the values of query parameters that may carry a
// credential (Mercure's authorization=<JWT>).
func redactQuery(raw string) string {
	if raw == "" {
		return ""
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return "(unparsable)"
	}
	for k := range q {
		lk := strings.ToLower(k)
		if lk == "authorization" || lk == "access_token" || strings.Contains(lk, "token") || strings.Contains(lk, "jwt") {
			q[k] = []string{masked}
		}
	}
	return q.Encode()
}

// recorder notes what a handler wrote. It unwraps for
// http.ResponseController, so flushing and the broker's hijacking of
// streams work through it.
type recorder struct {
	http.ResponseWriter
	code     int
	bytes    int64
	hijacked bool
}

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

// FlushError is what http.ResponseController.Flush calls: it reaches the
// connection without allocating a controller per flush (a stream on the
// goroutine writer flushes after every event).
func (r *recorder) FlushError() error {
	switch f := r.ResponseWriter.(type) {
	case interface{ FlushError() error }:
		return f.FlushError()
	case http.Flusher:
		f.Flush()
		return nil
	}
	return http.NewResponseController(r.ResponseWriter).Flush()
}

// Flush is for callers that still assert http.Flusher.
func (r *recorder) Flush() { _ = r.FlushError() }

func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(r.ResponseWriter).Hijack()
	if err == nil {
		r.hijacked = true
		if r.code == 0 {
			r.code = http.StatusOK
		}
	}
	return conn, brw, err
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *recorder) status() int {
	if r.code == 0 {
		return http.StatusOK
	}
	return r.code
}

// redisLogger routes go-redis's internal log lines (pool dial failures,
// reconnections) to slog at warn level, instead of raw lines on stderr.
type redisLogger struct{ l *slog.Logger }

func (r redisLogger) Printf(ctx context.Context, format string, v ...any) {
	r.l.WarnContext(ctx, "redis: "+strings.TrimSpace(fmt.Sprintf(format, v...)))
}

// routeClientLogs sends the Redis client's logs through logger. go-redis
// has one process-wide logger.
func routeClientLogs(logger *slog.Logger) {
	redis.SetLogger(redisLogger{logger})
}

// natsLogOptions route the NATS client's connection events and
// asynchronous errors through logger.
func natsLogOptions(logger *slog.Logger) []nats.Option {
	return []nats.Option{
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			logger.Warn("nats: async error", "subject", subject, "err", err)
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			logger.Warn("nats: disconnected", "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			logger.Info("nats: reconnected", "url", maskValue("nats-url", nc.ConnectedUrl()))
		}),
		nats.ClosedHandler(func(*nats.Conn) {
			logger.Debug("nats: connection closed")
		}),
	}
}
