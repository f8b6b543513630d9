package broker

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
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
// are parked with the shared writer pool and Subscribe returns as soon as
// the replay is written; other streams (HTTP/2, TLS, wrappers that cannot
// hijack) are served on the caller's goroutine until they end. Errors
// before the head is written are answered with an HTTP error status.
func (b *Broker) Subscribe(w http.ResponseWriter, r *http.Request, sub Subscription) error {
	if len(sub.Topics) == 0 {
		http.Error(w, "no topic selector", http.StatusBadRequest)
		return errors.New("broker: subscribe: no topic selector")
	}
	topics, err := NewMatcher(sub.Topics)
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
			http.Error(w, "history unavailable", http.StatusServiceUnavailable)
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
	s.selectors, s.id, s.payload = slices.Clone(sub.Topics), sub.Subscriber, sub.Payload
	until, err := b.register(s, from)
	if err != nil {
		reason := "shutting down"
		if errors.Is(err, ErrTooManySubscribers) {
			reason = "too many subscribers, retry later"
			w.Header().Set("Retry-After", "5")
		}
		http.Error(w, reason, http.StatusServiceUnavailable)
		return err
	}
	defer b.subWG.Done()
	b.presence(s, true) // before the stream can end: parked streams end on a writer goroutine
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	h.Del("Content-Length")

	if b.park != nil && r.ProtoMajor == 1 && r.TLS == nil {
		parked, err := b.serveParked(w, r, s, replay, from, until)
		if parked || err != nil {
			return err
		}
	}
	defer b.unregister(s)
	return b.serveStream(w, r, s, replay, from, until)
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

// writeReplay writes the retained updates in (from, until] that s matches.
func (b *Broker) writeReplay(r *http.Request, w io.Writer, s *subscriber, from, until uint64) error {
	after := from
	for after < until {
		ups, err := b.st.Read(r.Context(), after, b.cfg.ReplayBatch)
		if errors.Is(err, store.ErrCursorGone) {
			// Trimmed while we replayed: continue from the oldest retained.
			ups, err = b.st.Read(r.Context(), 0, b.cfg.ReplayBatch)
		}
		if err != nil {
			return fmt.Errorf("broker: replay: %w", err)
		}
		if len(ups) == 0 {
			return nil
		}
		for i := range ups {
			u := &ups[i]
			if u.Seq > until {
				return nil
			}
			after = u.Seq
			if !s.topics.MatchAny(u.Topics) || (u.Private && !s.private.MatchAny(u.Topics)) {
				continue
			}
			if buf := b.encode(u); buf != nil {
				if _, err := w.Write(buf); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// serveStream is the goroutine-per-stream path.
func (b *Broker) serveStream(w http.ResponseWriter, r *http.Request, s *subscriber, replay bool, from, until uint64) error {
	rc := http.NewResponseController(w)
	w.WriteHeader(http.StatusOK)
	deadline := func() { _ = rc.SetWriteDeadline(time.Now().Add(b.cfg.WriteTimeout)) }
	deadline()
	if b.retry != nil {
		if _, err := w.Write(b.retry); err != nil {
			return err
		}
	}
	if replay {
		if err := b.writeReplay(r, w, s, from, until); err != nil {
			return err
		}
	}
	if err := rc.Flush(); err != nil {
		return err
	}
	notify, done := s.startGoroutine()
	var bufs [][]byte
	for {
		select {
		case <-notify:
		case <-r.Context().Done():
			s.close(r.Context().Err())
			return nil
		case <-done:
			return nil
		}
		bufs = s.Take(bufs[:0])
		deadline()
		for _, buf := range bufs {
			if _, err := w.Write(buf); err != nil {
				s.close(err)
				return err
			}
		}
		clear(bufs)
		if err := rc.Flush(); err != nil {
			s.close(err)
			return err
		}
	}
}

// serveParked hijacks the connection, writes the head and the replay on the
// caller's goroutine, then hands the connection to the writer pool. It
// reports false (and no error) when the connection cannot be hijacked, so
// the caller falls back to serveStream.
func (b *Broker) serveParked(w http.ResponseWriter, r *http.Request, s *subscriber, replay bool, from, until uint64) (bool, error) {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return false, nil
	}
	fail := func(err error) (bool, error) {
		conn.Close()
		s.close(err)
		b.unregister(s)
		return true, err
	}
	_ = conn.SetWriteDeadline(time.Now().Add(b.cfg.WriteTimeout))
	bw := brw.Writer // buffers on conn; dropped once the stream is parked
	if err := writeHead(bw, w.Header()); err != nil {
		return fail(err)
	}
	if b.retry != nil {
		bw.Write(b.retry)
	}
	if replay {
		if err := b.writeReplay(r, bw, s, from, until); err != nil {
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
		pc.Close() // ended while parking; Closed unregisters it
	}
	return true, nil
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
