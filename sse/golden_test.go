package sse_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/herald-sse/herald/sse"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// checkGolden compares got with the golden file at path, or rewrites the
// file when -update is set.
func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (run with -update if the change is intended)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// item is one thing written to an encoded stream.
type item struct {
	event   *sse.Event
	comment *string
	retry   *time.Duration
}

func ev(e sse.Event) item            { return item{event: &e} }
func comment(s string) item          { return item{comment: &s} }
func retryItem(d time.Duration) item { return item{retry: &d} }

var encodeGolden = []struct {
	name  string
	items []item
}{
	{"basic", []item{
		ev(sse.Event{Data: "hello"}),
		ev(sse.Event{ID: "1", Data: "with id"}),
		ev(sse.Event{ID: "2", Type: "greeting", Data: "with id and type"}),
		ev(sse.Event{Type: "message", Data: "explicit default type"}),
	}},
	{"multiline", []item{
		ev(sse.Event{ID: "10", Data: "line 1\nline 2\nline 3"}),
		ev(sse.Event{ID: "11", Data: "crlf 1\r\ncrlf 2\rcr 3"}),
		ev(sse.Event{ID: "12", Data: "trailing newline\n"}),
		ev(sse.Event{ID: "13", Data: "\n\nleading newlines"}),
		ev(sse.Event{ID: "14", Data: `{"json": true, "list": [1, 2]}`}),
	}},
	{"edge", []item{
		ev(sse.Event{}),
		ev(sse.Event{Data: " leading space"}),
		ev(sse.Event{Data: ": looks like a comment"}),
		ev(sse.Event{Data: "data: looks like a field"}),
		ev(sse.Event{ID: " spaced id", Type: " spaced type", Data: "x"}),
		ev(sse.Event{Data: "nul \x00 byte"}),
		ev(sse.Event{ID: "\u00e9\u4e16", Type: "\U0001F600", Data: "unicode \u2713"}),
	}},
	{"control", []item{
		retryItem(3 * time.Second),
		comment("heartbeat"),
		comment(""),
		comment("multi\nline\r\ncomment"),
		ev(sse.Event{ID: "99", Type: "tick", Data: "after retry", Retry: 1500 * time.Millisecond}),
	}},
}

// expectDecoded returns the events a decoder gives for items, with the
// documented normalisations applied.
func expectDecoded(items []item) (want []sse.Event, retry time.Duration) {
	last := ""
	for _, it := range items {
		switch {
		case it.event != nil:
			e := normalise(*it.event, last)
			last = e.ID
			if it.event.Retry > 0 {
				retry = it.event.Retry
			}
			want = append(want, e)
		case it.retry != nil:
			retry = *it.retry
		}
	}
	return want, retry
}

func TestGoldenEncode(t *testing.T) {
	for _, tc := range encodeGolden {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			e := sse.NewEncoder(&buf)
			for _, it := range tc.items {
				var err error
				switch {
				case it.event != nil:
					err = e.Encode(*it.event)
				case it.comment != nil:
					err = e.Comment(*it.comment)
				case it.retry != nil:
					err = e.Retry(*it.retry)
				}
				if err != nil {
					t.Fatalf("encoding %+v: %v", it, err)
				}
			}
			checkGolden(t, filepath.Join("testdata", "encode", tc.name+".golden"), buf.Bytes())

			// The golden stream decodes back to the events.
			got := decodeString(buf.String())
			want, retry := expectDecoded(tc.items)
			var evs []sse.Event
			for _, s := range got.Steps {
				evs = append(evs, s.Event)
			}
			if len(evs) != len(want) || !errors.Is(got.Err, io.EOF) || got.Retry != retry {
				t.Fatalf("Decode(golden %s) = %v, want %q and retry %v", tc.name, got, want, retry)
			}
			for i := range want {
				if evs[i] != want[i] {
					t.Errorf("Decode(golden %s) event %d = %+v, want %+v", tc.name, i, evs[i], want[i])
				}
			}
		})
	}
}

// goldenResult is the JSON form of a decoding, written to the golden files.
type goldenResult struct {
	Events []goldenEvent `json:"events"`
	End    goldenEnd     `json:"end"`
}

type goldenEvent struct {
	ID          string `json:"id"`
	Type        string `json:"type"`
	Data        string `json:"data"`
	LastEventID string `json:"lastEventID"`
	Retry       string `json:"retry"`
}

type goldenEnd struct {
	Err         string `json:"err"`
	LastEventID string `json:"lastEventID"`
	Retry       string `json:"retry"`
}

func toGolden(r result) goldenResult {
	g := goldenResult{Events: []goldenEvent{}}
	for _, s := range r.Steps {
		g.Events = append(g.Events, goldenEvent{
			ID: s.Event.ID, Type: s.Event.Type, Data: s.Event.Data,
			LastEventID: s.LastEventID, Retry: s.Retry.String(),
		})
	}
	g.End = goldenEnd{Err: r.Err.Error(), LastEventID: r.LastEventID, Retry: r.Retry.String()}
	return g
}

func TestGoldenDecode(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "decode", "*.sse"))
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no golden streams in testdata/decode: %v", err)
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".sse")
		t.Run(name, func(t *testing.T) {
			stream, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			got := decodeAll(sse.NewDecoder(bytes.NewReader(stream)))
			oneByte := decodeAll(sse.NewDecoder(iotest.OneByteReader(bytes.NewReader(stream))))
			if !got.equal(oneByte) {
				t.Errorf("Decode(%s) read whole = %v\nread a byte at a time = %v", in, got, oneByte)
			}
			out, err := json.MarshalIndent(toGolden(got), "", "\t")
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, strings.TrimSuffix(in, ".sse")+".golden", append(out, '\n'))
		})
	}
}
