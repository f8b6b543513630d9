package eventsource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"math"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/herald-sse/herald/sse"
)

// Defaults for the zero fields of [Config].
const (
	// DefaultMaxEventSize is the largest event accepted when
	// [Config.MaxEventSize] is zero: 16 MiB.
	DefaultMaxEventSize = 16 << 20
	// DefaultInitialRetry is the reconnection time used until the server
	// sends a "retry" field, when [Config.InitialRetry] is zero. It is the
	// value Chromium and Firefox use.
	DefaultInitialRetry = 3 * time.Second
	// DefaultMaxRetry caps the backoff after repeated failures when
	// [Config.MaxRetry] is zero.
	DefaultMaxRetry = 30 * time.Second
)

// bodyExcerpt is how many bytes of a rejected response body
// [ResponseError.Body] keeps; rawBodyLimit how many [ResponseError.RawBody]
// keeps.
const (
	bodyExcerpt  = 256
	rawBodyLimit = 4 << 10
)

// Reconnect says whether a [Client] reconnects when a stream ends or
// breaks. The zero value is [ReconnectAuto].
type Reconnect int

const (
	// ReconnectAuto reconnects when the request method is GET, as an
	// EventSource does, and otherwise makes one request only, as for
	// [ReconnectNever]: a POST is often not safe to repeat.
	ReconnectAuto Reconnect = iota
	// ReconnectAlways reconnects whatever the method, calling
	// [Config.Body] again for each attempt so that the body is resent
	// along with Last-Event-ID. A 204, a terminal event ([Config.Until])
	// or a fatal error still end the iteration.
	ReconnectAlways
	// ReconnectNever makes the client one-shot: the iteration ends when
	// the response ends, without an error if the stream ended cleanly and
	// with one if it broke (a network error, a truncated chunked body) or
	// could not be opened. This is how the streaming responses of most
	// HTTP APIs, large-language-model APIs among them, are read.
	ReconnectNever
)

// ErrNoContent is the last error yielded by [Client.Events] when the server
// answers 204 No Content, which tells an EventSource to stop reconnecting.
// It is the normal end of a subscription the server closed for good; test
// for it with errors.Is.
var ErrNoContent = errors.New("eventsource: server answered 204 no content")

// errBusy is yielded when [Client.Events] is iterated twice at once.
var errBusy = errors.New("eventsource: events already being iterated")

// ResponseError is the error for a response that is not an event stream:
// a status other than 200 and 204, or a 200 whose Content-Type is not
// text/event-stream. Unless the client retries it (see
// [Config.RetryNonStreamErrors] and [ResponseError.RetryAfter]), it ends
// the iteration. APIs often explain a refusal in a JSON body: it is in
// RawBody.
type ResponseError struct {
	// StatusCode is the HTTP status code of the response.
	StatusCode int
	// ContentType is the Content-Type header of the response, as sent.
	ContentType string
	// Body holds up to the first 256 bytes of the response body, with
	// invalid UTF-8 replaced and surrounding white space trimmed, for
	// messages.
	Body string
	// RawBody holds up to the first 4 KiB of the response body, exactly
	// as received.
	RawBody []byte
	// Header holds the response headers.
	Header http.Header
	// RetryAfter is the delay of a valid Retry-After header (a number of
	// seconds or an HTTP date) on a 429 or 503 response, and 0 on other
	// responses or when there is none. A client that reconnects waits at
	// least that long and tries again, instead of failing.
	RetryAfter time.Duration
}

// Error reports the status code and a body excerpt, or the content type
// when the status was 200.
func (e *ResponseError) Error() string {
	if e.StatusCode == http.StatusOK {
		return fmt.Sprintf("eventsource: content type %q is not text/event-stream", e.ContentType)
	}
	msg := fmt.Sprintf("eventsource: unexpected status %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// Config configures a [Client]. The zero value is a valid configuration:
// every zero field means the default documented on it.
type Config struct {
	// Method is the request method. Empty means GET.
	Method string

	// Body, if not nil, returns the request body. It is called for each
	// connection attempt (and again by net/http to follow a 307 or 308
	// redirect), so it must return a fresh reader each time, for example
	// func() (io.Reader, error) { return bytes.NewReader(b), nil }: a
	// reconnection resends the same body. A reader that is an io.Closer is
	// closed by net/http. An error ends the iteration. Nil, the default,
	// sends no body. Set the body's Content-Type in Header.
	Body func() (io.Reader, error)

	// Header holds extra request headers, such as Authorization or
	// Content-Type (a Host header sets the request's Host). It is copied
	// by [New]. Accept, Cache-Control and
	// Last-Event-ID are set by the client and override any value given
	// here (OnRequest may still change them).
	Header http.Header

	// OnRequest, if not nil, is called in the iterating goroutine before
	// each connection attempt with the request about to be sent, its
	// headers set (Last-Event-ID included). It may change the request's
	// headers, for example to put a fresh token in Authorization before a
	// reconnection, but not its body. A non-nil error ends the iteration
	// with that error.
	OnRequest func(req *http.Request) error

	// Reconnect says whether the client reconnects after the stream ends
	// or breaks. The zero value, [ReconnectAuto], reconnects GET requests
	// only; [ReconnectAlways] reconnects any request, resending Body;
	// [ReconnectNever] reads one response (one-shot).
	Reconnect Reconnect

	// Until, if not nil, is called in the iterating goroutine with each
	// event before it is yielded. When it returns true the event is the
	// terminal one: it is not yielded, the response is closed and the
	// iteration ends without an error, whatever Reconnect says. For the
	// streaming APIs that end with "data: [DONE]":
	//
	//	Until: func(ev sse.Event) bool { return ev.Data == "[DONE]" }
	Until func(ev sse.Event) bool

	// OnComment, if not nil, is called in the iterating goroutine with the
	// text of each comment line, in stream order with the events: the
	// text after the colon, without one leading space (": ping" gives
	// "ping"; ":", the usual heartbeat, gives ""). A non-nil error ends
	// the iteration with that error. Nil, the default, ignores comments,
	// heartbeats included, as a browser does.
	OnComment func(text string) error

	// Client sends the requests. Nil means a new http.Client with
	// http.DefaultTransport and no overall timeout. A client with a
	// Timeout cuts every stream after that time (the client then
	// reconnects); prefer [Config.IdleTimeout]. Its CheckRedirect decides
	// which redirects are followed; a redirect it refuses with
	// http.ErrUseLastResponse is a [*ResponseError].
	Client *http.Client

	// LastEventID is the initial last event ID, sent as Last-Event-ID on
	// the first connection when it is not empty, and carried by the events
	// that arrive before the server sends an "id" field. The empty default
	// starts from the live stream.
	LastEventID string

	// MaxEventSize is the largest event, in bytes of its field lines, that
	// the client accepts. A larger event ends the iteration with an error
	// matching sse.ErrTooLarge; it is never truncated. Zero means
	// DefaultMaxEventSize (16 MiB). It must not be negative.
	MaxEventSize int

	// InitialRetry is the reconnection time used until the server sends a
	// "retry" field. Zero means DefaultInitialRetry (3 s). It must not be
	// negative.
	InitialRetry time.Duration

	// MaxRetry caps the exponential backoff after repeated failures. It
	// never shortens the reconnection time itself: if the server asks for
	// a longer retry, that is what the client waits. Zero means
	// DefaultMaxRetry (30 s). It must not be negative.
	MaxRetry time.Duration

	// RetryNonStreamErrors makes responses that are not event streams
	// (status other than 200 and 204, or a wrong content type) count as
	// failed connections and retried with backoff, instead of ending the
	// iteration with a [*ResponseError]. A 204 always ends the iteration.
	// The default, false, follows the spec, except that a 429 or 503 with
	// a Retry-After header is retried after that delay whenever the client
	// reconnects. A client that does not reconnect (see Reconnect) never
	// retries.
	RetryNonStreamErrors bool

	// IdleTimeout, if positive, is how long a connection may stay silent
	// (no response headers, no bytes of the stream, not even a comment)
	// before the client drops it and reconnects. Set it above the
	// server's heartbeat interval to detect dead connections, which
	// otherwise hang until the operating system notices. Zero, the
	// default, means no limit, as in browsers. It must not be negative.
	IdleTimeout time.Duration

	// Logger receives connection and retry messages; transient errors are
	// logged here and not yielded. Nil discards them.
	Logger *slog.Logger

	// OnOpen, if not nil, is called in the iterating goroutine each time a
	// response is accepted as an event stream, before its events are
	// read. It may inspect resp (status, headers such as the Last-Event-ID
	// a Mercure hub answers with "earliest" when it cannot resume) but
	// must not read or close resp.Body. A non-nil error ends the iteration
	// with that error.
	OnOpen func(resp *http.Response) error
}

// Client is an EventSource connection to one URL. Its events are read with
// [Client.Events] or [Client.Run]; it starts no goroutines and holds no
// response outside them, so it needs no Close. (Idle keep-alive
// connections belong to the transport of [Config.Client].)
//
// [Client.LastEventID] is safe for concurrent use. Events and Run must not
// be called concurrently; calling them again after an iteration ended
// resumes from the last event ID with the current reconnection time.
type Client struct {
	url       string
	method    string
	body      func() (io.Reader, error)
	reconnect bool
	onRequest func(*http.Request) error
	until     func(sse.Event) bool
	onComment func(string) error
	header    http.Header
	client    *http.Client
	maxSize   int
	maxRetry  time.Duration
	retryNon  bool
	idle      time.Duration
	log       *slog.Logger
	onOpen    func(*http.Response) error
	running   atomic.Bool
	mu        sync.Mutex // guards lastID and retry
	lastID    string
	retry     time.Duration
	jitter    func() float64                                   // in [0, 1); replaced in tests
	sleep     func(ctx context.Context, d time.Duration) error // replaced in tests
	connected atomic.Int64                                     // successful opens, for the log
}

// New returns a client for rawURL, which must be an absolute http or https
// URL. It validates cfg and keeps its own copy. It does not connect:
// connecting is done by [Client.Events].
func New(rawURL string, cfg Config) (*Client, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("eventsource: new: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("eventsource: new: url %q is not an absolute http or https url", rawURL)
	}
	switch {
	case cfg.MaxEventSize < 0:
		return nil, fmt.Errorf("eventsource: new: negative MaxEventSize %d", cfg.MaxEventSize)
	case cfg.InitialRetry < 0:
		return nil, fmt.Errorf("eventsource: new: negative InitialRetry %v", cfg.InitialRetry)
	case cfg.MaxRetry < 0:
		return nil, fmt.Errorf("eventsource: new: negative MaxRetry %v", cfg.MaxRetry)
	case cfg.IdleTimeout < 0:
		return nil, fmt.Errorf("eventsource: new: negative IdleTimeout %v", cfg.IdleTimeout)
	case cfg.Reconnect < ReconnectAuto || cfg.Reconnect > ReconnectNever:
		return nil, fmt.Errorf("eventsource: new: unknown Reconnect %d", cfg.Reconnect)
	}
	method := cfg.Method
	if method == "" {
		method = http.MethodGet
	}
	if _, err := http.NewRequest(method, u.String(), nil); err != nil {
		return nil, fmt.Errorf("eventsource: new: %w", err)
	}
	if err := checkHeaderValue(cfg.LastEventID); err != nil {
		return nil, fmt.Errorf("eventsource: new: %w", err)
	}
	c := &Client{
		url:       u.String(),
		method:    method,
		body:      cfg.Body,
		reconnect: cfg.Reconnect == ReconnectAlways || cfg.Reconnect == ReconnectAuto && method == http.MethodGet,
		onRequest: cfg.OnRequest,
		until:     cfg.Until,
		onComment: cfg.OnComment,
		header:    make(http.Header, len(cfg.Header)),
		client:    cfg.Client,
		maxSize:   cfg.MaxEventSize,
		maxRetry:  cfg.MaxRetry,
		retryNon:  cfg.RetryNonStreamErrors,
		idle:      cfg.IdleTimeout,
		log:       cfg.Logger,
		onOpen:    cfg.OnOpen,
		lastID:    cfg.LastEventID,
		retry:     cfg.InitialRetry,
		jitter:    rand.Float64,
		sleep:     sleep,
	}
	for k, vs := range cfg.Header {
		for _, v := range vs {
			c.header.Add(k, v) // canonical keys, so that Set and Del below find them
		}
	}
	if c.client == nil {
		c.client = &http.Client{}
	}
	if c.maxSize == 0 {
		c.maxSize = DefaultMaxEventSize
	}
	if c.retry == 0 {
		c.retry = DefaultInitialRetry
	}
	if c.maxRetry == 0 {
		c.maxRetry = DefaultMaxRetry
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// LastEventID returns the last event ID string: the ID in effect after the
// last complete event block received, or [Config.LastEventID] before any.
// It is safe to call concurrently with an iteration.
func (c *Client) LastEventID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastID
}

// Events returns an iterator over the events of the stream, in order,
// across reconnections. Each event comes with a nil error; its ID is the
// last event ID in effect when it was dispatched, which persists across
// connections (an event without an "id" field carries the previous ID,
// starting from [Config.LastEventID]).
//
// Transient failures (network errors, streams that end) are logged and
// retried after the reconnection time, with backoff, when the client
// reconnects (see [Config.Reconnect]). A non-nil error is always the last
// value of the iteration: [ErrNoContent] after a 204, a
// [*ResponseError], an error matching sse.ErrTooLarge, an error returned
// by [Config.OnOpen], [Config.OnRequest], [Config.OnComment] or
// [Config.Body], ctx.Err() once ctx is done, or, for a client that does
// not reconnect, the error that broke its one stream. The iteration ends
// without an error after a terminal event ([Config.Until]) and, for a
// client that does not reconnect, when its stream ends cleanly.
//
// The iteration runs in the caller's goroutine. Breaking out of the loop
// or cancelling ctx closes the current response body and returns promptly.
// Iterating while another iteration of the same Client runs yields an
// error at once.
func (c *Client) Events(ctx context.Context) iter.Seq2[sse.Event, error] {
	return func(yield func(sse.Event, error) bool) {
		if !c.running.CompareAndSwap(false, true) {
			yield(sse.Event{}, errBusy)
			return
		}
		defer c.running.Store(false)
		failures := 0
		for {
			res := c.stream(ctx, yield)
			if res.stopped || res.done {
				return
			}
			if err := ctx.Err(); err != nil {
				yield(sse.Event{}, err)
				return
			}
			if res.fatal || !c.reconnect && !res.ended {
				yield(sse.Event{}, res.err)
				return
			}
			if !c.reconnect {
				return // a one-shot stream that ended cleanly
			}
			if res.delivered {
				failures = 0
			} else {
				failures++
			}
			d := backoff(c.reconnectionTime(), c.maxRetry, failures, c.jitter())
			d = max(d, res.retryAfter)
			level := slog.LevelWarn
			if failures == 0 {
				level = slog.LevelInfo // a stream that delivered events ended
			}
			c.log.LogAttrs(ctx, level, "eventsource: reconnecting",
				slog.String("url", c.url), slog.Any("err", res.err),
				slog.Int("failures", failures), slog.Duration("delay", d))
			if err := c.sleep(ctx, d); err != nil {
				yield(sse.Event{}, err)
				return
			}
		}
	}
}

// Run calls fn for each event of [Client.Events] until fn returns an error
// or the iteration ends. It returns fn's error or the iteration's last
// error, or nil when the iteration ended without an error (after a
// terminal event, or at the clean end of a one-shot stream).
func (c *Client) Run(ctx context.Context, fn func(sse.Event) error) error {
	for ev, err := range c.Events(ctx) {
		if err != nil {
			return err
		}
		if err := fn(ev); err != nil {
			return err
		}
	}
	return nil
}

// result is what one connection ended with.
type result struct {
	delivered  bool          // at least one event was yielded
	stopped    bool          // yield returned false
	done       bool          // a terminal event arrived: the iteration ends without error
	ended      bool          // the stream ended cleanly (the response body ended)
	fatal      bool          // err ends the iteration
	retryAfter time.Duration // the least wait before the next attempt
	err        error         // why the connection ended
}

// stream makes one connection and yields its events until it ends,
// enforcing the idle timeout.
func (c *Client) stream(ctx context.Context, yield func(sse.Event, error) bool) result {
	connCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var idle *idleReader
	if c.idle > 0 {
		idle = &idleReader{d: c.idle, t: time.AfterFunc(c.idle, func() { cancel(errIdle) })}
		defer idle.t.Stop()
	}
	res := c.connect(connCtx, idle, yield)
	if res.err != nil && errors.Is(context.Cause(connCtx), errIdle) && ctx.Err() == nil {
		res.err = fmt.Errorf("eventsource: connection silent for %v: %w", c.idle, res.err)
		res.ended = false
	}
	return res
}

// request returns the request of one connection attempt.
func (c *Client) request(ctx context.Context) (*http.Request, error) {
	var body io.Reader
	if c.body != nil {
		b, err := c.body()
		if err != nil {
			return nil, fmt.Errorf("eventsource: body: %w", err)
		}
		body = b
	}
	req, err := http.NewRequestWithContext(ctx, c.method, c.url, body)
	if err != nil {
		return nil, fmt.Errorf("eventsource: request: %w", err)
	}
	if c.body != nil {
		req.GetBody = func() (io.ReadCloser, error) {
			b, err := c.body()
			if err != nil {
				return nil, fmt.Errorf("eventsource: body: %w", err)
			}
			switch b := b.(type) {
			case nil:
				return http.NoBody, nil
			case io.ReadCloser:
				return b, nil
			default:
				return io.NopCloser(b), nil
			}
		}
	}
	req.Header = c.header.Clone()
	if h := req.Header.Get("Host"); h != "" {
		req.Host = h // net/http sends req.Host, not a Host header
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	if id := c.LastEventID(); id != "" {
		req.Header.Set("Last-Event-ID", id)
	} else {
		req.Header.Del("Last-Event-ID")
	}
	if c.onRequest != nil {
		if err := c.onRequest(req); err != nil {
			if req.Body != nil {
				req.Body.Close()
			}
			return nil, err
		}
	}
	return req, nil
}

// connect makes one connection and yields its events until it ends. If
// idle is not nil, every byte received resets its timer.
func (c *Client) connect(ctx context.Context, idle *idleReader, yield func(sse.Event, error) bool) result {
	req, err := c.request(ctx)
	if err != nil {
		return result{fatal: true, err: err}
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return result{err: fmt.Errorf("eventsource: connect: %w", err)}
	}
	defer resp.Body.Close()

	if resp.StatusCode == http.StatusNoContent {
		return result{fatal: true, err: ErrNoContent}
	}
	if re, retry := checkResponse(resp); re != nil {
		if retry {
			return result{err: re, retryAfter: re.RetryAfter}
		}
		return result{fatal: !c.retryNon, err: re}
	}
	n := c.connected.Add(1)
	c.log.LogAttrs(ctx, slog.LevelDebug, "eventsource: open",
		slog.String("url", c.url), slog.Int64("connection", n),
		slog.String("last_event_id", req.Header.Get("Last-Event-ID")))
	if c.onOpen != nil {
		if err := c.onOpen(resp); err != nil {
			return result{fatal: true, err: err}
		}
	}

	var body io.Reader = resp.Body
	if idle != nil {
		idle.resume() // the headers count as activity
		idle.r = resp.Body
		body = idle
	}
	dec := sse.NewDecoder(body)
	dec.SetMaxEventSize(c.maxSize)
	dec.SetLastEventID(c.LastEventID()) // the last event ID persists across connections
	var commentErr error
	if c.onComment != nil {
		dec.SetCommentFunc(func(text string) error {
			idle.pause() // the time the caller takes is not server silence
			commentErr = c.onComment(text)
			idle.resume()
			return commentErr
		})
	}
	var res result
	for {
		ev, err := dec.Next()
		c.update(dec, err == nil, ev.ID)
		if err != nil {
			switch {
			case commentErr != nil:
				res.fatal = true
				res.err = commentErr
			case errors.Is(err, sse.ErrTooLarge):
				res.fatal = true
				res.err = fmt.Errorf("eventsource: read: %w", err)
			case errors.Is(err, io.EOF):
				res.ended = true
				res.err = errors.New("eventsource: stream ended")
			default:
				res.err = fmt.Errorf("eventsource: read: %w", err)
			}
			return res
		}
		if c.until != nil && c.until(ev) {
			res.done = true
			return res
		}
		res.delivered = true
		idle.pause() // the time the caller takes is not server silence
		if !yield(ev, nil) {
			res.stopped = true
			return res
		}
		idle.resume()
	}
}

// update records the reconnection time and the last event ID after a call
// to dec.Next. When an event was decoded, its ID is the last event ID in
// effect; otherwise the decoder's own value is used, which covers event
// blocks with an id but no data.
func (c *Client) update(dec *sse.Decoder, decoded bool, id string) {
	if !decoded {
		id = dec.LastEventID()
	}
	if checkHeaderValue(id) != nil {
		// An id that cannot be sent as a header is kept out of the
		// reconnection request; the previous one stays in effect.
		c.log.Warn("eventsource: ignoring id that is not a valid header value", slog.String("id", id))
		id = c.LastEventID()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastID = id
	if r := dec.Retry(); r > 0 {
		c.retry = r
	}
}

// reconnectionTime returns the current reconnection time.
func (c *Client) reconnectionTime() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.retry
}

// checkResponse returns a [*ResponseError] unless resp is a 200 event
// stream. It reads the start of a rejected body. retry reports a 429 or
// 503 with a valid Retry-After header.
func checkResponse(resp *http.Response) (_ *ResponseError, retry bool) {
	ct := resp.Header.Get("Content-Type")
	if resp.StatusCode == http.StatusOK {
		if mt, _, err := mime.ParseMediaType(ct); err == nil && mt == "text/event-stream" {
			return nil, false
		}
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, rawBodyLimit))
	excerpt := raw[:min(len(raw), bodyExcerpt)]
	body := strings.TrimSpace(strings.ToValidUTF8(string(excerpt), string(utf8.RuneError)))
	re := &ResponseError{StatusCode: resp.StatusCode, ContentType: ct, Body: body, RawBody: raw, Header: resp.Header}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		re.RetryAfter, retry = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return re, retry
}

// parseRetryAfter parses a Retry-After value, a number of seconds or an
// HTTP date, as a delay from now. A date in the past is a delay of 0.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if v[0] >= '0' && v[0] <= '9' {
		secs, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, false
		}
		return time.Duration(min(secs, maxRetryAfterSecs)) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// maxRetryAfterSecs bounds a Retry-After delay so that it fits a Duration.
const maxRetryAfterSecs = math.MaxInt64 / int64(time.Second)

// checkHeaderValue reports whether id can be sent as an HTTP header value
// by net/http, which rejects control characters other than tab.
func checkHeaderValue(id string) error {
	for i := 0; i < len(id); i++ {
		if b := id[i]; b < ' ' && b != '\t' || b == 0x7f {
			return fmt.Errorf("last event id %q holds a control character", id)
		}
	}
	return nil
}

// errIdle is the cancellation cause of a connection that stayed silent
// longer than [Config.IdleTimeout].
var errIdle = errors.New("eventsource: idle timeout")

// idleReader resets an idle timer each time bytes are read.
type idleReader struct {
	r io.Reader
	t *time.Timer
	d time.Duration
}

func (ir *idleReader) Read(p []byte) (int, error) {
	n, err := ir.r.Read(p)
	if n > 0 {
		ir.t.Reset(ir.d)
	}
	return n, err
}

// pause stops the timer of ir, which may be nil.
func (ir *idleReader) pause() {
	if ir != nil {
		ir.t.Stop()
	}
}

// resume restarts the timer of ir, which may be nil, for its full period.
func (ir *idleReader) resume() {
	if ir != nil {
		ir.t.Reset(ir.d)
	}
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
