package main

import (
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"

	"github.com/herald-sse/herald/store"
	"github.com/herald-sse/herald/store/natsstore"
	"github.com/herald-sse/herald/store/redisstore"
)

// openPresence opens the registry of active subscriptions shared by the
// hubs of --store redis or nats, on a connection of its own (its pub/sub
// subscription must not queue behind the log's commands). Other stores
// get nil: the hub keeps an in-process registry. The returned function
// closes the registry and its connection; call it after the hub's Close.
func openPresence(c serveConfig) (store.Presence, func(), error) {
	if !c.subscriptions {
		return nil, func() {}, nil
	}
	if c.presenceTTL < 0 || (c.presenceTTL > 0 && c.presenceTTL < 100*time.Millisecond) {
		return nil, nil, &exitError{2, fmt.Errorf("--presence-ttl must be at least 100ms, got %v", c.presenceTTL)}
	}
	switch c.storeKind {
	case "redis":
		opt, err := redis.ParseURL(c.redisURL)
		if err != nil {
			return nil, nil, &exitError{2, fmt.Errorf("--redis-url %q: %w", c.redisURL, err)}
		}
		rdb := redis.NewClient(opt)
		p, err := redisstore.NewPresence(rdb, redisstore.PresenceConfig{Prefix: c.redisPrefix, TTL: c.presenceTTL})
		if err != nil {
			rdb.Close()
			return nil, nil, err
		}
		return p, func() { p.Close(); rdb.Close() }, nil
	case "nats":
		nc, err := nats.Connect(c.natsURL, nats.Name("herald presence"), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true))
		if err != nil {
			return nil, nil, fmt.Errorf("--nats-url %s: %w", c.natsURL, err)
		}
		p, err := natsstore.NewPresence(nc, natsstore.PresenceConfig{
			Bucket:   c.natsStream + "_PRESENCE",
			Subject:  c.natsSubject + "_presence", // outside the stream's subjects
			TTL:      c.presenceTTL,
			Replicas: c.natsReplicas,
		})
		if err != nil {
			nc.Close()
			return nil, nil, err
		}
		return p, func() { p.Close(); nc.Close() }, nil
	}
	return nil, func() {}, nil
}
