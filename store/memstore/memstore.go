// Package memstore is a bounded in-memory [store.Store]: a ring of the
// newest updates with an id index. It suits the Go library, tests and hubs
// that do not need history to survive a restart.
//
// Sequence numbers start at 1 and are contiguous. History is lost when the
// process exits, and only then: nothing else can drop it behind the
// process's back, so a Store never reports store.ErrLogReset.
package memstore

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"time"

	"github.com/herald-sse/herald/internal/seqwait"
	"github.com/herald-sse/herald/store"
)

// DefaultMaxLen is the number of updates a Store keeps when Config.MaxLen
// is zero.
const DefaultMaxLen = 10_000

// DefaultMaxBytes bounds the memory of the retained updates when
// Config.MaxBytes is zero: 64 MiB.
const DefaultMaxBytes = 64 << 20

// overhead is the memory an update costs beyond its store.Size: the
// Update struct, its ring slot and hash, its index entry; plus
// topicOverhead per topic (the string header).
const (
	overhead      = 192
	topicOverhead = 16
)

// cost is what u counts for against Config.MaxBytes.
func cost(u *store.Update) int64 {
	return store.Size(*u) + overhead + topicOverhead*int64(len(u.Topics))
}

// Config configures a Store. The zero value is valid: every zero field
// means the documented default.
type Config struct {
	// MaxLen is the number of newest updates kept; appending beyond it
	// drops the oldest. Zero means DefaultMaxLen. Negative is invalid.
	MaxLen int
	// MaxBytes bounds the memory of the retained updates: appending drops
	// the oldest while the updates add up to more. An update counts its
	// store.Size plus about 200 bytes of bookkeeping. An update bigger
	// than MaxBytes by itself is refused with store.ErrInvalid, so the
	// newest is always kept. Zero means DefaultMaxBytes (64 MiB); with
	// DefaultMaxLen that is reached by updates of 6 KiB on average.
	// Negative is invalid.
	MaxBytes int64
	// MaxAge drops updates whose Time is older than MaxAge. Age is checked
	// when updates are appended, so an idle store keeps its last updates.
	// Zero means no age limit. Negative is invalid.
	MaxAge time.Duration
}

// Store is a bounded in-memory log. It is safe for concurrent use. Create it
// with [New]; the caller closes it.
//
// Updates returned by Read share their Topics slice with the store: callers
// must not modify it.
type Store struct {
	cfg Config

	mu sync.RWMutex
	// buf is a ring of the retained updates: n of them starting at head,
	// with Seq last-n+1 .. last. It grows up to cfg.MaxLen.
	buf []store.Update
	// hashes[i] is hashID of buf[i].ID.
	hashes []uint64
	head   int
	n      int
	bytes  int64 // the cost of the retained updates
	last   uint64
	// ids maps a 64-bit hash of each retained update's id to its Seq: the
	// map holds no pointers and a probe compares integers instead of
	// following a string (this map was 10% of a hub's CPU at 40,000
	// publishes/s when it was keyed by the id). An id whose hash collides
	// with another retained id's goes to more.
	ids    map[uint64]uint64
	more   map[string]uint64
	seed   maphash.Seed
	closed bool
	wait   seqwait.Waiter // advanced by Append; wakes every Wait
}

var _ store.Store = (*Store)(nil)

// hashID hashes an id for the index; tests replace it to force collisions.
var hashID = maphash.String

// New returns an empty store. It panics if cfg has a negative field, which
// is a programming error.
func New(cfg Config) *Store {
	if cfg.MaxLen < 0 || cfg.MaxAge < 0 || cfg.MaxBytes < 0 {
		panic(fmt.Sprintf("memstore: invalid config %+v", cfg))
	}
	if cfg.MaxLen == 0 {
		cfg.MaxLen = DefaultMaxLen
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	return &Store{
		cfg:    cfg,
		buf:    make([]store.Update, min(cfg.MaxLen, 64)),
		hashes: make([]uint64, min(cfg.MaxLen, 64)),
		ids:    make(map[uint64]uint64),
		more:   make(map[string]uint64),
		seed:   maphash.MakeSeed(),
	}
}

// Append stores u and returns it with Seq, ID and Time set. It copies
// u.Topics, so the caller may reuse the slice.
func (s *Store) Append(ctx context.Context, u store.Update) (store.Update, error) {
	p, err := s.prepare(u)
	if err != nil {
		return store.Update{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err = s.appendLocked(p)
	if err == nil {
		s.wait.Advance(u.Seq)
	}
	return u, err
}

// AppendBatch appends ups in order under one lock, waking the readers
// once, and returns each update's result as Append would. With stop set,
// the updates after the first failure are not appended
// ([store.ErrNotAttempted]). It implements [store.BatchAppender].
func (s *Store) AppendBatch(ctx context.Context, ups []store.Update, stop bool) ([]store.Update, []error) {
	stored, errs := make([]store.Update, len(ups)), make([]error, len(ups))
	ps := make([]prepared, len(ups))
	for i, u := range ups {
		ps[i], errs[i] = s.prepare(u)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var last uint64
	failed := false
	for i := range ps {
		if failed {
			errs[i] = store.ErrNotAttempted
			continue
		}
		if errs[i] == nil {
			stored[i], errs[i] = s.appendLocked(ps[i])
		}
		if errs[i] == nil {
			last = stored[i].Seq
		}
		failed = stop && errs[i] != nil
	}
	if last != 0 {
		s.wait.Advance(last)
	}
	return stored, errs
}

// prepared is an update checked for appending, with its cost.
type prepared struct {
	u        store.Update
	explicit bool
	cost     int64
}

// prepare checks u for appending, outside the lock.
func (s *Store) prepare(u store.Update) (prepared, error) {
	if err := store.Validate(u); err != nil {
		return prepared{}, fmt.Errorf("memstore: append: %w", err)
	}
	explicit := u.ID != ""
	if !explicit {
		u.ID = store.NewID()
	}
	u.Topics = slices.Clone(u.Topics)
	c := cost(&u)
	if c > s.cfg.MaxBytes {
		return prepared{}, fmt.Errorf("memstore: append: update of %d bytes larger than the history's MaxBytes %d: %w",
			c, s.cfg.MaxBytes, store.ErrInvalid)
	}
	return prepared{u, explicit, c}, nil
}

// appendLocked appends p and returns the stored update. s.mu must be held;
// the caller advances s.wait.
func (s *Store) appendLocked(p prepared) (store.Update, error) {
	u, c := p.u, p.cost
	if s.closed {
		return store.Update{}, fmt.Errorf("memstore: append: %w", store.ErrClosed)
	}
	var h uint64
	for {
		h = hashID(s.seed, u.ID)
		if _, dup := s.find(u.ID, h); !dup {
			break
		}
		if p.explicit {
			return store.Update{}, fmt.Errorf("memstore: append %q: %w", u.ID, store.ErrDuplicateID)
		}
		u.ID = store.NewID()
	}
	now := time.Now().Round(0)
	if u.Time.IsZero() {
		u.Time = now
	}
	if s.n == s.cfg.MaxLen {
		s.dropOldest()
	}
	for s.n > 0 && s.bytes+c > s.cfg.MaxBytes {
		s.dropOldest()
	}
	if s.cfg.MaxAge > 0 {
		cutoff := now.Add(-s.cfg.MaxAge)
		for s.n > 0 && s.buf[s.head].Time.Before(cutoff) {
			s.dropOldest()
		}
	}
	if s.n == len(s.buf) {
		s.grow()
	}
	s.last++
	u.Seq = s.last
	i := (s.head + s.n) % len(s.buf)
	s.buf[i], s.hashes[i] = u, h
	s.n++
	s.bytes += c
	if _, taken := s.ids[h]; taken {
		s.more[u.ID] = u.Seq
	} else {
		s.ids[h] = u.Seq
	}
	return u, nil
}

// dropOldest removes the oldest retained update. s.mu must be held and
// s.n > 0.
func (s *Store) dropOldest() {
	// The stored hash spares reading the id's bytes, a cache miss.
	seq, h := s.last-uint64(s.n)+1, s.hashes[s.head]
	if s.ids[h] == seq {
		delete(s.ids, h)
	} else {
		delete(s.more, s.buf[s.head].ID)
	}
	s.bytes -= cost(&s.buf[s.head])
	s.buf[s.head] = store.Update{}
	s.head = (s.head + 1) % len(s.buf)
	s.n--
}

// find returns the Seq of the retained update with the given id, whose
// hash is h. s.mu must be held.
func (s *Store) find(id string, h uint64) (uint64, bool) {
	if seq, ok := s.ids[h]; ok && s.at(seq).ID == id {
		return seq, true
	}
	if len(s.more) == 0 {
		return 0, false
	}
	seq, ok := s.more[id]
	return seq, ok
}

// at returns the retained update with the given Seq. s.mu must be held.
func (s *Store) at(seq uint64) *store.Update {
	first := s.last - uint64(s.n) + 1
	return &s.buf[(s.head+int(seq-first))%len(s.buf)]
}

// grow doubles the ring, up to cfg.MaxLen. s.mu must be held and the ring
// full.
func (s *Store) grow() {
	n := min(2*len(s.buf), s.cfg.MaxLen)
	nb, nh := make([]store.Update, n), make([]uint64, n)
	k := copy(nb, s.buf[s.head:])
	copy(nb[k:], s.buf[:s.head])
	copy(nh, s.hashes[s.head:])
	copy(nh[k:], s.hashes[:s.head])
	s.buf, s.hashes, s.head = nb, nh, 0
}

// Lookup returns the Seq of the retained update with the given id, or
// store.ErrNotFound.
func (s *Store) Lookup(ctx context.Context, id string) (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, fmt.Errorf("memstore: lookup: %w", store.ErrClosed)
	}
	seq, ok := s.find(id, hashID(s.seed, id))
	if !ok {
		return 0, fmt.Errorf("memstore: lookup %q: %w", id, store.ErrNotFound)
	}
	return seq, nil
}

// Read returns up to limit updates with Seq > after, oldest first, or
// store.ErrCursorGone when updates after `after` were dropped. A limit of
// zero or less returns no updates.
func (s *Store) Read(ctx context.Context, after uint64, limit int) ([]store.Update, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, fmt.Errorf("memstore: read: %w", store.ErrClosed)
	}
	// Seqs are contiguous, so everything up to last-n has been dropped.
	trimmed := s.last - uint64(s.n)
	if after != 0 && after < trimmed {
		return nil, fmt.Errorf("memstore: read after %d: %w", after, store.ErrCursorGone)
	}
	if after >= s.last || limit <= 0 {
		return nil, nil
	}
	start := max(after, trimmed) // Seq start+1 is the first to return
	count := min(uint64(limit), s.last-start)
	out := make([]store.Update, count)
	i := (s.head + int(start-trimmed)) % len(s.buf)
	k := copy(out, s.buf[i:min(len(s.buf), i+int(count))])
	copy(out[k:], s.buf[:int(count)-k])
	return out, nil
}

// Wait blocks until an update with Seq > after is stored, ctx is done or
// the store is closed.
func (s *Store) Wait(ctx context.Context, after uint64) error {
	err := s.wait.Wait(ctx, after)
	if errors.Is(err, store.ErrClosed) {
		return fmt.Errorf("memstore: wait: %w", err)
	}
	return err
}

// Last returns the Seq and ID of the newest update, or 0 and "" when the
// store is empty.
func (s *Store) Last(ctx context.Context) (uint64, string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, "", fmt.Errorf("memstore: last: %w", store.ErrClosed)
	}
	if s.n == 0 {
		return 0, "", nil
	}
	return s.last, s.buf[(s.head+s.n-1)%len(s.buf)].ID, nil
}

// Close drops the history and wakes every Wait with store.ErrClosed. It is
// idempotent and always returns nil.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.wait.Close()
	s.buf, s.hashes, s.ids, s.more, s.n, s.head = nil, nil, nil, nil, 0, 0
	return nil
}
