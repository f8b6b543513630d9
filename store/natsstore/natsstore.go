// Package natsstore is a [store.Store] on a NATS JetStream stream, so that
// several Herald nodes connected to the same NATS system share one history:
// an update published on any node is replayed and followed on every node,
// with the same Seq and ID.
//
// # Layout
//
// [New] creates (or updates) one stream, Config.Stream, that captures the
// subjects Config.Subject + ".*". Each update is one message on the subject
// Config.Subject + "." + token(ID), where the token is the first 128 bits
// of the SHA-256 of the update id in unpadded base64url (22 characters), so
// any id is a valid, short subject token. The message body is a compact
// binary record (version, flags, Time, Retry, ID, Type, Topics, then Data
// as the rest of the body); no headers are stored.
//
// An update's Seq is the stream sequence that the server assigns, returned
// in the publish acknowledgement. Stream sequences are contiguous and shared
// by every node. The stream keeps the newest Config.MaxLen messages
// (MaxMsgs with DiscardOld), so trimming by count is exact and never drops
// the newest update. It uses file storage with Config.Replicas replicas and
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
// may or may not be stored; retrying the same explicit id then reports
// [store.ErrDuplicateID] if it was.
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
)

// pipeline is the largest number of direct gets in flight in one Read.
const pipeline = 256

// requestTimeout bounds each request when the caller's context has no
// deadline, so that a lost reply cannot block forever.
const requestTimeout = 5 * time.Second

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
	// MaxAge purges updates whose Time is older than MaxAge, except the
	// newest. Zero means no age limit. Negative is invalid.
	MaxAge time.Duration
	// Replicas is the stream's number of replicas. Zero means 1. Negative
	// is invalid.
	Replicas int
	// Logger receives the errors of background work: trimming by age and
	// following the stream. Nil means no logging.
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
	stream     jetstream.Stream
	log        *slog.Logger
	prefix     string // cfg.Subject + "."
	directSubj string // the direct get subject of the stream
	cc         jetstream.ConsumeContext

	// Direct gets are pipelined on one subscription, replySub, to
	// replyPrefix + "*"; each reply subject names its request and index.
	replyPrefix string
	replySub    *nats.Subscription
	nextReq     atomic.Uint64
	pmu         sync.Mutex // guards pending; never held with mu
	pending     map[uint64]chan *nats.Msg

	// wait holds the highest Seq known to be stored (it only grows) and
	// wakes every Wait.
	wait seqwait.Waiter

	mu     sync.Mutex
	closed bool

	done chan struct{} // closed by Close: stops trimming and pending gets
	wg   sync.WaitGroup
}

var _ store.Store = (*Store)(nil)

// New creates or updates the stream described by cfg on nc's JetStream and
// returns a Store that uses it. It does not take ownership of nc. It
// returns an error for an invalid cfg or when JetStream cannot be reached.
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
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
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
	s.stream, err = s.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        cfg.Stream,
		Description: "Herald event log",
		Subjects:    []string{cfg.Subject + ".*"},
		Retention:   jetstream.LimitsPolicy,
		MaxMsgs:     int64(cfg.MaxLen),
		MaxBytes:    -1,
		Discard:     jetstream.DiscardOld,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		AllowDirect: true,
	})
	if err != nil {
		return nil, fmt.Errorf("natsstore: new: stream %q: %w", cfg.Stream, err)
	}
	info, err := s.stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("natsstore: new: stream %q: %w", cfg.Stream, err)
	}
	s.wait.Advance(info.State.LastSeq)

	s.replyPrefix = nc.NewInbox() + "."
	if s.replySub, err = nc.Subscribe(s.replyPrefix+"*", s.onReply); err != nil {
		return nil, fmt.Errorf("natsstore: new: subscribe: %w", err)
	}

	cons, err := s.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   info.State.LastSeq + 1,
		HeadersOnly:   true,
	})
	if err != nil {
		s.replySub.Unsubscribe()
		return nil, fmt.Errorf("natsstore: new: consumer: %w", err)
	}
	s.cc, err = cons.Consume(s.onMsg, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		s.log.Warn("natsstore: consumer", "stream", cfg.Stream, "err", err)
	}))
	if err != nil {
		s.replySub.Unsubscribe()
		return nil, fmt.Errorf("natsstore: new: consume: %w", err)
	}
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
	case cfg.MaxAge < 0:
		return fmt.Errorf("negative MaxAge %v", cfg.MaxAge)
	case cfg.Replicas < 0:
		return fmt.Errorf("negative Replicas %d", cfg.Replicas)
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

// onMsg is called by the consumer for every stored message.
func (s *Store) onMsg(msg jetstream.Msg) {
	md, err := msg.Metadata()
	if err != nil {
		return
	}
	s.advance(md.Sequence.Stream)
}

// advance records that seq is stored and wakes the waiters if it is new.
func (s *Store) advance(seq uint64) { s.wait.Advance(seq) }

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

// Append publishes u and waits for the server's acknowledgement. It
// returns u with Seq (the stream sequence), ID and Time set. It copies
// u.Topics, so the caller may reuse the slice.
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
		ack, err := s.js.PublishMsg(ctx, msg)
		if isWrongLastSeq(err) || (err == nil && ack.Duplicate) {
			if explicit {
				return store.Update{}, fmt.Errorf("natsstore: append %q: %w", u.ID, store.ErrDuplicateID)
			}
			u.ID = store.NewID() // a generated id cannot collide; be safe anyway
			continue
		}
		if err != nil {
			return store.Update{}, fmt.Errorf("natsstore: append: %w", err)
		}
		u.Seq = ack.Sequence
		s.advance(u.Seq)
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
	raw, err := s.stream.GetLastMsgForSubject(ctx, s.prefix+idToken(id))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, fmt.Errorf("natsstore: lookup %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("natsstore: lookup %q: %w", id, err)
	}
	u, err := record.Decode(raw.Sequence, raw.Data)
	if err != nil {
		return 0, fmt.Errorf("natsstore: lookup %q: %w", id, err)
	}
	if u.ID != id { // a hash collision: the subject belongs to another id
		return 0, fmt.Errorf("natsstore: lookup %q: %w", id, store.ErrNotFound)
	}
	return raw.Sequence, nil
}

// Read returns up to limit updates with Seq > after, oldest first, or
// store.ErrCursorGone when updates after `after` were trimmed. A limit of
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
	if limit <= 0 {
		return nil, nil
	}
	from, last := after+1, s.wait.Last()
	if after == 0 {
		// From the oldest retained update: ask where it is.
		info, err := s.stream.Info(ctx)
		if err != nil {
			return nil, fmt.Errorf("natsstore: read: %w", err)
		}
		if info.State.Msgs == 0 {
			return nil, nil
		}
		s.advance(info.State.LastSeq)
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
				// Trimmed, or deleted by hand (a gap). Skipping trimmed
				// updates is only right when reading from the oldest.
				if len(out) == 0 && after != 0 && seq == after+1 {
					if err := s.checkCursor(ctx, after); err != nil {
						return nil, err
					}
				}
				continue
			}
			u, err := record.Decode(seq, m.Data)
			if err != nil {
				return nil, fmt.Errorf("natsstore: read after %d: %w", after, err)
			}
			out = append(out, u)
		}
	}
	return out, nil
}

// checkCursor returns store.ErrCursorGone if after+1 is older than the
// stream's first sequence.
func (s *Store) checkCursor(ctx context.Context, after uint64) error {
	info, err := s.stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("natsstore: read after %d: %w", after, err)
	}
	if after+1 < info.State.FirstSeq {
		return fmt.Errorf("natsstore: read after %d: %w", after, store.ErrCursorGone)
	}
	return nil
}

// getRange fetches the messages with sequences lo..hi with pipelined
// direct gets. A message that does not exist is nil.
func (s *Store) getRange(ctx context.Context, lo, hi uint64) ([]*nats.Msg, error) {
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
// is done or the store is closed.
func (s *Store) Wait(ctx context.Context, after uint64) error {
	err := s.wait.Wait(ctx, after)
	if errors.Is(err, store.ErrClosed) {
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
	for range 3 {
		info, err := s.stream.Info(ctx)
		if err != nil {
			return 0, "", fmt.Errorf("natsstore: last: %w", err)
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
		return seq, u.ID, nil
	}
	return 0, "", errors.New("natsstore: last: the newest update keeps being trimmed")
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
	info, err := s.stream.Info(ctx)
	if err != nil {
		return err
	}
	st := info.State
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
	return s.stream.Purge(ctx, jetstream.WithPurgeSequence(keep))
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

	s.cc.Stop()
	select {
	case <-s.cc.Closed():
	case <-time.After(requestTimeout):
		s.log.Warn("natsstore: close: consumer did not stop", "stream", s.cfg.Stream)
	}
	s.replySub.Unsubscribe()
	s.wg.Wait()
	return nil
}
