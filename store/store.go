// Package store defines the event log that Herald's broker reads and writes.
//
// A [Store] is an append-only log of [Update] values. The log, not the
// broker, is the source of truth: publishing appends, live delivery follows
// the log with [Store.Read] and [Store.Wait], and a client that reconnects
// with a Last-Event-ID is replayed from the same log after [Store.Lookup]
// finds its position. Because every node of a cluster reads the same shared
// log (Redis Streams, NATS JetStream), a client may reconnect to any node.
//
// Positions are uint64 sequence numbers assigned by the log on append. They
// are strictly increasing but need not be contiguous, so backends whose
// native positions have gaps (JetStream subjects filters, trimmed Redis
// streams) fit the contract. Sequence 0 is never used: Read(ctx, 0, n)
// reads from the start of the retained history. Ids are chosen by the
// caller (a hub mints a UUIDv7) or, when empty, by Append; they are unique
// in the retained history but carry no order.
//
// A shared engine can lose the log behind the process's back (a flush, a
// failover to a replica that lagged, a stream deleted and created again).
// Stores on such engines detect it and report [ErrLogReset] from Read and
// Wait for the positions taken before; stores whose log only this process
// writes (memory, a locked file) never do.
//
// Every implementation returns the sentinel errors below (wrapped is fine;
// callers use errors.Is) and passes the conformance suite in
// [github.com/herald-sse/herald/store/storetest].
package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Sentinel errors returned by every Store.
var (
	// ErrNotFound reports that an update id is not in the retained history:
	// it was never appended, or it has been trimmed.
	ErrNotFound = errors.New("store: id not found")
	// ErrClosed reports a call on a store after Close.
	ErrClosed = errors.New("store: closed")
	// ErrCursorGone reports that updates after the requested position have
	// been trimmed, so reading from there would silently skip events.
	ErrCursorGone = errors.New("store: position trimmed from history")
	// ErrDuplicateID reports an Append whose explicit ID is already in the
	// retained history.
	ErrDuplicateID = errors.New("store: duplicate id")
	// ErrInvalid reports an Append of an update that cannot be stored
	// (no topic, or an ID with CR, LF or NUL).
	ErrInvalid = errors.New("store: invalid update")
	// ErrLogReset reports that the log lost updates or restarted its
	// positions since the caller's position was taken (the engine was
	// flushed, restarted without persistence, failed over to a lagging
	// replica, or its stream was deleted and recreated). Positions and ids
	// the caller holds may be gone or name other updates. Read and Wait
	// return it when they detect this; the caller re-reads Last and follows
	// the log from there.
	ErrLogReset = errors.New("store: log reset; positions lost")
	// ErrOutcomeUnknown reports an Append that may or may not have stored
	// the update (the engine timed out after the request was sent). Retrying
	// with the same explicit ID is safe: a stored first attempt makes the
	// retry fail with ErrDuplicateID.
	ErrOutcomeUnknown = errors.New("store: append outcome unknown")
)

// Update is one published event and its routing metadata, as stored in the
// log. The zero value is not a valid update: it needs at least one topic.
type Update struct {
	// Seq is the update's position in the log, assigned by Append.
	// Strictly increasing; never 0 for a stored update.
	Seq uint64
	// ID is the public event id (the SSE "id" field and the Mercure update
	// id). If empty on Append, the store assigns NewID().
	ID string
	// Topics are the topics the update is published to; the first is the
	// canonical topic. At least one is required.
	Topics []string
	// Type is the SSE event type ("" means the default "message").
	Type string
	// Data is the event payload (may contain newlines).
	Data string
	// Retry is the reconnection time hint sent with the event; 0 means none.
	Retry time.Duration
	// Private updates go only to subscribers authorized for one of Topics.
	Private bool
	// Time is when the update was appended. If zero on Append, the store
	// sets it to the current time. It drives retention by age.
	Time time.Time
}

// Store is an append-only, bounded log of updates. Implementations are safe
// for concurrent use. The caller that opened a store closes it; Close
// unblocks every pending Wait with ErrClosed.
type Store interface {
	// Append stores u durably (as durable as the implementation promises)
	// and returns it with Seq, ID and Time filled in. Append validates u
	// (ErrInvalid) and rejects an explicit ID already retained
	// (ErrDuplicateID).
	Append(ctx context.Context, u Update) (Update, error)

	// Lookup returns the sequence number of the retained update with the
	// given id, or ErrNotFound. Finding it must not scan the log.
	Lookup(ctx context.Context, id string) (uint64, error)

	// Read returns up to limit updates with Seq > after, oldest first.
	// It returns an empty slice, not an error, when nothing newer exists or
	// limit <= 0. The returned updates may share memory (Topics) with the
	// store: callers must not modify them.
	// It returns ErrCursorGone when updates after `after` have been trimmed
	// (after is older than the retained history), except for after == 0,
	// which always means "from the oldest retained update".
	Read(ctx context.Context, after uint64, limit int) ([]Update, error)

	// Wait blocks until the log holds an update with Seq > after, ctx is
	// done (ctx.Err()) or the store is closed (ErrClosed).
	Wait(ctx context.Context, after uint64) error

	// Last returns the Seq and ID of the newest update, or 0 and "" when the
	// log is empty.
	Last(ctx context.Context) (seq uint64, id string, err error)

	// Retention (by count and by age) never trims the newest update.
	//
	// Close releases the store's resources. Calls after Close return
	// ErrClosed. Close is idempotent.
	Close() error
}

// NewID returns a fresh update id, "urn:uuid:" followed by a UUIDv7: globally
// unique and roughly time-ordered.
func NewID() string {
	return "urn:uuid:" + uuid.Must(uuid.NewV7()).String()
}

// Size returns the payload bytes of u: the lengths of its ID, Type, Data
// and topics. Stores bound their history in bytes with it: each counts an
// update as Size plus its own per-update overhead, so the Sizes of the
// retained updates never add up to more than the store's MaxBytes.
func Size(u Update) int64 {
	n := len(u.ID) + len(u.Type) + len(u.Data)
	for _, t := range u.Topics {
		n += len(t)
	}
	return int64(n)
}

// MaxIDLen is the longest update id a store accepts, in bytes.
const MaxIDLen = 1024

// Validate reports whether u can be appended: at least one non-empty topic,
// an ID (if set) of at most MaxIDLen bytes, free of CR, LF and NUL and not
// starting with '#', an event type free of CR and LF, and no negative
// retry. Stores call it from Append; its errors wrap ErrInvalid.
func Validate(u Update) error {
	if len(u.Topics) == 0 {
		return fmt.Errorf("%w: no topic", ErrInvalid)
	}
	for _, t := range u.Topics {
		if t == "" {
			return fmt.Errorf("%w: empty topic", ErrInvalid)
		}
	}
	switch {
	case len(u.ID) > MaxIDLen:
		return fmt.Errorf("%w: id longer than %d bytes", ErrInvalid, MaxIDLen)
	case strings.ContainsAny(u.ID, "\r\n\x00"):
		return fmt.Errorf("%w: id contains CR, LF or NUL", ErrInvalid)
	case strings.HasPrefix(u.ID, "#"):
		return fmt.Errorf("%w: id starts with '#'", ErrInvalid)
	case strings.ContainsAny(u.Type, "\r\n"):
		return fmt.Errorf("%w: type contains CR or LF", ErrInvalid)
	case u.Retry < 0:
		return fmt.Errorf("%w: negative retry", ErrInvalid)
	}
	return nil
}
