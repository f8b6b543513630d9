package broker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/herald-sse/herald/store"
)

// Subscribe streams sub to the client until the client goes away, the
// subscriber falls too far behind, or the broker shuts down. It writes the
// response head itself: 200, Content-Type text/event-stream, Cache-Control
// no-cache, X-Accel-Buffering no, any header already set on w (CORS, for
// example), and a Last-Event-ID header when replay was requested (the
// requested id when the log holds it, "earliest" when it does not).
//
// Call it from an http.Handler after authorization. Plain HTTP/1.1 streams
// over a TCP or Unix socket are parked with the shared writer pool and
// Subscribe returns as soon as the replay is written; other streams (HTTP/2,
// TLS, connections wrapped by a listener, wrappers that cannot hijack) are
// served on the caller's goroutine until they end. Errors before the head
// is written are answered with an HTTP error status; refusals for load
// (503) also close the connection, so a refused client does not keep it.
func (b *Broker) Subscribe(w http.ResponseWriter, r *http.Request, sub Subscription) error {
	if len(sub.Topics) == 0 {
		http.Error(w, "no topic selector", http.StatusBadRequest)
		return errors.New("broker: subscribe: no topic selector")
	}
	// The stream keeps its own copy of the selectors (for Subscriptions and
	// the matcher): the caller's strings are often substrings of the
	// request line, which would stay in memory as long as the stream.
	selectors := make([]string, len(sub.Topics))
	for i, t := range sub.Topics {
		selectors[i] = strings.Clone(t)
	}
	topics, err := NewMatcher(selectors)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return err
	}
	var private *Matcher
	if sub.Private != nil {
		if private, err = NewMatcher(sub.Private); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return err
		}
	}
	from, replay := uint64(0), sub.LastEventID != ""
	h := w.Header()
	if replay {
		from, err = b.replayStart(r, sub.LastEventID)
		if err != nil {
			refuse(w, r, "history unavailable, retry later")
			return err
		}
		if from == 0 {
			h.Set("Last-Event-ID", "earliest")
		} else {
			h.Set("Last-Event-ID", sub.LastEventID)
		}
		h.Set("Mercure-Last-Event-ID", h.Get("Last-Event-ID")) // the name of earlier Mercure 1.0 drafts
	}
	s := newSubscriber(b, topics, private)
	s.selectors, s.id, s.payload = selectors, sub.Subscriber, sub.Payload
	if !sub.Until.IsZero() {
		// Armed before the stream is registered, so that unregister, on
		// whichever goroutine ends the stream, always finds it.
		s.expiry = time.AfterFunc(time.Until(sub.Until), func() { s.close(ErrExpired) })
	}
	until, err := b.register(s, from)
	if err != nil {
		if s.expiry != nil {
			s.expiry.Stop()
		}
		reason := "shutting down"
		switch {
		case errors.Is(err, ErrTooManySubscribers):
			reason = "too many subscribers, retry later"
		case errors.Is(err, ErrNotReady):
			reason = "history unavailable, retry later"
		}
		h.Del("Last-Event-ID")
		refuse(w, r, reason)
		return err
	}
	defer b.subWG.Done()
	b.presence(s, true) // before the stream can end: parked streams end on a writer goroutine
	if b.draining.Load() {
		s.finish(b.finalRetry()) // after its replay, it ends too
	}
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	h.Del("Content-Length")

	if b.park != nil && r.ProtoMajor == 1 && r.TLS == nil {
		if conn, brw, err := http.NewResponseController(w).Hijack(); err == nil {
			return b.serveHijacked(r, h, conn, brw, s, replay, from, until)
		}
	}
	defer b.unregister(s)
	rc := http.NewResponseController(w)
	w.WriteHeader(http.StatusOK)
	return b.serveStream(r.Context(), r.Context().Done(), responseOut{w, rc}, s, replay, from, until)
}

// refuse answers 503 with Retry-After and, on HTTP/1.x, closes the
// connection (on HTTP/2 that would close the client's other streams too).
func refuse(w http.ResponseWriter, r *http.Request, reason string) {
	w.Header().Set("Retry-After", "5")
	if r.ProtoMajor == 1 {
		w.Header().Set("Connection", "close")
	}
	http.Error(w, reason, http.StatusServiceUnavailable)
}

// replayStart finds the Seq to replay after. 0 means from the oldest
// retained update.
func (b *Broker) replayStart(r *http.Request, id string) (uint64, error) {
	if id == "earliest" {
		return 0, nil
	}
	seq, err := b.st.Lookup(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("broker: look up %q: %w", id, err)
	}
	return seq, nil
}

// writeReplay writes the retained updates in (from, until] that s matches:
// from the replay cache's shared bytes where it covers them, otherwise read
// from the store and encoded. If the store no longer holds updates of that
// range (trimmed while we replayed, or the log was reset) it returns an
// error wrapping ErrHistoryGap: the stream must end, not skip them.
func (b *Broker) writeReplay(ctx context.Context, w io.Writer, s *subscriber, from, until uint64) error {
	var ents []encoded
	after := from
	for after < until {
		if err := s.ended(); err != nil {
			return err
		}
		var ok bool
		if ents, ok = b.cache.read(after, until, b.cfg.ReplayBatch, ents[:0]); !ok {
			var err error
			if ents, err = b.readEncoded(ctx, after, until, ents); err != nil {
				if errors.Is(err, store.ErrCursorGone) || errors.Is(err, store.ErrLogReset) {
					b.gaps.Add(1)
					return fmt.Errorf("%w: %w", ErrHistoryGap, err)
				}
				return fmt.Errorf("broker: replay: %w", err)
			}
		}
		if len(ents) == 0 {
			return nil
		}
		for i := range ents {
			e := &ents[i]
			after = e.seq
			if e.buf == nil || !s.wants(e) {
				continue
			}
			if _, err := w.Write(e.buf); err != nil {
				return err
			}
			b.written.Add(uint64(len(e.buf)))
		}
		clear(ents)
	}
	return nil
}

// readEncoded reads the next batch of updates in (after, until] from the
// store and appends them, encoded, to dst.
func (b *Broker) readEncoded(ctx context.Context, after, until uint64, dst []encoded) ([]encoded, error) {
	ups, err := b.st.Read(ctx, after, b.cfg.ReplayBatch)
	if err != nil {
		return dst, err
	}
	for i := range ups {
		if ups[i].Seq > until {
			break
		}
		dst = append(dst, b.newEncoded(&ups[i]))
	}
	return dst, nil
}

// errClientGone is the reason a stream on a hijacked connection ends when
// its client closes the connection.
var errClientGone = errors.New("broker: client closed the connection")

// streamOut is where a stream on its own goroutine writes: the
// ResponseWriter, or a hijacked connection that cannot be parked.
type streamOut interface {
	io.Writer
	Flush() error
	SetWriteDeadline(time.Time) error
}

// responseOut writes through the ResponseWriter.
type responseOut struct {
	http.ResponseWriter
	rc *http.ResponseController
}

func (o responseOut) Flush() error                       { return o.rc.Flush() }
func (o responseOut) SetWriteDeadline(t time.Time) error { return o.rc.SetWriteDeadline(t) }

// connOut writes a hijacked connection through its buffer.
type connOut struct {
	bw   *bufio.Writer
	conn net.Conn
}

func (o connOut) Write(p []byte) (int, error)        { return o.bw.Write(p) }
func (o connOut) Flush() error                       { return o.bw.Flush() }
func (o connOut) SetWriteDeadline(t time.Time) error { return o.conn.SetWriteDeadline(t) }

// serveStream is the goroutine-per-stream path: it writes the retry hint
// and the replay, then the live updates, until gone is closed (the client
// went away) or the stream ends. Each batch of writes must be accepted
// within Config.WriteTimeout.
func (b *Broker) serveStream(ctx context.Context, gone <-chan struct{}, out streamOut, s *subscriber, replay bool, from, until uint64) error {
	deadline := func() { _ = out.SetWriteDeadline(time.Now().Add(b.cfg.WriteTimeout)) }
	fail := func(err error) error {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = ErrWriteTimeout
		}
		var counter *atomic.Uint64
		if err == ErrWriteTimeout {
			counter = &b.writeTimeouts
		}
		s.closeCounting(err, counter)
		return err
	}
	deadline()
	if b.retry != nil {
		if _, err := out.Write(b.retry); err != nil {
			return fail(err)
		}
	}
	if replay {
		if err := b.writeReplay(ctx, out, s, from, until); err != nil {
			out.Flush() // the events written so far are complete
			return fail(err)
		}
	}
	if err := out.Flush(); err != nil {
		return fail(err)
	}
	notify, done := s.startGoroutine()
	var bufs [][]byte
	for {
		select {
		case <-notify:
		case <-gone:
			err := ctx.Err()
			if err == nil { // a hijacked connection's context outlives the client
				err = errClientGone
			}
			s.close(err)
			return nil
		case <-done:
			return nil
		}
		bufs = s.Take(bufs[:0])
		deadline()
		n := 0
		for _, buf := range bufs {
			if _, err := out.Write(buf); err != nil {
				return fail(err)
			}
			n += len(buf)
		}
		b.written.Add(uint64(n))
		clear(bufs)
		if err := out.Flush(); err != nil {
			return fail(err)
		}
		if s.written() {
			s.close(ErrDrained)
			return nil
		}
	}
}

// parkable reports whether the writer pool can take conn over: a plain
// socket, whose bytes on the wire are exactly what is written to it. A
// connection wrapped by a listener (a connection limit, the PROXY protocol,
// a multiplexer, TLS) may transform or account for what is written, so it
// is served on its own goroutine instead, decided before anything is
// written.
func parkable(conn net.Conn) bool {
	switch conn.(type) {
	case *net.TCPConn, *net.UnixConn:
		return true
	}
	return false
}

// serveHijacked serves a hijacked HTTP/1.1 connection: it writes the head
// and the replay on the caller's goroutine, then hands a plain socket to
// the writer pool, or serves any other connection on this goroutine until
// the stream ends.
func (b *Broker) serveHijacked(r *http.Request, h http.Header, conn net.Conn, brw *bufio.ReadWriter, s *subscriber, replay bool, from, until uint64) error {
	bw := brw.Writer // buffers on conn; dropped once the stream is parked
	if !parkable(conn) {
		defer b.unregister(s)
		// Nothing watches a hijacked connection: a reader notices the
		// client going away.
		gone := make(chan struct{})
		go func() {
			defer close(gone)
			io.Copy(io.Discard, brw.Reader)
		}()
		defer func() {
			conn.Close()
			<-gone
		}()
		_ = conn.SetReadDeadline(time.Time{})
		if err := writeHead(bw, h); err != nil {
			return err
		}
		return b.serveStream(r.Context(), gone, connOut{bw, conn}, s, replay, from, until)
	}
	fail := func(err error) error {
		conn.Close()
		s.close(err)
		b.unregister(s)
		return err
	}
	_ = conn.SetWriteDeadline(time.Now().Add(b.cfg.WriteTimeout))
	if err := writeHead(bw, h); err != nil {
		return fail(err)
	}
	if b.retry != nil {
		bw.Write(b.retry)
	}
	if replay {
		if err := b.writeReplay(r.Context(), bw, s, from, until); err != nil {
			bw.Flush() // the events written so far are complete
			return fail(err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fail(err)
	}
	_ = conn.SetWriteDeadline(time.Time{})
	pc, err := b.park.Register(conn, s)
	if err != nil {
		return fail(fmt.Errorf("broker: park: %w", err))
	}
	b.parked.Add(1)
	if !s.park(pc) {
		pc.Close() // ended while parking; Closed retires it
	}
	return nil
}

// writeHead writes an HTTP/1.1 200 response head for a close-delimited
// event stream.
func writeHead(bw *bufio.Writer, h http.Header) error {
	bw.WriteString("HTTP/1.1 200 OK\r\n")
	h.Set("Connection", "close")
	if err := h.Write(bw); err != nil {
		return err
	}
	_, err := bw.WriteString("\r\n")
	return err
}

// ServeHTTP serves a plain SSE endpoint that an application can mount
// anywhere: repeatable ?topic= selectors (none means "*", every topic), and
// a Last-Event-ID header or ?lastEventID= query parameter for replay. It
// delivers public updates only; use Subscribe behind your own
// authorization for private ones.
func (b *Broker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	topics := q["topic"]
	if len(topics) == 0 {
		topics = []string{"*"}
	}
	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = q.Get("lastEventID")
	}
	if err := b.Subscribe(w, r, Subscription{Topics: topics, LastEventID: last}); err != nil {
		b.log.Debug("broker: stream ended", "err", err)
	}
}
