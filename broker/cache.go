package broker

import (
	"sort"
	"sync"

	"github.com/herald-sse/herald/store"
)

// encoded is one update of the log with its wire bytes, shared read-only by
// the live fan-out and every replay that covers it.
type encoded struct {
	seq     uint64
	topics  []string // shared with the store: never modified
	private bool
	buf     []byte // nil: the update could not be encoded and is skipped
}

// encodedOverhead approximates an entry's heap beside its bytes (the struct,
// its pointer in the ring), for the cache's byte bound.
const encodedOverhead = 64

// replayCache keeps the most recent updates of the log, encoded, so that
// replays after a reconnect storm do not read and encode the same history
// once per client. It is the tail's by-product: the tail encodes every
// update for the fan-out anyway and appends it here before it dispatches
// it, so a stream registered with Seq until as its seam finds every update
// up to until in the cache unless it was evicted.
//
// The cache holds every update with base < Seq <= the newest entry's Seq,
// contiguous in log order; a replay from a position older than base reads
// the store instead. Its mutex is a leaf: no other lock is taken under it.
type replayCache struct {
	mu       sync.RWMutex
	ents     []*encoded // ents[start:] are the entries, oldest first
	start    int
	base     uint64
	bytes    int
	maxBytes int // <= 0: the cache is off and holds nothing
}

func newReplayCache(maxBytes int, base uint64) *replayCache {
	return &replayCache{maxBytes: maxBytes, base: base}
}

// add appends e, the update after the newest entry (or after base), and
// evicts the oldest entries beyond the byte bound.
func (c *replayCache) add(e *encoded) {
	if c.maxBytes <= 0 {
		return
	}
	size := len(e.buf) + encodedOverhead
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ents = append(c.ents, e)
	c.bytes += size
	for c.bytes > c.maxBytes && c.start < len(c.ents) {
		old := c.ents[c.start]
		c.ents[c.start] = nil
		c.start++
		c.bytes -= len(old.buf) + encodedOverhead
		c.base = old.seq
	}
	if c.start > 64 && c.start > len(c.ents)/2 {
		n := copy(c.ents, c.ents[c.start:])
		clear(c.ents[n:])
		c.ents, c.start = c.ents[:n], 0
	}
}

// reset empties the cache, which then covers the log from after base: the
// log was reset or skipped ahead, and earlier positions mean nothing.
func (c *replayCache) reset(base uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.ents)
	c.ents, c.start, c.bytes, c.base = c.ents[:0], 0, 0, base
}

// read appends to dst up to limit entries with after < Seq <= until, oldest
// first. It reports false, with dst unchanged, when the cache does not hold
// the update after after (older than base, or newer than the cache), and the
// caller reads the store instead.
func (c *replayCache) read(after, until uint64, limit int, dst []*encoded) ([]*encoded, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if after < c.base {
		return dst, false
	}
	ents := c.ents[c.start:]
	i := sort.Search(len(ents), func(i int) bool { return ents[i].seq > after })
	if i == len(ents) {
		return dst, false
	}
	for _, e := range ents[i:] {
		if e.seq > until || limit == 0 {
			break
		}
		dst = append(dst, e)
		limit--
	}
	return dst, true
}

// entries returns how many updates the cache holds, for tests.
func (c *replayCache) entries() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.ents) - c.start
}

// newEncoded encodes u for the wire. An update that cannot be encoded
// (validated on Append, so only a foreign writer could store one) is logged
// and kept with nil bytes, so that the cache stays contiguous.
func (b *Broker) newEncoded(u *store.Update) *encoded {
	return &encoded{seq: u.Seq, topics: u.Topics, private: u.Private, buf: b.encode(u)}
}
