package sse

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

const (
	// DefaultMaxEventSize is the event size limit of a [Decoder] whose
	// limit has not been set: 16 MiB.
	DefaultMaxEventSize = 16 << 20

	initialBufSize           = 4 << 10
	maxRetainedData          = 64 << 10
	maxSharedData            = 4 << 10
	maxConsecutiveEmptyReads = 100
)

// maxRetryMillis is the largest reconnection time, in milliseconds, that
// fits in a time.Duration.
const maxRetryMillis = math.MaxInt64 / int64(time.Millisecond)

var bom = []byte("\xEF\xBB\xBF")

// errInvalidRead reports a reader that returned an impossible count.
var errInvalidRead = errors.New("sse: reader returned invalid count")

// Decoder reads events from an event stream, following the WHATWG HTML
// rules for parsing and interpreting one. It reads through its own buffer
// (so, like a bufio.Reader, it may read past the event it returns), and it
// accepts lines of any length up to the event size limit. Invalid UTF-8 is
// replaced with U+FFFD as a browser would (see the package documentation).
// It returns an event as soon as its blank line has arrived, without
// waiting for more input.
//
// A Decoder is not safe for concurrent use. The zero value is not usable;
// call [NewDecoder].
type Decoder struct {
	rd  io.Reader
	buf []byte
	r   int // buf[r:w] is read but not yet consumed
	w   int
	// lfClear and crClear are indexes into buf: no LF is in buf[r:lfClear]
	// and no CR in buf[r:crClear], so a search for a line end need not
	// look there again. They keep scanning linear for long lines that
	// arrive in many reads and for streams that end lines with CR only.
	lfClear int
	crClear int
	skipLF  bool // the last line ended with a CR at the end of buf: drop a leading LF
	bomDone bool
	readErr error // from rd; reported once buffered lines are used up
	err     error // sticky error returned by Next

	max        int // event size limit; 0 means DefaultMaxEventSize
	eventBytes int // bytes of the current event's field lines

	data    []byte // data buffer, each line followed by LF
	typ     []byte // event type buffer, raw bytes
	lastTyp string // last dispatched non-default type, reused when it repeats
	idBuf   []byte // last event ID buffer, raw bytes
	idNew   bool   // idBuf has changed since lastID was set from it
	lastID  string // last event ID string: idBuf as of the last blank line
	retry   time.Duration

	comment func(text string) error // set by SetCommentFunc; nil ignores comments
}

// NewDecoder returns a Decoder that reads from r. The caller keeps
// ownership of r; the Decoder never closes it.
func NewDecoder(r io.Reader) *Decoder {
	return &Decoder{rd: r}
}

// SetMaxEventSize sets the most bytes one event may take: the sum of the
// lengths of its field lines, not counting line ends, checked as soon as
// the lines arrive (so a line is never buffered beyond it). Comment lines
// do not count towards their event, but each may be at most n bytes long.
// A value of 0 or less restores [DefaultMaxEventSize]. When an event is
// too large, [Decoder.Next] returns a [*TooLargeError]; the Decoder never
// truncates an event.
func (d *Decoder) SetMaxEventSize(n int) {
	d.max = max(n, 0)
}

// LastEventID returns the stream's last event ID: the value of the most
// recent "id" field as of the most recent blank line (the spec's "last
// event ID string", which a client sends as Last-Event-ID when it
// reconnects). It persists across events and after Next returns an error,
// and it is updated even by a blank line that dispatches no event. An "id"
// in an event left unfinished at the end of the stream does not change it.
func (d *Decoder) LastEventID() string {
	return d.lastID
}

// SetLastEventID sets the stream's last event ID to id, as if an "id: id"
// line and a blank line had just been read. A client that reconnects
// calls it on the new connection's Decoder with the ID it had, so that,
// as the spec requires, the last event ID persists across connections:
// an event without an "id" field carries id, [Decoder.LastEventID]
// returns id until an "id" field changes it, and an empty "id" field
// clears it. Call it before the first [Decoder.Next]; a pending "id" field
// of an event not yet dispatched is forgotten.
func (d *Decoder) SetLastEventID(id string) {
	d.idBuf = append(d.idBuf[:0], id...)
	d.idNew = false
	d.lastID = id
}

// SetCommentFunc makes [Decoder.Next] call fn with the text of each
// comment line (a line starting with a colon), in stream order, before
// it returns the event that follows. The text is the rest of the line
// after the colon, without one leading space if there is one (as for
// field values), with invalid UTF-8 replaced: ": heartbeat" gives
// "heartbeat", and ":" (the usual heartbeat) gives "". If fn returns an
// error, Next stops and returns it; like every error of Next it is
// sticky. A nil fn, the default, ignores comments, as the spec says.
func (d *Decoder) SetCommentFunc(fn func(text string) error) {
	d.comment = fn
}

// Retry returns the most recent valid reconnection time received in a
// "retry" field, or 0 if there has been none (or the last was "retry: 0").
// As the spec says, a "retry" field takes effect as soon as its line is
// read, even in an event that is never dispatched.
func (d *Decoder) Retry() time.Duration {
	return d.retry
}

// Next reads and returns the next dispatched event. Its Type is "message"
// if the event named none, and its ID is the last event ID in effect.
//
// At the end of the stream Next returns io.EOF, discarding an event that
// has not been ended by a blank line, as the spec requires. Any other read
// error is returned wrapped. An event larger than the size limit gives a
// [*TooLargeError]. Errors are sticky: once Next has returned one, it
// returns it again on every later call.
func (d *Decoder) Next() (Event, error) {
	if d.err != nil {
		return Event{}, d.err
	}
	for {
		line, err := d.readLine()
		if err != nil {
			switch {
			case errors.Is(err, io.EOF):
				err = io.EOF // also for a reader that wraps it
			case !errors.Is(err, ErrTooLarge):
				err = fmt.Errorf("sse: read: %w", err)
			}
			d.err = err
			d.data, d.typ = d.data[:0], d.typ[:0]
			return Event{}, err
		}
		if len(line) == 0 {
			if ev, ok := d.dispatch(); ok {
				return ev, nil
			}
			continue
		}
		if line[0] == ':' {
			// A comment; readLine has checked its length.
			if d.comment != nil {
				if err := d.onComment(line[1:]); err != nil {
					return Event{}, err
				}
			}
			continue
		}
		d.eventBytes += len(line)
		d.field(line)
	}
}

// onComment passes the text of a comment line to the comment function. An
// error it returns becomes the sticky error of Next.
func (d *Decoder) onComment(text []byte) error {
	if len(text) > 0 && text[0] == ' ' {
		text = text[1:]
	}
	if err := d.comment(utf8String(text)); err != nil {
		d.err = err
		d.data, d.typ = d.data[:0], d.typ[:0]
		d.eventBytes = 0
		return err
	}
	return nil
}

// limit returns the event size limit in effect.
func (d *Decoder) limit() int {
	if d.max == 0 {
		return DefaultMaxEventSize
	}
	return d.max
}

// allowed returns how long a line starting with c may be.
func (d *Decoder) allowed(c byte) int {
	if c == ':' {
		return d.limit()
	}
	return d.limit() - d.eventBytes
}

// field processes one field line.
func (d *Decoder) field(line []byte) {
	name, value := line, line[len(line):]
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		name, value = line[:i], line[i+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(name) {
	case "event":
		d.typ = append(d.typ[:0], value...)
	case "data":
		d.data = appendUTF8(d.data, value)
		d.data = append(d.data, '\n')
	case "id":
		if bytes.IndexByte(value, 0) < 0 && !bytes.Equal(value, d.idBuf) {
			d.idBuf = append(d.idBuf[:0], value...)
			d.idNew = true
		}
	case "retry":
		if ms, ok := parseRetry(value); ok {
			d.retry = ms
		}
	}
	// Other field names are ignored.
}

// parseRetry parses a "retry" value: one or more ASCII digits, a number of
// milliseconds. A value too large for a time.Duration is rejected.
func parseRetry(v []byte) (time.Duration, bool) {
	if len(v) == 0 {
		return 0, false
	}
	var ms int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		ms = ms*10 + int64(c-'0')
		if ms > maxRetryMillis {
			return 0, false
		}
	}
	return time.Duration(ms) * time.Millisecond, true
}

// dispatch handles a blank line: it commits the last event ID and returns
// the buffered event, if it has data.
func (d *Decoder) dispatch() (Event, bool) {
	d.eventBytes = 0
	if len(d.data) == 0 {
		if d.idNew {
			d.lastID = utf8String(d.idBuf)
			d.idNew = false
		}
		d.typ = d.typ[:0]
		return Event{}, false
	}
	n := len(d.data) - 1 // drop the final LF
	var data string
	if d.idNew && n <= maxSharedData {
		// Convert the data and the new ID with one allocation: the data
		// buffer's final LF is replaced by the ID. (Not for large data,
		// which the ID, kept as the last event ID, would pin in memory.)
		d.data = appendUTF8(d.data[:n], d.idBuf)
		s := string(d.data)
		data, d.lastID = s[:n], s[n:]
		d.idNew = false
	} else {
		data = string(d.data[:n])
		if d.idNew {
			d.lastID = utf8String(d.idBuf)
			d.idNew = false
		}
	}
	ev := Event{ID: d.lastID, Type: d.typeString(), Data: data}
	d.typ = d.typ[:0]
	if cap(d.data) > maxRetainedData {
		d.data = nil
	} else {
		d.data = d.data[:0]
	}
	return ev, true
}

// typeString returns the event type buffer as a string, reusing the
// previous event's string when it repeats.
func (d *Decoder) typeString() string {
	if len(d.typ) == 0 {
		return "message"
	}
	if string(d.typ) != d.lastTyp {
		d.lastTyp = utf8String(d.typ)
	}
	return d.lastTyp
}

// readLine returns the next line without its line end. The line aliases
// the Decoder's buffer and is valid until the next call. A final line with
// no line end is never returned: at the end of the stream it is dropped.
func (d *Decoder) readLine() ([]byte, error) {
	for {
		if d.skipLF && d.r < d.w {
			if d.buf[d.r] == '\n' {
				d.r++
			}
			d.skipLF = false
		}
		if !d.bomDone {
			n := d.w - d.r
			if n < len(bom) && d.readErr == nil && bytes.HasPrefix(bom, d.buf[d.r:d.w]) {
				d.fill() // too few bytes to tell whether the stream starts with a BOM
				continue
			}
			if bytes.HasPrefix(d.buf[d.r:d.w], bom) {
				d.r += len(bom)
			}
			d.bomDone = true
		}
		if line, ok := d.scan(); ok {
			if len(line) > 0 && len(line) > d.allowed(line[0]) {
				return nil, &TooLargeError{Limit: d.limit()}
			}
			return line, nil
		}
		// A partial line over the limit is an error even at the end of
		// the stream, so that the result does not depend on how the
		// stream was split into reads.
		if d.r < d.w && d.w-d.r > d.allowed(d.buf[d.r]) {
			return nil, &TooLargeError{Limit: d.limit()}
		}
		if d.readErr != nil {
			return nil, d.readErr
		}
		d.fill()
	}
}

// scan looks for a complete line in buf[r:w] and consumes it.
func (d *Decoder) scan() ([]byte, bool) {
	start := d.r
	end := d.w // where the search for CR stops
	lf := -1
	if from := max(start, d.lfClear); from < d.w {
		if i := bytes.IndexByte(d.buf[from:d.w], '\n'); i >= 0 {
			lf = from + i
			end = lf
		}
	}
	d.lfClear = end
	cr := -1
	if from := max(start, d.crClear); from < end {
		if i := bytes.IndexByte(d.buf[from:end], '\r'); i >= 0 {
			cr = from + i
		}
	}
	switch {
	case cr >= 0:
		d.crClear = cr
		d.r = cr + 1
		if d.r == d.w {
			d.skipLF = true // the LF of a CRLF may be in the next read
		} else if d.buf[d.r] == '\n' {
			d.r++
		}
		return d.buf[start:cr], true
	case lf >= 0:
		d.crClear = lf
		d.r = lf + 1
		return d.buf[start:lf], true
	}
	d.crClear = end
	return nil, false
}

// fill reads more bytes into buf, making room first. It records a read
// error in d.readErr.
func (d *Decoder) fill() {
	switch {
	case d.buf == nil:
		d.buf = make([]byte, initialBufSize)
	case d.r == d.w:
		d.shift(d.r)
	case d.w == len(d.buf) && d.r > 0:
		d.shift(d.r)
	case d.w == len(d.buf):
		// One partial line fills the buffer, and it is within the limit
		// (readLine checked), so the limit bounds the growth.
		n := 2 * len(d.buf)
		if l := d.limit(); l < n-1 {
			n = l + 1
		}
		buf := make([]byte, n)
		copy(buf, d.buf[:d.w])
		d.buf = buf
	}
	for range maxConsecutiveEmptyReads {
		n, err := d.rd.Read(d.buf[d.w:])
		if n < 0 || n > len(d.buf)-d.w {
			d.readErr = errInvalidRead
			return
		}
		d.w += n
		if err != nil {
			d.readErr = err
			return
		}
		if n > 0 {
			return
		}
	}
	d.readErr = io.ErrNoProgress
}

// shift moves buf[n:w] to the front of buf.
func (d *Decoder) shift(n int) {
	copy(d.buf, d.buf[n:d.w])
	d.w -= n
	d.r -= n
	d.lfClear = max(d.lfClear-n, 0)
	d.crClear = max(d.crClear-n, 0)
}
