package sse_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/herald-sse/herald/sse"
)

func ExampleAppendEvent() {
	// Encode once; the same bytes can be written to every subscriber.
	buf, err := sse.AppendEvent(nil, sse.Event{
		ID:    "42",
		Type:  "price",
		Data:  "EUR 1.08\nUSD 1.00",
		Retry: 3 * time.Second,
	})
	if err != nil {
		panic(err)
	}
	buf = sse.AppendComment(buf, "heartbeat")
	os.Stdout.Write(buf)

	// Values the wire cannot carry are rejected, never altered.
	_, err = sse.AppendEvent(nil, sse.Event{ID: "4\n2"})
	fmt.Fprintln(os.Stdout, errors.Is(err, sse.ErrInvalidField), err)
	// Output:
	// id: 42
	// event: price
	// retry: 3000
	// data: EUR 1.08
	// data: USD 1.00
	//
	// : heartbeat
	//
	// true sse: id "4\n2" contains a line break
}

func ExampleDecoder() {
	stream := "retry: 5000\r\n" +
		": a comment\r\n" +
		"id: 1\r\n" +
		"data: first\r\n" +
		"data: event\r\n" +
		"\r\n" +
		"event: price\r\n" +
		"data: 42\r\n" +
		"\r\n" +
		"id: 2\r\n" +
		"data: not dispatched: the stream ends before its blank line\r\n"

	d := sse.NewDecoder(strings.NewReader(stream))
	for {
		ev, err := d.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			fmt.Fprintln(os.Stdout, "error:", err)
			return
		}
		fmt.Fprintf(os.Stdout, "id=%q type=%q data=%q\n", ev.ID, ev.Type, ev.Data)
	}
	fmt.Fprintln(os.Stdout, "last event ID:", d.LastEventID())
	fmt.Fprintln(os.Stdout, "retry:", d.Retry())
	// Output:
	// id="1" type="message" data="first\nevent"
	// id="1" type="price" data="42"
	// last event ID: 1
	// retry: 5s
}

func ExampleEncoder() {
	e := sse.NewEncoder(os.Stdout)
	if err := e.Encode(sse.Event{ID: "7", Data: "hello"}); err != nil {
		panic(err)
	}
	if err := e.Comment("keep-alive"); err != nil {
		panic(err)
	}
	// Output:
	// id: 7
	// data: hello
	//
	// : keep-alive
}

// A client that reconnects starts the new connection's decoder from the
// last event ID it had, and may watch comments (heartbeats).
func ExampleDecoder_SetLastEventID() {
	// The new connection sends an event without an "id" field.
	d := sse.NewDecoder(strings.NewReader(":\n: keep-alive\ndata: after reconnecting\n\n"))
	d.SetLastEventID("41")
	d.SetCommentFunc(func(text string) error {
		fmt.Fprintf(os.Stdout, "comment %q\n", text)
		return nil
	})
	ev, err := d.Next()
	if err != nil {
		fmt.Fprintln(os.Stdout, "error:", err)
		return
	}
	fmt.Fprintf(os.Stdout, "id=%q data=%q\n", ev.ID, ev.Data)
	// Output:
	// comment ""
	// comment "keep-alive"
	// id="41" data="after reconnecting"
}
