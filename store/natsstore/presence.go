package natsstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-sse/herald/store"
)

// Presence defaults, used when the matching PresenceConfig field is zero.
const (
	DefaultPresenceBucket  = "HERALD_PRESENCE"
	DefaultPresenceSubject = "herald.presence"
	DefaultPresenceTTL     = 30 * time.Second
)

// PresenceConfig configures a [Presence]. The zero value is valid.
type PresenceConfig struct {
	// Bucket is the JetStream key-value bucket of the entries, created on
	// first use. Nodes that share presence use the same Bucket. Empty
	// means DefaultPresenceBucket.
	Bucket string
	// Subject is the core NATS subject on which changes are announced.
	// Empty means DefaultPresenceSubject.
	Subject string
	// TTL is how long this node's entries outlive its last Renew. Zero
	// means DefaultPresenceTTL. Every node should use the same TTL.
	// Expiry compares the server's timestamp of a node's last renewal with
	// the local clock: the nodes' clocks must agree to well within the TTL.
	TTL time.Duration
	// Node names this node, unique among the nodes sharing the bucket:
	// letters, digits, '-' and '_'. Empty means a random UUID.
	Node string
	// Replicas is the bucket's replica count. Zero means 1.
	Replicas int
}

// Presence is a [store.Presence] registry shared by the nodes of a
// cluster through a JetStream key-value bucket. Key "a.<node>" is the
// node's liveness, rewritten by each Renew; key "n.<node>.<token(key)>"
// holds one entry (its key, a newline, its data). Changes are announced on
// a core NATS subject as "+" or "-", a newline, the key, a newline and the
// data, at most once.
//
// A node whose liveness is older than the TTL is expired by the first node
// whose Renew deletes its liveness key at the revision it read; every
// entry of a node that is not alive is then deleted at the revision read,
// so exactly one node announces each end. Delete markers older than the
// TTL are purged now and then. Safe for concurrent use; it does not own
// nc.
type Presence struct {
	nc      *nats.Conn
	cfg     PresenceConfig
	subject string

	mu        sync.Mutex
	kv        jetstream.KeyValue // nil until first used
	aliveRev  uint64             // revision of our liveness key; 0: not joined
	lastPurge time.Time
	closed    bool
	watchers  map[*presenceWatcher]struct{}
}

var _ store.Presence = (*Presence)(nil)

// NewPresence returns a registry on nc. It does not talk to the server:
// the bucket is created on first use.
func NewPresence(nc *nats.Conn, cfg PresenceConfig) (*Presence, error) {
	if nc == nil {
		return nil, errors.New("natsstore: presence: nil connection")
	}
	if cfg.TTL < 0 || (cfg.TTL > 0 && cfg.TTL < 10*time.Millisecond) {
		return nil, fmt.Errorf("natsstore: presence: TTL %v below 10ms", cfg.TTL)
	}
	if cfg.Bucket == "" {
		cfg.Bucket = DefaultPresenceBucket
	}
	if cfg.Subject == "" {
		cfg.Subject = DefaultPresenceSubject
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultPresenceTTL
	}
	if cfg.Node == "" {
		cfg.Node = uuid.NewString()
	}
	if strings.Trim(cfg.Node, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != "" {
		return nil, fmt.Errorf("natsstore: presence: node %q: want letters, digits, '-' and '_'", cfg.Node)
	}
	return &Presence{nc: nc, cfg: cfg, subject: cfg.Subject, watchers: make(map[*presenceWatcher]struct{})}, nil
}

// bucket returns the bucket, creating it on first use.
func (p *Presence) bucket(ctx context.Context) (jetstream.KeyValue, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, store.ErrClosed
	}
	if p.kv != nil {
		return p.kv, nil
	}
	js, err := jetstream.New(p.nc)
	if err != nil {
		return nil, err
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      p.cfg.Bucket,
		Description: "herald: active subscriptions of every hub",
		History:     1,
		Replicas:    max(p.cfg.Replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("create bucket %s: %w", p.cfg.Bucket, err)
	}
	p.kv = kv
	return kv, nil
}

func (p *Presence) entryKey(node, key string) string { return "n." + node + "." + idToken(key) }

func (p *Presence) announce(active bool, key string, data []byte) error {
	op := "-\n"
	if active {
		op = "+\n"
	}
	msg := make([]byte, 0, len(op)+len(key)+1+len(data))
	msg = append(append(append(append(msg, op...), key...), '\n'), data...)
	return p.nc.Publish(p.subject, msg)
}

// join writes this node's liveness if it has not yet.
func (p *Presence) join(ctx context.Context, kv jetstream.KeyValue) error {
	p.mu.Lock()
	joined := p.aliveRev != 0
	p.mu.Unlock()
	if joined {
		return nil
	}
	rev, err := kv.Put(ctx, "a."+p.cfg.Node, nil)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.aliveRev = rev
	p.mu.Unlock()
	return nil
}

// Add implements [store.Presence].
func (p *Presence) Add(ctx context.Context, key string, data []byte) error {
	if err := store.ValidatePresenceKey(key); err != nil {
		return fmt.Errorf("natsstore: presence add: %w", err)
	}
	kv, err := p.bucket(ctx)
	if err != nil {
		return fmt.Errorf("natsstore: presence add: %w", err)
	}
	if err := p.join(ctx, kv); err != nil {
		return fmt.Errorf("natsstore: presence add: %w", err)
	}
	v := append(append([]byte(key), '\n'), data...)
	if _, err := kv.Put(ctx, p.entryKey(p.cfg.Node, key), v); err != nil {
		return fmt.Errorf("natsstore: presence add: %w", err)
	}
	if err := p.announce(true, key, data); err != nil {
		return fmt.Errorf("natsstore: presence add: %w", err)
	}
	return nil
}

// Remove implements [store.Presence].
func (p *Presence) Remove(ctx context.Context, key string) error {
	kv, err := p.bucket(ctx)
	if err != nil {
		return fmt.Errorf("natsstore: presence remove: %w", err)
	}
	e, err := kv.Get(ctx, p.entryKey(p.cfg.Node, key))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("natsstore: presence remove: %w", err)
	}
	if err := p.remove(ctx, kv, e); err != nil {
		return fmt.Errorf("natsstore: presence remove: %w", err)
	}
	return nil
}

// remove deletes entry e at its revision and announces its end; an entry
// changed or deleted since it was read is left to whoever did it.
func (p *Presence) remove(ctx context.Context, kv jetstream.KeyValue, e jetstream.KeyValueEntry) error {
	err := kv.Delete(ctx, e.Key(), jetstream.LastRevision(e.Revision()))
	if errors.Is(err, jetstream.ErrKeyExists) { // wrong last revision
		return nil
	}
	if err != nil {
		return err
	}
	key, data, _ := strings.Cut(string(e.Value()), "\n")
	return p.announce(false, key, []byte(data))
}

// scan returns the current (not deleted) entries under the filter.
func scan(ctx context.Context, kv jetstream.KeyValue, filter string) ([]jetstream.KeyValueEntry, error) {
	w, err := kv.Watch(ctx, filter, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, err
	}
	defer w.Stop()
	var es []jetstream.KeyValueEntry
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("watcher stopped")
			}
			if e == nil { // the initial values are done
				return es, nil
			}
			es = append(es, e)
		}
	}
}

// alive returns the nodes whose liveness is within the TTL, and the
// liveness entries of the others.
func (p *Presence) alive(ctx context.Context, kv jetstream.KeyValue) (map[string]bool, []jetstream.KeyValueEntry, error) {
	es, err := scan(ctx, kv, "a.*")
	if err != nil {
		return nil, nil, err
	}
	live := make(map[string]bool, len(es))
	var dead []jetstream.KeyValueEntry
	now := time.Now()
	for _, e := range es {
		if now.Sub(e.Created()) < p.cfg.TTL {
			live[strings.TrimPrefix(e.Key(), "a.")] = true
		} else {
			dead = append(dead, e)
		}
	}
	return live, dead, nil
}

// nodeOf returns the node of entry key "n.<node>.<token>".
func nodeOf(k string) string {
	k = strings.TrimPrefix(k, "n.")
	node, _, _ := strings.Cut(k, ".")
	return node
}

// List implements [store.Presence].
func (p *Presence) List(ctx context.Context) ([]store.PresenceEntry, error) {
	kv, err := p.bucket(ctx)
	if err != nil {
		return nil, fmt.Errorf("natsstore: presence list: %w", err)
	}
	live, _, err := p.alive(ctx, kv)
	if err != nil {
		return nil, fmt.Errorf("natsstore: presence list: %w", err)
	}
	es, err := scan(ctx, kv, "n.>")
	if err != nil {
		return nil, fmt.Errorf("natsstore: presence list: %w", err)
	}
	out := make([]store.PresenceEntry, 0, len(es))
	for _, e := range es {
		if !live[nodeOf(e.Key())] {
			continue
		}
		key, data, _ := strings.Cut(string(e.Value()), "\n")
		out = append(out, store.PresenceEntry{Key: key, Data: []byte(data)})
	}
	return out, nil
}

// Renew implements [store.Presence].
func (p *Presence) Renew(ctx context.Context) error {
	kv, err := p.bucket(ctx)
	if err != nil {
		return fmt.Errorf("natsstore: presence renew: %w", err)
	}
	p.mu.Lock()
	rev := p.aliveRev
	p.mu.Unlock()
	lost := false
	aliveKey := "a." + p.cfg.Node
	if rev != 0 {
		rev, err = kv.Update(ctx, aliveKey, nil, rev)
		switch {
		case errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
			// Another node expired us: announce the end of what is left
			// of our entries, then join again.
			lost = true
			if err := p.removeNode(ctx, kv, p.cfg.Node); err != nil {
				return fmt.Errorf("natsstore: presence renew: %w", err)
			}
			rev = 0
		case err != nil:
			return fmt.Errorf("natsstore: presence renew: %w", err)
		}
	}
	if rev == 0 {
		if rev, err = kv.Put(ctx, aliveKey, nil); err != nil {
			return fmt.Errorf("natsstore: presence renew: %w", err)
		}
	}
	p.mu.Lock()
	p.aliveRev = rev
	purge := time.Since(p.lastPurge) > 10*p.cfg.TTL
	if purge {
		p.lastPurge = time.Now()
	}
	p.mu.Unlock()

	if err := p.reap(ctx, kv, purge); err != nil {
		return fmt.Errorf("natsstore: presence renew: %w", err)
	}
	if purge {
		if err := kv.PurgeDeletes(ctx, jetstream.DeleteMarkersOlderThan(p.cfg.TTL)); err != nil {
			return fmt.Errorf("natsstore: presence renew: purge delete markers: %w", err)
		}
	}
	if lost {
		return store.ErrPresenceLost
	}
	return nil
}

// reap expires the nodes whose liveness is too old and removes the entries
// of every node that is not alive. Entries of nodes without liveness are
// left by a reaper that stopped halfway; unless a node expired now, they
// are looked for only when full is set.
func (p *Presence) reap(ctx context.Context, kv jetstream.KeyValue, full bool) error {
	live, dead, err := p.alive(ctx, kv)
	if err != nil {
		return err
	}
	for _, e := range dead {
		err := kv.Delete(ctx, e.Key(), jetstream.LastRevision(e.Revision()))
		if err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
			return err
		}
	}
	if len(dead) == 0 && !full {
		return nil
	}
	es, err := scan(ctx, kv, "n.>")
	if err != nil {
		return err
	}
	for _, e := range es {
		if node := nodeOf(e.Key()); !live[node] && node != p.cfg.Node {
			if err := p.remove(ctx, kv, e); err != nil {
				return err
			}
		}
	}
	return nil
}

// removeNode removes every entry of node, announcing each.
func (p *Presence) removeNode(ctx context.Context, kv jetstream.KeyValue, node string) error {
	es, err := scan(ctx, kv, "n."+node+".*")
	if err != nil {
		return err
	}
	for _, e := range es {
		if err := p.remove(ctx, kv, e); err != nil {
			return err
		}
	}
	return nil
}

// TTL implements [store.Presence].
func (p *Presence) TTL() time.Duration { return p.cfg.TTL }

// Leave implements [store.Presence].
func (p *Presence) Leave(ctx context.Context) error {
	kv, err := p.bucket(ctx)
	if err != nil {
		return fmt.Errorf("natsstore: presence leave: %w", err)
	}
	if err := p.removeNode(ctx, kv, p.cfg.Node); err != nil {
		return fmt.Errorf("natsstore: presence leave: %w", err)
	}
	if err := kv.Delete(ctx, "a."+p.cfg.Node); err != nil {
		return fmt.Errorf("natsstore: presence leave: %w", err)
	}
	p.mu.Lock()
	p.aliveRev = 0
	p.mu.Unlock()
	return p.nc.Flush()
}

// Watch implements [store.Presence]: a core NATS subscription.
func (p *Presence) Watch(ctx context.Context) (store.PresenceWatcher, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, store.ErrClosed
	}
	p.mu.Unlock()
	ch := make(chan *nats.Msg, 4096)
	sub, err := p.nc.ChanSubscribe(p.subject, ch)
	if err != nil {
		return nil, fmt.Errorf("natsstore: presence watch: %w", err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	if err := p.nc.FlushWithContext(ctx); err != nil { // the server has the interest
		sub.Unsubscribe()
		return nil, fmt.Errorf("natsstore: presence watch: %w", err)
	}
	w := &presenceWatcher{p: p, sub: sub, ch: ch, done: make(chan struct{})}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		sub.Unsubscribe()
		return nil, store.ErrClosed
	}
	p.watchers[w] = struct{}{}
	return w, nil
}

// Close implements [store.Presence]: it closes every watcher. It does not
// close the connection.
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
	sub  *nats.Subscription
	ch   chan *nats.Msg
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
		case m := <-w.ch:
			op, rest, ok := strings.Cut(string(m.Data), "\n")
			key, data, ok2 := strings.Cut(rest, "\n")
			if !ok || !ok2 || (op != "+" && op != "-") {
				continue
			}
			return store.PresenceChange{PresenceEntry: store.PresenceEntry{Key: key, Data: []byte(data)}, Active: op == "+"}, nil
		}
	}
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
		w.sub.Unsubscribe()
	})
}
