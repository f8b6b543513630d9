// Package record is the compact binary encoding of a store.Update shared by
// the stores that keep updates as bytes (boltstore on disk, natsstore in
// JetStream messages). The format is versioned by its first byte.
package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/herald-sse/herald/store"
)

// recordVersion is the first byte of every encoded update.
const recordVersion = 1

// flagPrivate marks a private update in the flags byte.
const flagPrivate = 1 << 0

// ErrCorrupt reports a record that cannot be decoded.
var ErrCorrupt = errors.New("corrupt record")

// Append appends the encoding of u (without its Seq, which the store keeps
// as the record's key or position) to dst:
//
//	byte    version (1)
//	byte    flags (bit 0: private)
//	varint  Time, seconds since the Unix epoch
//	uvarint Time, nanoseconds within the second
//	uvarint Retry in nanoseconds
//	uvarint len(ID), ID
//	uvarint len(Type), Type
//	uvarint len(Topics), then for each topic: uvarint len, bytes
//	        Data: the rest of the record
func Append(dst []byte, u store.Update) []byte {
	var flags byte
	if u.Private {
		flags |= flagPrivate
	}
	dst = append(dst, recordVersion, flags)
	dst = binary.AppendVarint(dst, u.Time.Unix())
	dst = binary.AppendUvarint(dst, uint64(u.Time.Nanosecond()))
	dst = binary.AppendUvarint(dst, uint64(u.Retry))
	dst = appendString(dst, u.ID)
	dst = appendString(dst, u.Type)
	dst = binary.AppendUvarint(dst, uint64(len(u.Topics)))
	for _, t := range u.Topics {
		dst = appendString(dst, t)
	}
	return append(dst, u.Data...)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// decoder reads a record.
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) byte() byte {
	if d.err != nil || d.off >= len(d.b) {
		d.fail()
		return 0
	}
	c := d.b[d.off]
	d.off++
	return c
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	x, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail()
		return 0
	}
	d.off += n
	return x
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	x, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		d.fail()
		return 0
	}
	d.off += n
	return x
}

// span skips a length-prefixed string and returns its bounds in d.b.
func (d *decoder) span() (start, end int) {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)-d.off) {
		d.fail()
		return 0, 0
	}
	start = d.off
	d.off += int(n)
	return start, d.off
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = fmt.Errorf("%w at byte %d", ErrCorrupt, d.off)
	}
}

// header decodes the fields up to and including Time.
func (d *decoder) header() (flags byte, t time.Time) {
	if v := d.byte(); v != recordVersion && d.err == nil {
		d.err = fmt.Errorf("%w: unknown record version %d", ErrCorrupt, v)
	}
	flags = d.byte()
	sec := d.varint()
	nsec := d.uvarint()
	if d.err == nil && nsec >= uint64(time.Second) {
		d.fail()
	}
	return flags, time.Unix(sec, int64(nsec))
}

// Decode decodes the record v stored under seq. The strings of the result
// share one copy of v, so decoding costs two allocations whatever the
// number of topics. Errors wrap ErrCorrupt.
func Decode(seq uint64, v []byte) (store.Update, error) {
	d := decoder{b: v}
	flags, t := d.header()
	retry := d.uvarint()
	if d.err == nil && retry > 1<<63-1 {
		d.fail()
	}
	idStart, idEnd := d.span()
	typStart, typEnd := d.span()
	n := d.uvarint()
	if d.err == nil && n > uint64(len(v)-d.off) { // a topic takes a byte at least
		d.fail()
	}
	if d.err != nil {
		return store.Update{}, fmt.Errorf("seq %d: %w", seq, d.err)
	}
	type span struct{ start, end int }
	var buf [4]span
	spans := buf[:0]
	for range n {
		a, b := d.span()
		spans = append(spans, span{a, b})
	}
	if d.err != nil {
		return store.Update{}, fmt.Errorf("seq %d: %w", seq, d.err)
	}
	s := string(v)
	u := store.Update{
		Seq:     seq,
		ID:      s[idStart:idEnd],
		Topics:  make([]string, len(spans)),
		Type:    s[typStart:typEnd],
		Data:    s[d.off:],
		Retry:   time.Duration(retry),
		Private: flags&flagPrivate != 0,
		Time:    t,
	}
	for i, sp := range spans {
		u.Topics[i] = s[sp.start:sp.end]
	}
	return u, nil
}

// TimeID decodes only the Time and ID of a record. The ID aliases v.
func TimeID(v []byte) (time.Time, []byte, error) {
	d := decoder{b: v}
	_, t := d.header()
	d.uvarint() // Retry
	start, end := d.span()
	if d.err != nil {
		return time.Time{}, nil, d.err
	}
	return t, v[start:end], nil
}
