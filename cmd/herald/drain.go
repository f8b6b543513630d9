package main

// Graceful drain of `herald serve` on SIGTERM or SIGINT.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// drainConfig is the drain part of serveConfig. --shutdown-timeout
// bounds the whole shutdown.
type drainConfig struct {
	spread time.Duration
}

func (c *drainConfig) flags(fs *flag.FlagSet) {
	fs.DurationVar(&c.spread, "drain-spread", 3*time.Second, "on shutdown, spread the clients' reconnections over this long with a jittered final retry: (0: close every stream at once; must be below --shutdown-timeout)")
}

func (c *drainConfig) validate(shutdownTimeout time.Duration) error {
	if c.spread < 0 {
		return fmt.Errorf("--drain-spread must not be negative, got %v", c.spread)
	}
	if c.spread > 0 && c.spread >= shutdownTimeout {
		return fmt.Errorf("--drain-spread %v must be below --shutdown-timeout %v", c.spread, shutdownTimeout)
	}
	return nil
}

// shutdowner ends a broker's streams: *broker.Broker.
type shutdowner interface {
	Shutdown(ctx context.Context) error
}

// drainer is the broker support a spread drain needs. When the broker
// has it, drain calls it before Shutdown.
//
// Drain sends every open stream a final "retry:" field whose delay is
// drawn at random (uniformly) from [0, spread) on top of the configured
// retry, after the last complete event already queued to that stream,
// then ends the stream; new subscriptions are refused from the call on.
// It returns when every stream has ended, or with ctx's error.
type drainer interface {
	Drain(ctx context.Context, spread time.Duration) error
}

// drainSteps is what drain stops, in order.
type drainSteps struct {
	server   *http.Server
	inflight *inflight
	hub      interface{ Close() error }
	broker   shutdowner
	spread   time.Duration
	logger   *slog.Logger
}

// drain shuts the server down gracefully within ctx: the listeners close
// at once (and /readyz already answers 503, see mountOps), publishes in
// flight finish, the streams are drained (spread when the broker supports
// it) and ended, then the server's last connections. When ctx expires,
// whatever remains is closed.
func drain(ctx context.Context, d drainSteps) error {
	srvDone := make(chan error, 1)
	go func() { srvDone <- d.server.Shutdown(ctx) }() // closes the listeners now
	var err error
	if e := d.inflight.wait(ctx); e != nil {
		err = fmt.Errorf("publishes in flight: %w", e)
	}
	if d.hub != nil {
		_ = d.hub.Close() // stop publishing subscription events before the broker goes
	}
	if dr, ok := d.broker.(drainer); ok && d.spread > 0 {
		if e := dr.Drain(ctx, d.spread); e != nil {
			err = errors.Join(err, fmt.Errorf("drain: %w", e))
		}
	}
	err = errors.Join(err, d.broker.Shutdown(ctx)) // end the streams, so srv.Shutdown does not wait on them
	if e := <-srvDone; e != nil {
		err = errors.Join(err, e)
	}
	if ctx.Err() != nil {
		d.logger.Warn("herald: shutdown timeout reached, closing the remaining connections")
		err = errors.Join(err, d.server.Close())
	}
	return err
}

// inflight wraps a handler and counts its requests that change state
// (publishes: every method but GET, HEAD and OPTIONS), so that a drain
// can wait for them. It is safe for concurrent use.
type inflight struct {
	h http.Handler

	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n drops to 0; nil until someone waits
}

func newInflight(h http.Handler) *inflight { return &inflight{h: h} }

// collector returns the herald_publishes_in_flight gauge of f.
func (f *inflight) collector() prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "herald", Name: "publishes_in_flight",
		Help: "Publish (and other non-GET) requests being served; a drain waits for them.",
	}, func() float64 {
		f.mu.Lock()
		defer f.mu.Unlock()
		return float64(f.n)
	})
}

func (f *inflight) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		f.h.ServeHTTP(w, r)
		return
	}
	f.mu.Lock()
	f.n++
	f.mu.Unlock()
	defer f.done()
	f.h.ServeHTTP(w, r)
}

func (f *inflight) done() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n--
	if f.n == 0 && f.idle != nil {
		close(f.idle)
		f.idle = nil
	}
}

// wait returns when no counted request is in flight, or with ctx's error.
func (f *inflight) wait(ctx context.Context) error {
	f.mu.Lock()
	if f.n == 0 {
		f.mu.Unlock()
		return nil
	}
	if f.idle == nil {
		f.idle = make(chan struct{})
	}
	idle := f.idle
	f.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
