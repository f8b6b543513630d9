package sse

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Event is one server-sent event.
//
// The zero value is an event of the default type with empty data; encoded,
// it is a single empty "data:" line, which a receiver dispatches as a
// "message" event with empty data.
type Event struct {
	// ID is the "id" field. On encode, an empty ID writes no "id" line, so
	// the receiver keeps its previous last event ID. On decode, ID is the
	// last event ID in effect when the event was dispatched: the value of
	// the most recent "id" field in this or an earlier event.
	ID string
	// Type is the "event" field. On encode, "" and "message" write no
	// "event" line. On decode, an event without a type (or with an empty
	// one) reports "message", as a browser's EventSource does.
	Type string
	// Data is the payload. It may contain line breaks: on encode, LF, CRLF
	// and CR each start a new "data" line, and on decode the lines are
	// joined with LF, so CRLF and CR in Data come back as LF.
	Data string
	// Retry is the reconnection time. On encode, a positive Retry writes a
	// "retry" line in whole milliseconds, rounded up. On decode it is
	// always 0; the stream's reconnection time is reported by
	// [Decoder.Retry], because "retry" applies to the stream, not to one
	// event.
	Retry time.Duration
}

// ErrInvalidField is matched (with [errors.Is]) by the [*FieldError] that
// the encoder returns for an event field that cannot be written to the wire
// unchanged.
var ErrInvalidField = errors.New("sse: invalid field")

// ErrTooLarge is matched (with [errors.Is]) by the [*TooLargeError] that a
// [Decoder] returns for an event larger than its limit.
var ErrTooLarge = errors.New("sse: event too large")

// FieldError reports an event field that the encoder refuses to write,
// because the wire format cannot carry its value: an ID or a Type with a CR
// or LF (which would end the line early), or an ID with a NUL (which every
// receiver ignores). The encoder never alters a value to make it fit.
type FieldError struct {
	// Field is the wire name of the field: "id" or "event".
	Field string
	// Value is the rejected value.
	Value string
}

// Error returns the field name, its value and what is wrong with it.
func (e *FieldError) Error() string {
	what := "a line break"
	if !strings.ContainsAny(e.Value, "\r\n") {
		what = "a NUL"
	}
	return fmt.Sprintf("sse: %s %q contains %s", e.Field, e.Value, what)
}

// Is reports whether target is [ErrInvalidField].
func (e *FieldError) Is(target error) bool { return target == ErrInvalidField }

// TooLargeError reports an event whose lines add up to more bytes than the
// limit set with [Decoder.SetMaxEventSize].
type TooLargeError struct {
	// Limit is the limit in bytes that the event exceeded.
	Limit int
}

// Error returns the limit the event exceeded.
func (e *TooLargeError) Error() string {
	return fmt.Sprintf("sse: event larger than %d bytes", e.Limit)
}

// Is reports whether target is [ErrTooLarge].
func (e *TooLargeError) Is(target error) bool { return target == ErrTooLarge }
