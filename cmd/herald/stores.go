package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"

	"github.com/herald-sse/herald/store"
	"github.com/herald-sse/herald/store/boltstore"
	"github.com/herald-sse/herald/store/memstore"
	"github.com/herald-sse/herald/store/natsstore"
	"github.com/herald-sse/herald/store/redisstore"
)

// openStore opens the history store chosen by --store. The returned
// function closes the store and then any client it uses.
func openStore(ctx context.Context, c serveConfig, logger *slog.Logger) (store.Store, func(), error) {
	if c.history <= 0 {
		return nil, nil, &exitError{2, fmt.Errorf("--history must be positive, got %d", c.history)}
	}
	if c.historyAge < 0 {
		return nil, nil, &exitError{2, fmt.Errorf("--history-age must not be negative, got %v", c.historyAge)}
	}
	switch c.storeKind {
	case "memory":
		st := memstore.New(memstore.Config{MaxLen: c.history, MaxAge: c.historyAge})
		return st, func() { st.Close() }, nil
	case "bolt":
		if err := os.MkdirAll(c.dataDir, 0o700); err != nil {
			return nil, nil, fmt.Errorf("data dir: %w", err)
		}
		path := filepath.Join(c.dataDir, "history.db")
		st, err := boltstore.Open(path, boltstore.Config{MaxLen: c.history, MaxAge: c.historyAge, Logger: logger})
		if err != nil {
			return nil, nil, err
		}
		return st, func() { st.Close() }, nil
	case "redis":
		opt, err := redis.ParseURL(c.redisURL)
		if err != nil {
			return nil, nil, &exitError{2, fmt.Errorf("--redis-url %q: %w", c.redisURL, err)}
		}
		rdb := redis.NewClient(opt)
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := rdb.Ping(pctx).Err(); err != nil {
			rdb.Close()
			return nil, nil, fmt.Errorf("--redis-url %s: %w", c.redisURL, err)
		}
		st, err := redisstore.New(rdb, redisstore.Config{Prefix: c.redisPrefix, MaxLen: c.history, MaxAge: c.historyAge, Logger: logger})
		if err != nil {
			rdb.Close()
			return nil, nil, err
		}
		return st, func() { st.Close(); rdb.Close() }, nil
	case "nats":
		nc, err := nats.Connect(c.natsURL, append(natsLogOptions(logger), nats.Name("herald"), nats.MaxReconnects(-1))...)
		if err != nil {
			return nil, nil, fmt.Errorf("--nats-url %s: %w", c.natsURL, err)
		}
		st, err := natsstore.New(ctx, nc, natsstore.Config{
			Stream:   c.natsStream,
			Subject:  c.natsSubject,
			MaxLen:   c.history,
			MaxAge:   c.historyAge,
			Replicas: c.natsReplicas,
			Logger:   logger,
		})
		if err != nil {
			nc.Close()
			return nil, nil, err
		}
		return st, func() { st.Close(); nc.Close() }, nil
	}
	return nil, nil, &exitError{2, fmt.Errorf("--store %q: want bolt, memory, redis or nats", c.storeKind)}
}
