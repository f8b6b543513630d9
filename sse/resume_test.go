package sse_test

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/herald-sse/herald/sse"
)

// TestDecoderSetLastEventID checks that a decoder started from a known
// last event ID behaves as one that had read that ID on an earlier
// connection: the ID persists, as the spec's "last event ID string" does.
func TestDecoderSetLastEventID(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []sse.Event
		last string
	}{
		{"event without id carries it", "data: a\n\n", []sse.Event{msg("7", "a")}, "7"},
		{"stream with no event keeps it", "", nil, "7"},
		{"comments and retry only keep it", ": hi\nretry: 10\n\n", nil, "7"},
		{"unfinished event keeps it", "id: 8\ndata: partial", nil, "7"},
		{"new id replaces it", "id: 8\ndata: a\n\ndata: b\n\n", []sse.Event{msg("8", "a"), msg("8", "b")}, "8"},
		{"same id", "id: 7\ndata: a\n\n", []sse.Event{msg("7", "a")}, "7"},
		{"empty id clears it", "id\ndata: a\n\ndata: b\n\n", []sse.Event{msg("", "a"), msg("", "b")}, ""},
		{"empty id value clears it", "id:\n\ndata: a\n\n", []sse.Event{msg("", "a")}, ""},
		{"id without data replaces it", "id: 9\n\n", nil, "9"},
		{"id with NUL is ignored", "id: x\x00\ndata: a\n\n", []sse.Event{msg("7", "a")}, "7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for name, r := range map[string]io.Reader{
				"whole":    strings.NewReader(tt.in),
				"one byte": iotest.OneByteReader(strings.NewReader(tt.in)),
			} {
				d := sse.NewDecoder(r)
				d.SetLastEventID("7")
				if got := d.LastEventID(); got != "7" {
					t.Errorf("%s: LastEventID() after SetLastEventID(7) = %q, want 7", name, got)
				}
				got := decodeAll(d)
				var evs []sse.Event
				for _, s := range got.Steps {
					evs = append(evs, s.Event)
				}
				if !slices.Equal(evs, tt.want) {
					t.Errorf("%s: Decode(%q) from id 7 = %q, want %q", name, tt.in, evs, tt.want)
				}
				if !errors.Is(got.Err, io.EOF) {
					t.Errorf("%s: Decode(%q) error = %v, want io.EOF", name, tt.in, got.Err)
				}
				if got.LastEventID != tt.last {
					t.Errorf("%s: Decode(%q) from id 7: LastEventID() = %q, want %q", name, tt.in, got.LastEventID, tt.last)
				}
			}
		})
	}
}

// TestDecoderSetLastEventIDEmpty checks that starting from "" is the same
// as not calling SetLastEventID.
func TestDecoderSetLastEventIDEmpty(t *testing.T) {
	d := sse.NewDecoder(strings.NewReader("id:\ndata: a\n\nid: 1\ndata: b\n\n"))
	d.SetLastEventID("")
	got := decodeAll(d)
	want := []sse.Event{msg("", "a"), msg("1", "b")}
	var evs []sse.Event
	for _, s := range got.Steps {
		evs = append(evs, s.Event)
	}
	if !slices.Equal(evs, want) || got.LastEventID != "1" {
		t.Errorf("Decode from id \"\" = %q, last %q; want %q, last 1", evs, got.LastEventID, want)
	}
}

func TestDecoderComments(t *testing.T) {
	const in = ": first\n:\n:  two spaces\n:no space\ndata: a\n: inside\ndata: b\n\n:\xff bad\n" + "data: c\n\n: trailing"
	// Each item is a comment ("#" prefix) or an event's data, in order.
	want := []string{"#first", "#", "# two spaces", "#no space", "#inside", "a\nb", "#\ufffd bad", "c"}
	for name, newReader := range map[string]func() io.Reader{
		"whole":    func() io.Reader { return strings.NewReader(in) },
		"one byte": func() io.Reader { return iotest.OneByteReader(strings.NewReader(in)) },
		"chunks":   func() io.Reader { return &chunkReader{data: []byte(in), sizes: []byte{3, 1, 7, 2}} },
	} {
		var got []string
		d := sse.NewDecoder(newReader())
		d.SetCommentFunc(func(text string) error {
			got = append(got, "#"+text)
			return nil
		})
		for {
			ev, err := d.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: Next() = %v", name, err)
			}
			got = append(got, ev.Data)
		}
		// The final comment has no line end: it is not a complete line.
		if !slices.Equal(got, want) {
			t.Errorf("%s: Decode(%q) with comments = %q, want %q", name, in, got, want)
		}
	}
}

func TestDecoderCommentsOffByDefault(t *testing.T) {
	got := decodeString(": hello\n:\ndata: a\n\n")
	if len(got.Steps) != 1 || got.Steps[0].Event != msg("", "a") {
		t.Errorf("Decode without a comment func = %v, want one event", got)
	}
}

func TestDecoderCommentFuncError(t *testing.T) {
	stop := errors.New("stop")
	d := sse.NewDecoder(strings.NewReader("data: a\n\ndata: pending\n: stop here\n\ndata: never\n\n"))
	d.SetCommentFunc(func(text string) error {
		if text == "stop here" {
			return stop
		}
		return nil
	})
	got := decodeAll(d)
	if len(got.Steps) != 1 || got.Steps[0].Event != msg("", "a") {
		t.Errorf("events before the comment error = %v, want only a", got.Steps)
	}
	if !errors.Is(got.Err, stop) {
		t.Errorf("Next() after the comment func failed = %v, want its error", got.Err)
	}
	if _, err := d.Next(); !errors.Is(err, stop) {
		t.Errorf("Next() again = %v, want the same sticky error", err)
	}
}

func TestDecoderCommentTooLong(t *testing.T) {
	d := sse.NewDecoder(strings.NewReader(":" + strings.Repeat("x", 100) + "\ndata: a\n\n"))
	d.SetMaxEventSize(50)
	called := false
	d.SetCommentFunc(func(string) error { called = true; return nil })
	if _, err := d.Next(); !errors.Is(err, sse.ErrTooLarge) {
		t.Errorf("Next() on a comment over the limit = %v, want ErrTooLarge", err)
	}
	if called {
		t.Error("the comment func saw a comment over the limit")
	}
}
