package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
	if c.historyBytes <= 0 {
		return nil, nil, &exitError{2, fmt.Errorf("--history-bytes must be positive, got %d", c.historyBytes)}
	}
	if c.storeTimeout <= 0 {
		return nil, nil, &exitError{2, fmt.Errorf("--store-timeout must be positive, got %v", c.storeTimeout)}
	}
	st, closeStore, err := openEngine(ctx, c, logger)
	if err != nil {
		return nil, nil, err
	}
	// An engine that is down does not stop the hub: the broker follows the
	// log once it answers, and /readyz says not ready until then.
	if c.storeKind == "memory" || c.storeKind == "bolt" {
		// In-process stores cannot stall on a network: a timer per call
		// (context.WithTimeout) was 6.5% of a publish flood's CPU for
		// nothing. A bolt commit waits for its fsync, which no context
		// could interrupt anyway.
		return st, closeStore, nil
	}
	return timeoutStore{st, c.storeTimeout}, closeStore, nil
}

// openEngine opens the store of --store.
func openEngine(ctx context.Context, c serveConfig, logger *slog.Logger) (store.Store, func(), error) {
	maxBytes := int64(c.historyBytes)
	switch c.storeKind {
	case "memory":
		st := memstore.New(memstore.Config{MaxLen: c.history, MaxBytes: maxBytes, MaxAge: c.historyAge})
		return st, func() { st.Close() }, nil
	case "bolt":
		if err := os.MkdirAll(c.dataDir, 0o700); err != nil {
			return nil, nil, fmt.Errorf("data dir: %w", err)
		}
		path := filepath.Join(c.dataDir, "history.db")
		st, err := boltstore.Open(path, boltstore.Config{MaxLen: c.history, MaxBytes: maxBytes, MaxAge: c.historyAge, Logger: logger})
		if err != nil {
			return nil, nil, err
		}
		return st, func() { st.Close() }, nil
	case "redis":
		opt, err := redis.ParseURL(c.redisURL)
		if err != nil {
			return nil, nil, &exitError{2, fmt.Errorf("--redis-url %q: %w", c.redisURL, err)}
		}
		// The store timeout bounds every command (go-redis then sets the
		// socket deadlines from the context), and a command whose reply
		// was lost is not sent again behind the store's back: Append
		// reports store.ErrOutcomeUnknown and the publisher retries with
		// the same id. The client connects lazily, so the hub starts (not
		// ready) while Redis is down.
		opt.ContextTimeoutEnabled = true
		opt.MaxRetries = -1
		rdb := redis.NewClient(opt)
		pctx, cancel := context.WithTimeout(ctx, c.storeTimeout)
		defer cancel()
		if err := rdb.Ping(pctx).Err(); err != nil {
			logger.Warn("herald: redis not reachable yet: starting not ready", "url", c.redisURL, "err", err)
		}
		st, err := redisstore.New(rdb, redisstore.Config{Prefix: c.redisPrefix, MaxLen: c.history, MaxBytes: maxBytes, MaxAge: c.historyAge, Logger: logger})
		if err != nil {
			rdb.Close()
			return nil, nil, err
		}
		return st, func() { st.Close(); rdb.Close() }, nil
	case "nats":
		// RetryOnFailedConnect: the hub starts (not ready) while NATS is
		// down. No reconnect buffer: a publish while disconnected fails at
		// once (not stored) instead of being sent later, after its
		// publisher was told it timed out.
		nc, err := nats.Connect(c.natsURL, append(natsLogOptions(logger), nats.Name("herald"), nats.MaxReconnects(-1),
			nats.RetryOnFailedConnect(true), nats.ReconnectBufSize(-1))...)
		if err != nil {
			return nil, nil, &exitError{2, fmt.Errorf("--nats-url %s: %w", c.natsURL, err)}
		}
		nctx, cancel := context.WithTimeout(ctx, c.storeTimeout)
		defer cancel()
		st, err := natsstore.New(nctx, nc, natsstore.Config{
			Stream:   c.natsStream,
			Subject:  c.natsSubject,
			MaxLen:   c.history,
			MaxBytes: maxBytes,
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

// timeoutStore bounds every call of a store but Wait by a time limit
// (--store-timeout), so that a stalled engine never holds a publish, a
// replay or the broker's tail longer. Wait is bounded by its caller.
type timeoutStore struct {
	store.Store
	d time.Duration
}

func (s timeoutStore) Append(ctx context.Context, u store.Update) (store.Update, error) {
	ctx, cancel := context.WithTimeout(ctx, s.d)
	defer cancel()
	return s.Store.Append(ctx, u)
}

// AppendBatch bounds a batch by the time limit as one call when the store
// appends batches at once, and each update by it when the batch falls back
// to one Append each.
func (s timeoutStore) AppendBatch(ctx context.Context, ups []store.Update, stop bool) ([]store.Update, []error) {
	if _, ok := s.Store.(store.BatchAppender); !ok {
		return store.AppendBatch(ctx, appendEach{s}, ups, stop)
	}
	ctx, cancel := context.WithTimeout(ctx, s.d)
	defer cancel()
	return store.AppendBatch(ctx, s.Store, ups, stop)
}

// appendEach hides a store's AppendBatch, so that store.AppendBatch calls
// its Append once per update.
type appendEach struct{ store.Store }

func (s timeoutStore) Lookup(ctx context.Context, id string) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.d)
	defer cancel()
	return s.Store.Lookup(ctx, id)
}

func (s timeoutStore) Read(ctx context.Context, after uint64, limit int) ([]store.Update, error) {
	ctx, cancel := context.WithTimeout(ctx, s.d)
	defer cancel()
	return s.Store.Read(ctx, after, limit)
}

func (s timeoutStore) Last(ctx context.Context) (uint64, string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.d)
	defer cancel()
	return s.Store.Last(ctx)
}

// defaultHistoryBytes is the default of --history-bytes: 64 MiB.
const defaultHistoryBytes = 64 << 20

// byteSize is a flag of a size in bytes: a number with an optional unit,
// B, KB, MB, GB (powers of 1000) or KiB, MiB, GiB (powers of 1024).
type byteSize int64

func (b *byteSize) String() string {
	n := int64(*b)
	for _, u := range []struct {
		name string
		size int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.size && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}

func (b *byteSize) Set(v string) error {
	num := strings.TrimRight(v, "BKMGTikmgt ")
	unit := strings.TrimSpace(v[len(num):])
	mult, ok := map[string]int64{"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
		"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}[unit]
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if !ok || err != nil || n < 0 || n > math.MaxInt64/mult {
		return fmt.Errorf("want a size such as 64MiB, 500MB or 1048576, got %q", v)
	}
	*b = byteSize(n * mult)
	return nil
}
