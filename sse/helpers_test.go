package sse_test

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/herald-sse/herald/sse"
)

// step is what a Decoder reports after one successful Next: the event and
// the stream state at that moment.
type step struct {
	Event       sse.Event
	LastEventID string
	Retry       time.Duration
}

func (s step) String() string {
	return fmt.Sprintf("{ID:%q Type:%q Data:%q Retry:%v | last=%q retry=%v}",
		s.Event.ID, s.Event.Type, s.Event.Data, s.Event.Retry, s.LastEventID, s.Retry)
}

// result is everything a Decoder reports for one stream.
type result struct {
	Steps       []step
	Err         error // the error that ended decoding (io.EOF at a clean end)
	LastEventID string
	Retry       time.Duration
}

func (r result) String() string {
	var b strings.Builder
	for _, s := range r.Steps {
		b.WriteString(s.String())
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "end: err=%v last=%q retry=%v", r.Err, r.LastEventID, r.Retry)
	return b.String()
}

// equal reports whether r and o describe the same decoding. Errors are
// compared by kind: io.EOF, too large (with its limit) or other.
func (r result) equal(o result) bool {
	if len(r.Steps) != len(o.Steps) || r.LastEventID != o.LastEventID || r.Retry != o.Retry {
		return false
	}
	for i := range r.Steps {
		if r.Steps[i] != o.Steps[i] {
			return false
		}
	}
	return errKind(r.Err) == errKind(o.Err)
}

func errKind(err error) string {
	var tl *sse.TooLargeError
	switch {
	case err == nil:
		return "nil"
	case errors.Is(err, io.EOF):
		return "EOF"
	case errors.As(err, &tl):
		return fmt.Sprintf("too large %d", tl.Limit)
	default:
		return "other: " + err.Error()
	}
}

// maxSteps bounds decodeAll, so that a decoder bug cannot loop forever.
const maxSteps = 1 << 20

// decodeAll runs d to its first error.
func decodeAll(d *sse.Decoder) result {
	var r result
	for range maxSteps {
		ev, err := d.Next()
		if err != nil {
			r.Err = err
			break
		}
		r.Steps = append(r.Steps, step{Event: ev, LastEventID: d.LastEventID(), Retry: d.Retry()})
	}
	r.LastEventID = d.LastEventID()
	r.Retry = d.Retry()
	return r
}

// decodeString decodes s read in one piece with the default limit.
func decodeString(s string) result {
	return decodeAll(sse.NewDecoder(strings.NewReader(s)))
}

// chunkReader returns data in chunks whose sizes are taken in turn from
// sizes (a size of 0 means 1; the sizes repeat), so tests control where
// reads split the stream.
type chunkReader struct {
	data  []byte
	sizes []byte
	i     int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := 1
	if len(c.sizes) > 0 {
		n = max(int(c.sizes[c.i%len(c.sizes)]), 1)
		c.i++
	}
	n = min(n, len(p), len(c.data))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

// scriptReader returns its chunks one per Read, then err.
type scriptReader struct {
	chunks []string
	err    error
}

func (s *scriptReader) Read(p []byte) (int, error) {
	if len(s.chunks) == 0 {
		return 0, s.err
	}
	n := copy(p, s.chunks[0])
	s.chunks[0] = s.chunks[0][n:]
	if s.chunks[0] == "" {
		s.chunks = s.chunks[1:]
	}
	return n, nil
}
