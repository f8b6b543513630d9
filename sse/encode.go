package sse

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// AppendEvent appends the wire form of ev to dst and returns the extended
// buffer. The lines are written in this order: "id" (if ev.ID is not
// empty), "event" (if ev.Type is neither empty nor "message"), "retry" (if
// ev.Retry is positive), then one "data" line per line of ev.Data (at
// least one, so that every encoded event is dispatched), then a blank line.
//
// A value is written after "name: ", so a value that starts with a space
// keeps it. AppendEvent does not alter values: if ev.ID contains CR, LF or
// NUL, or ev.Type contains CR or LF, it returns dst unchanged and a
// [*FieldError]. It does not check UTF-8; a receiver replaces invalid
// sequences with U+FFFD. AppendEvent does not allocate when dst has room.
func AppendEvent(dst []byte, ev Event) ([]byte, error) {
	if strings.ContainsAny(ev.ID, "\r\n\x00") {
		return dst, &FieldError{Field: "id", Value: ev.ID}
	}
	if strings.ContainsAny(ev.Type, "\r\n") {
		return dst, &FieldError{Field: "event", Value: ev.Type}
	}
	if ev.ID != "" {
		dst = appendField(dst, "id", ev.ID)
	}
	if ev.Type != "" && ev.Type != "message" {
		dst = appendField(dst, "event", ev.Type)
	}
	if ev.Retry > 0 {
		dst = appendRetryLine(dst, ev.Retry)
	}
	dst = appendLines(dst, "data", ev.Data)
	return append(dst, '\n'), nil
}

// AppendComment appends a comment to dst and returns the extended buffer:
// one ": line" per line of text (LF, CRLF and CR all break lines; an empty
// text gives a single ":"), then a blank line. Receivers ignore comments;
// servers send them as heartbeats to keep idle connections open. The blank
// line dispatches nothing, since a comment carries no data, so a comment
// is safe to send between events.
func AppendComment(dst []byte, text string) []byte {
	return append(appendLines(dst, "", text), '\n')
}

// AppendRetry appends a "retry" line and a blank line to dst and returns
// the extended buffer. The line sets the receiver's reconnection time to d
// in whole milliseconds, rounded up (but never beyond the largest
// time.Duration); a negative d is written as 0.
func AppendRetry(dst []byte, d time.Duration) []byte {
	return append(appendRetryLine(dst, d), '\n')
}

func appendRetryLine(dst []byte, d time.Duration) []byte {
	var ms int64
	if d > 0 {
		ms = int64(d / time.Millisecond)
		if d%time.Millisecond != 0 {
			ms++
		}
		ms = min(ms, maxRetryMillis) // what a Decoder can hold
	}
	dst = append(dst, "retry: "...)
	dst = strconv.AppendInt(dst, ms, 10)
	return append(dst, '\n')
}

// appendField appends "name: value\n", or "name:\n" for an empty value.
// The space after the colon is what a decoder strips, so the value, even
// one starting with a space, comes back unchanged.
func appendField(dst []byte, name, value string) []byte {
	dst = append(dst, name...)
	dst = append(dst, ':')
	if value != "" {
		dst = append(dst, ' ')
		dst = append(dst, value...)
	}
	return append(dst, '\n')
}

// appendLines appends one field line per line of s, breaking at LF, CRLF
// and CR. It scans each byte a bounded number of times whatever the mix of
// line endings.
func appendLines(dst []byte, name, s string) []byte {
	pos, lf := 0, -1 // lf: index of the next LF at or after pos, or len(s)
	for {
		if lf < pos {
			lf = len(s)
			if i := strings.IndexByte(s[pos:], '\n'); i >= 0 {
				lf = pos + i
			}
		}
		end, next := lf, lf+1
		if i := strings.IndexByte(s[pos:lf], '\r'); i >= 0 {
			end = pos + i
			next = end + 1
			if next < len(s) && s[next] == '\n' {
				next++
			}
		}
		dst = appendField(dst, name, s[pos:end])
		if end == len(s) {
			return dst
		}
		pos = next
	}
}

// maxRetainedBuf is the largest buffer an Encoder keeps between calls.
const maxRetainedBuf = 64 << 10

// Encoder writes events to an io.Writer, each with a single Write call.
// It does not flush: wrap the writer, or flush after Encode (for HTTP,
// with http.ResponseController). An Encoder is not safe for concurrent
// use. The zero value is not usable; call [NewEncoder].
type Encoder struct {
	w   io.Writer
	buf []byte
}

// NewEncoder returns an Encoder that writes to w. The caller keeps
// ownership of w.
func NewEncoder(w io.Writer) *Encoder {
	return &Encoder{w: w}
}

// Encode writes ev as [AppendEvent] encodes it. It returns the
// [*FieldError] from AppendEvent without writing anything, or the write
// error, wrapped.
func (e *Encoder) Encode(ev Event) error {
	buf, err := AppendEvent(e.buf[:0], ev)
	if err != nil {
		return err
	}
	return e.write(buf)
}

// Comment writes text as a comment, as [AppendComment] encodes it.
func (e *Encoder) Comment(text string) error {
	return e.write(AppendComment(e.buf[:0], text))
}

// Retry writes a "retry" line, as [AppendRetry] encodes it.
func (e *Encoder) Retry(d time.Duration) error {
	return e.write(AppendRetry(e.buf[:0], d))
}

func (e *Encoder) write(b []byte) error {
	_, err := e.w.Write(b)
	if cap(b) <= maxRetainedBuf {
		e.buf = b[:0]
	} else {
		e.buf = nil
	}
	if err != nil {
		return fmt.Errorf("sse: write: %w", err)
	}
	return nil
}
