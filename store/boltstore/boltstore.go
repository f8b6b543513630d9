// Package boltstore is a durable embedded [store.Store] in one file, built
// on bbolt (go.etcd.io/bbolt). It is the default history of `herald serve`:
// updates survive restarts, and every Append is on disk (fsync'd) before it
// returns.
//
// # Group commit
//
// One writer goroutine owns every write. Appends that arrive while it is
// committing wait together and are committed in the next transaction, with
// one fsync for all of them, so throughput grows with the number of
// concurrent publishers while each Append stays durable.
//
// # Layout
//
// The file holds three buckets:
//
//   - "updates": 8-byte big-endian Seq → encoded update (see below), so a
//     cursor walks the log in order and Read seeks straight to a position;
//   - "ids": update id → 8-byte big-endian Seq, so Lookup is one B+tree
//     search;
//   - "meta": "version" → format version (1 byte, currently 1) and
//     "trimmed" → the highest Seq ever trimmed (8 bytes big-endian), which
//     tells Read when a position has been trimmed and keeps Seq increasing
//     across restarts even when everything was trimmed.
//
// An update is encoded as: version byte (1), flags byte (bit 0: private),
// Time as varint seconds and uvarint nanoseconds, Retry as uvarint
// nanoseconds, then ID, Type and each topic as uvarint length and bytes
// (preceded by the uvarint topic count), and Data as the rest of the value.
//
// Retention by count (Config.MaxLen) and age (Config.MaxAge) deletes the
// oldest updates from both buckets in the same transactions that append, so
// bbolt reuses the freed pages and the file stops growing under steady load.
// Both trees are appended to at their right edge, so pages are filled
// completely rather than split in half.
//
// # Opening
//
// Open first opens an existing file read-only and checks it whole: the
// high-water mark against the file size (truncation), the buckets and
// format version, every page of both trees and every record. bbolt trusts
// its file and would otherwise crash the process on a damaged page, so a
// damaged file is an error that names it, never a silent empty history.
// The check costs about 50ms per 100,000 updates.
//
// Only this process writes the file (bbolt holds a lock on it), so the log
// cannot be lost or rewound behind its back: a Store never reports
// store.ErrLogReset. A file replaced while no hub runs is a new log for
// the next start.
package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/herald-sse/herald/internal/record"
	"github.com/herald-sse/herald/internal/seqwait"
	"github.com/herald-sse/herald/store"
)

// Defaults for the zero fields of Config.
const (
	// DefaultMaxLen is the number of updates kept when Config.MaxLen is 0.
	DefaultMaxLen = 100_000
	// DefaultMaxBytes bounds the retained updates' size on disk when
	// Config.MaxBytes is 0: 1 GiB.
	DefaultMaxBytes = 1 << 30
	// DefaultLockTimeout is how long Open waits for the file lock when
	// Config.LockTimeout is 0.
	DefaultLockTimeout = 3 * time.Second
)

// Page fill factors for the append-mostly buckets (bbolt's default is 0.5).
const (
	fillUpdates = 1.0
	fillIDs     = 0.9
)

// formatVersion is the layout version stored in the meta bucket.
const formatVersion = 1

var (
	bucketUpdates = []byte("updates")
	bucketIDs     = []byte("ids")
	bucketMeta    = []byte("meta")
	keyVersion    = []byte("version")
	keyTrimmed    = []byte("trimmed")
)

// Config configures a Store. The zero value is valid: every zero field means
// the documented default.
type Config struct {
	// MaxLen is the number of newest updates kept; appending beyond it
	// deletes the oldest. Zero means DefaultMaxLen (100,000). Negative is
	// invalid.
	MaxLen int
	// MaxBytes bounds the size of the retained updates: appending deletes
	// the oldest while they add up to more. An update counts its encoded
	// record and id twice (log and index) plus 48 bytes, at least its
	// store.Size; bbolt's pages add up to about as much again on disk.
	// An update bigger than MaxBytes by itself is refused with
	// store.ErrInvalid, so the newest is always kept. Zero means
	// DefaultMaxBytes (1 GiB). Negative is invalid.
	MaxBytes int64
	// MaxAge deletes updates whose Time is older than MaxAge, checked on
	// every append and periodically (every MaxAge/4, at most every minute)
	// while idle. The newest update is always kept, so that Last and ids
	// stay meaningful on an idle hub. Zero means no age limit. Negative is
	// invalid.
	MaxAge time.Duration
	// Logger receives the store's logs (open summary, background trim
	// errors). Nil discards them.
	Logger *slog.Logger
	// NoSync skips fsync on commit: a crash can lose or corrupt recent
	// appends. For tests and benchmarks only.
	NoSync bool
	// LockTimeout is how long Open waits for the file lock held by another
	// process. Zero means DefaultLockTimeout (3s). Negative is invalid.
	LockTimeout time.Duration
}

// Store is a durable log in a bbolt file. It is safe for concurrent use.
// Create it with [Open]; the caller closes it with [Store.Close], which
// commits the appends already submitted and closes the file.
type Store struct {
	db   *bolt.DB
	cfg  Config
	log  *slog.Logger
	path string

	// last is the Seq of the newest committed update.
	last atomic.Uint64
	// wait follows last for Wait: advanced after each commit.
	wait seqwait.Waiter
	// closed is set by Close before anything else.
	closed atomic.Bool

	mu sync.Mutex // guards the fields below
	// cur collects the appends for the next commit.
	cur *batch
	// lastID is the id of the update with Seq last.
	lastID string

	wake      chan struct{} // size 1: cur is not empty, or Close was called
	done      chan struct{} // closed when the writer exits
	closeOnce sync.Once
	closeErr  error

	// Owned by the writer goroutine.
	count   int    // updates retained
	bytes   int64  // their cost (see cost)
	next    uint64 // Seq of the next update
	trimmed uint64 // highest Seq trimmed
}

// batch is the group of appends committed in one transaction.
type batch struct {
	calls []*call
	done  chan struct{} // closed once every call has its result
}

// call is one Append waiting for its batch.
type call struct {
	u        store.Update
	explicit bool
	err      error
	// group is the AppendBatch the call belongs to, nil for an Append;
	// index is its place in that batch.
	group *group
	index int
}

// group is one AppendBatch's state inside a commit, owned by the writer.
type group struct {
	stop   bool // AppendBatch's stop: after a failure, append no more
	failed bool // a call of the group failed in this commit
}

var _ store.Store = (*Store)(nil)

// Open opens or creates the store in the file at path. The directory must
// exist. It returns an error that names path if the file is not a Herald
// store (corrupt, truncated, another bbolt file) or if another process holds
// it for longer than cfg.LockTimeout.
func Open(path string, cfg Config) (*Store, error) {
	if cfg.MaxLen < 0 || cfg.MaxAge < 0 || cfg.LockTimeout < 0 || cfg.MaxBytes < 0 {
		return nil, fmt.Errorf("boltstore: open %s: negative field in config %+v", path, cfg)
	}
	if cfg.MaxLen == 0 {
		cfg.MaxLen = DefaultMaxLen
	}
	if cfg.LockTimeout == 0 {
		cfg.LockTimeout = DefaultLockTimeout
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Size() > 0 {
		if err := verify(path, fi.Size(), cfg.LockTimeout); err != nil {
			return nil, err
		}
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:      cfg.LockTimeout,
		NoSync:       cfg.NoSync,
		FreelistType: bolt.FreelistMapType,
		// The freelist is rebuilt by scanning the file on open instead of
		// being written on every commit.
		NoFreelistSync: true,
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("boltstore: open %s: file locked by another process for %v: %w", path, cfg.LockTimeout, err)
	}
	if err != nil {
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	s := &Store{
		db:   db,
		cfg:  cfg,
		log:  log,
		path: path,
		cur:  &batch{done: make(chan struct{})},
		wake: make(chan struct{}, 1),
		done: make(chan struct{}),
	}
	if err := s.load(); err != nil {
		return nil, errors.Join(fmt.Errorf("boltstore: open %s: %w", path, err), db.Close())
	}
	s.wait.Advance(s.last.Load())
	log.Info("boltstore: opened", "path", path, "updates", s.count, "last", s.last.Load(),
		"trimmed", s.trimmed, "max_len", cfg.MaxLen, "max_age", cfg.MaxAge)
	go s.run()
	return s, nil
}

// verify opens an existing file read-only and checks all of it before the
// read-write open: bbolt trusts the file and would crash the process (a
// panic in its own goroutine, or SIGBUS past the end of a truncated file)
// on a corrupt page. It walks every page of both buckets and decodes every
// record, which costs a few tens of milliseconds per 100,000 updates.
func verify(path string, size int64, timeout time.Duration) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: timeout})
	if errors.Is(err, berrors.ErrTimeout) {
		return fmt.Errorf("boltstore: open %s: file locked by another process for %v: %w", path, timeout, err)
	}
	if err != nil {
		return fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	err = check(db, size)
	if cerr := db.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	return nil
}

// check verifies the structure and every record of db, whose file has size
// bytes. It turns bbolt's panics and memory faults into errors.
func check(db *bolt.DB, size int64) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("corrupt database: %v", r)
		}
	}()
	return db.View(func(tx *bolt.Tx) error {
		if want := tx.Size(); want > size {
			return fmt.Errorf("corrupt database: truncated to %d bytes, want %d", size, want)
		}
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			var other []string
			err := tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
				other = append(other, string(name))
				return nil
			})
			if err == nil && len(other) > 0 {
				err = fmt.Errorf("not a herald store: unexpected buckets %q", other)
			}
			return err // no buckets at all: a new store
		}
		if v := meta.Get(keyVersion); len(v) != 1 || v[0] != formatVersion {
			return fmt.Errorf("unsupported format version %v (want %d)", v, formatVersion)
		}
		ups, ids := tx.Bucket(bucketUpdates), tx.Bucket(bucketIDs)
		if ups == nil || ids == nil {
			return errors.New("not a herald store: missing buckets")
		}
		var n int
		var first uint64
		err := ups.ForEach(func(k, v []byte) error {
			if len(k) != 8 {
				return fmt.Errorf("corrupt key %x in updates", k)
			}
			seq := binary.BigEndian.Uint64(k)
			if first == 0 {
				first = seq
			}
			n++
			_, err := record.Decode(seq, v)
			return err
		})
		if err != nil {
			return err
		}
		var nids int
		err = ids.ForEach(func(k, v []byte) error {
			if len(v) != 8 {
				return fmt.Errorf("corrupt index entry for id %q", k)
			}
			nids++
			return nil
		})
		if err != nil {
			return err
		}
		if n != nids {
			return fmt.Errorf("corrupt index: %d updates but %d ids", n, nids)
		}
		if v := meta.Get(keyTrimmed); v != nil && (len(v) != 8 || first != 0 && binary.BigEndian.Uint64(v) >= first) {
			return errors.New("corrupt meta: trimmed")
		}
		return nil
	})
}

// load creates the buckets of a new file, or checks those of an existing
// one and reads the state the writer needs. It turns a bbolt panic on a
// corrupt page into an error.
func (s *Store) load() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("corrupt database: %v", r)
		}
	}()
	var fresh bool
	err = s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketMeta) != nil {
			return nil
		}
		var other []string
		err := tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			other = append(other, string(name))
			return nil
		})
		if err != nil {
			return err
		}
		if len(other) > 0 {
			return fmt.Errorf("not a herald store: unexpected buckets %q", other)
		}
		fresh = true
		return nil
	})
	if err != nil {
		return err
	}
	if fresh {
		err = s.db.Update(func(tx *bolt.Tx) error {
			for _, name := range [][]byte{bucketUpdates, bucketIDs, bucketMeta} {
				if _, err := tx.CreateBucket(name); err != nil {
					return err
				}
			}
			return tx.Bucket(bucketMeta).Put(keyVersion, []byte{formatVersion})
		})
		if err != nil {
			return fmt.Errorf("create buckets: %w", err)
		}
	}
	return s.db.View(func(tx *bolt.Tx) error {
		ups, ids, meta := tx.Bucket(bucketUpdates), tx.Bucket(bucketIDs), tx.Bucket(bucketMeta)
		if ups == nil || ids == nil {
			return errors.New("not a herald store: missing buckets")
		}
		if v := meta.Get(keyVersion); len(v) != 1 || v[0] != formatVersion {
			return fmt.Errorf("unsupported format version %v (want %d)", v, formatVersion)
		}
		if v := meta.Get(keyTrimmed); v != nil {
			if len(v) != 8 {
				return errors.New("corrupt meta: trimmed")
			}
			s.trimmed = binary.BigEndian.Uint64(v)
		}
		s.count = ups.Stats().KeyN
		if n := ids.Stats().KeyN; n != s.count {
			return fmt.Errorf("corrupt index: %d updates but %d ids", s.count, n)
		}
		s.next = s.trimmed + 1
		err := ups.ForEach(func(_, v []byte) error {
			_, id, err := record.TimeID(v)
			s.bytes += cost(len(v), len(id))
			return err
		})
		if err != nil {
			return err
		}
		c := ups.Cursor()
		if k, v := c.First(); k != nil {
			if _, err := record.Decode(binary.BigEndian.Uint64(k), v); err != nil {
				return err
			}
		}
		if k, v := c.Last(); k != nil {
			if len(k) != 8 {
				return errors.New("corrupt key in updates")
			}
			u, err := record.Decode(binary.BigEndian.Uint64(k), v)
			if err != nil {
				return err
			}
			if got := ids.Get([]byte(u.ID)); !bytes.Equal(got, k) {
				return fmt.Errorf("corrupt index: id of seq %d not found", u.Seq)
			}
			s.last.Store(u.Seq)
			s.lastID = u.ID
			s.next = u.Seq + 1
		}
		if s.next <= s.trimmed {
			return fmt.Errorf("corrupt meta: trimmed %d is past the newest update %d", s.trimmed, s.next-1)
		}
		return nil
	})
}

// Append stores u durably and returns it with Seq, ID and Time set. Appends
// from concurrent callers are committed together. Once submitted, an append
// is not abandoned when ctx ends: Append waits for the commit so that the
// caller never mistakes a stored update for a failed one.
func (s *Store) Append(ctx context.Context, u store.Update) (store.Update, error) {
	c, err := s.prepare(u)
	if err != nil {
		return store.Update{}, err
	}
	if err := ctx.Err(); err != nil {
		return store.Update{}, fmt.Errorf("boltstore: append: %w", err)
	}
	b, err := s.submit(c)
	if err != nil {
		return store.Update{}, err
	}
	<-b.done
	if c.err != nil {
		return store.Update{}, c.err
	}
	return c.u, nil
}

// AppendBatch appends ups in order, all of them in the same transaction
// as each other (with the appends of concurrent callers), so that a batch
// costs one commit and one fsync instead of one per update. It implements
// [store.BatchAppender]: each update gets Append's result, and with stop
// set the updates after the first failure are not appended. An update that
// fails before the commit (invalid, too large) fails alone: with stop,
// the ones after it are not submitted.
func (s *Store) AppendBatch(ctx context.Context, ups []store.Update, stop bool) ([]store.Update, []error) {
	stored, errs := make([]store.Update, len(ups)), make([]error, len(ups))
	if err := ctx.Err(); err != nil {
		for i := range errs {
			errs[i] = fmt.Errorf("boltstore: append: %w", err)
		}
		return stored, errs
	}
	g := &group{stop: stop}
	calls := make([]*call, 0, len(ups))
	for i, u := range ups {
		c, err := s.prepare(u)
		if err != nil {
			errs[i] = err
			if stop {
				for j := i + 1; j < len(ups); j++ {
					errs[j] = store.ErrNotAttempted
				}
				break
			}
			continue
		}
		c.group, c.index = g, i
		calls = append(calls, c)
	}
	if len(calls) > 0 {
		b, err := s.submit(calls...)
		if err == nil {
			<-b.done
		}
		for _, c := range calls {
			switch {
			case err != nil:
				errs[c.index] = err
			case c.err != nil:
				errs[c.index] = c.err
			default:
				stored[c.index] = c.u
			}
		}
	}
	return stored, errs
}

// prepare validates u and returns the call that appends it.
func (s *Store) prepare(u store.Update) (*call, error) {
	if err := store.Validate(u); err != nil {
		return nil, fmt.Errorf("boltstore: append: %w", err)
	}
	if len(u.ID) > bolt.MaxKeySize {
		return nil, fmt.Errorf("boltstore: append: id longer than %d bytes: %w", bolt.MaxKeySize, store.ErrInvalid)
	}
	c := &call{u: u, explicit: u.ID != ""}
	if !c.explicit {
		c.u.ID = store.NewID()
	}
	c.u.Topics = append([]string(nil), u.Topics...)
	// An upper bound of the record's size: varints take at most 10 bytes.
	if n := cost(int(store.Size(c.u))+32+10*len(c.u.Topics), len(c.u.ID)); n > s.cfg.MaxBytes {
		return nil, fmt.Errorf("boltstore: append: update of %d bytes larger than the history's MaxBytes %d: %w",
			n, s.cfg.MaxBytes, store.ErrInvalid)
	}
	return c, nil
}

// submit adds calls, in order and together, to the next commit and
// returns the batch whose done channel tells when they have their result.
func (s *Store) submit(calls ...*call) (*batch, error) {
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		return nil, fmt.Errorf("boltstore: append: %w", store.ErrClosed)
	}
	b := s.cur
	b.calls = append(b.calls, calls...)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return b, nil
}

// run is the writer goroutine: it commits batches until Close.
func (s *Store) run() {
	defer close(s.done)
	var tick <-chan time.Time
	if s.cfg.MaxAge > 0 {
		t := time.NewTicker(min(max(s.cfg.MaxAge/4, 10*time.Millisecond), time.Minute))
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-s.wake:
		case <-tick:
			if err := s.trimIdle(); err != nil {
				s.log.Warn("boltstore: trim by age", "path", s.path, "err", err)
			}
			continue
		}
		s.mu.Lock()
		b := s.cur
		if len(b.calls) > 0 {
			s.cur = &batch{done: make(chan struct{})}
		} else {
			b = nil
		}
		closed := s.closed.Load()
		s.mu.Unlock()
		if b != nil {
			s.commit(b)
		}
		if closed {
			// Close set closed before waking us, so no append can join
			// s.cur after this point.
			return
		}
	}
}

// commit appends the calls of b in one transaction and answers them.
func (s *Store) commit(b *batch) {
	defer close(b.done)
	now := time.Now().Round(0)
	next, count, nb, trimmed := s.next, s.count, s.bytes, s.trimmed
	var lastID string
	err := s.db.Update(func(tx *bolt.Tx) error {
		ups, ids, meta := tx.Bucket(bucketUpdates), tx.Bucket(bucketIDs), tx.Bucket(bucketMeta)
		// Seqs only grow and generated ids are time-ordered (UUIDv7), so
		// both trees are appended to at their right edge: fill pages
		// instead of splitting them in half.
		ups.FillPercent = fillUpdates
		ids.FillPercent = fillIDs
		// Keys and values must stay valid until the commit: they are carved
		// from one buffer per batch.
		var buf []byte
		for _, c := range b.calls {
			if c.group != nil {
				c.group.failed = false
			}
		}
		for _, c := range b.calls {
			c.err = nil
			if c.group != nil && c.group.stop && c.group.failed {
				c.err = store.ErrNotAttempted
				continue
			}
			for ids.Get([]byte(c.u.ID)) != nil {
				if c.explicit {
					c.err = fmt.Errorf("boltstore: append %q: %w", c.u.ID, store.ErrDuplicateID)
					break
				}
				c.u.ID = store.NewID()
			}
			if c.err != nil {
				if c.group != nil {
					c.group.failed = true
				}
				continue
			}
			if c.u.Time.IsZero() {
				c.u.Time = now
			}
			c.u.Seq = next
			if cap(buf)-len(buf) < 64+len(c.u.Data)+len(c.u.ID) {
				buf = make([]byte, 0, max(4096, 2*(64+len(c.u.Data)+len(c.u.ID))))
			}
			start := len(buf)
			buf = binary.BigEndian.AppendUint64(buf, next)
			key := buf[start:len(buf):len(buf)]
			start = len(buf)
			buf = record.Append(buf, c.u)
			val := buf[start:len(buf):len(buf)]
			if err := ups.Put(key, val); err != nil {
				return err
			}
			if err := ids.Put([]byte(c.u.ID), key); err != nil {
				return err
			}
			next++
			count++
			nb += cost(len(val), len(c.u.ID))
			lastID = c.u.ID
		}
		var err error
		count, nb, trimmed, err = s.trim(ups, ids, meta, count, nb, trimmed, now)
		return err
	})
	if err != nil {
		for _, c := range b.calls {
			c.err = fmt.Errorf("boltstore: append: %w", err)
		}
		return
	}
	appended := next != s.next // false when every call was a duplicate
	s.next, s.count, s.bytes, s.trimmed = next, count, nb, trimmed
	if !appended {
		return
	}
	s.mu.Lock()
	s.last.Store(next - 1)
	s.lastID = lastID
	s.mu.Unlock()
	s.wait.Advance(next - 1)
}

// cost is what an update whose record has n bytes and whose id has idLen
// counts for against cfg.MaxBytes: its key, record and index entry.
func cost(n, idLen int) int64 {
	return int64(8+n+idLen+8) + 32
}

// trim deletes the oldest updates beyond cfg.MaxLen or cfg.MaxBytes or
// older than cfg.MaxAge (but never the newest) and records the highest
// trimmed Seq in meta. It returns the new count, bytes and trimmed Seq.
func (s *Store) trim(ups, ids, meta *bolt.Bucket, count int, nb int64, trimmed uint64, now time.Time) (int, int64, uint64, error) {
	var cutoff time.Time
	if s.cfg.MaxAge > 0 {
		cutoff = now.Add(-s.cfg.MaxAge)
	}
	if count <= s.cfg.MaxLen && cutoff.IsZero() && nb <= s.cfg.MaxBytes {
		return count, nb, trimmed, nil
	}
	was := trimmed
	c := ups.Cursor()
	for count > 0 {
		k, v := c.First()
		if k == nil {
			break
		}
		t, id, err := record.TimeID(v)
		if err != nil {
			return 0, 0, 0, fmt.Errorf("trim seq %d: %w", binary.BigEndian.Uint64(k), err)
		}
		expired := !cutoff.IsZero() && count > 1 && t.Before(cutoff)
		if count <= s.cfg.MaxLen && !expired && (nb <= s.cfg.MaxBytes || count == 1) {
			break
		}
		nb -= cost(len(v), len(id))
		seq := binary.BigEndian.Uint64(k)
		if got := ids.Get(id); bytes.Equal(got, k) {
			if err := ids.Delete(id); err != nil {
				return 0, 0, 0, err
			}
		}
		if err := c.Delete(); err != nil {
			return 0, 0, 0, err
		}
		trimmed = seq
		count--
	}
	if trimmed != was {
		if err := meta.Put(keyTrimmed, seqKey(trimmed)); err != nil {
			return 0, 0, 0, err
		}
	}
	return count, nb, trimmed, nil
}

// trimIdle applies retention by age when no append is coming. It opens a
// write transaction only when the oldest update has expired.
func (s *Store) trimIdle() error {
	now := time.Now()
	cutoff := now.Add(-s.cfg.MaxAge)
	var expired bool
	err := s.db.View(func(tx *bolt.Tx) error {
		k, v := tx.Bucket(bucketUpdates).Cursor().First()
		if k == nil {
			return nil
		}
		t, _, err := record.TimeID(v)
		expired = err == nil && s.count > 1 && t.Before(cutoff)
		return err
	})
	if err != nil || !expired {
		return err
	}
	count, nb, trimmed := s.count, s.bytes, s.trimmed
	err = s.db.Update(func(tx *bolt.Tx) error {
		var err error
		count, nb, trimmed, err = s.trim(tx.Bucket(bucketUpdates), tx.Bucket(bucketIDs), tx.Bucket(bucketMeta), count, nb, trimmed, now)
		return err
	})
	if err != nil {
		return err
	}
	s.count, s.bytes, s.trimmed = count, nb, trimmed
	return nil
}

// view runs fn in a read transaction, reporting store.ErrClosed after Close.
func (s *Store) view(op string, fn func(tx *bolt.Tx) error) error {
	if s.closed.Load() {
		return fmt.Errorf("boltstore: %s: %w", op, store.ErrClosed)
	}
	err := s.db.View(fn)
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return fmt.Errorf("boltstore: %s: %w", op, store.ErrClosed)
	}
	if err != nil {
		return fmt.Errorf("boltstore: %s: %w", op, err)
	}
	return nil
}

// Lookup returns the Seq of the retained update with the given id, or
// store.ErrNotFound. It is one B+tree search of the ids bucket.
func (s *Store) Lookup(ctx context.Context, id string) (uint64, error) {
	var seq uint64
	err := s.view("lookup", func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketIDs).Get([]byte(id))
		if id == "" || v == nil {
			return fmt.Errorf("%q: %w", id, store.ErrNotFound)
		}
		if len(v) != 8 {
			return fmt.Errorf("%q: corrupt index entry", id)
		}
		seq = binary.BigEndian.Uint64(v)
		return nil
	})
	return seq, err
}

// Read returns up to limit updates with Seq > after, oldest first, or
// store.ErrCursorGone when updates after `after` were trimmed. A limit of
// zero or less returns no updates.
func (s *Store) Read(ctx context.Context, after uint64, limit int) ([]store.Update, error) {
	var out []store.Update
	err := s.view("read", func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keyTrimmed); after != 0 && len(v) == 8 && after < binary.BigEndian.Uint64(v) {
			return fmt.Errorf("after %d: %w", after, store.ErrCursorGone)
		}
		if limit <= 0 || after == math.MaxUint64 {
			return nil
		}
		if last := s.last.Load(); last > after {
			out = make([]store.Update, 0, min(uint64(limit), last-after))
		}
		c := tx.Bucket(bucketUpdates).Cursor()
		for k, v := c.Seek(seqKey(after + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			u, err := record.Decode(binary.BigEndian.Uint64(k), v)
			if err != nil {
				return err
			}
			out = append(out, u)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Wait blocks until an update with Seq > after is committed, ctx is done or
// the store is closed.
func (s *Store) Wait(ctx context.Context, after uint64) error {
	err := s.wait.Wait(ctx, after)
	if errors.Is(err, store.ErrClosed) {
		return fmt.Errorf("boltstore: wait: %w", err)
	}
	return err
}

// Last returns the Seq and ID of the newest update, or 0 and "" when the
// store is empty. It does not read the file.
func (s *Store) Last(ctx context.Context) (uint64, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return 0, "", fmt.Errorf("boltstore: last: %w", store.ErrClosed)
	}
	return s.last.Load(), s.lastID, nil
}

// Close commits the appends already submitted, stops the writer, wakes
// every Wait with store.ErrClosed and closes the file. It is idempotent:
// later calls return the result of the first.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed.Store(true)
		s.mu.Unlock()
		s.wait.Close()
		select {
		case s.wake <- struct{}{}:
		default:
		}
		<-s.done
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("boltstore: close %s: %w", s.path, err)
		}
	})
	return s.closeErr
}
