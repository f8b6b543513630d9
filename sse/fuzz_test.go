package sse_test

import (
	"bytes"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
	"testing/iotest"
	"time"
	"unicode/utf8"

	"github.com/herald-sse/herald/sse"
)

// refUTF8 decodes b as the Encoding Standard's UTF-8 decoder does, step by
// step as written there (without BOM handling), replacing each error with
// U+FFFD. It is deliberately a different implementation from the
// package's, which the tests compare against it.
func refUTF8(b []byte) string {
	var out strings.Builder
	var cp rune
	seen, needed := 0, 0
	lower, upper := byte(0x80), byte(0xBF)
	for i := 0; i <= len(b); i++ {
		if i == len(b) {
			if needed != 0 {
				out.WriteRune(utf8.RuneError)
			}
			break
		}
		c := b[i]
		if needed == 0 {
			switch {
			case c <= 0x7F:
				out.WriteByte(c)
			case c >= 0xC2 && c <= 0xDF:
				needed, cp = 1, rune(c&0x1F)
			case c >= 0xE0 && c <= 0xEF:
				if c == 0xE0 {
					lower = 0xA0
				}
				if c == 0xED {
					upper = 0x9F
				}
				needed, cp = 2, rune(c&0xF)
			case c >= 0xF0 && c <= 0xF4:
				if c == 0xF0 {
					lower = 0x90
				}
				if c == 0xF4 {
					upper = 0x8F
				}
				needed, cp = 3, rune(c&0x7)
			default:
				out.WriteRune(utf8.RuneError)
			}
			continue
		}
		if c < lower || c > upper {
			cp, needed, seen, lower, upper = 0, 0, 0, 0x80, 0xBF
			out.WriteRune(utf8.RuneError)
			i-- // prepend the byte back to the stream
			continue
		}
		lower, upper = 0x80, 0xBF
		cp = cp<<6 | rune(c&0x3F)
		seen++
		if seen == needed {
			out.WriteRune(cp)
			cp, needed, seen = 0, 0, 0
		}
	}
	return out.String()
}

// refDecode is a direct, unoptimised transcription of the standard's
// parsing rules, used as an oracle for the Decoder: decode the whole stream
// as UTF-8, drop one leading BOM, split it into lines, interpret each.
func refDecode(in []byte) result {
	if bytes.HasPrefix(in, []byte("\xEF\xBB\xBF")) {
		in = in[3:]
	}
	s := refUTF8(in)
	var r result
	var data strings.Builder
	var typ, idBuf, lastID string
	var retry time.Duration
	for {
		i := strings.IndexAny(s, "\r\n")
		if i < 0 {
			break // no line end: the rest is discarded
		}
		line := s[:i]
		if s[i] == '\r' && i+1 < len(s) && s[i+1] == '\n' {
			i++
		}
		s = s[i+1:]
		switch {
		case line == "":
			lastID = idBuf
			if data.Len() == 0 {
				typ = ""
				continue
			}
			d := strings.TrimSuffix(data.String(), "\n")
			e := sse.Event{ID: lastID, Type: "message", Data: d}
			if typ != "" {
				e.Type = typ
			}
			r.Steps = append(r.Steps, step{Event: e, LastEventID: lastID, Retry: retry})
			data.Reset()
			typ = ""
		case line[0] == ':':
		default:
			name, value, found := strings.Cut(line, ":")
			if found {
				value = strings.TrimPrefix(value, " ")
			}
			switch name {
			case "event":
				typ = value
			case "data":
				data.WriteString(value)
				data.WriteByte('\n')
			case "id":
				if !strings.Contains(value, "\x00") {
					idBuf = value
				}
			case "retry":
				if value != "" && strings.Trim(value, "0123456789") == "" {
					// Values that overflow a Duration are ignored.
					value = strings.TrimLeft(value, "0")
					if value == "" {
						retry = 0
					} else if len(value) <= 13 {
						var ms int64
						for _, c := range value {
							ms = ms*10 + int64(c-'0')
						}
						if ms <= math.MaxInt64/int64(time.Millisecond) {
							retry = time.Duration(ms) * time.Millisecond
						}
					}
				}
			}
		}
	}
	r.Err = io.EOF
	r.LastEventID = lastID
	r.Retry = retry
	return r
}

var decoderSeeds = []string{
	"data: This is the first message.\n\ndata: This is the second message, it\ndata: has two lines.\n\ndata: This is the third message.\n\n",
	"event: add\ndata: 73857293\n\nevent: remove\ndata: 2153\n\n",
	": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n",
	"data\n\ndata\ndata\n\ndata:",
	"\xEF\xBB\xBFdata: a\r\n\r\ndata: b\rid: 3\r\r",
	"\xEF\xBB\xBF\xEF\xBB\xBFdata: a\n\n",
	"retry: 100\nretry: 12x\nid: a\x00b\ndata: \xE2\x82\xFF\n\n",
	"data: a\r",
	"id: 1\r\n\r\n\r\n\n\r\r\nevent: e\r\ndata: x\r\n\r\n",
	"retry: 99999999999999999999\nretry: 0009223372036854\ndata: x\n\n",
}

// FuzzDecoder checks that how the stream is split into reads never changes
// what the Decoder reports, and that it agrees with refDecode.
func FuzzDecoder(f *testing.F) {
	for i, s := range decoderSeeds {
		f.Add([]byte(s), []byte{1}, uint16(0))
		f.Add([]byte(s), []byte{byte(i + 2), 1, 5}, uint16(0))
		f.Add([]byte(s), []byte{7, 3}, uint16(20))
	}
	f.Fuzz(func(t *testing.T, in, splits []byte, limit uint16) {
		decode := func(r io.Reader) result {
			d := sse.NewDecoder(r)
			d.SetMaxEventSize(int(limit))
			return decodeAll(d)
		}
		whole := decode(bytes.NewReader(in))
		readers := map[string]io.Reader{
			"chunks":   &chunkReader{data: in, sizes: splits},
			"one byte": iotest.OneByteReader(bytes.NewReader(in)),
			"data+EOF": iotest.DataErrReader(&chunkReader{data: in, sizes: splits}),
		}
		for name, r := range readers {
			if got := decode(r); !got.equal(whole) {
				t.Fatalf("Decode(%q) read as %s (splits %v) =\n%v\nread whole =\n%v", in, name, splits, got, whole)
			}
		}
		for _, s := range whole.Steps {
			e := s.Event
			if !utf8.ValidString(e.Data) || !utf8.ValidString(e.ID) || !utf8.ValidString(e.Type) {
				t.Fatalf("Decode(%q) gave invalid UTF-8: %v", in, s)
			}
			if e.Type == "" || strings.Contains(e.ID, "\x00") || e.Retry != 0 || e.ID != s.LastEventID {
				t.Fatalf("Decode(%q) gave %v", in, s)
			}
		}
		if errors.Is(whole.Err, sse.ErrTooLarge) {
			return // refDecode has no size limit
		}
		if want := refDecode(in); !whole.equal(want) {
			t.Fatalf("Decode(%q) =\n%v\nwant (reference) =\n%v", in, whole, want)
		}
	})
}

// normalise returns what the decoder gives for e encoded after a stream
// whose last event ID is lastID: the documented normalisations.
func normalise(e sse.Event, lastID string) sse.Event {
	data := strings.ReplaceAll(e.Data, "\r\n", "\n")
	data = strings.ReplaceAll(data, "\r", "\n")
	n := sse.Event{ID: lastID, Type: "message", Data: refUTF8([]byte(data))}
	if e.ID != "" {
		n.ID = refUTF8([]byte(e.ID))
	}
	if e.Type != "" {
		n.Type = refUTF8([]byte(e.Type))
	}
	return n
}

// FuzzRoundTrip checks that decoding what the encoder writes gives back
// the events, up to the documented normalisations. It encodes two events
// in a row, so that the persistence of the last event ID is covered too.
func FuzzRoundTrip(f *testing.F) {
	f.Add("1", "add", "hello", int64(0), "", "", "second", int64(1500))
	f.Add("", "", "", int64(0), "", "message", "", int64(0))
	f.Add(" id", " type", " a\r\nb\rc\n", int64(1), "2", "t", "\n\n", int64(-1))
	f.Add("\xE2\x82", "\xFF", "x\xED\xA0\x80y", int64(math.MaxInt64), "bad\n", "", "z", int64(0))
	f.Add("a\x00", "t\x00", "d\x00", int64(999999), "", "e", ": colon", int64(1e6+1))
	f.Fuzz(func(t *testing.T, id1, type1, data1 string, retry1 int64, id2, type2, data2 string, retry2 int64) {
		events := []sse.Event{
			{ID: id1, Type: type1, Data: data1, Retry: time.Duration(retry1)},
			{ID: id2, Type: type2, Data: data2, Retry: time.Duration(retry2)},
		}
		var buf []byte
		var want []sse.Event
		var wantRetry time.Duration
		last := ""
		for _, e := range events {
			out, err := sse.AppendEvent(buf, e)
			invalid := strings.ContainsAny(e.ID, "\r\n\x00") || strings.ContainsAny(e.Type, "\r\n")
			if invalid != (err != nil) {
				t.Fatalf("AppendEvent(%+v) error = %v, want an error: %v", e, err, invalid)
			}
			if err != nil {
				if !errors.Is(err, sse.ErrInvalidField) || !bytes.Equal(out, buf) {
					t.Fatalf("AppendEvent(%+v) = %q, %v; want dst unchanged and ErrInvalidField", e, out, err)
				}
				continue // the encoder rejects this event
			}
			buf = out
			n := normalise(e, last)
			last = n.ID
			want = append(want, n)
			if e.Retry > 0 {
				ms := min((int64(e.Retry)+int64(time.Millisecond)-1)/int64(time.Millisecond),
					math.MaxInt64/int64(time.Millisecond))
				if e.Retry > math.MaxInt64-time.Millisecond {
					ms = math.MaxInt64 / int64(time.Millisecond)
				}
				wantRetry = time.Duration(ms) * time.Millisecond
			}
		}
		got := decodeString(string(buf))
		if !errors.Is(got.Err, io.EOF) || len(got.Steps) != len(want) || got.Retry != wantRetry {
			t.Fatalf("Decode(AppendEvent(%+v)) = %v, want %q and retry %v", events, got, want, wantRetry)
		}
		for i := range want {
			if got.Steps[i].Event != want[i] {
				t.Fatalf("Decode(%q) event %d = %+v, want %+v", buf, i, got.Steps[i].Event, want[i])
			}
		}
	})
}

// TestUTF8Replacement compares the Decoder's UTF-8 handling with refUTF8 on
// every one- and two-byte sequence and on some longer ones.
func TestUTF8Replacement(t *testing.T) {
	check := func(b []byte) {
		in := "data: " + string(b) + "\n\n"
		got := decodeString(in)
		want := refUTF8(b)
		if len(got.Steps) != 1 || got.Steps[0].Event.Data != want {
			t.Errorf("Decode(%q) = %v, want data %q", in, got, want)
		}
	}
	for i := range 256 {
		for j := range 256 {
			if i == '\r' || i == '\n' || j == '\r' || j == '\n' {
				continue
			}
			check([]byte{byte(i), byte(j)})
		}
	}
	for _, s := range []string{
		"\xF0\x90\x80", "\xF0\x80\x80\x80", "\xF4\x90\x80\x80", "\xF4\x8F\xBF\xBF", "\xE0\x80\x80",
		"\xE0\xA0\x80", "\xED\x9F\xBF", "\xED\xA0\x80", "\xEF\xBF\xBD", "\xF5\x80\x80\x80", "\xC2\xC2\x80",
		"a\xF0\x9F\x98b\xF0\x9F\x98\x80c", "\xE2\x82\xE2\x82\xAC",
	} {
		check([]byte(s))
	}
}
