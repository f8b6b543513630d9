package natsstore

import (
	"crypto/sha256"
	"encoding/base64"
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

// errCorrupt reports a message body that cannot be decoded.
var errCorrupt = errors.New("corrupt record")

// idToken returns the subject token of an update id: the first 128 bits of
// its SHA-256, in unpadded base64url, so that any id (up to store.MaxIDLen
// bytes of any characters) maps to a short, valid subject token.
func idToken(id string) string {
	sum := sha256.Sum256([]byte(id))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// appendRecord appends the encoding of u (without its Seq, which is the
// stream sequence) to dst:
//
//	byte    version (1)
//	byte    flags (bit 0: private)
//	varint  Time, seconds since the Unix epoch
//	uvarint Time, nanoseconds within the second
//	uvarint Retry in nanoseconds
//	uvarint len(ID), ID
//	uvarint len(Type), Type
//	uvarint len(Topics), then for each topic: uvarint len, bytes
//	        Data: the rest of the body
func appendRecord(dst []byte, u store.Update) []byte {
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

// decodeRecord decodes a body written by appendRecord.
func decodeRecord(b []byte, seq uint64) (store.Update, error) {
	d := decoder{b: b}
	if v := d.byte(); d.err == nil && v != recordVersion {
		return store.Update{}, fmt.Errorf("seq %d: version %d: %w", seq, v, errCorrupt)
	}
	flags := d.byte()
	sec := d.varint()
	nsec := d.uvarint()
	retry := d.uvarint()
	u := store.Update{
		Seq:     seq,
		ID:      d.string(),
		Type:    d.string(),
		Private: flags&flagPrivate != 0,
	}
	n := d.uvarint()
	if d.err == nil && n > uint64(len(b)-d.off) {
		d.fail()
	}
	if d.err == nil {
		u.Topics = make([]string, n)
		for i := range u.Topics {
			u.Topics[i] = d.string()
		}
	}
	if d.err != nil || nsec >= 1e9 || retry > 1<<63-1 {
		return store.Update{}, fmt.Errorf("seq %d: %w", seq, errCorrupt)
	}
	u.Time = time.Unix(sec, int64(nsec))
	u.Retry = time.Duration(retry)
	u.Data = string(b[d.off:])
	return u, nil
}

// decoder reads a record; the first error sticks.
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) fail() { d.err = errCorrupt }

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
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail()
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		d.fail()
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)-d.off) {
		d.fail()
		return ""
	}
	s := string(d.b[d.off : d.off+int(n)])
	d.off += int(n)
	return s
}
