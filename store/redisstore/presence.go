package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/herald-sse/herald/store"
)

// DefaultPresenceTTL is how long a node's presence entries outlive its last
// renewal when PresenceConfig.TTL is zero.
const DefaultPresenceTTL = 30 * time.Second

// presenceBudget is the most entries one script call removes, so that a
// crashed node with many subscribers never blocks Redis for long.
const presenceBudget = 1000

// PresenceConfig configures a [Presence]. The zero value is valid.
type PresenceConfig struct {
	// Prefix is the key prefix, as in [Config.Prefix]: nodes that share a
	// history share presence under the same Prefix. Empty means
	// DefaultPrefix.
	Prefix string
	// TTL is how long this node's entries outlive its last Renew. Zero
	// means DefaultPresenceTTL. Every node sharing the registry should use
	// the same TTL.
	TTL time.Duration
	// Node names this node; it must be unique among the nodes sharing the
	// registry. Empty means a random UUID.
	Node string
}

// Presence is a [store.Presence] registry shared by the nodes of a
// cluster through Redis. Under the hash tag "{Prefix}":
//
//   - "{Prefix}:presence:nodes" is a sorted set of node names scored by the
//     time, in Redis's clock (ms), when their entries expire;
//   - "{Prefix}:presence:node:<node>" is a hash of that node's entries;
//   - changes are published on the pub/sub channel "{Prefix}:presence" as
//     "+" or "-", a newline, the key, a newline and the data.
//
// Each change is one Lua script (write and PUBLISH together), so an
// expired node's entries are removed and announced by exactly one node.
// Pub/sub delivers at most once: a watcher that is reconnecting misses
// changes. Safe for concurrent use; it does not own rdb.
type Presence struct {
	rdb      redis.UniversalClient
	ttl      time.Duration
	node     string
	nodes    string // sorted set key
	hash     string // this node's hash key
	hashPfx  string // prefix of every node's hash key
	channel  string
	mu       sync.Mutex
	joined   bool // this node has been in the sorted set
	closed   bool
	watchers map[*presenceWatcher]struct{}
}

var _ store.Presence = (*Presence)(nil)

// NewPresence returns a registry on rdb. It does not talk to Redis.
func NewPresence(rdb redis.UniversalClient, cfg PresenceConfig) (*Presence, error) {
	switch {
	case rdb == nil:
		return nil, errors.New("redisstore: presence: nil redis client")
	case cfg.TTL < 0 || (cfg.TTL > 0 && cfg.TTL < 10*time.Millisecond):
		return nil, fmt.Errorf("redisstore: presence: TTL %v below 10ms", cfg.TTL)
	case strings.ContainsAny(cfg.Prefix, "{}"):
		return nil, fmt.Errorf("redisstore: presence: prefix %q contains '{' or '}'", cfg.Prefix)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultPresenceTTL
	}
	if cfg.Node == "" {
		cfg.Node = uuid.NewString()
	}
	p := "{" + cfg.Prefix + "}:presence"
	return &Presence{
		rdb:      rdb,
		ttl:      cfg.TTL,
		node:     cfg.Node,
		nodes:    p + ":nodes",
		hash:     p + ":node:" + cfg.Node,
		hashPfx:  p + ":node:",
		channel:  p,
		watchers: make(map[*presenceWatcher]struct{}),
	}, nil
}

// nowMS is Redis's clock in milliseconds: one clock for every node.
const nowMS = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

// KEYS: nodes, hash. ARGV: node, ttl ms, key, data, channel, joined.
var presenceAdd = redis.NewScript(nowMS + `
if ARGV[6] == '0' then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
end
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
redis.call('PEXPIRE', KEYS[2], 10 * tonumber(ARGV[2]))
redis.call('PUBLISH', ARGV[5], '+\n' .. ARGV[3] .. '\n' .. ARGV[4])
return 1
`)

// KEYS: hash. ARGV: key, channel.
var presenceRemove = redis.NewScript(`
local d = redis.call('HGET', KEYS[1], ARGV[1])
if d then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('PUBLISH', ARGV[2], '-\n' .. ARGV[1] .. '\n' .. d)
end
return 1
`)

// drain removes up to budget entries of hash h, announcing each, and
// returns how many it removed and whether h is now empty.
const presenceDrain = `
local function drain(h, ch, budget)
  local n = redis.call('HLEN', h)
  if n == 0 then return 0, true end
  local kv
  if n <= budget then
    kv = redis.call('HGETALL', h)
  else
    kv = redis.call('HSCAN', h, '0', 'COUNT', budget)[2]
  end
  local done = 0
  for i = 1, #kv, 2 do
    redis.call('HDEL', h, kv[i])
    redis.call('PUBLISH', ch, '-\n' .. kv[i] .. '\n' .. kv[i + 1])
    done = done + 1
  end
  return done, redis.call('HLEN', h) == 0 or done == 0
end
`

// Renew: extend this node's expiry (re-joining after expiry, announcing
// the end of what is left of its old entries, which no node announced
// yet), then remove the entries of one expired node, within the budget.
// KEYS: nodes, hash. ARGV: node, ttl ms, channel, joined, hash prefix,
// budget. Returns {lost, more}.
var presenceRenew = redis.NewScript(nowMS + presenceDrain + `
local ttl = tonumber(ARGV[2])
local budget = tonumber(ARGV[6])
local lost = 0
if redis.call('ZSCORE', KEYS[1], ARGV[1]) == false then
  if ARGV[4] == '1' then
    lost = 1
    repeat
      local n, empty = drain(KEYS[2], ARGV[3], budget)
    until empty
  end
end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('PEXPIRE', KEYS[2], 10 * ttl)
end
local more = 0
while budget > 0 do
  local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 1)
  if #dead == 0 then break end
  local n, empty = drain(ARGV[5] .. dead[1], ARGV[3], budget)
  budget = budget - n
  if empty then
    redis.call('ZREM', KEYS[1], dead[1])
  else
    more = 1
    break
  end
end
return {lost, more}
`)

// KEYS: nodes, hash. ARGV: node, channel, budget. Returns 1 when done.
var presenceLeave = redis.NewScript(presenceDrain + `
local n, empty = drain(KEYS[2], ARGV[2], tonumber(ARGV[3]))
if empty then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 1
end
return 0
`)

// KEYS: nodes. ARGV: hash prefix. Returns the live nodes' hashes, flat.
var presenceList = redis.NewScript(nowMS + `
local out = {}
for _, node in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')) do
  local kv = redis.call('HGETALL', ARGV[1] .. node)
  for i = 1, #kv do out[#out + 1] = kv[i] end
end
return out
`)

func (p *Presence) state() (joined bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false, store.ErrClosed
	}
	return p.joined, nil
}

func (p *Presence) setJoined() {
	p.mu.Lock()
	p.joined = true
	p.mu.Unlock()
}

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func (p *Presence) ttlMS() string { return strconv.FormatInt(p.ttl.Milliseconds(), 10) }

// Add implements [store.Presence].
func (p *Presence) Add(ctx context.Context, key string, data []byte) error {
	if err := store.ValidatePresenceKey(key); err != nil {
		return fmt.Errorf("redisstore: presence add: %w", err)
	}
	joined, err := p.state()
	if err != nil {
		return err
	}
	// After expiry (joined, but no longer in the sorted set) the entry
	// stays invisible until Renew reports ErrPresenceLost and the caller
	// adds everything again.
	err = presenceAdd.Run(ctx, p.rdb, []string{p.nodes, p.hash}, p.node, p.ttlMS(), key, data, p.channel, flag(joined)).Err()
	if err != nil {
		return fmt.Errorf("redisstore: presence add: %w", err)
	}
	p.setJoined()
	return nil
}

// Remove implements [store.Presence].
func (p *Presence) Remove(ctx context.Context, key string) error {
	if _, err := p.state(); err != nil {
		return err
	}
	if err := presenceRemove.Run(ctx, p.rdb, []string{p.hash}, key, p.channel).Err(); err != nil {
		return fmt.Errorf("redisstore: presence remove: %w", err)
	}
	return nil
}

// List implements [store.Presence].
func (p *Presence) List(ctx context.Context) ([]store.PresenceEntry, error) {
	if _, err := p.state(); err != nil {
		return nil, err
	}
	kv, err := presenceList.Run(ctx, p.rdb, []string{p.nodes}, p.hashPfx).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("redisstore: presence list: %w", err)
	}
	es := make([]store.PresenceEntry, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		es = append(es, store.PresenceEntry{Key: kv[i], Data: []byte(kv[i+1])})
	}
	return es, nil
}

// Renew implements [store.Presence]. It removes at most 100 batches of
// expired entries per call; the next call goes on.
func (p *Presence) Renew(ctx context.Context) error {
	joined, err := p.state()
	if err != nil {
		return err
	}
	lost := false
	for range 100 {
		r, err := presenceRenew.Run(ctx, p.rdb, []string{p.nodes, p.hash}, p.node, p.ttlMS(), p.channel, flag(joined), p.hashPfx, presenceBudget).Int64Slice()
		if err != nil {
			return fmt.Errorf("redisstore: presence renew: %w", err)
		}
		p.setJoined()
		joined = true
		lost = lost || r[0] == 1
		if r[1] == 0 {
			break
		}
	}
	if lost {
		return store.ErrPresenceLost
	}
	return nil
}

// TTL implements [store.Presence].
func (p *Presence) TTL() time.Duration { return p.ttl }

// Leave implements [store.Presence].
func (p *Presence) Leave(ctx context.Context) error {
	if _, err := p.state(); err != nil {
		return err
	}
	for {
		done, err := presenceLeave.Run(ctx, p.rdb, []string{p.nodes, p.hash}, p.node, p.channel, presenceBudget).Int()
		if err != nil {
			return fmt.Errorf("redisstore: presence leave: %w", err)
		}
		if done == 1 {
			break
		}
	}
	p.mu.Lock()
	p.joined = false
	p.mu.Unlock()
	return nil
}

// Watch implements [store.Presence]: a pub/sub subscription of its own
// (one Redis connection per watcher).
func (p *Presence) Watch(ctx context.Context) (store.PresenceWatcher, error) {
	if _, err := p.state(); err != nil {
		return nil, err
	}
	ps := p.rdb.Subscribe(ctx, p.channel)
	if _, err := ps.Receive(ctx); err != nil {
		ps.Close()
		return nil, fmt.Errorf("redisstore: presence watch: %w", err)
	}
	w := &presenceWatcher{p: p, ps: ps, ch: ps.Channel(redis.WithChannelSize(4096)), done: make(chan struct{})}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		ps.Close()
		return nil, store.ErrClosed
	}
	p.watchers[w] = struct{}{}
	return w, nil
}

// Close implements [store.Presence]: it closes every watcher. It does not
// close the Redis client.
func (p *Presence) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	ws := p.watchers
	p.watchers = nil
	p.mu.Unlock()
	for w := range ws {
		w.close()
	}
	return nil
}

type presenceWatcher struct {
	p    *Presence
	ps   *redis.PubSub
	ch   <-chan *redis.Message
	once sync.Once
	done chan struct{}
}

// Next implements [store.PresenceWatcher].
func (w *presenceWatcher) Next(ctx context.Context) (store.PresenceChange, error) {
	for {
		select {
		case <-ctx.Done():
			return store.PresenceChange{}, ctx.Err()
		case <-w.done:
			return store.PresenceChange{}, store.ErrClosed
		case m, ok := <-w.ch:
			if !ok {
				return store.PresenceChange{}, store.ErrClosed
			}
			if c, ok := parseChange(m.Payload); ok {
				return c, nil
			}
		}
	}
}

// parseChange decodes a message of the presence channel.
func parseChange(s string) (store.PresenceChange, bool) {
	op, rest, ok := strings.Cut(s, "\n")
	if !ok || (op != "+" && op != "-") {
		return store.PresenceChange{}, false
	}
	key, data, ok := strings.Cut(rest, "\n")
	if !ok {
		return store.PresenceChange{}, false
	}
	return store.PresenceChange{PresenceEntry: store.PresenceEntry{Key: key, Data: []byte(data)}, Active: op == "+"}, true
}

// Close implements [store.PresenceWatcher].
func (w *presenceWatcher) Close() error {
	w.p.mu.Lock()
	delete(w.p.watchers, w)
	w.p.mu.Unlock()
	w.close()
	return nil
}

func (w *presenceWatcher) close() {
	w.once.Do(func() {
		close(w.done)
		w.ps.Close()
	})
}
