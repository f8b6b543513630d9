package broker

// NOTE: temporary API sketch while the implementation is written; the
// signatures below are the contract the hub codes against.

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/herald-sse/herald/store"
)

// Config configures a Broker. The zero value is valid: every zero field
// means the documented default.
type Config struct {
	// Logger receives the broker's logs. Nil discards them.
	Logger *slog.Logger
	// Heartbeat is the interval of the comment sent to idle streams so that
	// proxies keep them open. Zero means 15s; negative disables heartbeats.
	Heartbeat time.Duration
	// Retry is the reconnection time sent as "retry:" when a stream starts
	// and before a slow subscriber is disconnected. Zero means 2s; negative
	// sends none.
	Retry time.Duration
	// MaxPending is the number of encoded bytes a subscriber may have queued
	// but not yet written before it is disconnected as too slow. Zero means
	// 1 MiB.
	MaxPending int
	// NoPark keeps every stream on its handler goroutine instead of parking
	// plain HTTP/1.1 connections with the shared writer pool.
	NoPark bool
}

// Subscription describes what one stream receives.
type Subscription struct {
	// Topics are the topic selectors the subscriber asked for: an exact
	// topic, "*" for every topic, or an RFC 6570 URI template.
	Topics []string
	// LastEventID, if set, asks for replay of every retained update after
	// that id before live delivery. "earliest" replays all retained history.
	LastEventID string
	// Private are the selectors that authorize private updates (from the
	// subscriber's token). Nil means the subscriber receives public updates
	// only.
	Private []string
}

// Broker fans updates out from a store to subscribers.
type Broker struct{}

// New returns a broker that follows st. The broker does not own st: the
// caller closes st after Shutdown.
func New(st store.Store, cfg Config) (*Broker, error) { panic("todo") }

// Publish appends u to the store and returns the stored update (with its
// id). Delivery to subscribers follows from the log.
func (b *Broker) Publish(ctx context.Context, u store.Update) (store.Update, error) {
	panic("todo")
}

// Subscribe streams sub to the client until the client goes away, the
// subscriber is too slow, or the broker shuts down. It writes the response
// head itself (200, text/event-stream, and a Last-Event-ID header when
// replay was requested: the requested id when found, "earliest" when it is
// not). Call it from an http.Handler after authorization.
func (b *Broker) Subscribe(w http.ResponseWriter, r *http.Request, sub Subscription) error {
	panic("todo")
}

// ServeHTTP serves a plain SSE endpoint: repeatable ?topic= selectors and a
// Last-Event-ID header (or ?lastEventID=). Public updates only.
func (b *Broker) ServeHTTP(w http.ResponseWriter, r *http.Request) { panic("todo") }

// Shutdown ends every stream and stops the broker's goroutines.
func (b *Broker) Shutdown(ctx context.Context) error { panic("todo") }

// Stats is a snapshot of broker counters.
type Stats struct {
	Subscribers int    // open streams
	Topics      int    // distinct exact topics subscribed
	Published   uint64 // updates fanned out since start
	Delivered   uint64 // update deliveries queued to subscribers
	Dropped     uint64 // subscribers disconnected as too slow
}

// Stats returns current counters. Safe for concurrent use.
func (b *Broker) Stats() Stats { panic("todo") }

// Matcher matches topics against a set of selectors: exact topics, "*",
// and RFC 6570 URI templates. Safe for concurrent use once built.
type Matcher struct{}

// NewMatcher compiles selectors. An invalid URI template is an error.
func NewMatcher(selectors []string) (*Matcher, error) { panic("todo") }

// Match reports whether topic matches any selector.
func (m *Matcher) Match(topic string) bool { panic("todo") }
