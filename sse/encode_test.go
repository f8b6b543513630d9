package sse_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/herald-sse/herald/sse"
)

func TestAppendEvent(t *testing.T) {
	tests := []struct {
		ev   sse.Event
		want string
	}{
		{sse.Event{Data: "hi"}, "data: hi\n\n"},
		{sse.Event{}, "data:\n\n"},
		{sse.Event{ID: "1", Type: "add", Data: "x"}, "id: 1\nevent: add\ndata: x\n\n"},
		{sse.Event{Type: "message", Data: "x"}, "data: x\n\n"},
		{sse.Event{Data: "a\nb"}, "data: a\ndata: b\n\n"},
		{sse.Event{Data: "a\r\nb"}, "data: a\ndata: b\n\n"},
		{sse.Event{Data: "a\rb"}, "data: a\ndata: b\n\n"},
		{sse.Event{Data: "a\n"}, "data: a\ndata:\n\n"},
		{sse.Event{Data: "\n"}, "data:\ndata:\n\n"},
		{sse.Event{Data: "\r\n\r\n"}, "data:\ndata:\ndata:\n\n"},
		{sse.Event{Data: "\n\r"}, "data:\ndata:\ndata:\n\n"},
		{sse.Event{Data: "a\r\r\nb"}, "data: a\ndata:\ndata: b\n\n"},
		{sse.Event{Data: " x"}, "data:  x\n\n"},
		{sse.Event{Data: ": not a comment"}, "data: : not a comment\n\n"},
		{sse.Event{Data: "a\x00b"}, "data: a\x00b\n\n"},
		{sse.Event{Data: "\xFF"}, "data: \xFF\n\n"},
		{sse.Event{ID: " 1"}, "id:  1\ndata:\n\n"},
		{sse.Event{Type: " t"}, "event:  t\ndata:\n\n"},
		{sse.Event{Type: "a\x00"}, "event: a\x00\ndata:\n\n"},
		{sse.Event{Retry: 1500 * time.Millisecond}, "retry: 1500\ndata:\n\n"},
		{sse.Event{Retry: time.Nanosecond}, "retry: 1\ndata:\n\n"},
		{sse.Event{Retry: 2*time.Millisecond + 1}, "retry: 3\ndata:\n\n"},
		{sse.Event{Retry: -time.Second}, "data:\n\n"},
		{
			sse.Event{ID: "42", Type: "price", Data: "line 1\nline 2", Retry: time.Second},
			"id: 42\nevent: price\nretry: 1000\ndata: line 1\ndata: line 2\n\n",
		},
	}
	for _, tt := range tests {
		got, err := sse.AppendEvent([]byte("prefix|"), tt.ev)
		if err != nil || string(got) != "prefix|"+tt.want {
			t.Errorf("AppendEvent(%+v) = %q, %v; want %q, nil", tt.ev, got, err, "prefix|"+tt.want)
		}
	}
}

func TestAppendEventInvalid(t *testing.T) {
	tests := []struct {
		ev    sse.Event
		field string
	}{
		{sse.Event{ID: "a\nb"}, "id"},
		{sse.Event{ID: "a\rb"}, "id"},
		{sse.Event{ID: "a\r\n"}, "id"},
		{sse.Event{ID: "a\x00b"}, "id"},
		{sse.Event{ID: "1", Type: "a\nb"}, "event"},
		{sse.Event{Type: "\r"}, "event"},
	}
	for _, tt := range tests {
		dst := []byte("keep")
		got, err := sse.AppendEvent(dst, tt.ev)
		if string(got) != "keep" {
			t.Errorf("AppendEvent(%+v) wrote %q, want dst unchanged", tt.ev, got)
		}
		var fe *sse.FieldError
		if !errors.Is(err, sse.ErrInvalidField) || !errors.As(err, &fe) || fe.Field != tt.field {
			t.Errorf("AppendEvent(%+v) error = %v, want a FieldError for %q", tt.ev, err, tt.field)
			continue
		}
		if !strings.HasPrefix(err.Error(), "sse: "+tt.field+" ") {
			t.Errorf("AppendEvent(%+v) error = %q, want it to start with %q", tt.ev, err, "sse: "+tt.field+" ")
		}
	}
}

func TestAppendComment(t *testing.T) {
	tests := []struct {
		text, want string
	}{
		{"", ":\n\n"},
		{"hi", ": hi\n\n"},
		{" hi", ":  hi\n\n"},
		{"a\nb", ": a\n: b\n\n"},
		{"a\r\nb\rc\n", ": a\n: b\n: c\n:\n\n"},
	}
	for _, tt := range tests {
		if got := sse.AppendComment(nil, tt.text); string(got) != tt.want {
			t.Errorf("AppendComment(%q) = %q, want %q", tt.text, got, tt.want)
		}
		// A comment, wherever it is put between events, dispatches nothing.
		in := "data: a\n\n" + tt.want + "data: b\n\n"
		got := decodeString(in)
		if len(got.Steps) != 2 || got.Steps[0].Event.Data != "a" || got.Steps[1].Event.Data != "b" {
			t.Errorf("Decode(%q) = %v, want events a and b", in, got)
		}
	}
}

func TestAppendRetry(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{3 * time.Second, "retry: 3000\n\n"},
		{0, "retry: 0\n\n"},
		{-5, "retry: 0\n\n"},
		{1500 * time.Microsecond, "retry: 2\n\n"},
		{time.Duration(1<<63 - 1), "retry: 9223372036854\n\n"},
	}
	for _, tt := range tests {
		if got := sse.AppendRetry(nil, tt.d); string(got) != tt.want {
			t.Errorf("AppendRetry(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
	got := decodeString(string(sse.AppendRetry(nil, 2500*time.Millisecond)))
	if got.Retry != 2500*time.Millisecond || len(got.Steps) != 0 {
		t.Errorf("Decode(AppendRetry(2.5s)) = %v, want retry 2.5s and no events", got)
	}
}

// countingWriter records each Write call.
type countingWriter struct {
	writes []string
	err    error
}

func (w *countingWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	w.writes = append(w.writes, string(p))
	return len(p), nil
}

func TestEncoder(t *testing.T) {
	w := &countingWriter{}
	e := sse.NewEncoder(w)
	if err := e.Encode(sse.Event{ID: "1", Data: "a\nb"}); err != nil {
		t.Fatalf("Encode() = %v", err)
	}
	if err := e.Comment("ping"); err != nil {
		t.Fatalf("Comment() = %v", err)
	}
	if err := e.Retry(time.Second); err != nil {
		t.Fatalf("Retry() = %v", err)
	}
	if err := e.Encode(sse.Event{ID: "bad\n"}); !errors.Is(err, sse.ErrInvalidField) {
		t.Errorf("Encode(bad id) = %v, want ErrInvalidField", err)
	}
	if err := e.Encode(sse.Event{Type: "t", Data: strings.Repeat("x", 100<<10)}); err != nil {
		t.Fatalf("Encode(large) = %v", err)
	}
	if err := e.Encode(sse.Event{Data: "c"}); err != nil {
		t.Fatalf("Encode() = %v", err)
	}
	want := []string{
		"id: 1\ndata: a\ndata: b\n\n",
		": ping\n\n",
		"retry: 1000\n\n",
		"event: t\ndata: " + strings.Repeat("x", 100<<10) + "\n\n",
		"data: c\n\n",
	}
	if len(w.writes) != len(want) {
		t.Fatalf("Encoder made %d writes, want %d (one per call, none for the rejected event)", len(w.writes), len(want))
	}
	for i := range want {
		if w.writes[i] != want[i] {
			t.Errorf("write %d = %.80q, want %.80q", i, w.writes[i], want[i])
		}
	}
}

func TestEncoderWriteError(t *testing.T) {
	boom := errors.New("boom")
	e := sse.NewEncoder(&countingWriter{err: boom})
	for name, err := range map[string]error{
		"Encode":  e.Encode(sse.Event{Data: "x"}),
		"Comment": e.Comment("x"),
		"Retry":   e.Retry(time.Second),
	} {
		if !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), "sse: write: ") {
			t.Errorf("%s() on a failing writer = %v, want boom wrapped with \"sse: write: \"", name, err)
		}
	}
}

func TestAppendEventAllocs(t *testing.T) {
	ev := sse.Event{ID: "12345", Type: "update", Data: strings.Repeat("d", 50) + "\n" + strings.Repeat("e", 50), Retry: time.Second}
	buf := make([]byte, 0, 1024)
	allocs := testing.AllocsPerRun(100, func() {
		var err error
		buf, err = sse.AppendEvent(buf[:0], ev)
		if err != nil {
			t.Fatal(err)
		}
		buf = sse.AppendComment(buf, "ping")
		buf = sse.AppendRetry(buf, time.Second)
	})
	if allocs != 0 {
		t.Errorf("AppendEvent, AppendComment and AppendRetry into a large enough buffer made %v allocations, want 0", allocs)
	}
	var w bytes.Buffer
	w.Grow(1 << 20)
	e := sse.NewEncoder(&w)
	_ = e.Encode(ev) // the first call sizes the Encoder's buffer
	allocs = testing.AllocsPerRun(100, func() {
		if err := e.Encode(ev); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Encoder.Encode made %v allocations, want 0", allocs)
	}
}
