// herald sub: subscribe to a Herald hub (or read any SSE URL) and print
// events.
//
//	herald sub news                          # topic "news" on --hub
//	herald sub --json news prices | jq .data
//	herald sub https://example.com/events    # any SSE endpoint
//	herald sub -d '{"stream":true}' -H 'Authorization: Bearer KEY' --until '[DONE]' https://api.example/v1/chat
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
// With --comments, a comment line is printed as {"comment":"text"}.

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
	"os"
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
read directly (any SSE server or streaming API). Topics that are URLs
themselves go in --topic.

Like a browser EventSource, the command reconnects when a GET stream
breaks or ends, waiting the server's retry time (with backoff after
repeated failures, and at least the Retry-After of a 429 or 503), and
resumes with Last-Event-ID. A request with a body (-d, --data-file) or
another method (-X) is read once: the command ends with the response,
unless --reconnect asks to resend it. --no-reconnect reads a GET stream
once too.

Requests: -X METHOD (default GET, or POST when a body is given); -d DATA
or -d @FILE (@- for stdin) or --data-file FILE sends a body; -H 'K: V' adds
a header (repeatable). When a body is sent without a Content-Type header,
one is chosen: application/json if the body is a JSON object or array,
otherwise application/x-www-form-urlencoded (as curl does); -H
'Content-Type: ...' overrides it.

Credentials: the token (--token, or HERALD_TOKEN) is sent as
Authorization: Bearer to the hub. An SSE URL gets it only when the token
is given with --token on the command line, or when the URL has the same
origin (scheme, host and port) as --hub: HERALD_TOKEN is never sent to
another server. Give other servers their credentials with -H; an
Authorization header given with -H is sent as given, instead of the token.

It ends with status 0 after --count events, at the --until event, when a
stream read once ends cleanly, when the server answers 204 No Content, or
on Ctrl-C; with status 1 when the first connection cannot be made, the
server refuses the request (a status other than 200, a content type
other than text/event-stream, an event larger than --max-event-size), or
a stream read once breaks; with status 2 for usage errors. Reconnections
are reported on stderr; so is the first connection when stderr is a
terminal or with --verbose.

Output, one event per line, flushed as it arrives:
  default  [type] id: data   (no "id: " when the id is empty; further data
                             lines indented by four spaces)
           : text            (a comment, with --comments)
  --json   {"type":"message","data":"hello","id":"42"}
           type: the event type ("message" when none); data: the data,
           lines joined with \n; id: the last event ID in effect ("" if
           none). One object per line, members in this order.
           {"comment":"text"} (a comment, with --comments)

Environment: HERALD_HUB, HERALD_TOKEN, and HERALD_<FLAG> for every flag
(--foo-bar is HERALD_FOO_BAR). A flag on the command line wins.

Examples:
  herald sub news
  herald sub --json --topic 'https://example.com/users/42/{+rest}'
  herald sub --topic https://example.com/books/1 --last-event-id earliest
  herald sub --count 1 http://localhost:3000/api/events
  herald sub -H "Authorization: Bearer $API_KEY" --until '[DONE]' \
      -d '{"model":"m","stream":true,"messages":[{"role":"user","content":"Hi"}]}' \
      https://api.example.com/v1/chat/completions

Flags:
`

// maxBody is the largest request body `herald sub` sends.
const maxBody = 16 << 20

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
	method       string
	data         string
	dataFile     string
	noReconnect  bool
	reconnect    bool
	until        string
	comments     bool
	verbose      bool
}

func (c *subConfig) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.hub, "hub", defaultHub, "`URL` of the hub's Mercure endpoint (env HERALD_HUB)")
	fs.StringVar(&c.token, "token", "", "subscriber `JWT`, sent as Authorization: Bearer to the hub; to an SSE URL only if given here or the URL is on --hub's origin (env HERALD_TOKEN)")
	fs.Var(&c.topics, "topic", "`topic` selector to subscribe to on --hub (repeatable; needed for topics that are URLs)")
	fs.BoolVar(&c.asJSON, "json", false, `print one JSON object per event: {"type","data","id"}`)
	fs.StringVar(&c.lastEventID, "last-event-id", "", "resume after this event `id` (\"earliest\": all the hub's history)")
	fs.Var(&c.headers, "header", "extra request header `K: V` (repeatable)")
	fs.Var(&c.headers, "H", "extra request header `K: V` (repeatable; same as --header)")
	fs.IntVar(&c.count, "count", 0, "exit after this many events (0: never)")
	fs.IntVar(&c.maxEventSize, "max-event-size", eventsource.DefaultMaxEventSize, "largest event accepted, in `bytes`; a larger one is an error")
	fs.DurationVar(&c.idleTimeout, "idle-timeout", 0, "reconnect when the stream is silent this long; set it above the hub's heartbeat (0: never)")
	fs.StringVar(&c.method, "X", "", "request `method` (default GET, or POST with a body)")
	fs.StringVar(&c.data, "d", "", "request body `DATA`; @FILE reads a file, @- stdin (implies POST unless -X)")
	fs.StringVar(&c.dataFile, "data-file", "", "read the request body from `FILE` (- for stdin)")
	fs.BoolVar(&c.noReconnect, "no-reconnect", false, "read one response: exit when the stream ends (the default with a body or -X other than GET)")
	fs.BoolVar(&c.reconnect, "reconnect", false, "reconnect even with a body or -X other than GET, resending the body with Last-Event-ID")
	fs.StringVar(&c.until, "until", "", "exit 0 at the first event whose data is exactly `DATA` (not printed), e.g. '[DONE]'")
	fs.BoolVar(&c.comments, "comments", false, "print comment lines (heartbeats included) as well as events")
	fs.BoolVar(&c.verbose, "verbose", false, "report the first connection on stderr even when stderr is not a terminal")
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
	// cmdline is what the command line alone says: the environment fills
	// the flags it does not give, but -H given on the command line must
	// win over HERALD_HEADER, and a token from the environment is not one
	// given explicitly.
	var cmdline subConfig
	cfs := flag.NewFlagSet("herald sub", flag.ContinueOnError)
	cfs.SetOutput(io.Discard)
	cmdline.flags(cfs)
	if err := cfs.Parse(args); err != nil {
		return &exitError{2, err}
	}
	given := map[string]bool{}
	cfs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if given["H"] || given["header"] {
		c.headers = cmdline.headers
	}
	set := map[string]bool{} // given on the command line or in the environment
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

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
	case c.noReconnect && c.reconnect:
		return &exitError{2, errors.New("give --reconnect or --no-reconnect, not both")}
	case set["d"] && set["data-file"]:
		return &exitError{2, errors.New("give -d or --data-file, not both")}
	}
	hdr, err := parseHeaders(c.headers)
	if err != nil {
		return &exitError{2, err}
	}
	body, hasBody, err := subBody(c, set)
	if err != nil {
		return err
	}
	method := strings.ToUpper(c.method)
	if method == "" {
		method = http.MethodGet
		if hasBody {
			method = http.MethodPost
		}
	}
	if hasBody && hdr.Get("Content-Type") == "" {
		hdr.Set("Content-Type", bodyContentType(body))
	}
	sendToken, withheld := tokenFor(c, given["token"], target, len(fs.Args()) == 1 && len(c.topics) == 0 && !isTopic(fs.Args()[0]))
	if sendToken && hdr.Get("Authorization") == "" { // -H 'Authorization: ...' is sent as given
		hdr.Set("Authorization", "Bearer "+c.token)
	}
	reconnect := eventsource.ReconnectAuto
	switch {
	case c.noReconnect:
		reconnect = eventsource.ReconnectNever
	case c.reconnect:
		reconnect = eventsource.ReconnectAlways
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	display := displayURL(target)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	defer tr.CloseIdleConnections()
	first := &firstConnect{rt: tr, fail: func(err error) {
		cancel(&exitError{1, fmt.Errorf("cannot reach %s: %s", display, netReason(err, 0))})
	}}
	p := eventPrinter{w: stdout, json: c.asJSON}
	notices := &noticeHandler{mu: new(sync.Mutex), w: stderr}
	showFirst := c.verbose || isTerminalWriter(stderr)
	opens := 0
	cfg := eventsource.Config{
		Method:       method,
		Header:       hdr,
		Client:       &http.Client{Transport: first},
		LastEventID:  c.lastEventID,
		MaxEventSize: c.maxEventSize,
		IdleTimeout:  c.idleTimeout,
		Reconnect:    reconnect,
		Logger:       slog.New(notices),
		OnOpen: func(resp *http.Response) error {
			opens++
			sent := resp.Request.Header.Get("Last-Event-ID")
			switch {
			case opens > 1 && sent != "":
				notices.printf("herald sub: reconnected to %s, resuming after event %q\n", display, sent)
			case opens > 1:
				notices.printf("herald sub: reconnected to %s\n", display)
			case showFirst:
				notices.printf("herald sub: connected to %s\n", display)
			}
			if sent != "" && sent != "earliest" && resp.Header.Get("Last-Event-ID") == "earliest" {
				notices.printf("herald sub: warning: the hub cannot resume after event %q (unknown, or no longer in its history): "+
					"it replays all the history it holds; events may have been missed\n", sent)
			}
			return nil
		},
	}
	if hasBody {
		cfg.Body = func() (io.Reader, error) { return bytes.NewReader(body), nil }
	}
	if set["until"] {
		until := c.until
		cfg.Until = func(ev sse.Event) bool { return ev.Data == until }
	}
	if c.comments {
		cfg.OnComment = func(text string) error {
			if err := p.comment(text); err != nil {
				return &exitError{1, fmt.Errorf("writing output: %w", err)}
			}
			return nil
		}
	}
	client, err := eventsource.New(target.String(), cfg)
	if err != nil {
		return &exitError{2, errors.New(strings.TrimPrefix(err.Error(), "eventsource: new: "))}
	}

	n := 0
	for ev, err := range client.Events(ctx) {
		if err != nil {
			return subError(ctx, err, display, c, withheld)
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

// subBody returns the request body given by -d or --data-file, and
// whether there is one.
func subBody(c subConfig, set map[string]bool) ([]byte, bool, error) {
	var name, file string
	switch {
	case set["data-file"]:
		name, file = "--data-file", c.dataFile
	case set["d"] && strings.HasPrefix(c.data, "@"):
		name, file = "-d", c.data[1:]
	case set["d"]:
		if len(c.data) > maxBody {
			return nil, false, &exitError{2, fmt.Errorf("-d holds more than %d bytes", maxBody)}
		}
		return []byte(c.data), true, nil
	default:
		return nil, false, nil
	}
	var r io.Reader
	switch file {
	case "":
		return nil, false, &exitError{2, fmt.Errorf("%s: no file name", name)}
	case "-":
		r = os.Stdin
	default:
		f, err := os.Open(file)
		if err != nil {
			return nil, false, &exitError{2, fmt.Errorf("%s: %w", name, err)}
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxBody+1))
	switch {
	case err != nil:
		return nil, false, &exitError{1, fmt.Errorf("%s: reading %s: %w", name, file, err)}
	case len(b) > maxBody:
		return nil, false, &exitError{2, fmt.Errorf("%s: %s holds more than %d bytes", name, file, maxBody)}
	}
	return b, true, nil
}

// bodyContentType is the Content-Type of a request body that -H does not
// name: application/json for a JSON object or array, else what curl -d
// sends.
func bodyContentType(b []byte) string {
	t := bytes.TrimSpace(b)
	if len(t) > 0 && (t[0] == '{' || t[0] == '[') && json.Valid(t) {
		return "application/json"
	}
	return "application/x-www-form-urlencoded"
}

// tokenFor says whether the token goes to target: always to the hub, and
// to a bare SSE URL only when the token was given explicitly on the
// command line or the URL is on the hub's origin. withheld reports a
// token from the environment kept from a bare URL.
func tokenFor(c subConfig, explicit bool, target *url.URL, bare bool) (send, withheld bool) {
	switch {
	case c.token == "":
		return false, false
	case !bare || explicit:
		return true, false
	}
	hub, err := url.Parse(c.hub)
	if err == nil && sameOrigin(hub, target) {
		return true, false
	}
	return false, true
}

// sameOrigin reports whether a and b have the same scheme, host and port.
func sameOrigin(a, b *url.URL) bool {
	port := func(u *url.URL) string {
		if p := u.Port(); p != "" {
			return p
		}
		if strings.EqualFold(u.Scheme, "https") {
			return "443"
		}
		return "80"
	}
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Hostname(), b.Hostname()) && port(a) == port(b)
}

// isTopic reports whether the argument a is a topic rather than an SSE URL.
func isTopic(a string) bool {
	l := strings.ToLower(a)
	return !strings.HasPrefix(l, "http://") && !strings.HasPrefix(l, "https://")
}

// isTerminalWriter reports whether w is a terminal.
func isTerminalWriter(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isTerminal(f)
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
func subError(ctx context.Context, err error, display string, c subConfig, withheld bool) error {
	var re *eventsource.ResponseError
	var tl *sse.TooLargeError
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		return ee
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
		switch {
		case re.StatusCode == http.StatusUnauthorized && withheld:
			msg += " (HERALD_TOKEN is sent only to --hub's origin: give --token to send it to this URL)"
		case re.StatusCode == http.StatusUnauthorized && c.token == "":
			msg += " (give --token or set HERALD_TOKEN)"
		}
		return &exitError{1, errors.New(msg)}
	case errors.As(err, &tl):
		return &exitError{1, fmt.Errorf("%s: an event is larger than %d bytes (--max-event-size)", display, tl.Limit)}
	}
	// A stream read once that broke, or a connection that failed.
	return &exitError{1, fmt.Errorf("%s: %s", display, trimPrefixes(err.Error()))}
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

// jsonComment is the --json format of a comment line.
type jsonComment struct {
	Comment string `json:"comment"`
}

// comment writes the text of a comment line with a single Write.
func (p *eventPrinter) comment(text string) error {
	p.buf.Reset()
	if p.json {
		enc := json.NewEncoder(&p.buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(jsonComment{text}); err != nil {
			return err
		}
	} else {
		p.buf.WriteString(": " + printable(text) + "\n")
	}
	_, err := p.w.Write(p.buf.Bytes())
	return err
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
	var re *eventsource.ResponseError
	if r.Message == "eventsource: reconnecting" {
		delay := roundDuration(attrs["delay"].Duration())
		err, _ := attrs["err"].Any().(error)
		if errors.As(err, &re) {
			line = fmt.Sprintf("herald sub: the server answered %d %s; retrying in %s\n",
				re.StatusCode, http.StatusText(re.StatusCode), delay)
		} else {
			line = fmt.Sprintf("herald sub: connection lost (%s); reconnecting in %s\n",
				trimPrefixes(attrs["err"].String()), delay)
		}
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

// printf prints a notice line.
func (h *noticeHandler) printf(format string, args ...any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	fmt.Fprintf(h.w, format, args...)
}

// roundDuration rounds d for messages: to the millisecond under a second,
// to the tenth of a second under a minute, else to the second.
func roundDuration(d time.Duration) time.Duration {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond)
	case d < time.Minute:
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}

// trimPrefixes removes the package prefixes of an eventsource error
// message: "eventsource: read: sse: read: unexpected EOF" is "read:
// unexpected EOF".
func trimPrefixes(msg string) string {
	msg = strings.TrimPrefix(msg, "eventsource: ")
	return strings.ReplaceAll(msg, "sse: read: ", "")
}

// WithAttrs returns a handler that also prints as.
func (h *noticeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &noticeHandler{mu: h.mu, w: h.w, attrs: append(h.attrs[:len(h.attrs):len(h.attrs)], as...)}
}

// WithGroup returns h: groups are not shown.
func (h *noticeHandler) WithGroup(string) slog.Handler { return h }
