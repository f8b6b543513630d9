// Package natsstore is a [store.Store] on a NATS JetStream stream, so that
// several Herald nodes connected to the same NATS system share one history:
// an update published on any node is replayed and followed on every node,
// with the same Seq and ID.
//
// # Layout
//
// [New] creates (or updates) one stream, Config.Stream, that captures the
// subjects Config.Subject + ".*". When JetStream cannot be reached, New
// still returns a Store, which retries every Config.CheckInterval; its
// calls fail (and a hub's /readyz says not ready) until then. Nodes that
// create the stream at the same time all succeed. Each update is one message on the subject
// Config.Subject + "." + token(ID), where the token is the first 128 bits
// of the SHA-256 of the update id in unpadded base64url (22 characters), so
// any id is a valid, short subject token. The message body is a compact
// binary record (version, flags, Time, Retry, ID, Type, Topics, then Data
// as the rest of the body); no headers are stored.
//
// An update's Seq is the stream sequence that the server assigns, returned
// in the publish acknowledgement, plus a base that is 0 until the Store
// detects a lost stream (see below). Stream sequences are contiguous and
// shared by every node. The stream keeps the newest Config.MaxLen messages
// and at most Config.MaxBytes bytes (MaxMsgs and MaxBytes with
// DiscardOld), so trimming is exact and never drops the newest update (an
// update bigger than MaxBytes is refused). It uses file storage with Config.Replicas replicas and
// allows direct gets.
//
// # Append and duplicate ids
//
// Append publishes the message with the header
// Nats-Expected-Last-Subject-Sequence: 0, so the server itself rejects it
// when the id's subject already holds a message: duplicate detection is
// exact over the whole retained history, for every node, with no dedupe
// window (Nats-Msg-Id is not used). Append waits for the acknowledgement,
// so a returned update is stored as durably as the stream's storage and
// replicas promise: written to the file store of a quorum of the replicas,
// which nats-server fsyncs every two minutes by default (set the server's
// jetstream sync_interval to "always" for an fsync per message, or rely on
// Replicas > 1). When the acknowledgement is lost (a timeout), the update
// may or may not be stored: Append returns [store.ErrOutcomeUnknown], and
// retrying the same explicit id then reports [store.ErrDuplicateID] if it
// was. A publish that no stream answers (the stream was deleted) was not
// stored.
//
// # Lost streams
//
// A stream deleted and created again, or a server restarted with its
// storage wiped, starts its sequences again at 1: positions that nodes
// hold would name other updates. Each Store asks for the stream's state
// every Config.CheckInterval, and whenever its consumer reports an error:
// a stream missing for a second is created again; a different creation
// time, or a last sequence below one the Store has seen, means the stream
// was lost. The Store then logs an ERROR and starts a new generation: its
// Seqs continue above every Seq it handed out (Seq = base + stream
// sequence, the base being the highest Seq handed out before), [Store.Wait]
// and [Store.Read] report [store.ErrLogReset] for the positions of the lost
// stream, and the consumer follows the new stream. Seqs of one update may
// then differ between nodes; ids do not.
//
// Two ids whose hashes share their first 128 bits would collide: the second
// Append reports ErrDuplicateID and Lookup reports only the first. The odds
// are negligible (about n²/2¹²⁹ for n retained ids).
//
// # Lookup, Read, Last
//
// Lookup is one direct get of the last message on the id's subject: the
// server's per-subject index answers without scanning, and a trimmed update
// is simply gone ([store.ErrNotFound]).
//
// Read fetches the wanted sequences with direct gets pipelined on the
// connection (up to 256 in flight, replies on one subscription per Store),
// so a Read of n updates costs one round trip rather than n. It reads up to
// the highest Seq the Store knows of (see Wait), so the live tail costs no
// stream info request; a Read from 0 asks the stream for its first
// sequence. When the update after `after` is missing, Read asks the stream
// for its first sequence and reports [store.ErrCursorGone] if it was
// trimmed (a message deleted by hand is a gap, and is skipped). Last is a
// stream info request and one direct get.
//
// # Wait
//
// Every Store follows the stream with one ordered, headers-only consumer
// that starts after the last sequence present at New. Each delivered
// message raises the highest known Seq and wakes every Wait with one closed
// channel, as does every Append on this node. The consumer only sees
// messages once they are stored, so a Wait that returns is always followed
// by a Read that sees the update, on any node.
//
// # Retention by age
//
// JetStream's own MaxAge would delete the newest update of an idle stream,
// which the store contract forbids, so the stream has no MaxAge. Instead,
// when Config.MaxAge is set, each Store purges, every MaxAge/4 (between
// 10ms and one minute), the oldest updates whose Time is older than MaxAge,
// stopping at the first younger one and never purging the newest. Every
// node does this; the purges are idempotent.
//
// # Limits
//
// Nodes should share one Config: New updates the stream's configuration,
// so the last node started wins. Rejecting a duplicate id that two nodes
// append in the same instant relies on the server serializing its
// expected-sequence check; Append treats both of JetStream's
// wrong-last-sequence error codes (10071, and 10164 from replicated
// streams) as a duplicate, but only a single server has been tested. Direct
// gets use the default JetStream API prefix ($JS.API), so JetStream domains
// are not supported. The caller owns the connection: it must outlive the
// Store and have JetStream enabled (nats-server 2.9 or later, for direct
// gets).
package natsstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-sse/herald/internal/record"
	"github.com/herald-sse/herald/internal/seqwait"
	"github.com/herald-sse/herald/store"
)

// Defaults for the zero fields of Config.
const (
	// DefaultStream is the stream name used when Config.Stream is empty.
	DefaultStream = "HERALD"
	// DefaultSubject is the subject prefix used when Config.Subject is
	// empty.
	DefaultSubject = "herald.updates"
	// DefaultMaxLen is the number of updates kept when Config.MaxLen is 0.
	DefaultMaxLen = 100_000
	// DefaultMaxBytes bounds the stream's size when Config.MaxBytes is 0:
	// 1 GiB.
	DefaultMaxBytes = 1 << 30
	// DefaultCheckInterval is how often a Store checks the stream when
	// Config.CheckInterval is 0.
	DefaultCheckInterval = 2 * time.Second
)

// pipeline is the largest number of direct gets in flight in one Read.
const pipeline = 256

// requestTimeout bounds each request when the caller's context has no
// deadline, so that a lost reply cannot block forever.
const requestTimeout = 5 * time.Second

// msgOverhead is what the server stores per message beside its subject,
// headers and data, at most.
const msgOverhead = 64

// expectHeader is the header of every Append, as sent.
const expectHeader = "NATS/1.0\r\n" + jetstream.ExpectedLastSubjSeqHeader + ": 0\r\n\r\n"

// Config configures a Store. The zero value is valid: every zero field
// means the documented default.
type Config struct {
	// Stream is the JetStream stream name. Empty means DefaultStream.
	Stream string
	// Subject is the subject prefix of the updates: the stream captures
	// Subject + ".*". It must be a literal subject (no wildcards, no
	// spaces, no empty tokens). Empty means DefaultSubject.
	Subject string
	// MaxLen is the number of newest updates kept (the stream's MaxMsgs,
	// discarding the oldest). Zero means DefaultMaxLen. Negative is
	// invalid.
	MaxLen int
	// MaxBytes bounds the stream's size in bytes (its MaxBytes,
	// discarding the oldest): a message counts its subject, headers and
	// encoded update plus the server's overhead, at least store.Size of
	// the update. An update too big to fit by itself is refused with
	// store.ErrInvalid, so the newest is always kept. Zero means
	// DefaultMaxBytes (1 GiB). Negative is invalid.
	MaxBytes int64
	// MaxAge purges updates whose Time is older than MaxAge, except the
	// newest. Zero means no age limit. Negative is invalid.
	MaxAge time.Duration
	// Replicas is the stream's number of replicas. Zero means 1. Negative
	// is invalid.
	Replicas int
	// CheckInterval is how often the Store asks for the stream's state to
	// notice that it was deleted, recreated or rewound (see the package
	// doc), and retries creating it while JetStream is unreachable. Zero
	// means DefaultCheckInterval (2s). Negative is invalid.
	CheckInterval time.Duration
	// Logger receives the errors of background work (trimming by age,
	// following and checking the stream) and an ERROR for every lost
	// stream detected. Nil means no logging.
	Logger *slog.Logger
}

// Store is a [store.Store] on a JetStream stream. It is safe for concurrent
// use. Create it with [New]; the caller closes it, and closes the NATS
// connection after it.
//
// Updates returned by Read are freshly decoded: callers may keep them.
type Store struct {
	cfg        Config
	nc         *nats.Conn
	js         jetstream.JetStream
	log        *slog.Logger
	prefix     string // cfg.Subject + "."
	directSubj string // the direct get subject of the stream

	// Direct gets are pipelined on one subscription, replySub, to
	// replyPrefix + "*"; each reply subject names its request and index.
	replyPrefix string
	replySub    *nats.Subscription
	nextReq     atomic.Uint64
	pmu         sync.Mutex // guards pending; never held with mu or gmu
	pending     map[uint64]chan *nats.Msg

	// wait holds the highest Seq known to be stored (it only grows) and
	// wakes every Wait. Its floor is gen.base.
	wait seqwait.Waiter

	// setupMu serializes creating the stream and the consumer.
	setupMu sync.Mutex
	// gmu guards gen and cc. Lock order: setupMu, gmu, wait's lock.
	gmu sync.Mutex
	gen generation
	cc  jetstream.ConsumeContext // follows gen.n; nil until set up
	// missingSince is when the stream was first seen missing, zero while
	// it exists.
	missingSince time.Time

	mu     sync.Mutex
	closed bool

	kick chan struct{} // size 1: asks the checker to check the stream now
	done chan struct{} // closed by Close: stops the goroutines and pending gets
	wg   sync.WaitGroup
}

// generation is the stream a Store believes in. Seq = base + the stream
// sequence. A lost stream (deleted and recreated, or rewound) starts a new
// generation whose base is the highest Seq handed out before, so Seqs keep
// increasing and stale positions (up to base) are recognized.
type generation struct {
	n       uint64    // counts resets
	created time.Time // the stream's creation time; zero until known
	base    uint64
	ready   bool // the consumer of generation n runs
}

var _ store.Store = (*Store)(nil)

// New returns a Store on the stream described by cfg on nc's JetStream,
// creating or updating the stream. It does not take ownership of nc. It
// returns an error for an invalid cfg or a closed nc. When JetStream
// cannot be reached (within ctx), New still succeeds: the Store retries in
// the background every CheckInterval and its calls fail until then.
func New(ctx context.Context, nc *nats.Conn, cfg Config) (*Store, error) {
	if cfg.Stream == "" {
		cfg.Stream = DefaultStream
	}
	if cfg.Subject == "" {
		cfg.Subject = DefaultSubject
	}
	if cfg.MaxLen == 0 {
		cfg.MaxLen = DefaultMaxLen
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	if cfg.CheckInterval == 0 {
		cfg.CheckInterval = DefaultCheckInterval
	}
	if err := validate(cfg); err != nil {
		return nil, fmt.Errorf("natsstore: new: %w", err)
	}
	if nc == nil {
		return nil, errors.New("natsstore: new: nil connection")
	}
	s := &Store{
		cfg:        cfg,
		nc:         nc,
		log:        cfg.Logger,
		prefix:     cfg.Subject + ".",
		directSubj: "$JS.API.DIRECT.GET." + cfg.Stream,
		kick:       make(chan struct{}, 1),
		done:       make(chan struct{}),
		pending:    make(map[uint64]chan *nats.Msg),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	var err error
	if s.js, err = jetstream.New(nc); err != nil {
		return nil, fmt.Errorf("natsstore: new: %w", err)
	}
	s.replyPrefix = nc.NewInbox() + "."
	if s.replySub, err = nc.Subscribe(s.replyPrefix+"*", s.onReply); err != nil {
		return nil, fmt.Errorf("natsstore: new: subscribe: %w", err)
	}
	if err := s.ensure(ctx); err != nil {
		s.log.Warn("natsstore: stream not ready, retrying in the background", "stream", cfg.Stream, "err", err)
	}
	s.wg.Go(s.checkLoop)
	if cfg.MaxAge > 0 {
		s.wg.Go(s.trimLoop)
	}
	return s, nil
}

// validate checks a Config whose defaults are filled in.
func validate(cfg Config) error {
	switch {
	case cfg.MaxLen < 0:
		return fmt.Errorf("negative MaxLen %d", cfg.MaxLen)
	case cfg.MaxBytes < 0:
		return fmt.Errorf("negative MaxBytes %d", cfg.MaxBytes)
	case cfg.MaxAge < 0:
		return fmt.Errorf("negative MaxAge %v", cfg.MaxAge)
	case cfg.Replicas < 0:
		return fmt.Errorf("negative Replicas %d", cfg.Replicas)
	case cfg.CheckInterval < 0:
		return fmt.Errorf("negative CheckInterval %v", cfg.CheckInterval)
	case strings.ContainsAny(cfg.Stream, " \t\r\n.*>/\\"):
		return fmt.Errorf("invalid stream name %q", cfg.Stream)
	}
	for tok := range strings.SplitSeq(cfg.Subject, ".") {
		if tok == "" || tok == "*" || tok == ">" || strings.ContainsAny(tok, " \t\r\n") {
			return fmt.Errorf("invalid subject %q", cfg.Subject)
		}
	}
	return nil
}

// streamConfig is the configuration of the stream.
func (s *Store) streamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        s.cfg.Stream,
		Description: "Herald event log",
		Subjects:    []string{s.cfg.Subject + ".*"},
		Retention:   jetstream.LimitsPolicy,
		MaxMsgs:     int64(s.cfg.MaxLen),
		MaxBytes:    s.cfg.MaxBytes,
		Discard:     jetstream.DiscardOld,
		Storage:     jetstream.FileStorage,
		Replicas:    s.cfg.Replicas,
		AllowDirect: true,
	}
}

// ensure creates or updates the stream, then checks it (see observe) and
// starts the consumer of the current generation. Two nodes may run it at
// once: the loser of a creation race updates instead.
func (s *Store) ensure(ctx context.Context) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	s.setupMu.Lock()
	defer s.setupMu.Unlock()
	g, known := s.snapshot()
	var st jetstream.Stream
	var err error
	for range 3 {
		st, err = s.js.CreateOrUpdateStream(ctx, s.streamConfig())
		if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) && !errors.Is(err, jetstream.ErrStreamNotFound) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("stream %q: %w", s.cfg.Stream, err)
	}
	return s.observeLocked(ctx, st.CachedInfo(), g, known)
}

// snapshot returns the current generation and the stream sequence of the
// newest update known, to compare a stream info requested afterwards with.
func (s *Store) snapshot() (generation, uint64) {
	s.gmu.Lock()
	defer s.gmu.Unlock()
	return s.gen, s.wait.Last() - s.gen.base
}

// recreateDelay is how long a stream must have been missing before a
// Store creates it again: nats-server 2.9 removes a deleted stream's files
// after answering, and a stream created again at once loses its messages
// to that removal.
const recreateDelay = time.Second

// errMissing reports that the stream does not exist (yet again).
var errMissing = errors.New("stream missing")

// check asks for the stream's state and observes it; a stream missing for
// recreateDelay is created again.
func (s *Store) check(ctx context.Context) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	g, known := s.snapshot()
	st, err := s.js.Stream(ctx, s.cfg.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s.gmu.Lock()
		if s.missingSince.IsZero() {
			s.missingSince = time.Now()
		}
		since := time.Since(s.missingSince)
		s.gmu.Unlock()
		if since < recreateDelay {
			return fmt.Errorf("%w: %q", errMissing, s.cfg.Stream)
		}
		s.log.Warn("natsstore: stream missing: creating it again", "stream", s.cfg.Stream)
		err = s.ensure(ctx)
		if err == nil {
			s.gmu.Lock()
			s.missingSince = time.Time{}
			s.gmu.Unlock()
		}
		return err
	}
	if err != nil {
		return err
	}
	s.setupMu.Lock()
	defer s.setupMu.Unlock()
	return s.observeLocked(ctx, st.CachedInfo(), g, known)
}

// observeLocked compares info, requested after taking g and known (the
// stream sequence of the newest update known then), with the store's
// generation: another creation time, or a last sequence below known,
// means the stream was lost, and starts a new generation. It then starts
// the consumer of the generation if it does not run. s.setupMu must be
// held.
func (s *Store) observeLocked(ctx context.Context, info *jetstream.StreamInfo, g generation, known uint64) error {
	s.gmu.Lock()
	switch {
	case s.gen.n != g.n:
		// Another call found the stream lost meanwhile: info may be older.
	case s.gen.created.IsZero():
		s.gen.created = info.Created
	case !info.Created.Equal(s.gen.created):
		s.resetLocked(info.Created, "the stream was deleted and created again")
	case info.State.LastSeq < known:
		s.resetLocked(info.Created, "the stream's sequence went back")
	}
	gen := s.gen
	if gen.created.Equal(info.Created) {
		s.wait.Advance(gen.base + info.State.LastSeq)
	}
	s.gmu.Unlock()
	if gen.ready || !gen.created.Equal(info.Created) {
		return nil
	}
	// Follow the stream from the update after the newest in info.
	cons, err := s.js.OrderedConsumer(ctx, s.cfg.Stream, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   info.State.LastSeq + 1,
		HeadersOnly:   true,
	})
	if err != nil {
		return fmt.Errorf("consumer: %w", err)
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) { s.onMsg(gen.n, msg) },
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			s.log.Warn("natsstore: consumer", "stream", s.cfg.Stream, "err", err)
			select {
			case s.kick <- struct{}{}:
			default:
			}
		}))
	if err != nil {
		return fmt.Errorf("consume: %w", err)
	}
	s.gmu.Lock()
	defer s.gmu.Unlock()
	if s.gen.n != gen.n || s.isClosed() {
		cc.Stop()
		return nil
	}
	if s.cc != nil {
		s.cc.Stop()
	}
	s.cc = cc
	s.gen.ready = true
	return nil
}

// resetLocked starts a new generation for the stream created at created.
// s.gmu must be held.
func (s *Store) resetLocked(created time.Time, why string) {
	old := s.gen
	s.gen = generation{n: old.n + 1, created: created, base: s.wait.Reset()}
	if s.cc != nil {
		s.cc.Stop()
		s.cc = nil
	}
	s.log.Error("natsstore: the stream was lost or restarted its sequence: positions and ids taken before are stale",
		"stream", s.cfg.Stream, "why", why, "old_created", old.created, "new_created", created, "last_seq", s.gen.base)
}

// checkLoop checks the stream every CheckInterval, and at once when the
// consumer reports an error, until Close.
func (s *Store) checkLoop() {
	t := time.NewTicker(s.cfg.CheckInterval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		case <-s.kick:
		}
		err := s.check(context.Background())
		switch {
		case err != nil && !failing && !s.isClosed():
			s.log.Warn("natsstore: checking the stream", "stream", s.cfg.Stream, "err", err)
			failing = true
		case err == nil && failing:
			s.log.Info("natsstore: stream reachable again", "stream", s.cfg.Stream)
			failing = false
		}
	}
}

// onMsg is called by the consumer of generation n for every stored
// message.
func (s *Store) onMsg(n uint64, msg jetstream.Msg) {
	md, err := msg.Metadata()
	if err != nil {
		return
	}
	s.gmu.Lock()
	if s.gen.n == n {
		s.wait.Advance(s.gen.base + md.Sequence.Stream)
	}
	s.gmu.Unlock()
}

func (s *Store) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// withTimeout bounds ctx by requestTimeout when it has no deadline.
func withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, requestTimeout)
}

// ready sets the stream up if it is not yet.
func (s *Store) ready(ctx context.Context) error {
	s.gmu.Lock()
	ok := s.gen.ready
	s.gmu.Unlock()
	if ok {
		return nil
	}
	return s.ensure(ctx)
}

// Append publishes u and waits for the server's acknowledgement. It
// returns u with Seq, ID and Time set. It copies u.Topics, so the caller
// may reuse the slice. When the acknowledgement does not come in time, the
// update may or may not be stored: Append returns store.ErrOutcomeUnknown.
func (s *Store) Append(ctx context.Context, u store.Update) (store.Update, error) {
	if err := store.Validate(u); err != nil {
		return store.Update{}, fmt.Errorf("natsstore: append: %w", err)
	}
	if s.isClosed() {
		return store.Update{}, fmt.Errorf("natsstore: append: %w", store.ErrClosed)
	}
	explicit := u.ID != ""
	if !explicit {
		u.ID = store.NewID()
	}
	if u.Time.IsZero() {
		u.Time = time.Now().Round(0)
	}
	u.Topics = slices.Clone(u.Topics)
	if err := s.ready(ctx); err != nil {
		return store.Update{}, fmt.Errorf("natsstore: append: %w", err)
	}
	for {
		size := 2 + 3*binaryMaxVarint + len(u.ID) + len(u.Type) + len(u.Data)
		for _, t := range u.Topics {
			size += binaryMaxVarint + len(t)
		}
		msg := &nats.Msg{
			Subject: s.prefix + idToken(u.ID),
			Header:  nats.Header{jetstream.ExpectedLastSubjSeqHeader: []string{"0"}},
			Data:    record.Append(make([]byte, 0, size), u),
		}
		if n := int64(msgOverhead + len(msg.Subject) + len(expectHeader) + len(msg.Data)); n > s.cfg.MaxBytes {
			return store.Update{}, fmt.Errorf("natsstore: append: update of %d bytes larger than the stream's MaxBytes %d: %w",
				n, s.cfg.MaxBytes, store.ErrInvalid)
		}
		g, _ := s.snapshot()
		ack, err := s.js.PublishMsg(ctx, msg)
		if isWrongLastSeq(err) || (err == nil && ack.Duplicate) {
			if explicit {
				return store.Update{}, fmt.Errorf("natsstore: append %q: %w", u.ID, store.ErrDuplicateID)
			}
			u.ID = store.NewID() // a generated id cannot collide; be safe anyway
			continue
		}
		if errors.Is(err, jetstream.ErrNoStreamResponse) {
			// No stream listens: it was deleted. The checker creates it
			// again; nothing was stored.
			select {
			case s.kick <- struct{}{}:
			default:
			}
			return store.Update{}, fmt.Errorf("natsstore: append: %w: %q", errMissing, s.cfg.Stream)
		}
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || errors.Is(err, nats.ErrTimeout) {
			return store.Update{}, fmt.Errorf("natsstore: append: %w (%w)", store.ErrOutcomeUnknown, err)
		}
		if err != nil {
			return store.Update{}, fmt.Errorf("natsstore: append: %w", err)
		}
		s.gmu.Lock()
		same := s.gen.n == g.n
		if same {
			s.wait.Advance(g.base + ack.Sequence)
		}
		s.gmu.Unlock()
		if !same {
			return store.Update{}, fmt.Errorf("natsstore: append: %w: the stream was lost meanwhile", store.ErrOutcomeUnknown)
		}
		u.Seq = g.base + ack.Sequence
		return u, nil
	}
}

// binaryMaxVarint is the size of the longest varint.
const binaryMaxVarint = 10

// isWrongLastSeq reports whether err is the server's rejection of an
// expected last subject sequence.
func isWrongLastSeq(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// Lookup returns the Seq of the retained update with the given id, or
// store.ErrNotFound. It is one direct get by subject.
func (s *Store) Lookup(ctx context.Context, id string) (uint64, error) {
	if s.isClosed() {
		return 0, fmt.Errorf("natsstore: lookup: %w", store.ErrClosed)
	}
	if err := s.ready(ctx); err != nil {
		return 0, fmt.Errorf("natsstore: lookup %q: %w", id, err)
	}
	g, _ := s.snapshot()
	rctx, cancel := withTimeout(ctx)
	defer cancel()
	m, err := s.nc.RequestWithContext(rctx, s.directSubj, []byte(`{"last_by_subj":"`+s.prefix+idToken(id)+`"}`))
	if err != nil {
		return 0, fmt.Errorf("natsstore: lookup %q: %w", id, err)
	}
	switch status := m.Header.Get("Status"); status {
	case "":
	case "404":
		return 0, fmt.Errorf("natsstore: lookup %q: %w", id, store.ErrNotFound)
	default:
		return 0, fmt.Errorf("natsstore: lookup %q: status %s %s", id, status, m.Header.Get("Description"))
	}
	seq, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("natsstore: lookup %q: bad sequence header %q", id, m.Header.Get(jetstream.SequenceHeader))
	}
	u, err := record.Decode(seq, m.Data)
	if err != nil {
		return 0, fmt.Errorf("natsstore: lookup %q: %w", id, err)
	}
	if u.ID != id { // a hash collision: the subject belongs to another id
		return 0, fmt.Errorf("natsstore: lookup %q: %w", id, store.ErrNotFound)
	}
	s.gmu.Lock()
	defer s.gmu.Unlock()
	if s.gen.n != g.n {
		return 0, fmt.Errorf("natsstore: lookup %q: %w (the stream was lost meanwhile)", id, store.ErrNotFound)
	}
	s.wait.Advance(g.base + seq)
	return g.base + seq, nil
}

// Read returns up to limit updates with Seq > after, oldest first, or
// store.ErrCursorGone when updates after `after` were trimmed, or
// store.ErrLogReset when after belongs to a stream since lost. A limit of
// zero or less returns no updates.
//
// Read returns the updates up to the newest that this Store knows of: the
// ones it appended and the ones its consumer has seen, which is normally
// every update appended on any node until a millisecond ago. After Wait
// returns, Read sees the update that woke it.
func (s *Store) Read(ctx context.Context, after uint64, limit int) ([]store.Update, error) {
	if s.isClosed() {
		return nil, fmt.Errorf("natsstore: read: %w", store.ErrClosed)
	}
	g, known := s.snapshot()
	if after != 0 && after <= g.base {
		return nil, fmt.Errorf("natsstore: read after %d: %w", after, store.ErrLogReset)
	}
	if limit <= 0 {
		return nil, nil
	}
	pos := after // the stream sequence of after
	if after != 0 {
		pos -= g.base
	}
	from, last := pos+1, known
	if after == 0 {
		// From the oldest retained update: ask where it is.
		if err := s.ready(ctx); err != nil {
			return nil, fmt.Errorf("natsstore: read: %w", err)
		}
		st, err := s.js.Stream(ctx, s.cfg.Stream)
		if err != nil {
			return nil, fmt.Errorf("natsstore: read: %w", err)
		}
		info := st.CachedInfo()
		s.setupMu.Lock()
		err = s.observeLocked(ctx, info, g, known)
		s.setupMu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("natsstore: read: %w", err)
		}
		if g2, _ := s.snapshot(); g2.n != g.n {
			return nil, nil // the stream was lost: read again
		}
		if info.State.Msgs == 0 {
			return nil, nil
		}
		from, last = info.State.FirstSeq, max(last, info.State.LastSeq)
	}
	if from > last {
		return nil, nil
	}
	to := min(last, from+uint64(limit)-1)
	out := make([]store.Update, 0, to-from+1)
	for lo := from; lo <= to; lo += pipeline {
		hi := min(to, lo+pipeline-1)
		msgs, err := s.getRange(ctx, lo, hi)
		if err != nil {
			return nil, fmt.Errorf("natsstore: read after %d: %w", after, err)
		}
		for i, m := range msgs {
			seq := lo + uint64(i)
			if m == nil {
				// Trimmed, or deleted by hand (a gap), or the stream was
				// lost. Skipping trimmed updates is only right when
				// reading from the oldest.
				if len(out) == 0 && after != 0 && seq == pos+1 {
					if err := s.checkCursor(ctx, after, pos, g, known); err != nil {
						return nil, err
					}
				}
				continue
			}
			u, err := record.Decode(g.base+seq, m.Data)
			if err != nil {
				return nil, fmt.Errorf("natsstore: read after %d: %w", after, err)
			}
			out = append(out, u)
		}
	}
	if g2, _ := s.snapshot(); g2.n != g.n {
		if after != 0 {
			return nil, fmt.Errorf("natsstore: read after %d: %w", after, store.ErrLogReset)
		}
		return nil, nil
	}
	return out, nil
}

// checkCursor returns store.ErrLogReset if the stream was lost, and
// store.ErrCursorGone if pos+1 (the stream sequence after after) is older
// than the stream's first sequence.
func (s *Store) checkCursor(ctx context.Context, after, pos uint64, g generation, known uint64) error {
	st, err := s.js.Stream(ctx, s.cfg.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		err = s.check(ctx)
		if g2, _ := s.snapshot(); g2.n != g.n {
			return fmt.Errorf("natsstore: read after %d: %w", after, store.ErrLogReset)
		}
	}
	if err != nil {
		return fmt.Errorf("natsstore: read after %d: %w", after, err)
	}
	info := st.CachedInfo()
	s.setupMu.Lock()
	err = s.observeLocked(ctx, info, g, known)
	s.setupMu.Unlock()
	if g2, _ := s.snapshot(); g2.n != g.n {
		return fmt.Errorf("natsstore: read after %d: %w", after, store.ErrLogReset)
	}
	if err != nil {
		return fmt.Errorf("natsstore: read after %d: %w", after, err)
	}
	if pos+1 < info.State.FirstSeq {
		return fmt.Errorf("natsstore: read after %d: %w", after, store.ErrCursorGone)
	}
	return nil
}

// getRange fetches the messages with sequences lo..hi with pipelined
// direct gets. A message that does not exist is nil.
func (s *Store) getRange(ctx context.Context, lo, hi uint64) ([]*nats.Msg, error) {
	out, err := s.directRange(ctx, lo, hi)
	if err != nil {
		return nil, err
	}
	// A direct get's "not found" is checked with the stream's leader:
	// nats-server 2.9 has been seen answering direct gets of a stream
	// created again (by two nodes at once) with 404 for stored messages.
	for i, m := range out {
		if m == nil {
			if out[i], err = s.leaderGet(ctx, lo+uint64(i)); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// leaderGet fetches the message with sequence seq with the stream API
// (answered by the stream's leader, not a direct get), or nil if none.
func (s *Store) leaderGet(ctx context.Context, seq uint64) (*nats.Msg, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	m, err := s.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+s.cfg.Stream, []byte(`{"seq":`+strconv.FormatUint(seq, 10)+`}`))
	if err != nil {
		return nil, fmt.Errorf("get %d: %w", seq, err)
	}
	var resp struct {
		Message *struct {
			Seq  uint64 `json:"seq"`
			Data []byte `json:"data"`
		} `json:"message"`
		Error *struct {
			Code        int    `json:"code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		return nil, fmt.Errorf("get %d: %w", seq, err)
	}
	switch {
	case resp.Error != nil && resp.Error.Code == 404:
		return nil, nil
	case resp.Error != nil:
		return nil, fmt.Errorf("get %d: %s", seq, resp.Error.Description)
	case resp.Message == nil || resp.Message.Seq != seq:
		return nil, fmt.Errorf("get %d: unexpected reply %q", seq, m.Data)
	}
	return &nats.Msg{Data: resp.Message.Data}, nil
}

// directRange fetches the messages with sequences lo..hi with pipelined
// direct gets. A message that does not exist is nil.
func (s *Store) directRange(ctx context.Context, lo, hi uint64) ([]*nats.Msg, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	n := int(hi - lo + 1)
	id := s.nextReq.Add(1)
	ch := make(chan *nats.Msg, n)
	s.pmu.Lock()
	s.pending[id] = ch
	s.pmu.Unlock()
	defer func() {
		s.pmu.Lock()
		delete(s.pending, id)
		s.pmu.Unlock()
	}()

	prefix := strconv.AppendUint([]byte(s.replyPrefix), id, 10)
	prefix = append(prefix, '_')
	var req, reply []byte
	for i := range n {
		req = append(req[:0], `{"seq":`...)
		req = strconv.AppendUint(req, lo+uint64(i), 10)
		req = append(req, '}')
		reply = strconv.AppendInt(append(reply[:0], prefix...), int64(i), 10)
		if err := s.nc.PublishRequest(s.directSubj, string(reply), req); err != nil {
			return nil, err
		}
	}
	out := make([]*nats.Msg, n)
	for got := 0; got < n; {
		select {
		case m := <-ch:
			_, i, ok := parseReply(m.Subject[len(s.replyPrefix):])
			if !ok || i >= uint64(n) {
				continue
			}
			seq := lo + i
			if status := m.Header.Get("Status"); status != "" {
				if status != "404" {
					return nil, fmt.Errorf("direct get %d: status %s %s", seq, status, m.Header.Get("Description"))
				}
				m = nil
			} else if h := m.Header.Get(jetstream.SequenceHeader); h != strconv.FormatUint(seq, 10) {
				return nil, fmt.Errorf("direct get %d: got sequence %q", seq, h)
			}
			out[i] = m
			got++
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.done:
			return nil, store.ErrClosed
		}
	}
	return out, nil
}

// parseReply parses the last token of a reply subject, "<request>_<index>".
func parseReply(tok string) (id, i uint64, ok bool) {
	a, b, ok := strings.Cut(tok, "_")
	if !ok {
		return 0, 0, false
	}
	id, err1 := strconv.ParseUint(a, 10, 64)
	i, err2 := strconv.ParseUint(b, 10, 64)
	return id, i, err1 == nil && err2 == nil
}

// onReply hands a direct get reply to the getRange that asked for it.
// Replies to requests that gave up are dropped.
func (s *Store) onReply(m *nats.Msg) {
	id, _, ok := parseReply(m.Subject[len(s.replyPrefix):])
	if !ok {
		return
	}
	s.pmu.Lock()
	ch := s.pending[id]
	s.pmu.Unlock()
	if ch != nil {
		select {
		case ch <- m: // never blocks: ch has room for every reply
		default:
		}
	}
}

// Wait blocks until an update with Seq > after is stored (by any node), ctx
// is done or the store is closed. It returns store.ErrLogReset when the
// stream was found lost since after was taken.
func (s *Store) Wait(ctx context.Context, after uint64) error {
	err := s.wait.Wait(ctx, after)
	if errors.Is(err, store.ErrClosed) || errors.Is(err, store.ErrLogReset) {
		return fmt.Errorf("natsstore: wait: %w", err)
	}
	return err
}

// Last returns the Seq and ID of the newest update, or 0 and "" when the
// stream is empty.
func (s *Store) Last(ctx context.Context) (uint64, string, error) {
	if s.isClosed() {
		return 0, "", fmt.Errorf("natsstore: last: %w", store.ErrClosed)
	}
	if err := s.ready(ctx); err != nil {
		return 0, "", fmt.Errorf("natsstore: last: %w", err)
	}
	for range 3 {
		g, known := s.snapshot()
		st, err := s.js.Stream(ctx, s.cfg.Stream)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			err = s.check(ctx)
			if err == nil {
				continue
			}
		}
		if err != nil {
			return 0, "", fmt.Errorf("natsstore: last: %w", err)
		}
		info := st.CachedInfo()
		s.setupMu.Lock()
		err = s.observeLocked(ctx, info, g, known)
		s.setupMu.Unlock()
		if err != nil {
			return 0, "", fmt.Errorf("natsstore: last: %w", err)
		}
		g2, _ := s.snapshot()
		if g2.n != g.n {
			continue // the stream was lost: look at the new one
		}
		if info.State.Msgs == 0 {
			return 0, "", nil
		}
		seq := info.State.LastSeq
		msgs, err := s.getRange(ctx, seq, seq)
		if err != nil {
			return 0, "", fmt.Errorf("natsstore: last: %w", err)
		}
		if msgs[0] == nil {
			continue // trimmed by a concurrent append: look again
		}
		u, err := record.Decode(seq, msgs[0].Data)
		if err != nil {
			return 0, "", fmt.Errorf("natsstore: last: %w", err)
		}
		return g.base + seq, u.ID, nil
	}
	return 0, "", errors.New("natsstore: last: the newest update keeps changing")
}

// trimLoop purges updates older than cfg.MaxAge until Close.
func (s *Store) trimLoop() {
	interval := min(max(s.cfg.MaxAge/4, 10*time.Millisecond), time.Minute)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		err := s.trimAge(ctx, time.Now())
		cancel()
		if err != nil && !s.isClosed() {
			s.log.Warn("natsstore: trim by age", "stream", s.cfg.Stream, "err", err)
		}
	}
}

// trimAge purges the oldest updates whose Time is before now - MaxAge,
// stopping at the first younger one and keeping the newest.
func (s *Store) trimAge(ctx context.Context, now time.Time) error {
	cutoff := now.Add(-s.cfg.MaxAge)
	stream, err := s.js.Stream(ctx, s.cfg.Stream)
	if err != nil {
		return err
	}
	st := stream.CachedInfo().State
	if st.Msgs <= 1 {
		return nil
	}
	keep := st.FirstSeq // the first sequence to keep
	chunk := uint64(1)  // look at the oldest alone first: usually enough
scan:
	for keep < st.LastSeq {
		msgs, err := s.getRange(ctx, keep, min(st.LastSeq-1, keep+chunk-1))
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if m != nil {
				u, err := record.Decode(keep, m.Data)
				if err != nil {
					return err
				}
				if !u.Time.Before(cutoff) {
					break scan
				}
			}
			keep++
		}
		chunk = pipeline
	}
	if keep == st.FirstSeq {
		return nil
	}
	return stream.Purge(ctx, jetstream.WithPurgeSequence(keep))
}

// Close stops following the stream and wakes every Wait with
// store.ErrClosed. It leaves the stream and the connection alone. It is
// idempotent and returns nil.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.wait.Close()
	close(s.done)
	s.mu.Unlock()

	s.wg.Wait() // the checker: no consumer starts after this
	s.setupMu.Lock()
	s.gmu.Lock()
	cc := s.cc
	s.cc = nil
	s.gmu.Unlock()
	s.setupMu.Unlock()
	if cc != nil {
		cc.Stop()
		select {
		case <-cc.Closed():
		case <-time.After(requestTimeout):
			s.log.Warn("natsstore: close: consumer did not stop", "stream", s.cfg.Stream)
		}
	}
	s.replySub.Unsubscribe()
	return nil
}
