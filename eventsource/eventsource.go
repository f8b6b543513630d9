package eventsource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
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

// bodyExcerpt is how many bytes of a rejected response body a
// [ResponseError] keeps.
const bodyExcerpt = 256

// ErrNoContent is the last error yielded by [Client.Events] when the server
// answers 204 No Content, which tells an EventSource to stop reconnecting.
// It is the normal end of a subscription the server closed for good; test
// for it with errors.Is.
var ErrNoContent = errors.New("eventsource: server answered 204 no content")

// errBusy is yielded when [Client.Events] is iterated twice at once.
var errBusy = errors.New("eventsource: events already being iterated")

// ResponseError is the error for a response that is not an event stream:
// a status other than 200 and 204, or a 200 whose Content-Type is not
// text/event-stream. Unless [Config.RetryNonStreamErrors] is set, it ends
// the iteration.
type ResponseError struct {
	// StatusCode is the HTTP status code of the response.
	StatusCode int
	// ContentType is the Content-Type header of the response, as sent.
	ContentType string
	// Body holds up to the first 256 bytes of the response body, with
	// invalid UTF-8 replaced.
	Body string
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
	// Header holds extra request headers, such as Authorization. It is
	// copied by [New]. Accept, Cache-Control and Last-Event-ID are set by
	// the client and override any value given here.
	Header http.Header

	// Client sends the requests. Nil means a new http.Client with
	// http.DefaultTransport and no overall timeout. A client with a
	// Timeout cuts every stream after that time (the client then
	// reconnects); prefer [Config.IdleTimeout]. Its CheckRedirect decides
	// which redirects are followed; a redirect it refuses with
	// http.ErrUseLastResponse is a [*ResponseError].
	Client *http.Client

	// LastEventID is the initial last event ID, sent as Last-Event-ID on
	// the first connection when it is not empty. The empty default starts
	// from the live stream.
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
	// The default, false, follows the spec.
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
	}
	if err := checkHeaderValue(cfg.LastEventID); err != nil {
		return nil, fmt.Errorf("eventsource: new: %w", err)
	}
	c := &Client{
		url:      u.String(),
		header:   make(http.Header, len(cfg.Header)),
		client:   cfg.Client,
		maxSize:  cfg.MaxEventSize,
		maxRetry: cfg.MaxRetry,
		retryNon: cfg.RetryNonStreamErrors,
		idle:     cfg.IdleTimeout,
		log:      cfg.Logger,
		onOpen:   cfg.OnOpen,
		lastID:   cfg.LastEventID,
		retry:    cfg.InitialRetry,
		jitter:   rand.Float64,
		sleep:    sleep,
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
// last event ID in effect when it was dispatched.
//
// Transient failures (network errors, streams that end) are logged and
// retried after the reconnection time, with backoff. A non-nil error is
// always the last value of the iteration: [ErrNoContent] after a 204, a
// [*ResponseError], an error matching sse.ErrTooLarge, an error returned
// by [Config.OnOpen], or ctx.Err() once ctx is done.
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
			if res.stopped {
				return
			}
			if err := ctx.Err(); err != nil {
				yield(sse.Event{}, err)
				return
			}
			if res.fatal {
				yield(sse.Event{}, res.err)
				return
			}
			if res.delivered {
				failures = 0
			} else {
				failures++
			}
			d := backoff(c.reconnectionTime(), c.maxRetry, failures, c.jitter())
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
// error, which is never nil.
func (c *Client) Run(ctx context.Context, fn func(sse.Event) error) error {
	for ev, err := range c.Events(ctx) {
		if err != nil {
			return err
		}
		if err := fn(ev); err != nil {
			return err
		}
	}
	// Unreachable: an iteration that is not broken always ends with an
	// error.
	return errors.New("eventsource: run: iteration ended without error")
}

// result is what one connection ended with.
type result struct {
	delivered bool  // at least one event was yielded
	stopped   bool  // yield returned false
	fatal     bool  // err ends the iteration
	err       error // why the connection ended
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
	}
	return res
}

// connect makes one connection and yields its events until it ends. If
// idle is not nil, every byte received resets its timer.
func (c *Client) connect(ctx context.Context, idle *idleReader, yield func(sse.Event, error) bool) result {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return result{fatal: true, err: fmt.Errorf("eventsource: request: %w", err)}
	}
	req.Header = c.header.Clone()
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	if id := c.LastEventID(); id != "" {
		req.Header.Set("Last-Event-ID", id)
	} else {
		req.Header.Del("Last-Event-ID")
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return result{err: fmt.Errorf("eventsource: connect: %w", err)}
	}
	defer resp.Body.Close()

	if resp.StatusCode == http.StatusNoContent {
		return result{fatal: true, err: ErrNoContent}
	}
	if err := checkResponse(resp); err != nil {
		return result{fatal: !c.retryNon, err: err}
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
	var res result
	for {
		ev, err := dec.Next()
		c.update(dec, err == nil, ev.ID)
		if err != nil {
			switch {
			case errors.Is(err, sse.ErrTooLarge):
				res.fatal = true
				res.err = fmt.Errorf("eventsource: read: %w", err)
			case errors.Is(err, io.EOF):
				res.err = errors.New("eventsource: stream ended")
			default:
				res.err = fmt.Errorf("eventsource: read: %w", err)
			}
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
// stream. It reads an excerpt of a rejected body.
func checkResponse(resp *http.Response) error {
	ct := resp.Header.Get("Content-Type")
	if resp.StatusCode == http.StatusOK {
		if mt, _, err := mime.ParseMediaType(ct); err == nil && mt == "text/event-stream" {
			return nil
		}
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, bodyExcerpt))
	body := strings.TrimSpace(strings.ToValidUTF8(string(b), string(utf8.RuneError)))
	return &ResponseError{StatusCode: resp.StatusCode, ContentType: ct, Body: body}
}

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
