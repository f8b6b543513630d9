package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/herald-sse/herald/broker"
	"github.com/herald-sse/herald/hub"
	"github.com/herald-sse/herald/store/memstore"
)

// validate checks every value of a serve configuration that can be
// checked without opening a store or a listener. It runs before anything
// is printed, so that a bad value never follows the token banner.
func (c *serveConfig) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if _, _, err := net.SplitHostPort(c.addr); err != nil {
		bad("--addr %q: want host:port or :port", c.addr)
	}
	if c.debugAddr != "" {
		if _, _, err := net.SplitHostPort(c.debugAddr); err != nil {
			bad("--debug-addr %q: want host:port", c.debugAddr)
		}
	}
	switch c.storeKind {
	case "bolt", "memory":
	case "redis":
		if _, err := redis.ParseURL(c.redisURL); err != nil {
			bad("--redis-url %q: %v", c.redisURL, err)
		}
		if c.redisPrefix == "" {
			bad("--redis-prefix must not be empty")
		}
	case "nats":
		for _, u := range strings.Split(c.natsURL, ",") {
			pu, err := url.Parse(strings.TrimSpace(u))
			if err != nil || pu.Host == "" {
				bad("--nats-url %q: want nats://host:port[,nats://host:port...]", c.natsURL)
				break
			}
		}
		if c.natsStream == "" || c.natsSubject == "" {
			bad("--nats-stream and --nats-subject must not be empty")
		}
		if c.natsReplicas < 1 || c.natsReplicas > 5 {
			bad("--nats-replicas must be 1 to 5, got %d", c.natsReplicas)
		}
	default:
		bad("--store %q: want bolt, memory, redis or nats", c.storeKind)
	}
	if c.storeKind == "bolt" && c.dataDir == "" {
		bad("--data-dir must not be empty with --store bolt")
	}
	if c.history <= 0 {
		bad("--history must be positive, got %d", c.history)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"--history-age", c.historyAge}, {"--heartbeat", c.heartbeat}, {"--retry", c.retry}} {
		if d.v < 0 {
			bad("%s must not be negative, got %v", d.name, d.v)
		}
	}
	if c.shutdownTimeout <= 0 {
		bad("--shutdown-timeout must be positive, got %v", c.shutdownTimeout)
	}
	if c.maxBody <= 0 {
		bad("--max-body must be positive, got %d", c.maxBody)
	}
	if c.maxPending <= 0 {
		bad("--max-pending must be positive, got %d", c.maxPending)
	}
	if c.maxSubscribers < 0 {
		bad("--max-subscribers must not be negative, got %d", c.maxSubscribers)
	}
	if c.maxTopics <= 0 {
		bad("--max-topics must be positive, got %d", c.maxTopics)
	}
	if err := c.tls.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.drain.validate(c.shutdownTimeout); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// checkLibraryConfigs runs the validation of broker.New and hub.New on a
// throwaway in-memory broker, so that their refusals (a CORS origin of
// "*", say) are configuration errors reported before anything is opened.
func checkLibraryConfigs(bcfg broker.Config, hcfg hub.Config) error {
	st := memstore.New(memstore.Config{})
	defer st.Close()
	bcfg.NoPark = true
	bcfg.IOUring = false
	bcfg.Logger = slog.New(slog.DiscardHandler)
	bcfg.OnSubscription = nil
	b, err := broker.New(st, bcfg)
	if err != nil {
		return err
	}
	defer func() { _ = b.Shutdown(context.Background()) }()
	hcfg.Logger = bcfg.Logger
	h, err := hub.New(b, hcfg)
	if err != nil {
		return err
	}
	return h.Close()
}
