// herald bench: a load generator for Herald or any other SSE hub.
//
// It opens --subscribers raw HTTP/1.1 connections to --sub-url, publishes
// events to --pub-url (POST, body --pub-body with {{payload}} replaced by
// "~seq~sendUnixNanos~xxx…" padded to --size bytes), and reports connect
// time, server memory per subscriber (--pid), publish→receipt latency,
// loss, ordering, deliveries/s and server CPU per delivery. With --idle it
// only connects and holds the connections for --duration (memory per idle
// subscriber). Progress goes to stderr: rewritten every second on a
// terminal, a line every 5s otherwise (--quiet turns it off).
//
// Examples:
//
//	herald bench --subscribers 10000 --rate 5 --duration 30s --pid $(pidof herald) --token "$TOKEN"
//	herald bench --subscribers 1000 --rate 50 --duration 30s --json
//	herald bench --subscribers 100 --rate 0 --publishers 8 --duration 10s   # publish throughput
//	herald bench --idle --subscribers 10000 --connect-rate 2000 --pid 1234
//
// --json prints one JSON object (loadgen.Result). Its field names are
// stable. Times are in seconds (*_seconds) or microseconds (*_us), memory
// in bytes, zero when not measured (no --pid, idle mode):
//
//	sub_url, pub_url, pid          what was measured ("pub_url" empty when idle)
//	sub_urls, pub_urls             the further --sub-url and --pub-url values (omitted when none)
//	subscribers, publishers        requested subscriber connections, concurrent publishers
//	rate, size                     requested events/s (0 = flat out), payload bytes
//	connected, connect_errors      subscriber connections opened / failed
//	connect_error                  first connect error (omitted when none)
//	connect_seconds                wall time to open all connections
//	connect_us                     per-connection dial→response head (latency object)
//	server_rss_before_bytes        server VmRSS before connecting
//	server_rss_connected_bytes     server VmRSS after connecting (and --settle)
//	server_rss_after_bytes         server VmRSS after the publish phase
//	server_rss_per_subscriber_bytes (connected - before) / connected
//	warmup_events                  events published during --warmup (not measured)
//	published, publish_errors      measured publishes accepted (2xx) / failed
//	publish_error                  first publish error (omitted when none)
//	publish_seconds                duration of the measured publish phase
//	publishes_per_sec              published / publish_seconds
//	publish_us                     publish request latency (latency object)
//	expected                       published × connected
//	received                       distinct measured deliveries
//	lost, loss_ratio               expected - received, and / expected
//	out_of_order                   deliveries older than one already received on the connection
//	duplicates                     deliveries already received on the connection
//	disconnects                    subscriber connections the server closed during the run
//	deliveries_per_sec             received / (measured phase start → last receipt)
//	latency_us                     publish sent → received, all deliveries (latency object)
//	receive_clock                  "kernel": receipts timed by socket receive timestamps; "user": by read time
//	server_cpu_seconds             server utime+stime during the measured phase and drain
//	server_cpu_us_per_delivery     server_cpu_seconds per received delivery, µs
//	generator_cpu_seconds          this process's CPU time over the same span
//	generator_cpu_us_per_delivery  generator_cpu_seconds per received delivery, µs
//
// A latency object is {"count", "min", "mean", "p50", "p90", "p99", "p999", "max"}.

package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/herald-sse/herald/internal/loadgen"
)

// headerFlag collects repeatable "Key: Value" flags.
type headerFlag struct{ h http.Header }

func (f *headerFlag) String() string {
	if f == nil || f.h == nil {
		return ""
	}
	var parts []string
	for k, vs := range f.h {
		for _, v := range vs {
			parts = append(parts, k+": "+v)
		}
	}
	return strings.Join(parts, ", ")
}

func (f *headerFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, ":")
	k = strings.TrimSpace(k)
	if !ok || k == "" {
		return fmt.Errorf("header %q: want \"Key: Value\"", s)
	}
	if f.h == nil {
		f.h = http.Header{}
	}
	f.h.Add(k, strings.TrimSpace(v))
	return nil
}

// urlsFlag is a repeatable URL flag with a default: the first value given
// replaces the default, later ones are added.
type urlsFlag struct {
	urls []string
	set  bool
}

func (l *urlsFlag) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(l.urls, " ")
}

func (l *urlsFlag) Set(v string) error {
	if !l.set {
		l.urls, l.set = nil, true
	}
	l.urls = append(l.urls, v)
	return nil
}

// runBench runs `herald bench` with args (the arguments after "bench").
// Flags may also come from HERALD_* environment variables (see parseFlags).
// The result is printed even when the run ends early (ctx canceled).
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("herald bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg                       loadgen.Config
		header, pubHeader, subHdr headerFlag
		sourceIPs                 string
		idle, asJSON, quiet       bool
		token                     string
	)
	subURLs := urlsFlag{urls: []string{"http://127.0.0.1:8080/.well-known/mercure?topic=bench"}}
	pubURLs := urlsFlag{urls: []string{"http://127.0.0.1:8080/.well-known/mercure"}}
	fs.Var(&subURLs, "sub-url", "subscribe `URL` (http only); with --idle, {{n}} in it becomes each connection's number (one topic per subscriber). Repeatable: subscriber i connects to the (i mod n)-th URL, to spread them over a cluster's hubs")
	fs.Var(&pubURLs, "pub-url", "publish `URL`. Repeatable: publisher j posts to the (j mod n)-th URL")
	fs.StringVar(&cfg.PubBody, "pub-body", loadgen.DefaultPubBody, "publish body `template`; {{payload}} is replaced by the event payload")
	fs.Var(&header, "header", "`K: V` header for subscribe and publish requests (repeatable)")
	fs.Var(&pubHeader, "pub-header", "`K: V` header for publish requests (repeatable)")
	fs.Var(&subHdr, "sub-header", "`K: V` header for subscribe requests (repeatable)")
	fs.IntVar(&cfg.Subscribers, "subscribers", 100, "subscriber connections")
	fs.Float64Var(&cfg.Rate, "rate", 10, "events published per second; 0 = flat out")
	fs.IntVar(&cfg.PubBatch, "pub-batch", 1, "events per publish request; more than 1 sends --pub-body once per event, one per line (Herald's batch publish, e.g. --pub-body '{\"topic\":\"bench\",\"data\":\"{{payload}}\"}')")
	fs.IntVar(&cfg.Publishers, "publishers", 1, "concurrent publishers (ordering is exact only with 1)")
	fs.DurationVar(&cfg.Duration, "duration", 0, "measured publish phase (default 10s unless --events); with --idle, how long to hold the connections")
	fs.IntVar(&cfg.Events, "events", 0, "measured events to publish; 0 = until --duration")
	fs.DurationVar(&cfg.Warmup, "warmup", time.Second, "publish this long before measuring")
	fs.IntVar(&cfg.Size, "size", 100, "payload size in `bytes`")
	fs.Float64Var(&cfg.ConnectRate, "connect-rate", 0, "new connections per second; 0 = as fast as --connect-concurrency allows")
	fs.IntVar(&cfg.ConnectConcurrency, "connect-concurrency", 64, "connections being opened at once")
	fs.DurationVar(&cfg.ConnectTimeout, "connect-timeout", 10*time.Second, "timeout for one connection's dial and response head")
	fs.DurationVar(&cfg.PublishTimeout, "publish-timeout", 10*time.Second, "timeout for one publish request")
	fs.DurationVar(&cfg.DrainTimeout, "drain-timeout", 5*time.Second, "wait this long after the last publish for outstanding deliveries")
	fs.DurationVar(&cfg.Settle, "settle", 0, "wait after connecting before reading server memory (default 1s with --pid)")
	fs.IntVar(&cfg.PID, "pid", 0, "server process id: report its memory (VmRSS, excluding kernel socket buffers; start the server fresh) and CPU time from /proc")
	fs.StringVar(&sourceIPs, "source-ips", "", "local source addresses: N (127.0.0.1..127.0.0.N), a range 127.0.0.1-127.0.0.50, or a comma list")
	fs.IntVar(&cfg.Readers, "readers", 0, "reader goroutines (epoll instances); 0 = GOMAXPROCS, at most 8")
	fs.DurationVar(&cfg.ReadPause, "read-pause", 200*time.Microsecond, "readers pause this long after a wakeup with few ready connections (saves CPU; receipts keep kernel timestamps); negative = never")
	fs.StringVar(&token, "token", "", "publisher JWT, sent as \"Authorization: Bearer\" with each publish (env HERALD_TOKEN)")
	fs.BoolVar(&idle, "idle", false, "connect and hold only, publish nothing")
	fs.BoolVar(&asJSON, "json", false, "print the result as one JSON object")
	fs.BoolVar(&quiet, "quiet", false, "no progress on stderr")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: herald bench [flags]\n\nLoad an SSE hub with subscribers and publishes and measure it.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &exitError{2, fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	cfg.SubURL, cfg.SubURLs = subURLs.urls[0], subURLs.urls[1:]
	cfg.PubURL, cfg.PubURLs = pubURLs.urls[0], pubURLs.urls[1:]
	if idle {
		cfg.PubURL, cfg.PubURLs = "", nil
	}
	cfg.Header, cfg.PubHeader, cfg.SubHeader = header.h, pubHeader.h, subHdr.h
	if err := benchToken(&cfg, token); err != nil {
		return err
	}
	if sourceIPs != "" {
		ips, err := loadgen.ParseSourceIPs(sourceIPs)
		if err != nil {
			return &exitError{2, err}
		}
		cfg.SourceIPs = ips
	}
	var pr *progressPrinter
	if !quiet {
		pr = newProgressPrinter(stderr)
		cfg.Progress, cfg.ProgressInterval = pr.print, pr.interval
	}
	res, err := loadgen.Run(ctx, cfg)
	pr.finish()
	if res.Connected > 0 || asJSON {
		var perr error
		if asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			perr = enc.Encode(res)
		} else {
			perr = printResult(stdout, res)
		}
		err = errors.Join(err, perr)
	}
	return errors.Join(err, publishesFailed(cfg, res))
}

// benchToken adds "Authorization: Bearer token" to the publish headers,
// unless a header flag already sets Authorization.
func benchToken(cfg *loadgen.Config, token string) error {
	if token == "" {
		return nil
	}
	if cfg.Header.Get("Authorization") != "" || cfg.PubHeader.Get("Authorization") != "" {
		return &exitError{2, errors.New("--token and an Authorization --header or --pub-header exclude each other")}
	}
	if cfg.PubHeader == nil {
		cfg.PubHeader = http.Header{}
	}
	cfg.PubHeader.Set("Authorization", "Bearer "+token)
	return nil
}

// publishesFailed is the error of a run in which the hub accepted no
// publish: its result means nothing.
func publishesFailed(cfg loadgen.Config, res loadgen.Result) error {
	if cfg.PubURL == "" || res.Published > 0 || res.PublishErrors == 0 {
		return nil
	}
	hint := ""
	for _, code := range []int{http.StatusUnauthorized, http.StatusNotFound} {
		if strings.Contains(res.PublishError, fmt.Sprintf("status %d ", code)) {
			hint = refusalHint(code, cfg.PubURL, cfg.PubHeader.Get("Authorization") != "" || cfg.Header.Get("Authorization") != "")
		}
	}
	if hint == "" && cfg.PubHeader.Get("Authorization") == "" && cfg.Header.Get("Authorization") == "" {
		hint = " (hint: no token: give --token or set HERALD_TOKEN)"
	}
	return &exitError{1, fmt.Errorf("every publish failed (%d errors; first: %s)%s", res.PublishErrors, res.PublishError, hint)}
}

// progressPrinter writes progress lines: rewritten in place on a terminal,
// one every 5s otherwise.
type progressPrinter struct {
	w        io.Writer
	tty      bool
	interval time.Duration

	mu      sync.Mutex
	written bool
}

func newProgressPrinter(w io.Writer) *progressPrinter {
	p := &progressPrinter{w: w, interval: 5 * time.Second}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty, p.interval = true, time.Second
		}
	}
	return p
}

func (p *progressPrinter) print(pg loadgen.Progress) {
	line := fmt.Sprintf("[%6.1fs] %-7s connected %d", pg.Elapsed.Seconds(), pg.Phase, pg.Connected)
	if pg.ConnectErrors > 0 {
		line += fmt.Sprintf("  connect errors %d", pg.ConnectErrors)
	}
	if pg.Disconnects > 0 {
		line += fmt.Sprintf("  disconnects %d", pg.Disconnects)
	}
	if pg.Published > 0 || pg.Received > 0 {
		line += fmt.Sprintf("  published %d  received %d (%s/s)", pg.Published, pg.Received, count(pg.ReceivedPerSec))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		p.written = true
		return
	}
	fmt.Fprintln(p.w, line)
}

// finish ends an in-place progress line. A nil printer does nothing.
func (p *progressPrinter) finish() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.written {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

func printResult(w io.Writer, r loadgen.Result) error {
	var b strings.Builder
	fmt.Fprintf(&b, "subscribe   %s\n", r.SubURL)
	if r.PubURL != "" {
		rate := "flat out"
		if r.Rate > 0 {
			rate = fmt.Sprintf("%g/s", r.Rate)
		}
		fmt.Fprintf(&b, "publish     %s  (%s, %d B payload, %d publisher(s))\n", r.PubURL, rate, r.Size, r.Publishers)
	}
	fmt.Fprintf(&b, "connect     %d/%d in %.2fs, %d errors   per connection %s\n",
		r.Connected, r.Subscribers, r.ConnectSeconds, r.ConnectErrors, latency(r.ConnectUs))
	if r.ConnectError != "" {
		fmt.Fprintf(&b, "            first error: %s\n", r.ConnectError)
	}
	if r.PID != 0 {
		fmt.Fprintf(&b, "server rss  %s before, %s connected (%s per subscriber), %s after\n",
			bytesize(float64(r.ServerRSSBeforeBytes)), bytesize(float64(r.ServerRSSConnectedBytes)),
			bytesize(r.ServerRSSPerSubscriberBytes), bytesize(float64(r.ServerRSSAfterBytes)))
	}
	if r.PubURL != "" {
		fmt.Fprintf(&b, "published   %d in %.2fs (%s/s), %d errors, %d warmup   request %s\n",
			r.Published, r.PublishSeconds, count(r.PublishesPerSec), r.PublishErrors, r.WarmupEvents, latency(r.PublishUs))
		if r.PublishError != "" {
			fmt.Fprintf(&b, "            first error: %s\n", r.PublishError)
		}
		fmt.Fprintf(&b, "delivered   %d/%d (lost %d, %.3f%%), %d out of order, %d duplicates, %d disconnects\n",
			r.Received, r.Expected, r.Lost, 100*r.LossRatio, r.OutOfOrder, r.Duplicates, r.Disconnects)
		fmt.Fprintf(&b, "            %s deliveries/s\n", count(r.DeliveriesPerSec))
		fmt.Fprintf(&b, "latency     %s  (publish sent → received, %s clock)\n", latency(r.LatencyUs), r.ReceiveClock)
		if r.Received > 0 {
			cpu := fmt.Sprintf("generator %.2fs (%.2f µs/delivery)", r.GeneratorCPUSeconds, r.GeneratorCPUUsPerDelivery)
			if r.PID != 0 {
				cpu = fmt.Sprintf("server %.2fs (%.2f µs/delivery), ", r.ServerCPUSeconds, r.ServerCPUUsPerDelivery) + cpu
			}
			fmt.Fprintf(&b, "cpu         %s\n", cpu)
		}
	} else if r.Disconnects > 0 {
		fmt.Fprintf(&b, "idle        %d disconnects\n", r.Disconnects)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func latency(l loadgen.Latency) string {
	if l.Count == 0 {
		return "(no samples)"
	}
	us := func(v int64) string { return time.Duration(v * int64(time.Microsecond)).String() }
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  p99.9 %s  max %s",
		us(l.P50), us(l.P90), us(l.P99), us(l.P999), us(l.Max))
}

func count(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%.1f", v)
	}
}

func bytesize(v float64) string {
	neg := ""
	if v < 0 {
		neg, v = "-", -v
	}
	switch {
	case v >= 1<<30:
		return fmt.Sprintf("%s%.2f GiB", neg, v/(1<<30))
	case v >= 1<<20:
		return fmt.Sprintf("%s%.1f MiB", neg, v/(1<<20))
	case v >= 1<<10:
		return fmt.Sprintf("%s%.2f KiB", neg, v/(1<<10))
	default:
		return fmt.Sprintf("%s%.0f B", neg, v)
	}
}
