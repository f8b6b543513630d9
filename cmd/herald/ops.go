package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/herald-sse/herald/broker"
	"github.com/herald-sse/herald/store"
)

// readyTimeout bounds the store call of /readyz.
const readyTimeout = 2 * time.Second

// mountOps adds the operational endpoints: /metrics (Prometheus) and
// /readyz (the store answers and the broker is not shutting down).
// /healthz is served by the hub itself.
//
// extra are further collectors of the command (publishes in flight,
// latency histograms) registered beside the broker's.
func mountOps(mux *http.ServeMux, b *broker.Broker, st store.Store, closing func() bool, extra ...prometheus.Collector) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	gauge := func(name, help string, f func(broker.Stats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "herald", Name: name, Help: help},
			func() float64 { return f(b.Stats()) })
	}
	counter := func(name, help string, f func(broker.Stats) float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "herald", Name: name, Help: help},
			func() float64 { return f(b.Stats()) })
	}
	reg.MustRegister(
		gauge("subscribers", "Open event streams.", func(s broker.Stats) float64 { return float64(s.Subscribers) }),
		gauge("parked_subscribers", "Streams held by the epoll writer pool.", func(s broker.Stats) float64 { return float64(s.Parked) }),
		gauge("topics", "Distinct exact topics with at least one subscriber.", func(s broker.Stats) float64 { return float64(s.Topics) }),
		counter("updates_total", "Updates fanned out from the log.", func(s broker.Stats) float64 { return float64(s.Published) }),
		counter("deliveries_total", "Update deliveries queued to subscribers.", func(s broker.Stats) float64 { return float64(s.Delivered) }),
		counter("slow_disconnects_total", "Subscribers disconnected for falling too far behind.", func(s broker.Stats) float64 { return float64(s.Dropped) }),
		counter("gap_disconnects_total", "Streams ended because updates owed to them were trimmed from the history (the client resumes, or is told Last-Event-ID: earliest).", func(s broker.Stats) float64 { return float64(s.Gaps) }),
		counter("log_resets_total", "Times the store reported that its log lost data or restarted its positions; each ends every stream.", func(s broker.Stats) float64 { return float64(s.Resets) }),
		counter("written_bytes_total", "Event bytes written to subscribers (replays, live events, heartbeats).", func(s broker.Stats) float64 { return float64(s.BytesWritten) }),
		counter("write_timeouts_total", "Streams cut because their client stopped reading for --write-timeout.", func(s broker.Stats) float64 { return float64(s.WriteTimeouts) }),
	)
	reg.MustRegister(extra...)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if closing() {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("shutting down\n"))
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		// Answer at the deadline even if the store does not return.
		res := make(chan error, 1)
		go func() {
			_, _, err := st.Last(ctx)
			res <- err
		}()
		var err error
		select {
		case err = <-res:
		case <-ctx.Done():
			err = fmt.Errorf("no answer within %v", readyTimeout)
		}
		if err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("store unavailable: " + err.Error() + "\n"))
			return
		}
		if !b.Ready() {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("not following the log yet\n"))
			return
		}
		w.Write([]byte("ready\n"))
	})
}

// debugServer returns a server of net/http/pprof and its listener, away
// from the public mux. The caller serves and closes it.
func debugServer(addr string, logger *slog.Logger) (*http.Server, net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("--debug-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	logger.Info("herald: pprof listening", "addr", ln.Addr().String())
	return srv, ln, nil
}
