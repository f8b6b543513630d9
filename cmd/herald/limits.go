package main

import (
	"errors"
	"flag"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-sse/herald/hub"
	"github.com/herald-sse/herald/internal/connlimit"
	"github.com/herald-sse/herald/web"
)

const (
	// maxHeaderBytes bounds a request head: 100 selectors of 2 KiB,
	// percent-encoded, fit.
	maxHeaderBytes = 1 << 20
)

// limitsConfig holds the flags that bound what a client can hold open.
type limitsConfig struct {
	readHeaderTimeout time.Duration
	idleTimeout       time.Duration
	bodyTimeout       time.Duration
	maxConnsPerIP     int
	maxStreamsPerIP   int
	trustedProxies    string
}

func (c *limitsConfig) flags(fs *flag.FlagSet) {
	fs.DurationVar(&c.readHeaderTimeout, "read-header-timeout", 10*time.Second, "time a request head may take to arrive, on a new connection or after --idle-timeout's wait (an idle or half-sent request is cut)")
	fs.DurationVar(&c.idleTimeout, "idle-timeout", 60*time.Second, "close a kept-alive connection idle this long between requests (streams are not idle: never cut)")
	fs.DurationVar(&c.bodyTimeout, "body-timeout", 10*time.Second, "time a publish body may take to arrive; a slow, trickled or absent body gets 408 (0: no limit)")
	fs.IntVar(&c.maxConnsPerIP, "max-conns-per-ip", 0, "open connections allowed per client address (IPv6: per /64), beyond which 429 (0: no limit; many users may share one NAT address)")
	fs.IntVar(&c.maxStreamsPerIP, "max-streams-per-ip", 0, "concurrent streams allowed per client address (after --trusted-proxies), beyond which 429; limited streams are not parked (0: no limit)")
	fs.StringVar(&c.trustedProxies, "trusted-proxies", "", "comma-separated CIDR networks of reverse proxies whose X-Forwarded-For names the client (empty: the header is ignored)")
}

// newLimiter builds the limiter of c.
func (c *limitsConfig) newLimiter(logger *slog.Logger) (*connlimit.Limiter, error) {
	proxies, err := connlimit.ParseCIDRs(c.trustedProxies)
	if err != nil {
		return nil, &exitError{2, err}
	}
	if c.idleTimeout < 0 {
		return nil, &exitError{2, errors.New("--idle-timeout must not be negative")}
	}
	if c.readHeaderTimeout <= 0 {
		return nil, &exitError{2, errors.New("--read-header-timeout must be positive")}
	}
	l, err := connlimit.New(connlimit.Config{
		MaxConnsPerIP:   c.maxConnsPerIP,
		MaxStreamsPerIP: c.maxStreamsPerIP,
		IsStream:        isStream,
		TrustedProxies:  proxies,
		BodyTimeout:     c.bodyTimeout,
		Logger:          logger,
	})
	if err != nil {
		return nil, &exitError{2, err}
	}
	return l, nil
}

// isStream reports whether r asks for an event stream: a subscription or
// the dashboard's stats.
func isStream(r *http.Request) bool {
	return r.Method == http.MethodGet && (r.URL.Path == hub.Path || r.URL.Path == web.StatsPath)
}

// limitsCollector exports the counters of the limiter and the hub to
// Prometheus.
type limitsCollector struct {
	l *connlimit.Limiter
	h *hub.Hub

	acceptErrors, panics, refused, hubRefused, authFailures *prometheus.Desc
}

func newLimitsCollector(l *connlimit.Limiter, h *hub.Hub) *limitsCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("herald_"+name, help, labels, nil)
	}
	return &limitsCollector{
		l:            l,
		h:            h,
		acceptErrors: d("accept_errors_total", "Failed accepts of new connections (too many open files, ...)."),
		panics:       d("handler_panics_total", "HTTP handler panics."),
		refused:      d("connection_refusals_total", "Requests refused by the server's connection limits or answered 429/503, by reason.", "reason"),
		hubRefused:   d("refusals_total", "Subscribe and publish requests refused for their content, by operation and reason.", "op", "reason"),
		authFailures: d("auth_failures_total", "Requests refused for their token, by operation and reason.", "op", "reason"),
	}
}

func (c *limitsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.acceptErrors, c.panics, c.refused, c.hubRefused, c.authFailures} {
		ch <- d
	}
}

func (c *limitsCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.l.Stats()
	ch <- prometheus.MustNewConstMetric(c.acceptErrors, prometheus.CounterValue, float64(st.AcceptErrors))
	ch <- prometheus.MustNewConstMetric(c.panics, prometheus.CounterValue, float64(st.Panics))
	for reason, n := range st.Refused {
		ch <- prometheus.MustNewConstMetric(c.refused, prometheus.CounterValue, float64(n), reason)
	}
	for _, n := range c.h.Refusals() {
		ch <- prometheus.MustNewConstMetric(c.hubRefused, prometheus.CounterValue, float64(n.N), n.Op, n.Reason)
	}
	for _, n := range c.h.AuthFailures() {
		ch <- prometheus.MustNewConstMetric(c.authFailures, prometheus.CounterValue, float64(n.N), n.Op, n.Reason)
	}
}
