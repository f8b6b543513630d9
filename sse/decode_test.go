package sse_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/herald-sse/herald/sse"
)

func msg(id, data string) sse.Event { return sse.Event{ID: id, Type: "message", Data: data} }

func typed(id, typ, data string) sse.Event { return sse.Event{ID: id, Type: typ, Data: data} }

// decodeCase is one stream and what the decoder must make of it.
type decodeCase struct {
	name  string
	in    string
	want  []sse.Event
	last  string        // LastEventID at the end
	retry time.Duration // Retry at the end
}

// specCases come from the examples and rules of the WHATWG HTML
// "Server-sent events" section, and from the web-platform-tests that
// check them.
var specCases = []decodeCase{
	// Examples from the standard.
	{
		name: "spec intro: three messages",
		in: "data: This is the first message.\n\n" +
			"data: This is the second message, it\n" +
			"data: has two lines.\n\n" +
			"data: This is the third message.\n\n",
		want: []sse.Event{
			msg("", "This is the first message."),
			msg("", "This is the second message, it\nhas two lines."),
			msg("", "This is the third message."),
		},
	},
	{
		name: "spec intro: event types",
		in:   "event: add\ndata: 73857293\n\nevent: remove\ndata: 2153\n\nevent: add\ndata: 113411\n\n",
		want: []sse.Event{typed("", "add", "73857293"), typed("", "remove", "2153"), typed("", "add", "113411")},
	},
	{
		name: "spec: stock ticker lines",
		in:   "data: YHOO\ndata: +2\ndata: 10\n\n",
		want: []sse.Event{msg("", "YHOO\n+2\n10")},
	},
	{
		name: "spec: comment, id, id reset, leading space kept",
		in: ": test stream\n\n" +
			"data: first event\nid: 1\n\n" +
			"data:second event\nid\n\n" +
			"data:  third event\n\n",
		want: []sse.Event{msg("1", "first event"), msg("", "second event"), msg("", " third event")},
	},
	{
		name: "spec: empty data, single newline, unfinished last",
		in:   "data\n\ndata\ndata\n\ndata:",
		want: []sse.Event{msg("", ""), msg("", "\n")},
	},
	{
		name: "spec: space after colon is optional",
		in:   "data:test\n\ndata: test\n\n",
		want: []sse.Event{msg("", "test"), msg("", "test")},
	},

	// Line ends.
	{name: "LF", in: "data: a\ndata: b\n\n", want: []sse.Event{msg("", "a\nb")}},
	{name: "CRLF", in: "data: a\r\ndata: b\r\n\r\n", want: []sse.Event{msg("", "a\nb")}},
	{name: "CR", in: "data: a\rdata: b\r\r", want: []sse.Event{msg("", "a\nb")}},
	{
		name: "mixed line ends",
		in:   "data: a\r\n\rdata: b\n\r\ndata: c\r\r\n",
		want: []sse.Event{msg("", "a"), msg("", "b"), msg("", "c")},
	},
	{name: "LF CR is two line ends", in: "data: a\n\rdata: b\n\n", want: []sse.Event{msg("", "a"), msg("", "b")}},
	{name: "CR CR is two line ends", in: "data: a\r\r\r\rdata: b\r\r", want: []sse.Event{msg("", "a"), msg("", "b")}},

	// BOM.
	{name: "BOM stripped", in: "\xEF\xBB\xBFdata: a\n\n", want: []sse.Event{msg("", "a")}},
	{
		// web-platform-tests format-bom-2: only one BOM is stripped; the
		// second is part of the field name "\uFEFFdata", which is unknown.
		name: "second BOM kept",
		in:   "\xEF\xBB\xBF\xEF\xBB\xBFdata:1\n\ndata:2\n\ndata:3",
		want: []sse.Event{msg("", "2")},
	},
	{
		// web-platform-tests format-bom: a BOM after the start is content.
		name: "BOM only at start",
		in:   "\xEF\xBB\xBFdata:1\n\n\xEF\xBB\xBFdata:2\n\ndata:3",
		want: []sse.Event{msg("", "1")},
	},
	{name: "partial BOM is content", in: "\xEF\xBBdata:1\n\ndata:2\n\n", want: []sse.Event{msg("", "2")}},
	{name: "partial BOM alone", in: "\xEF\xBB"},
	{name: "BOM alone", in: "\xEF\xBB\xBF"},
	{
		// web-platform-tests format-bom-utf-16: the stream is always UTF-8.
		name: "UTF-16 BOM is not a BOM",
		in:   "\xFF\xFEdata:1\n\ndata:2\n\n",
		want: []sse.Event{msg("", "2")},
	},

	// Comments and field parsing.
	{
		name: "comments ignored",
		in:   ":\n: hi\n:data: no\ndata: a\n:\ndata: b\n: x\n\n",
		want: []sse.Event{msg("", "a\nb")},
	},
	{name: "comment only", in: ": ping\n\n: pong\n\n"},
	{name: "field without colon", in: "data\ndata\n\n", want: []sse.Event{msg("", "\n")}},
	{name: "only one space stripped", in: "data:   x\n\n", want: []sse.Event{msg("", "  x")}},
	{name: "tab not stripped", in: "data:\tx\n\n", want: []sse.Event{msg("", "\tx")}},
	{name: "value with colons", in: "data: a: b:c\n\n", want: []sse.Event{msg("", "a: b:c")}},
	{name: "trailing space kept", in: "data: x \n\n", want: []sse.Event{msg("", "x ")}},
	{name: "empty value", in: "data:\n\n", want: []sse.Event{msg("", "")}},
	{name: "space only value", in: "data: \n\n", want: []sse.Event{msg("", "")}},
	{
		name: "unknown fields ignored",
		in:   "foo: bar\ndata: a\nDATA: b\nData: c\n data: d\ndata : e\ndatas: f\nretryx: 1\n\n",
		want: []sse.Event{msg("", "a")},
	},
	{name: "NUL in data kept", in: "data: a\x00b\n\n", want: []sse.Event{msg("", "a\x00b")}},

	// Event type.
	{name: "empty event type is message", in: "event: \ndata:data\n\n", want: []sse.Event{msg("", "data")}},
	{name: "event without value", in: "event\ndata: x\n\n", want: []sse.Event{msg("", "x")}},
	{name: "last event field wins", in: "event: a\nevent: b\ndata: x\n\n", want: []sse.Event{typed("", "b", "x")}},
	{name: "event type after data", in: "data: x\nevent: late\n\n", want: []sse.Event{typed("", "late", "x")}},
	{
		name: "type reset by blank line without data",
		in:   "event: foo\n\ndata: x\n\n",
		want: []sse.Event{msg("", "x")},
	},
	{
		name: "type reset after dispatch",
		in:   "event: foo\ndata: x\n\ndata: y\n\n",
		want: []sse.Event{typed("", "foo", "x"), msg("", "y")},
	},
	{name: "explicit message type", in: "event: message\ndata: x\n\n", want: []sse.Event{msg("", "x")}},
	{name: "NUL in type kept", in: "event: a\x00b\ndata: x\n\n", want: []sse.Event{typed("", "a\x00b", "x")}},

	// Last event ID.
	{
		name: "id persists across events",
		in:   "id: 1\ndata: a\n\ndata: b\n\nid: 2\ndata: c\n\n",
		want: []sse.Event{msg("1", "a"), msg("1", "b"), msg("2", "c")},
		last: "2",
	},
	{name: "id after data applies", in: "data: a\nid: 7\n\n", want: []sse.Event{msg("7", "a")}, last: "7"},
	{name: "last id field wins", in: "id: 1\nid: 2\ndata: a\n\n", want: []sse.Event{msg("2", "a")}, last: "2"},
	{
		name: "id with NUL ignored",
		in:   "id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n",
		want: []sse.Event{msg("1", "a"), msg("1", "b")},
		last: "1",
	},
	{
		name: "id committed by blank line without data",
		in:   "id: 5\n\ndata: x\n\n",
		want: []sse.Event{msg("5", "x")},
		last: "5",
	},
	{name: "id alone", in: "id: 5\n\n", last: "5"},
	{
		name: "empty id resets",
		in:   "id: 5\ndata: a\n\nid:\ndata: b\n\n",
		want: []sse.Event{msg("5", "a"), msg("", "b")},
	},
	{name: "id leading space kept", in: "id:  5\ndata: a\n\n", want: []sse.Event{msg(" 5", "a")}, last: " 5"},
	{
		name: "id in unfinished event not committed",
		in:   "id: 1\ndata: a\n\nid: 2\ndata: b\n",
		want: []sse.Event{msg("1", "a")},
		last: "1",
	},

	// Retry.
	{name: "retry", in: "retry: 1500\n\n", retry: 1500 * time.Millisecond},
	{name: "retry without space", in: "retry:10\ndata: x\n\n", want: []sse.Event{msg("", "x")}, retry: 10 * time.Millisecond},
	{name: "retry zero", in: "retry: 10\n\nretry: 0\n\n", retry: 0},
	{name: "retry leading zeros", in: "retry: 0010\n\n", retry: 10 * time.Millisecond},
	{name: "retry last valid wins", in: "retry: 10\nretry: 20\n\nretry: x\n\n", retry: 20 * time.Millisecond},
	{name: "retry trailing garbage", in: "retry: 10\nretry: 123x\n\n", retry: 10 * time.Millisecond},
	{name: "retry negative", in: "retry: 10\nretry: -1\n\n", retry: 10 * time.Millisecond},
	{name: "retry decimal", in: "retry: 10\nretry: 1.5\n\n", retry: 10 * time.Millisecond},
	{name: "retry hex", in: "retry: 10\nretry: 0x10\n\n", retry: 10 * time.Millisecond},
	{name: "retry two spaces", in: "retry: 10\nretry:  20\n\n", retry: 10 * time.Millisecond},
	{name: "retry trailing space", in: "retry: 10\nretry: 20 \n\n", retry: 10 * time.Millisecond},
	{name: "retry empty", in: "retry: 10\nretry:\nretry\n\n", retry: 10 * time.Millisecond},
	{name: "retry plus sign", in: "retry: 10\nretry: +20\n\n", retry: 10 * time.Millisecond},
	{name: "retry non-ASCII digit", in: "retry: 10\nretry: \xD9\xA1\n\n", retry: 10 * time.Millisecond},
	{name: "retry overflow ignored", in: "retry: 10\nretry: 99999999999999999999\n\n", retry: 10 * time.Millisecond},
	{
		name:  "retry largest",
		in:    "retry: 9223372036854\n\n",
		retry: 9223372036854 * time.Millisecond,
	},
	{
		name:  "retry in unfinished event applies",
		in:    "data: a\n\nretry: 30\ndata: b\n",
		want:  []sse.Event{msg("", "a")},
		retry: 30 * time.Millisecond,
	},
	{
		name:  "retry line without line end ignored",
		in:    "retry: 30\n\nretry: 40",
		retry: 30 * time.Millisecond,
	},

	// Dispatch and the end of the stream.
	{name: "empty stream", in: ""},
	{name: "blank lines only", in: "\n\n\r\n\r"},
	{name: "unfinished event discarded", in: "data: a\n\ndata: b\n", want: []sse.Event{msg("", "a")}},
	{name: "unfinished line discarded", in: "data: a\n\ndata: b", want: []sse.Event{msg("", "a")}},
	{
		// web-platform-tests format-data-before-final-empty-line.
		name:  "data before final empty line",
		in:    "retry:1000\ndata:test1\n\nid:test\ndata:test2",
		want:  []sse.Event{msg("", "test1")},
		retry: time.Second,
	},
	{name: "trailing CR ends the event", in: "data: a\r\r", want: []sse.Event{msg("", "a")}},
	{
		name: "data buffer reset after dispatch",
		in:   "data: a\n\ndata: b\n\n",
		want: []sse.Event{msg("", "a"), msg("", "b")},
	},
	{name: "trailing empty data line", in: "data: a\ndata:\n\n", want: []sse.Event{msg("", "a\n")}},

	// UTF-8: the stream is decoded as browsers do, one U+FFFD per maximal
	// ill-formed subsequence.
	{name: "invalid byte", in: "data: a\xFFb\n\n", want: []sse.Event{msg("", "a\uFFFDb")}},
	{name: "truncated sequence", in: "data: \xE2\x82\n\n", want: []sse.Event{msg("", "\uFFFD")}},
	{name: "truncated sequence then ASCII", in: "data: \xE2\x82A\n\n", want: []sse.Event{msg("", "\uFFFDA")}},
	{name: "truncated 4-byte sequence", in: "data: \xF0\x9F\x98\n\n", want: []sse.Event{msg("", "\uFFFD")}},
	{name: "surrogate", in: "data: \xED\xA0\x80\n\n", want: []sse.Event{msg("", "\uFFFD\uFFFD\uFFFD")}},
	{name: "overlong", in: "data: \xC0\xAF\n\n", want: []sse.Event{msg("", "\uFFFD\uFFFD")}},
	{name: "lone continuation bytes", in: "data: \x80\x80\n\n", want: []sse.Event{msg("", "\uFFFD\uFFFD")}},
	{name: "valid multibyte kept", in: "data: h\u00e9llo \u4e16\u754c \U0001F600\n\n", want: []sse.Event{msg("", "h\u00e9llo \u4e16\u754c \U0001F600")}},
	{name: "encoded U+FFFD kept", in: "data: \uFFFD\n\n", want: []sse.Event{msg("", "\uFFFD")}},
	{name: "invalid type", in: "event: a\xFF\ndata: x\n\n", want: []sse.Event{typed("", "a\uFFFD", "x")}},
	{name: "invalid id", in: "id: \xC3\ndata: x\n\n", want: []sse.Event{msg("\uFFFD", "x")}, last: "\uFFFD"},
	{name: "sequence cut by line end", in: "data: \xE2\x82\ndata: \xAC\n\n", want: []sse.Event{msg("", "\uFFFD\n\uFFFD")}},
}

func TestDecoderSpec(t *testing.T) {
	for _, tc := range specCases {
		t.Run(tc.name, func(t *testing.T) {
			// Every case must decode the same whatever the reads look like.
			readers := map[string]func() io.Reader{
				"whole":    func() io.Reader { return strings.NewReader(tc.in) },
				"one byte": func() io.Reader { return iotest.OneByteReader(strings.NewReader(tc.in)) },
				"data+EOF": func() io.Reader { return iotest.DataErrReader(strings.NewReader(tc.in)) },
				"chunks":   func() io.Reader { return &chunkReader{data: []byte(tc.in), sizes: []byte{3, 1, 7, 2}} },
			}
			for name, newReader := range readers {
				got := decodeAll(sse.NewDecoder(newReader()))
				var evs []sse.Event
				for _, s := range got.Steps {
					evs = append(evs, s.Event)
					if s.LastEventID != s.Event.ID {
						t.Errorf("%s: after Next() = %v, LastEventID() = %q, want the event's ID", name, s.Event, s.LastEventID)
					}
				}
				if !slices.Equal(evs, tc.want) {
					t.Errorf("%s: Decode(%q) events = %q, want %q", name, tc.in, evs, tc.want)
				}
				if !errors.Is(got.Err, io.EOF) {
					t.Errorf("%s: Decode(%q) error = %v, want io.EOF", name, tc.in, got.Err)
				}
				if got.LastEventID != tc.last {
					t.Errorf("%s: Decode(%q) LastEventID() = %q, want %q", name, tc.in, got.LastEventID, tc.last)
				}
				if got.Retry != tc.retry {
					t.Errorf("%s: Decode(%q) Retry() = %v, want %v", name, tc.in, got.Retry, tc.retry)
				}
			}
		})
	}
}

// TestDecoderSplitCRLF checks that a CRLF split across two reads is one
// line end, not a line end followed by a blank line.
func TestDecoderSplitCRLF(t *testing.T) {
	tests := []struct {
		chunks []string
		want   []sse.Event
	}{
		{[]string{"data: a\r", "\ndata: b\r", "\n\r", "\n"}, []sse.Event{msg("", "a\nb")}},
		{[]string{"data: a\r", "\n", "\r", "\n"}, []sse.Event{msg("", "a")}},
		{[]string{"data: a\r", "\r", "\ndata: b\r\n\r", "\n"}, []sse.Event{msg("", "a"), msg("", "b")}},
		{[]string{"id: 1\r", "\n", "data: x\r", "\n\r", "\ndata: y\r\n\r\n"}, []sse.Event{msg("1", "x"), msg("1", "y")}},
		// An empty read between the CR and the LF changes nothing.
		{[]string{"data: a\r", "", "\ndata: b\r\n\r\n"}, []sse.Event{msg("", "a\nb")}},
	}
	for _, tt := range tests {
		r := &scriptReader{chunks: slices.Clone(tt.chunks), err: io.EOF}
		got := decodeAll(sse.NewDecoder(r))
		var evs []sse.Event
		for _, s := range got.Steps {
			evs = append(evs, s.Event)
		}
		if !slices.Equal(evs, tt.want) || !errors.Is(got.Err, io.EOF) {
			t.Errorf("Decode(chunks %q) = %q, %v; want %q, EOF", tt.chunks, evs, got.Err, tt.want)
		}
	}
}

var errNoMore = errors.New("test: no more reads expected")

// TestDecoderNoReadAhead checks that Next returns an event as soon as its
// blank line has arrived, without waiting for the next byte (which, with
// CR line ends, might be the LF of a CRLF).
func TestDecoderNoReadAhead(t *testing.T) {
	for _, in := range []string{"data: x\n\n", "data: x\r\r", "data: x\r\n\r\n", "data: x\r\n\r"} {
		d := sse.NewDecoder(&scriptReader{chunks: []string{in}, err: errNoMore})
		ev, err := d.Next()
		if err != nil || ev != msg("", "x") {
			t.Errorf("Next() on %q = %v, %v; want the event without another read", in, ev, err)
		}
		if _, err := d.Next(); !errors.Is(err, errNoMore) {
			t.Errorf("second Next() on %q = %v, want the reader's error", in, err)
		}
	}
}

func TestDecoderLongLines(t *testing.T) {
	for _, n := range []int{64 << 10, 64<<10 + 1, 1 << 20, 5<<20 + 3} {
		data := strings.Repeat("x", n)
		in := "id: 1\ndata: " + data + "\r\ndata: " + data[:n/2] + "\n\nevent: " + data + "\rdata: y\r\r"
		got := decodeAll(sse.NewDecoder(strings.NewReader(in)))
		want := []step{
			{Event: msg("1", data+"\n"+data[:n/2]), LastEventID: "1"},
			{Event: typed("1", data, "y"), LastEventID: "1"},
		}
		if !slices.Equal(got.Steps, want) || !errors.Is(got.Err, io.EOF) {
			t.Errorf("Decode(lines of %d bytes) = %d events, %v; want 2 events, EOF", n, len(got.Steps), got.Err)
		}
	}
}

func TestDecoderMaxEventSize(t *testing.T) {
	line := func(n int) string { return "data: " + strings.Repeat("x", n-len("data: ")) + "\n" }
	tests := []struct {
		name  string
		limit int
		in    string
		want  int  // events decoded before the end
		large bool // whether decoding ends in a TooLargeError
	}{
		{"one line at the limit", 100, line(100) + "\n", 1, false},
		{"one line over the limit", 100, line(101) + "\n", 0, true},
		{"unfinished line over the limit", 100, line(101)[:101], 0, true},
		{"lines add up", 100, line(50) + line(50) + "\n", 1, false},
		{"lines add up over", 100, line(50) + line(51) + "\n", 0, true},
		{"other fields count", 100, "id: 1234567\n" + line(90) + "\n", 0, true},
		{"unknown fields count", 100, "zzz: 123456\n" + line(90) + "\n", 0, true},
		{"count resets after each event", 100, line(90) + "\n" + line(90) + "\n" + line(90) + "\n", 3, false},
		{"count resets after a blank line without data", 100, "id: 1234567\n\n" + line(100) + "\n", 1, false},
		{"events before the large one", 100, line(10) + "\n" + line(10) + "\n" + line(200) + "\n", 2, true},
		{"line ends not counted", 21, "data: 1\r\ndata: 2\r\ndata: 3\r\n\r\n", 1, false},
		{"comments not counted", 100, line(90) + ":" + strings.Repeat("c", 99) + "\n\n", 1, false},
		{"comment over the limit", 100, ":" + strings.Repeat("c", 100) + "\n" + line(10) + "\n", 0, true},
		{"default limit", 0, line(sse.DefaultMaxEventSize) + "\n", 1, false},
		{"default limit exceeded", 0, line(sse.DefaultMaxEventSize+1) + "\n", 0, true},
		{"negative means default", -1, line(200) + "\n", 1, false},
	}
	for _, tt := range tests {
		for _, oneByte := range []bool{false, true} {
			if oneByte && len(tt.in) > 1<<20 {
				continue
			}
			var r io.Reader = strings.NewReader(tt.in)
			if oneByte {
				r = iotest.OneByteReader(r)
			}
			d := sse.NewDecoder(r)
			d.SetMaxEventSize(tt.limit)
			got := decodeAll(d)
			if len(got.Steps) != tt.want {
				t.Errorf("%s (one byte %v): Decode() = %d events, want %d", tt.name, oneByte, len(got.Steps), tt.want)
			}
			if !tt.large {
				if !errors.Is(got.Err, io.EOF) {
					t.Errorf("%s (one byte %v): Decode() error = %v, want io.EOF", tt.name, oneByte, got.Err)
				}
				continue
			}
			var tl *sse.TooLargeError
			wantLimit := tt.limit
			if wantLimit <= 0 {
				wantLimit = sse.DefaultMaxEventSize
			}
			if !errors.Is(got.Err, sse.ErrTooLarge) || !errors.As(got.Err, &tl) || tl.Limit != wantLimit {
				t.Errorf("%s (one byte %v): Decode() error = %v, want a TooLargeError with limit %d", tt.name, oneByte, got.Err, wantLimit)
				continue
			}
			// The error is sticky.
			if _, err := d.Next(); !errors.Is(err, got.Err) {
				t.Errorf("%s: Next() after %v = %v, want the same error", tt.name, got.Err, err)
			}
		}
	}
}

func TestDecoderReadError(t *testing.T) {
	boom := errors.New("boom")
	r := &scriptReader{chunks: []string{"id: 1\ndata: a\n\nda", "ta: b\n"}, err: boom}
	d := sse.NewDecoder(r)
	ev, err := d.Next()
	if err != nil || ev != msg("1", "a") {
		t.Fatalf("Next() = %v, %v; want %v", ev, err, msg("1", "a"))
	}
	for range 2 {
		_, err = d.Next()
		if !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), "sse: read: ") {
			t.Errorf("Next() error = %v, want boom wrapped with \"sse: read: \"", err)
		}
	}
	if got := d.LastEventID(); got != "1" {
		t.Errorf("LastEventID() after error = %q, want %q", got, "1")
	}
}

func TestDecoderEOFSticky(t *testing.T) {
	d := sse.NewDecoder(strings.NewReader("id: 9\ndata: a\n\n"))
	if _, err := d.Next(); err != nil {
		t.Fatalf("Next() = %v", err)
	}
	for range 3 {
		if _, err := d.Next(); !errors.Is(err, io.EOF) {
			t.Errorf("Next() at end = %v, want io.EOF", err)
		}
	}
	if got := d.LastEventID(); got != "9" {
		t.Errorf("LastEventID() after EOF = %q, want %q", got, "9")
	}
}

// zeroReader returns no bytes and no error forever.
type zeroReader struct{}

func (zeroReader) Read([]byte) (int, error) { return 0, nil }

func TestDecoderNoProgress(t *testing.T) {
	_, err := sse.NewDecoder(zeroReader{}).Next()
	if !errors.Is(err, io.ErrNoProgress) {
		t.Errorf("Next() on a reader that returns 0, nil = %v, want io.ErrNoProgress", err)
	}
}

// badReader claims to have read more than it was given.
type badReader struct{}

func (badReader) Read(p []byte) (int, error) { return len(p) + 1, nil }

func TestDecoderBadReader(t *testing.T) {
	if _, err := sse.NewDecoder(badReader{}).Next(); err == nil || errors.Is(err, io.EOF) {
		t.Errorf("Next() on a reader with an invalid count = %v, want an error", err)
	}
}

// TestDecoderAllocs checks that decoding allocates for the event strings
// only, not per line: one string per event here, since the ID and type
// repeat.
func TestDecoderAllocs(t *testing.T) {
	const n = 200
	var b bytes.Buffer
	for range n {
		b.WriteString("id: 1\nevent: tick\n: comment\ndata: some data\ndata: more data\nretry: 100\nfoo: bar\n\n")
	}
	in := b.Bytes()
	allocs := testing.AllocsPerRun(20, func() {
		d := sse.NewDecoder(bytes.NewReader(in))
		for {
			if _, err := d.Next(); err != nil {
				break
			}
		}
	})
	// n data strings, plus the reader, the decoder, its buffers and the
	// first ID and type.
	if allocs > n+10 {
		t.Errorf("decoding %d events made %v allocations, want at most %d", n, allocs, n+10)
	}
}

func TestDecoderWrappedEOF(t *testing.T) {
	r := &scriptReader{chunks: []string{"data: a\n\ndata: b\n"}, err: fmt.Errorf("wrapped: %w", io.EOF)}
	got := decodeAll(sse.NewDecoder(r))
	if len(got.Steps) != 1 || got.Err != io.EOF { //nolint:errorlint // Next must return io.EOF itself
		t.Errorf("Decode(reader ending with a wrapped EOF) = %v, want one event and io.EOF itself", got)
	}
}
