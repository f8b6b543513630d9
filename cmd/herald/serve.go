package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/herald-sse/herald/auth"
	"github.com/herald-sse/herald/broker"
	"github.com/herald-sse/herald/hub"
	"github.com/herald-sse/herald/web"
)

// serveConfig is everything `herald serve` reads from flags and HERALD_*.
type serveConfig struct {
	addr            string
	publisherKey    string
	subscriberKey   string
	requireSubToken bool
	publishAnon     bool
	storeKind       string
	dataDir         string
	history         int
	historyAge      time.Duration
	historyBytes    byteSize
	storeTimeout    time.Duration
	heartbeat       time.Duration
	retry           time.Duration
	maxBody         int64
	maxPending      int
	writeTimeout    time.Duration
	maxSubscribers  int
	maxTopics       int
	maxBatch        int
	maxBatchBytes   int64
	corsOrigins     csvFlag
	logLevel        string
	logFormat       string
	shutdownTimeout time.Duration
	noPark          bool
	noDashboard     bool
	debugAddr       string
	ioUring         bool
	redisURL        string
	redisPrefix     string
	natsURL         string
	natsStream      string
	natsSubject     string
	natsReplicas    int
	subscriptions   bool
	presenceTTL     time.Duration
	tokens          tokenConfig

	configFile  string
	printConfig bool
	tls         tlsConfig
	drain       drainConfig
	obs         obsConfig
	limits      limitsConfig
}

func (c *serveConfig) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.addr, "addr", ":8080", "address to listen on")
	fs.StringVar(&c.publisherKey, "publisher-key", "", "HS256 secret that signs publisher tokens (empty: generate one for this run and print a token)")
	fs.StringVar(&c.subscriberKey, "subscriber-key", "", "HS256 secret that signs subscriber tokens (empty: the publisher key)")
	fs.BoolVar(&c.requireSubToken, "require-subscriber-token", false, "refuse subscribers without a valid token")
	fs.BoolVar(&c.publishAnon, "allow-anonymous-publish", false, "DANGEROUS: accept publishes without a token (trusted networks only)")
	fs.StringVar(&c.storeKind, "store", "bolt", "history store: bolt (durable, in --data-dir), memory, or redis / nats (shared by several hubs)")
	fs.StringVar(&c.redisURL, "redis-url", "redis://127.0.0.1:6379/0", "Redis of --store redis (redis:// or rediss:// URL)")
	fs.StringVar(&c.redisPrefix, "redis-prefix", "herald", "key prefix of --store redis (every hub sharing a history uses the same)")
	fs.StringVar(&c.natsURL, "nats-url", "nats://127.0.0.1:4222", "NATS server(s) of --store nats (comma-separated URLs)")
	fs.StringVar(&c.natsStream, "nats-stream", "HERALD", "JetStream stream of --store nats (every hub sharing a history uses the same)")
	fs.StringVar(&c.natsSubject, "nats-subject", "herald.updates", "subject prefix of --store nats")
	fs.IntVar(&c.natsReplicas, "nats-replicas", 1, "stream replicas of --store nats")
	fs.StringVar(&c.dataDir, "data-dir", "herald-data", "directory of the durable history (relative to the working directory)")
	fs.IntVar(&c.history, "history", 100_000, "updates kept in history for replay")
	fs.DurationVar(&c.historyAge, "history-age", 7*24*time.Hour, "updates older than this are dropped from history (0: no age limit)")
	c.historyBytes = defaultHistoryBytes
	fs.Var(&c.historyBytes, "history-bytes", "bound on the size of the history, e.g. 64MiB or 1GiB: the oldest updates are dropped beyond it")
	fs.DurationVar(&c.storeTimeout, "store-timeout", 5*time.Second, "--store redis or nats: time limit of every call to the engine; a publish it does not acknowledge in time gets 504")
	fs.DurationVar(&c.heartbeat, "heartbeat", 15*time.Second, "interval of the keep-alive comment on idle streams (0: off)")
	fs.DurationVar(&c.retry, "retry", 2*time.Second, "reconnection time sent to clients as retry: (0: none)")
	fs.Int64Var(&c.maxBody, "max-body", 1<<20, "largest publish request body in bytes")
	fs.IntVar(&c.maxPending, "max-pending", 1<<20, "bytes a subscriber may fall behind before it is disconnected")
	fs.DurationVar(&c.writeTimeout, "write-timeout", 30*time.Second, "cut a subscriber whose connection accepted no bytes for this long (it stopped reading)")
	fs.IntVar(&c.maxSubscribers, "max-subscribers", 0, "open streams beyond which subscribers get 503 (0: no limit)")
	fs.IntVar(&c.maxBatch, "max-batch", hub.DefaultMaxBatch, "most updates in one batch publish (application/x-ndjson; 413 beyond)")
	fs.Int64Var(&c.maxBatchBytes, "max-batch-bytes", hub.DefaultMaxBatchBytes, "largest batch publish body in bytes (413 beyond); each update also within --max-body")
	fs.IntVar(&c.maxTopics, "max-topics", 100, "topic selectors allowed in one subscription request")
	fs.Var(&c.corsOrigins, "cors-origins", "origins allowed to subscribe and publish cross-origin, with credentials (repeatable or comma-separated)")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 5*time.Second, "how long a graceful shutdown may take")
	fs.BoolVar(&c.noPark, "no-park", false, "serve every stream on its own goroutine (disables the epoll writer pool)")
	fs.BoolVar(&c.noDashboard, "no-dashboard", false, "do not serve the dashboard at / and its stats stream at /dashboard/stats")
	fs.BoolVar(&c.ioUring, "io-uring", true, "batch parked streams' writes with io_uring (falls back to sendmsg where the kernel refuses it)")
	fs.BoolVar(&c.subscriptions, "subscriptions", false, "publish Mercure subscription events and serve the subscriptions API at /.well-known/mercure/subscriptions")
	fs.DurationVar(&c.presenceTTL, "presence-ttl", 30*time.Second, "with --subscriptions on --store redis or nats: a crashed hub's subscriptions end (active:false) this long after its last renewal")
	fs.StringVar(&c.tokens.publisherKeyFile, "publisher-key-file", "", "PEM public key(s) (RSA, ECDSA, Ed25519) that verify publisher tokens, beside --publisher-key")
	fs.StringVar(&c.tokens.subscriberKeyFile, "subscriber-key-file", "", "PEM public key(s) that verify subscriber tokens (empty: --publisher-key-file)")
	fs.StringVar(&c.tokens.jwksURL, "jwks-url", "", "JWK Set URL whose keys verify publisher and subscriber tokens (cached, refreshed hourly and on an unknown kid, at most once a minute)")
	fs.StringVar(&c.tokens.issuer, "jwt-issuer", "", "if set, tokens must carry this iss claim")
	fs.StringVar(&c.tokens.audience, "jwt-audience", "", "if set, tokens must carry this aud claim (Mercure 1.0: the hub's URL, which is then also the base of relative URL patterns)")
	fs.BoolVar(&c.tokens.legacyTokens, "mercure-claim-tokens", true, "accept classic tokens with a mercure claim beside Mercure 1.0 at+jwt access tokens")
	fs.BoolVar(&c.tokens.reusedIDs, "allow-reused-ids", false, "accept a publish whose id is already taken, giving the update a new id (default: 409)")
	c.limits.flags(fs)
	fs.StringVar(&c.debugAddr, "debug-addr", "", "if set, serve Go's /debug/pprof profiles on this separate address (keep it private, e.g. 127.0.0.1:6060)")
	fs.StringVar(&c.configFile, configFlag, "", "read flags not given on the command line or in HERALD_* from this TOML file (keys are flag names)")
	fs.BoolVar(&c.printConfig, "print-config", false, "print the effective configuration (secrets masked) as TOML and exit")
	c.tls.flags(fs)
	c.drain.flags(fs)
	c.obs.flags(fs)
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c serveConfig
	fs := flag.NewFlagSet("herald serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: herald serve [flags]\n\n"+
			"Runs the hub: Mercure publish and subscribe at /.well-known/mercure, the dashboard at /,\n"+
			"/healthz, /readyz and /metrics. Every flag --foo-bar can also be set as HERALD_FOO_BAR\n"+
			"or as foo-bar in the --config file (flag > env > file > default).\n"+
			"Exit status 2: invalid flags or configuration (nothing was opened); 1: a runtime error.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	c.flags(fs)
	src, err := parseFlagSources(fs, args)
	if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return configError("unexpected argument %q (run 'herald serve -h' for the flags)", fs.Arg(0))
	}
	logger, err := newLogger(stderr, c.logLevel, c.logFormat)
	if err != nil {
		return &exitError{exitConfig, err}
	}
	p, err := newServePlan(c, logger)
	if err != nil {
		return &exitError{exitConfig, err}
	}
	if c.printConfig {
		printConfig(stdout, fs, src, configFlag, "print-config")
		return nil
	}
	return p.serve(ctx, stdout)
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// servePlan is a validated `herald serve` configuration, with the
// library configurations built from it. Building it prints, opens and
// listens on nothing.
type servePlan struct {
	c      serveConfig
	logger *slog.Logger
	token  string // the publisher token to print when the key was generated
	bcfg   broker.Config
	hcfg   hub.Config
}

func newServePlan(c serveConfig, logger *slog.Logger) (*servePlan, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	p := &servePlan{c: c, logger: logger}
	pubKey := []byte(c.publisherKey)
	if len(pubKey) == 0 && !c.publishAnon && !c.tokens.asymmetric() {
		pubKey = make([]byte, 32)
		rand.Read(pubKey)
		tok, err := auth.Sign(pubKey, auth.Claims{Publish: []string{"*"}, Subscribe: []string{"*"}}, 0)
		if err != nil {
			return nil, err
		}
		p.token = tok
	}
	subKey := []byte(c.subscriberKey)
	if len(subKey) == 0 {
		subKey = pubKey
	}
	p.bcfg = broker.Config{
		Logger:         logger,
		Heartbeat:      disableIfZero(c.heartbeat),
		Retry:          disableIfZero(c.retry),
		MaxPending:     c.maxPending,
		WriteTimeout:   c.writeTimeout,
		MaxSubscribers: c.maxSubscribers,
		NoPark:         c.noPark,
		IOUring:        c.ioUring,
	}
	p.hcfg = hub.Config{
		PublisherKey:           pubKey,
		SubscriberKey:          subKey,
		RequireSubscriberToken: c.requireSubToken,
		PublishAnonymous:       c.publishAnon,
		MaxBodyBytes:           c.maxBody,
		MaxTopics:              c.maxTopics,
		MaxBatch:               c.maxBatch,
		MaxBatchBytes:          c.maxBatchBytes,
		CORSOrigins:            c.corsOrigins,
		Logger:                 logger,
		Subscriptions:          c.subscriptions,
		AllowReusedIDs:         c.tokens.reusedIDs,
		Resource:               c.tokens.audience,
		AuthorizationServers:   c.tokens.authServers(),
	}
	if err := checkLibraryConfigs(p.bcfg, p.hcfg); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *servePlan) serve(ctx context.Context, stdout io.Writer) error {
	c, logger := p.c, p.logger
	lim, err := c.limits.newLimiter(logger)
	if err != nil {
		return err
	}
	pubVerifier, subVerifier, baseURL, closeKeys, err := verifiers(ctx, c.tokens, p.hcfg.PublisherKey, p.hcfg.SubscriberKey, logger)
	if err != nil {
		return err
	}
	defer closeKeys()
	uuid.EnableRandPool() // update ids: one crypto/rand read per 16 ids, not per id
	routeClientLogs(logger)
	st, closeStore, err := openStore(ctx, c, logger)
	if err != nil {
		return err
	}
	defer closeStore()
	m := newMetrics()
	st = timedStore{st, m}
	var h *hub.Hub // set before the server starts, so before any stream
	bcfg := p.bcfg
	if c.subscriptions {
		bcfg.OnSubscription = func(p broker.Presence) { h.OnSubscription(p) }
	}
	b, err := broker.New(st, bcfg)
	if err != nil {
		return err
	}
	presence, closePresence, err := openPresence(c)
	if err != nil {
		_ = b.Shutdown(context.Background())
		return err
	}
	defer closePresence() // after h.Close, which removes this hub's entries
	hcfg := p.hcfg
	hcfg.Presence = presence
	hcfg.PublisherVerifier, hcfg.SubscriberVerifier, hcfg.BaseURL = pubVerifier, subVerifier, baseURL
	h, err = hub.New(b, hcfg)
	if err != nil {
		_ = b.Shutdown(context.Background())
		return err
	}
	defer h.Close() // on early returns; the shutdown below closes it first

	tlsSrv, err := c.tls.setup(c.dataDir, logger)
	if err != nil {
		_ = b.Shutdown(context.Background())
		return err
	}
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		tlsSrv.stop()
		_ = b.Shutdown(context.Background())
		return err
	}
	ln = lim.Listener(ln)
	var closing atomic.Bool
	mux := http.NewServeMux()
	mux.Handle(hub.Path, h)
	mux.Handle(hub.Path+"/", h)
	mux.Handle(hub.HealthPath, withVersion(h))
	mux.Handle(hub.ResourceMetadataPath, h)
	inflight := newInflight(mux) // publishes in flight, which a drain waits for
	mountOps(mux, b, st, closing.Load, append(m.collectors(), inflight.collector(), newLimitsCollector(lim, h))...)
	var accessLog *slog.Logger
	if c.obs.accessLog {
		accessLog = logger
	}
	var dash *web.Dashboard
	if !c.noDashboard {
		dash = web.New(b.Stats, web.Config{})
		mux.Handle("GET /{$}", dash)
		mux.Handle("GET /dashboard/", dash)
	}
	srv := &http.Server{
		Handler:           lim.Handler(observe(inflight, m, accessLog)),
		ReadHeaderTimeout: c.limits.readHeaderTimeout,
		IdleTimeout:       c.limits.idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ConnContext:       lim.ConnContext,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
		Protocols:         c.tls.protocols(),
		HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: c.tls.h2MaxStreams},
	}
	if dash != nil {
		srv.RegisterOnShutdown(dash.Close) // end the stats streams, so srv.Shutdown does not wait on them
	}
	scheme := "http"
	if tlsSrv != nil {
		srv.TLSConfig = tlsSrv.config
		scheme = "https"
	}
	// The listening line comes first: the banner's token is usable only
	// once the address is known, and a script that waits for the token
	// may rely on the address already being logged.
	logger.Info("herald: listening", "addr", ln.Addr().String(), "scheme", scheme, "version", versionString(), "store", c.storeKind, "data_dir", storeDir(c))
	if p.token != "" {
		printBanner(stdout, c.logFormat, p.token)
	}

	g, gctx := errgroup.WithContext(ctx)
	if c.debugAddr != "" {
		dbg, dln, err := debugServer(c.debugAddr, logger)
		if err != nil {
			ln.Close()
			tlsSrv.stop()
			_ = b.Shutdown(context.Background())
			return err
		}
		g.Go(func() error {
			if err := dbg.Serve(dln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
		g.Go(func() error {
			<-gctx.Done()
			return dbg.Close()
		})
	}
	if tlsSrv != nil {
		for _, run := range tlsSrv.run {
			g.Go(func() error { return run(gctx) })
		}
	}
	g.Go(func() error {
		var err error
		if tlsSrv != nil {
			err = srv.ServeTLS(ln, "", "")
		} else {
			err = srv.Serve(ln)
		}
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		closing.Store(true) // /readyz answers 503 from now on
		logger.Info("herald: shutting down", "timeout", c.shutdownTimeout, "drain_spread", c.drain.spread)
		sctx, cancel := context.WithTimeout(context.Background(), c.shutdownTimeout)
		defer cancel()
		return drain(sctx, drainSteps{
			server:   srv,
			inflight: inflight,
			hub:      h,
			broker:   b,
			spread:   c.drain.spread,
			logger:   logger,
		})
	})
	return g.Wait()
}

// printBanner prints the generated publisher token, as a JSON line
// with --log-format json.
func printBanner(w io.Writer, format, token string) {
	if format == "json" {
		l := slog.New(slog.NewJSONHandler(w, nil))
		l.Info("herald: no --publisher-key given: generated a key for this run only (a token from a previous run is refused)",
			"publisher_token", token)
		return
	}
	fmt.Fprintf(w, "No --publisher-key given: generated a key for this run only.\n"+
		"Publisher token (publish and subscribe to every topic, valid until the hub stops):\n\n%s\n\n", token)
}

func storeDir(c serveConfig) string {
	if strings.EqualFold(c.storeKind, "bolt") {
		return c.dataDir
	}
	return ""
}

// disableIfZero maps a flag's 0 ("off") to the library's negative "off".
func disableIfZero(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
