package redisstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/herald-sse/herald/internal/seqwait"
	"github.com/herald-sse/herald/store"
)

// Defaults for the zero fields of Config.
const (
	// DefaultPrefix is the key prefix when Config.Prefix is empty.
	DefaultPrefix = "herald"
	// DefaultMaxLen is the number of updates kept when Config.MaxLen is 0.
	DefaultMaxLen = 100_000
	// DefaultBlockTime is how long one XREAD of the follower blocks when
	// Config.BlockTime is 0.
	DefaultBlockTime = 5 * time.Second
)

// trimBudget is the most entries one Append trims.
const trimBudget = 1000

// closeTimeout bounds the Redis calls made by Close.
const closeTimeout = 2 * time.Second

// Config configures a Store. The zero value is valid: every zero field means
// the documented default.
type Config struct {
	// Prefix starts every key of the log, inside a Redis Cluster hash tag:
	// "{Prefix}:log" and so on. Nodes that share a log use the same
	// Prefix; different logs on one Redis use different ones. Empty means
	// DefaultPrefix ("herald"). It must not contain '{' or '}'.
	Prefix string
	// MaxLen is the number of newest updates kept; appending beyond it
	// trims the oldest, exactly. Zero means DefaultMaxLen (100,000).
	// Negative is invalid.
	MaxLen int
	// MaxAge trims the oldest updates while their Time is older than
	// MaxAge by the Redis server clock (stopping at the first younger
	// one), checked when updates are appended. The newest update is always
	// kept. Zero means no age limit. Negative is invalid.
	MaxAge time.Duration
	// BlockTime is how long one XREAD BLOCK of the follower that wakes
	// Wait lasts before it is issued again: shorter notices a dead
	// connection sooner, at the cost of a command per BlockTime on an idle
	// log. Zero means DefaultBlockTime (5s). It must be 0 or at least a
	// millisecond.
	BlockTime time.Duration
	// Logger receives the follower's errors and recoveries. Nil discards
	// them.
	Logger *slog.Logger
}

// Store is a log on Redis Streams. It is safe for concurrent use, also by
// several processes that share the Redis keys. Create it with [New]; the
// caller closes it with [Store.Close], then closes the Redis client.
//
// Updates returned by Read are fresh copies.
type Store struct {
	rdb  redis.UniversalClient
	cfg  Config
	log  *slog.Logger
	keys []string // seq, log, ids, trimmed: the keys of appendScript
	// Individual keys.
	logKey, idsKey, trimmedKey, wakeKey string
	// budget is the most entries one Append trims (trimBudget but in
	// tests).
	budget int

	closed atomic.Bool
	cancel context.CancelFunc // stops the follower
	wg     sync.WaitGroup     // the follower

	// wait holds the highest Seq known to be in the log, advanced by
	// Append and the follower, and wakes every Wait.
	wait seqwait.Waiter
}

var _ store.Store = (*Store)(nil)

// New returns a store on the log under cfg.Prefix, creating it on the first
// Append. It does not talk to Redis, so it succeeds while Redis is down;
// the caller may Ping rdb first. It starts the goroutine that follows the
// log, which Close stops. New returns an error for a nil rdb or an invalid
// cfg.
func New(rdb redis.UniversalClient, cfg Config) (*Store, error) {
	switch {
	case rdb == nil:
		return nil, errors.New("redisstore: new: nil redis client")
	case cfg.MaxLen < 0 || cfg.MaxAge < 0 || cfg.BlockTime < 0:
		return nil, fmt.Errorf("redisstore: new: negative field in config %+v", cfg)
	case cfg.BlockTime > 0 && cfg.BlockTime < time.Millisecond:
		return nil, fmt.Errorf("redisstore: new: block time %v below 1ms", cfg.BlockTime)
	case strings.ContainsAny(cfg.Prefix, "{}"):
		return nil, fmt.Errorf("redisstore: new: prefix %q contains '{' or '}'", cfg.Prefix)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.MaxLen == 0 {
		cfg.MaxLen = DefaultMaxLen
	}
	if cfg.BlockTime == 0 {
		cfg.BlockTime = DefaultBlockTime
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := "{" + cfg.Prefix + "}:"
	s := &Store{
		rdb:        rdb,
		cfg:        cfg,
		log:        log,
		keys:       []string{p + "seq", p + "log", p + "ids", p + "trimmed"},
		logKey:     p + "log",
		idsKey:     p + "ids",
		trimmedKey: p + "trimmed",
		wakeKey:    p + "wake:" + uuid.NewString(),
		budget:     trimBudget,
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Go(func() { s.follow(ctx) })
	return s, nil
}

// Append stores u and returns it with Seq, ID and Time set. It copies
// u.Topics, so the caller may reuse the slice.
func (s *Store) Append(ctx context.Context, u store.Update) (store.Update, error) {
	if err := store.Validate(u); err != nil {
		return store.Update{}, fmt.Errorf("redisstore: append: %w", err)
	}
	if s.closed.Load() {
		return store.Update{}, fmt.Errorf("redisstore: append: %w", store.ErrClosed)
	}
	explicit := u.ID != ""
	if !explicit {
		u.ID = store.NewID()
	}
	return s.append(ctx, u, explicit)
}

// append runs appendScript for u, whose ID is set; explicit tells whether
// the caller chose it.
func (s *Store) append(ctx context.Context, u store.Update, explicit bool) (store.Update, error) {
	topics, err := encodeTopics(u.Topics)
	if err != nil {
		return store.Update{}, fmt.Errorf("redisstore: append: %w", err)
	}
	var t string
	if !u.Time.IsZero() {
		t = encodeTime(u.Time)
	}
	private := "0"
	if u.Private {
		private = "1"
	}
	args := []any{u.ID, topics, u.Type, u.Data, strconv.FormatInt(int64(u.Retry), 10), private, t,
		s.cfg.MaxLen, strconv.FormatFloat(s.cfg.MaxAge.Seconds(), 'f', -1, 64), s.budget, "1"}
	if explicit {
		args[10] = "0"
	}
	for {
		res, err := appendScript.Run(ctx, s.rdb, s.keys, args...).Result()
		if err != nil {
			return store.Update{}, fmt.Errorf("redisstore: append: %w", err)
		}
		if n, ok := res.(int64); ok && n == 0 {
			if explicit {
				return store.Update{}, fmt.Errorf("redisstore: append %q: %w", u.ID, store.ErrDuplicateID)
			}
			// The generated id is in the index without its entry, which
			// only a hand edit of the keys does: draw another.
			u.ID = store.NewID()
			args[0] = u.ID
			continue
		}
		r, ok := res.([]any)
		if !ok || len(r) != 2 {
			return store.Update{}, fmt.Errorf("redisstore: append: unexpected script reply %v", res)
		}
		seq, ok1 := r[0].(int64)
		ts, ok2 := r[1].(string)
		if !ok1 || !ok2 || seq <= 0 {
			return store.Update{}, fmt.Errorf("redisstore: append: unexpected script reply %v", res)
		}
		if u.Time, err = parseTime(ts); err != nil {
			return store.Update{}, fmt.Errorf("redisstore: append: %w", err)
		}
		u.Seq = uint64(seq)
		u.Topics = slices.Clone(u.Topics)
		s.advance(u.Seq)
		return u, nil
	}
}

// Lookup returns the Seq of the retained update with the given id, or
// store.ErrNotFound. It is one HGET.
func (s *Store) Lookup(ctx context.Context, id string) (uint64, error) {
	if s.closed.Load() {
		return 0, fmt.Errorf("redisstore: lookup: %w", store.ErrClosed)
	}
	v, err := s.rdb.HGet(ctx, s.idsKey, id).Result()
	if errors.Is(err, redis.Nil) {
		return 0, fmt.Errorf("redisstore: lookup %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("redisstore: lookup %q: %w", id, err)
	}
	seq, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("redisstore: lookup %q: %w: seq %q", id, errCorrupt, v)
	}
	return seq, nil
}

// Read returns up to limit updates with Seq > after, oldest first, or
// store.ErrCursorGone when updates after `after` were trimmed. A limit of
// zero or less returns no updates.
func (s *Store) Read(ctx context.Context, after uint64, limit int) ([]store.Update, error) {
	if s.closed.Load() {
		return nil, fmt.Errorf("redisstore: read: %w", store.ErrClosed)
	}
	if limit <= 0 || after >= 1<<63-1 { // INCR never goes past MaxInt64
		return nil, nil
	}
	// XRANGE first, then the mark: see the package doc.
	pipe := s.rdb.Pipeline()
	rng := pipe.Do(ctx, "xrange", s.logKey, streamID(after+1), "+", "count", limit)
	mark := pipe.Get(ctx, s.trimmedKey)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("redisstore: read after %d: %w", after, err)
	}
	if after != 0 {
		switch v, err := mark.Result(); {
		case errors.Is(err, redis.Nil):
		case err != nil:
			return nil, fmt.Errorf("redisstore: read after %d: %w", after, err)
		default:
			trimmed, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("redisstore: read after %d: %w: trimmed mark %q", after, errCorrupt, v)
			}
			if after < trimmed {
				return nil, fmt.Errorf("redisstore: read after %d: %w", after, store.ErrCursorGone)
			}
		}
	}
	entries, err := rng.Slice()
	if err != nil {
		return nil, fmt.Errorf("redisstore: read after %d: %w", after, err)
	}
	if len(entries) == 0 {
		return nil, nil
	}
	out := make([]store.Update, len(entries))
	for i, e := range entries {
		if out[i], err = decodeEntry(e); err != nil {
			return nil, fmt.Errorf("redisstore: read after %d: %w", after, err)
		}
	}
	return out, nil
}

// Wait blocks until an update with Seq > after is in the log, ctx is done
// or the store is closed. It does not call Redis: the store's follower
// wakes it.
func (s *Store) Wait(ctx context.Context, after uint64) error {
	err := s.wait.Wait(ctx, after)
	if errors.Is(err, store.ErrClosed) {
		return fmt.Errorf("redisstore: wait: %w", err)
	}
	return err
}

// Last returns the Seq and ID of the newest update, or 0 and "" when the
// log is empty.
func (s *Store) Last(ctx context.Context) (uint64, string, error) {
	if s.closed.Load() {
		return 0, "", fmt.Errorf("redisstore: last: %w", store.ErrClosed)
	}
	seq, id, err := s.newest(ctx)
	if err != nil {
		return 0, "", fmt.Errorf("redisstore: last: %w", err)
	}
	return seq, id, nil
}

// newest returns the Seq and ID of the newest entry of the stream.
func (s *Store) newest(ctx context.Context) (uint64, string, error) {
	msgs, err := s.rdb.XRevRangeN(ctx, s.logKey, "+", "-", 1).Result()
	if err != nil || len(msgs) == 0 {
		return 0, "", err
	}
	seq, err := parseStreamID(msgs[0].ID)
	if err != nil {
		return 0, "", err
	}
	id, _ := msgs[0].Values["id"].(string)
	return seq, id, nil
}

// Close stops the follower, wakes every Wait with store.ErrClosed and makes
// later calls return store.ErrClosed. It does not close the Redis client,
// which the caller closes afterwards. Close is idempotent and returns nil.
// It takes a round trip to Redis; if Redis does not answer, at most the
// client's timeouts (for the follower's blocked XREAD: Config.BlockTime
// plus 10s in go-redis).
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	s.wait.Close()

	s.cancel()
	// End the follower's blocked XREAD now rather than after BlockTime.
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	pipe := s.rdb.Pipeline()
	pipe.XAdd(ctx, &redis.XAddArgs{Stream: s.wakeKey, Values: []any{"closed", "1"}})
	pipe.PExpire(ctx, s.wakeKey, time.Minute)
	_, werr := pipe.Exec(ctx)
	s.wg.Wait()
	if werr == nil {
		werr = s.rdb.Del(ctx, s.wakeKey).Err()
	}
	if werr != nil {
		s.log.Debug("redisstore: close: wake follower", "key", s.wakeKey, "err", werr)
	}
	return nil
}

// advance records that the log holds seq and wakes the waiters if that is
// news.
func (s *Store) advance(seq uint64) { s.wait.Advance(seq) }

// follow tails the log until ctx is done: it blocks in XREAD for an entry
// newer than the newest it knows, then asks for the newest entry (one
// round trip however many arrived) and wakes the waiters.
func (s *Store) follow(ctx context.Context) {
	const minBackoff, maxBackoff = 50 * time.Millisecond, 2 * time.Second
	backoff := minBackoff
	failing := false
	fail := func(op string, err error) bool {
		if ctx.Err() != nil {
			return false
		}
		if !failing {
			s.log.Warn("redisstore: following the log", "op", op, "key", s.logKey, "err", err)
			failing = true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
		return true
	}
	synced := false // s.last reflects the stream as of the last XREAD
	for ctx.Err() == nil {
		if !synced {
			seq, _, err := s.newest(ctx)
			if err != nil {
				if fail("xrevrange", err) {
					continue
				}
				return
			}
			s.advance(seq)
			synced = true
		}
		cursor := s.wait.Last()
		res, err := s.rdb.XRead(ctx, &redis.XReadArgs{
			Streams: []string{s.logKey, s.wakeKey, streamID(cursor), "0-0"},
			Count:   1,
			Block:   s.cfg.BlockTime,
		}).Result()
		switch {
		case errors.Is(err, redis.Nil): // timed out
		case err != nil:
			if !fail("xread", err) {
				return
			}
		default:
			for _, st := range res {
				if st.Stream == s.logKey && len(st.Messages) > 0 {
					synced = false
				}
			}
		}
		if err == nil || errors.Is(err, redis.Nil) {
			if failing {
				s.log.Info("redisstore: following the log again", "key", s.logKey)
				failing = false
			}
			backoff = minBackoff
		}
	}
}
