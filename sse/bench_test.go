package sse_test

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/herald-sse/herald/sse"
)

func BenchmarkAppendEvent(b *testing.B) {
	ev := sse.Event{ID: "1732530000000-0", Type: "update", Data: strings.Repeat("x", 100)}
	buf, _ := sse.AppendEvent(nil, ev)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		buf, err = sse.AppendEvent(buf[:0], ev)
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendEventMultiline(b *testing.B) {
	ev := sse.Event{ID: "1732530000000-0", Data: strings.Repeat(strings.Repeat("y", 63)+"\n", 16)}
	buf, _ := sse.AppendEvent(nil, ev)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = sse.AppendEvent(buf[:0], ev)
	}
}

// BenchmarkDecode decodes a stream of 1000 events (ID, type, 100 bytes of
// data, a heartbeat comment every 10 events) per op.
func BenchmarkDecode(b *testing.B) {
	const events = 1000
	var stream []byte
	for i := range events {
		var err error
		stream, err = sse.AppendEvent(stream, sse.Event{
			ID:   strconv.Itoa(i),
			Type: "update",
			Data: strings.Repeat("x", 100),
		})
		if err != nil {
			b.Fatal(err)
		}
		if i%10 == 0 {
			stream = sse.AppendComment(stream, "heartbeat")
		}
	}
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	r := bytes.NewReader(stream)
	for b.Loop() {
		r.Reset(stream)
		d := sse.NewDecoder(r)
		n := 0
		for {
			if _, err := d.Next(); err != nil {
				break
			}
			n++
		}
		if n != events {
			b.Fatalf("decoded %d events, want %d", n, events)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*events), "ns/event")
}
