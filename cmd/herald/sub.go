// herald sub: subscribe to a Herald hub (or any SSE URL) and print events.
//
//	herald sub news                          # topic "news" on --hub
//	herald sub --json news prices | jq .data
//	herald sub https://example.com/events    # any SSE endpoint
//
// The --json output is one JSON object per line, with exactly these
// members, in this order:
//
//	{"type":"message","data":"hello","id":"42"}
//
// type is the event type ("message" when the event has none), data is the
// event data (lines joined with "\n"), id is the last event ID in effect
// (the most recent "id" field received, "" if none). HTML characters are
// not escaped. New members may be added later; these three will not change.

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-sse/herald/eventsource"
	"github.com/herald-sse/herald/sse"
)

// subUsage is the header of `herald sub -h`.
const subUsage = `usage: herald sub [flags] TOPIC...
       herald sub [flags] URL

Subscribe and print each event as it arrives. Arguments are topics (or
topic selectors: '*', URI templates) of the hub given by --hub, all in one
subscription; a single http:// or https:// argument is instead an SSE URL
subscribed to directly (any SSE server). Topics that are URLs themselves
go in --topic.

Like a browser EventSource, the command reconnects when the stream breaks,
waiting the server's retry time (with backoff after repeated failures), and
resumes with Last-Event-ID. It ends with status 0 after --count events or
when the server answers 204 No Content; with status 1 when the first
connection cannot be made or the server refuses the subscription (a status
other than 200, a content type other than text/event-stream, an event
larger than --max-event-size); with status 2 for usage errors.

Output, one event per line, flushed as it arrives:
  default  [type] id: data   (no "id: " when the id is empty; further data
                             lines indented by four spaces)
  --json   {"type":"message","data":"hello","id":"42"}
           type: the event type ("message" when none); data: the data,
           lines joined with \n; id: the last event ID in effect ("" if
           none). One object per line, members in this order.

Environment: HERALD_HUB, HERALD_TOKEN, and HERALD_<FLAG> for every flag
(--foo-bar is HERALD_FOO_BAR). A flag on the command line wins.

Examples:
  herald sub news
  herald sub --json --token "$HERALD_TOKEN" 'https://example.com/users/42/{+rest}'
  herald sub --topic https://example.com/books/1 --last-event-id earliest
  herald sub --count 1 http://localhost:3000/api/events

Flags:
`

// subConfig is everything `herald sub` reads from flags and HERALD_*.
type subConfig struct {
	hub, token   string
	topics       listFlag
	headers      listFlag
	asJSON       bool
	lastEventID  string
	count        int
	maxEventSize int
	idleTimeout  time.Duration
}

func (c *subConfig) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.hub, "hub", defaultHub, "`URL` of the hub's Mercure endpoint (env HERALD_HUB)")
	fs.StringVar(&c.token, "token", "", "subscriber `JWT`, sent as Authorization: Bearer (env HERALD_TOKEN)")
	fs.Var(&c.topics, "topic", "`topic` selector to subscribe to on --hub (repeatable; needed for topics that are URLs)")
	fs.BoolVar(&c.asJSON, "json", false, `print one JSON object per event: {"type","data","id"}`)
	fs.StringVar(&c.lastEventID, "last-event-id", "", "resume after this event `id` (\"earliest\": all the hub's history)")
	fs.Var(&c.headers, "header", "extra request header `K: V` (repeatable)")
	fs.IntVar(&c.count, "count", 0, "exit after this many events (0: never)")
	fs.IntVar(&c.maxEventSize, "max-event-size", eventsource.DefaultMaxEventSize, "largest event accepted, in `bytes`; a larger one is an error")
	fs.DurationVar(&c.idleTimeout, "idle-timeout", 0, "reconnect when the stream is silent this long; set it above the hub's heartbeat (0: never)")
}

// runSub runs `herald sub` with args (the arguments after "sub").
func runSub(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c subConfig
	fs := flag.NewFlagSet("herald sub", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.flags(fs)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), subUsage)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	target, err := subURL(c.hub, c.topics, fs.Args())
	if err != nil {
		return &exitError{2, err}
	}
	switch {
	case c.count < 0:
		return &exitError{2, fmt.Errorf("--count must not be negative, got %d", c.count)}
	case c.maxEventSize <= 0:
		return &exitError{2, fmt.Errorf("--max-event-size must be positive, got %d", c.maxEventSize)}
	case c.idleTimeout < 0:
		return &exitError{2, fmt.Errorf("--idle-timeout must not be negative, got %v", c.idleTimeout)}
	}
	hdr, err := parseHeaders(c.headers)
	if err != nil {
		return &exitError{2, err}
	}
	if c.token != "" {
		hdr.Set("Authorization", "Bearer "+c.token)
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	display := displayURL(target)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	defer tr.CloseIdleConnections()
	first := &firstConnect{rt: tr, fail: func(err error) {
		cancel(&exitError{1, fmt.Errorf("cannot reach %s: %s", display, netReason(err, 0))})
	}}
	client, err := eventsource.New(target.String(), eventsource.Config{
		Header:       hdr,
		Client:       &http.Client{Transport: first},
		LastEventID:  c.lastEventID,
		MaxEventSize: c.maxEventSize,
		IdleTimeout:  c.idleTimeout,
		Logger:       slog.New(&noticeHandler{mu: new(sync.Mutex), w: stderr}),
		OnOpen: func(resp *http.Response) error {
			sent := resp.Request.Header.Get("Last-Event-ID")
			if sent != "" && sent != "earliest" && resp.Header.Get("Last-Event-ID") == "earliest" {
				fmt.Fprintf(stderr, "herald sub: warning: the hub cannot resume after event %q (unknown, or no longer in its history): "+
					"it replays all the history it holds; events may have been missed\n", sent)
			}
			return nil
		},
	})
	if err != nil {
		return &exitError{2, errors.New(strings.TrimPrefix(err.Error(), "eventsource: new: "))}
	}

	p := eventPrinter{w: stdout, json: c.asJSON}
	n := 0
	for ev, err := range client.Events(ctx) {
		if err != nil {
			return subError(ctx, err, display, c)
		}
		if err := p.print(ev); err != nil {
			return fmt.Errorf("writing output: %w", err)
		}
		if n++; c.count > 0 && n >= c.count {
			return nil
		}
	}
	return nil
}

// subURL returns the URL to subscribe to: the single SSE URL among args, or
// the hub URL with a topic parameter for each of topics and args.
func subURL(hub string, topics, args []string) (*url.URL, error) {
	var urls []string
	ts := append([]string(nil), topics...)
	for _, a := range args {
		if l := strings.ToLower(a); strings.HasPrefix(l, "http://") || strings.HasPrefix(l, "https://") {
			urls = append(urls, a)
		} else {
			ts = append(ts, a)
		}
	}
	switch {
	case len(urls) > 1:
		return nil, fmt.Errorf("several URLs (%q, %q...): give one SSE URL, or put topics that are URLs in --topic", urls[0], urls[1])
	case len(urls) == 1 && len(ts) > 0:
		return nil, fmt.Errorf("give one SSE URL or topics, not both (a topic that is a URL goes in --topic, not %q)", urls[0])
	case len(urls) == 1:
		return parseHTTPURL("SSE URL", urls[0])
	case len(ts) == 0:
		return nil, errors.New("nothing to subscribe to: give topics, or an SSE URL (see herald sub -h)")
	}
	u, err := parseHTTPURL("--hub", hub)
	if err != nil {
		return nil, err
	}
	q := u.Query()
	for _, t := range ts {
		q.Add("topic", t)
	}
	u.RawQuery = q.Encode()
	return u, nil
}

// subError turns the error that ended the subscription into the command's
// result: nil for a normal end (204, interruption), else an *exitError
// with a one-line message.
func subError(ctx context.Context, err error, display string, c subConfig) error {
	var re *eventsource.ResponseError
	var tl *sse.TooLargeError
	switch {
	case errors.Is(err, eventsource.ErrNoContent):
		return nil // the server ended the subscription for good
	case ctx.Err() != nil:
		var ee *exitError
		if errors.As(context.Cause(ctx), &ee) {
			return ee // the first connection failed
		}
		return nil // interrupted
	case errors.As(err, &re) && re.StatusCode == http.StatusOK:
		return &exitError{1, fmt.Errorf("%s: content type %q is not text/event-stream: not an SSE endpoint", display, re.ContentType)}
	case errors.As(err, &re):
		msg := fmt.Sprintf("%s: %d %s", display, re.StatusCode, http.StatusText(re.StatusCode))
		if r := oneLine(re.Body); r != "" {
			msg += ": " + r
		}
		if re.StatusCode == http.StatusUnauthorized && c.token == "" {
			msg += " (give --token or set HERALD_TOKEN)"
		}
		return &exitError{1, errors.New(msg)}
	case errors.As(err, &tl):
		return &exitError{1, fmt.Errorf("%s: an event is larger than %d bytes (--max-event-size)", display, tl.Limit)}
	}
	return &exitError{1, err}
}

// firstConnect is the transport of `herald sub`: it reports a network
// error of the first connection attempt with fail (the command then exits
// instead of retrying: nothing is listening there), and lets the client
// retry network errors once a connection succeeded.
type firstConnect struct {
	rt        http.RoundTripper
	fail      func(error)
	connected atomic.Bool
}

// RoundTrip sends r with the underlying transport and watches the outcome.
func (f *firstConnect) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := f.rt.RoundTrip(r)
	switch {
	case err == nil:
		f.connected.Store(true)
	case !f.connected.Load() && r.Context().Err() == nil:
		f.fail(err)
	}
	return resp, err
}

// eventPrinter writes events to w, one Write per event so that each event
// reaches a pipe as soon as it arrives.
type eventPrinter struct {
	w    io.Writer
	json bool
	buf  bytes.Buffer
}

// jsonEvent is the --json format of an event. Its members and their order
// are stable.
type jsonEvent struct {
	Type string `json:"type"`
	Data string `json:"data"`
	ID   string `json:"id"`
}

// print writes ev in the chosen format with a single Write.
func (p *eventPrinter) print(ev sse.Event) error {
	p.buf.Reset()
	if p.json {
		enc := json.NewEncoder(&p.buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(jsonEvent{Type: ev.Type, Data: ev.Data, ID: ev.ID}); err != nil {
			return err
		}
	} else {
		p.buf.WriteString("[" + printable(ev.Type) + "] ")
		if ev.ID != "" {
			p.buf.WriteString(printable(ev.ID) + ": ")
		}
		for i, line := range strings.Split(ev.Data, "\n") {
			if i > 0 {
				p.buf.WriteString("\n    ")
			}
			p.buf.WriteString(printable(line))
		}
		p.buf.WriteByte('\n')
	}
	_, err := p.w.Write(p.buf.Bytes())
	return err
}

// printable escapes the control characters of s (but tab) as \xNN, so that
// an event cannot drive the terminal.
func printable(s string) string {
	if !strings.ContainsFunc(s, isCtl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if isCtl(r) {
			fmt.Fprintf(&b, `\x%02x`, r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// isCtl reports whether r is a C0 or C1 control character other than tab,
// or DEL.
func isCtl(r rune) bool { return (r < ' ' && r != '\t') || (r >= 0x7f && r <= 0x9f) }

// noticeHandler is the slog.Handler of the event source client in
// `herald sub`: it prints its messages (reconnections) on one line each,
// "herald sub: ...". It is safe for concurrent use.
type noticeHandler struct {
	mu    *sync.Mutex // shared with the handlers derived by WithAttrs
	w     io.Writer
	attrs []slog.Attr
}

// Enabled passes Info and above: reconnections, not every connection.
func (h *noticeHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

// Handle prints r on one line.
func (h *noticeHandler) Handle(_ context.Context, r slog.Record) error {
	attrs := map[string]slog.Value{}
	for _, a := range h.attrs {
		attrs[a.Key] = a.Value
	}
	r.Attrs(func(a slog.Attr) bool {
		attrs[a.Key] = a.Value
		return true
	})
	var line string
	if r.Message == "eventsource: reconnecting" {
		line = fmt.Sprintf("herald sub: connection lost (%s); reconnecting in %s\n",
			strings.TrimPrefix(attrs["err"].String(), "eventsource: "), attrs["delay"].String())
	} else {
		var b strings.Builder
		b.WriteString("herald sub: " + strings.TrimPrefix(r.Message, "eventsource: "))
		for _, k := range slices.Sorted(maps.Keys(attrs)) {
			if k != "url" {
				fmt.Fprintf(&b, " %s=%q", k, attrs[k].String())
			}
		}
		line = b.String() + "\n"
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, line)
	return err
}

// WithAttrs returns a handler that also prints as.
func (h *noticeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &noticeHandler{mu: h.mu, w: h.w, attrs: append(h.attrs[:len(h.attrs):len(h.attrs)], as...)}
}

// WithGroup returns h: groups are not shown.
func (h *noticeHandler) WithGroup(string) slog.Handler { return h }
