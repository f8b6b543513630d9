// Package sse reads and writes the Server-Sent Events wire format
// (text/event-stream), exactly as the WHATWG HTML standard's "Parsing an
// event stream" and "Interpreting an event stream" sections define it. It
// does no HTTP and starts no goroutines; every other Herald package uses it.
//
// # The format
//
// A stream is UTF-8 text made of lines ending in LF, CRLF or CR. A line
// "name: value" is a field; the colon and one space after it are
// separators, and a line without a colon is a field with an empty value.
// A line that starts with a colon is a comment, which receivers ignore
// (servers send comments as heartbeats). A blank line ends an event.
// The fields are:
//
//	data   a line of the event's payload; several data lines are joined with LF
//	event  the event type; an event without one has type "message"
//	id     the last event ID, which persists across events and which a
//	       reconnecting client sends in its Last-Event-ID header
//	retry  the reconnection time in milliseconds (ASCII digits only)
//
// For example, this stream holds two events, the second of type "price",
// both with last event ID "7":
//
//	id: 7
//	data: first line
//	data: second line
//
//	: heartbeat
//	event: price
//	data: 42
//
// # Encoding
//
// [AppendEvent] appends one event's bytes to a caller's buffer without
// allocating, so a server can encode an update once and write the same
// bytes to every subscriber; [Encoder] wraps it for an io.Writer. The
// encoder never alters a value: an ID or Type that the wire cannot carry
// (see [FieldError]) is an error.
//
// # Decoding
//
// [Decoder] reads events from an io.Reader in any chunking, keeps the last
// event ID ([Decoder.LastEventID]) and the reconnection time
// ([Decoder.Retry]), and bounds the size of one event
// ([Decoder.SetMaxEventSize]) instead of truncating it. It follows the
// standard throughout: one leading byte order mark is skipped, unknown
// fields are ignored, an "id" containing NUL is ignored, a "retry" that is
// not all ASCII digits is ignored, a blank line with no data before it
// dispatches nothing (but still resets the event type and commits the last
// event ID), and an event not ended by a blank line when the stream ends
// is discarded.
//
// # Normalisations
//
// Encoding and then decoding an event returns it unchanged, except for
// what the wire format itself cannot express:
//
//   - CRLF and CR in Data come back as LF, since each starts a new data
//     line and data lines are joined with LF.
//   - An empty Type comes back as "message".
//   - An empty ID writes no "id" line, so the decoded ID is the previous
//     event's (the last event ID persists).
//   - Retry is written to the stream; the decoder reports it through
//     [Decoder.Retry], in whole milliseconds, and leaves Event.Retry zero.
//   - The decoder decodes the stream as UTF-8 the way browsers do: each
//     maximal ill-formed subsequence becomes one U+FFFD, so invalid UTF-8
//     in a value does not survive the trip. The encoder writes bytes as
//     given.
package sse
