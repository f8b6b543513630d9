package broker

import (
	"sort"
	"sync"

	"github.com/herald-sse/herald/sse"
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

// encodedOverhead approximates an entry's memory beside its bytes (its slot
// in the ring), for the cache's byte bound.
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
	ents     []encoded // ents[start:] are the entries, oldest first (values: no allocation per update)
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
func (c *replayCache) add(e encoded) {
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
		c.ents[c.start] = encoded{}
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
func (c *replayCache) read(after, until uint64, limit int, dst []encoded) ([]encoded, bool) {
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

// arenaChunk is the size of the blocks the tail encodes updates into.
const arenaChunk = 64 << 10

// arena packs the tail's encoded updates into shared 64 KiB blocks: one
// allocation per block instead of one per update, and far fewer objects
// for the garbage collector to mark while the replay cache keeps them. A
// block stays alive while any update in it is cached or queued. Only the
// tail goroutine uses it.
type arena struct {
	scratch []byte // encoding buffer, reused
	block   []byte
}

// encode returns u's wire bytes in the arena, or nil when u cannot be
// encoded. Updates larger than a quarter block get their own allocation.
func (a *arena) encode(b *Broker, u *store.Update) []byte {
	buf, err := sse.AppendEvent(a.scratch[:0], sse.Event{ID: u.ID, Type: u.Type, Data: u.Data, Retry: u.Retry})
	if err != nil {
		b.log.Error("broker: skip update that cannot be encoded", "id", u.ID, "err", err)
		return nil
	}
	if len(buf) > arenaChunk/4 {
		return buf // the scratch grew for it: keep it as the update's own
	}
	a.scratch = buf
	if cap(a.block)-len(a.block) < len(buf) {
		a.block = make([]byte, 0, arenaChunk)
	}
	n := len(a.block)
	a.block = append(a.block, buf...)
	return a.block[n:len(a.block):len(a.block)]
}

// newEncoded encodes u for the wire. An update that cannot be encoded
// (validated on Append, so only a foreign writer could store one) is logged
// and kept with nil bytes, so that the cache stays contiguous.
func (b *Broker) newEncoded(u *store.Update) encoded {
	return encoded{seq: u.Seq, topics: u.Topics, private: u.Private, buf: b.encode(u)}
}
