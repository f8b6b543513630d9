// Package connlimit bounds what one client can hold open on an HTTP server
// and makes attacks on it visible: a read deadline on request bodies,
// per-client-IP limits on concurrent connections and streams, refused
// connections closed instead of kept alive, and counted (and rate-limited
// logged) accept errors and handler panics.
//
// A [Limiter] wraps the server's listener ([Limiter.Listener]) and handler
// ([Limiter.Handler]), and its [Limiter.ConnContext] must be the server's
// ConnContext. It starts no goroutines.
package connlimit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// DefaultRetryAfter is the Retry-After of a refusal when
// [Config.RetryAfter] is zero.
const DefaultRetryAfter = 5 * time.Second

// Config configures a [Limiter]. The zero value limits nothing but still
// counts accept errors and panics and closes connections refused with 429
// or 503.
type Config struct {
	// MaxConnsPerIP limits the open connections of one client address, as
	// seen by TCP (the peer address; trusted proxies are exempt): a
	// connection beyond it is answered 429 with Retry-After and closed at
	// its first request. IPv6 addresses count per /64. A stream parked by
	// the broker's writer pool leaves this count when it is parked. Zero
	// means no limit.
	MaxConnsPerIP int
	// MaxStreamsPerIP limits the concurrent streams (requests for which
	// IsStream reports true) of one client address, after
	// X-Forwarded-For from TrustedProxies: one beyond it is answered 429
	// with Retry-After and Connection: close. To know when each stream
	// ends, a limited stream is served on its handler's goroutine (its
	// connection cannot be hijacked, so the broker does not park it). Zero
	// means no limit.
	MaxStreamsPerIP int
	// IsStream reports whether r asks for a long-lived stream. Nil means
	// none does.
	IsStream func(r *http.Request) bool
	// TrustedProxies are the networks of reverse proxies whose
	// X-Forwarded-For header names the client. Nil trusts no proxy: the
	// header is ignored and the client is the TCP peer.
	TrustedProxies []netip.Prefix
	// BodyTimeout is the time a request body (a publish) may take to
	// arrive, from the start of the handler: a slow, trickled or absent
	// body is cut then (the handler's read fails with
	// os.ErrDeadlineExceeded). Requests without a body get no deadline, so
	// streams are never cut. Zero means no deadline.
	BodyTimeout time.Duration
	// RetryAfter is the Retry-After of a refusal. Zero means
	// [DefaultRetryAfter].
	RetryAfter time.Duration
	// Logger receives WARN and ERROR lines about accept errors, panics and
	// refusals, at most one per LogEvery per kind. Nil discards them.
	Logger *slog.Logger
	// LogEvery is the least interval between two log lines of the same
	// kind. Zero means 10 seconds.
	LogEvery time.Duration
}

// Limiter applies a [Config]. It is safe for concurrent use.
type Limiter struct {
	cfg   Config
	retry string
	log   *slog.Logger

	mu      sync.Mutex
	conns   map[netip.Addr]int
	streams map[netip.Addr]int

	acceptErrors atomic.Uint64
	panics       atomic.Uint64
	refused      sync.Map // reason string -> *atomic.Uint64

	logAccept, logPanic, logRefuse rateLog
}

// New validates cfg and returns a Limiter.
func New(cfg Config) (*Limiter, error) {
	switch {
	case cfg.MaxConnsPerIP < 0:
		return nil, fmt.Errorf("connlimit: negative MaxConnsPerIP %d", cfg.MaxConnsPerIP)
	case cfg.MaxStreamsPerIP < 0:
		return nil, fmt.Errorf("connlimit: negative MaxStreamsPerIP %d", cfg.MaxStreamsPerIP)
	case cfg.BodyTimeout < 0:
		return nil, fmt.Errorf("connlimit: negative BodyTimeout %v", cfg.BodyTimeout)
	case cfg.RetryAfter < 0:
		return nil, fmt.Errorf("connlimit: negative RetryAfter %v", cfg.RetryAfter)
	}
	if cfg.RetryAfter == 0 {
		cfg.RetryAfter = DefaultRetryAfter
	}
	if cfg.LogEvery <= 0 {
		cfg.LogEvery = 10 * time.Second
	}
	cfg.TrustedProxies = slices.Clone(cfg.TrustedProxies)
	l := &Limiter{
		cfg:     cfg,
		retry:   strconv.Itoa(int((cfg.RetryAfter + time.Second - 1) / time.Second)),
		log:     cfg.Logger,
		conns:   make(map[netip.Addr]int),
		streams: make(map[netip.Addr]int),
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	for _, r := range []*rateLog{&l.logAccept, &l.logPanic, &l.logRefuse} {
		r.every = cfg.LogEvery
	}
	return l, nil
}

// ParseCIDRs parses a comma-separated list of networks ("10.0.0.0/8,
// ::1/128"); a bare address is a network of one address.
func ParseCIDRs(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, fmt.Errorf("connlimit: %q is neither an address nor a CIDR network", f)
			}
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("connlimit: %q is not a CIDR network: %w", f, err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Stats are the Limiter's counters since it was created.
type Stats struct {
	// AcceptErrors counts failed accepts ("too many open files").
	AcceptErrors uint64
	// Panics counts handler panics.
	Panics uint64
	// Refused counts refusals by reason: "conns_per_ip", "streams_per_ip",
	// "body_timeout", and "status_429" / "status_503" for those statuses
	// answered by the handler itself (a full broker, say).
	Refused map[string]uint64
	// Conns and Streams are the connections and streams currently
	// counted against a per-IP limit.
	Conns, Streams int
}

// Stats returns the Limiter's counters.
func (l *Limiter) Stats() Stats {
	s := Stats{AcceptErrors: l.acceptErrors.Load(), Panics: l.panics.Load(), Refused: map[string]uint64{}}
	l.refused.Range(func(k, v any) bool {
		s.Refused[k.(string)] = v.(*atomic.Uint64).Load()
		return true
	})
	l.mu.Lock()
	for _, n := range l.conns {
		s.Conns += n
	}
	for _, n := range l.streams {
		s.Streams += n
	}
	l.mu.Unlock()
	return s
}

func (l *Limiter) countRefusal(reason string) {
	v, ok := l.refused.Load(reason)
	if !ok {
		v, _ = l.refused.LoadOrStore(reason, new(atomic.Uint64))
	}
	v.(*atomic.Uint64).Add(1)
}

// key is the address a limit counts: IPv4 as is, IPv6 by its /64.
func key(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

func (l *Limiter) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range l.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ClientIP returns the address of the client of r: the TCP peer, or, when
// the peer is a trusted proxy, the rightmost address of X-Forwarded-For
// that is not a trusted proxy. The zero Addr means r.RemoteAddr is not an
// IP address (a test recorder, a Unix socket).
func (l *Limiter) ClientIP(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	ip := ap.Addr().Unmap()
	if !l.trusted(ip) {
		return ip
	}
	xff := r.Header.Values("X-Forwarded-For")
	for i := len(xff) - 1; i >= 0; i-- {
		hops := strings.Split(xff[i], ",")
		for j := len(hops) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(hops[j]))
			if err != nil {
				return ip // a malformed hop: trust nothing to its left
			}
			ip = a.Unmap()
			if !l.trusted(ip) {
				return ip
			}
		}
	}
	return ip
}

// Listener wraps ln: accept errors are counted and logged (rate-limited),
// and accepted connections counted per peer address for MaxConnsPerIP.
func (l *Limiter) Listener(ln net.Listener) net.Listener { return &listener{Listener: ln, l: l} }

type listener struct {
	net.Listener
	l *Limiter
}

func (ln *listener) Accept() (net.Conn, error) {
	c, err := ln.Listener.Accept()
	if err != nil {
		if !errors.Is(err, net.ErrClosed) {
			ln.l.acceptErrors.Add(1)
			ln.l.logAccept.do(func(suppressed uint64) {
				ln.l.log.Warn("connlimit: accept failed (at the file descriptor limit? raise ulimit -n or lower the limits)", "err", err, "suppressed", suppressed)
			})
		}
		return nil, err
	}
	if ln.l.cfg.MaxConnsPerIP == 0 {
		return c, nil
	}
	ap, perr := netip.ParseAddrPort(c.RemoteAddr().String())
	if perr != nil || ln.l.trusted(ap.Addr()) {
		return c, nil
	}
	k := key(ap.Addr())
	ln.l.mu.Lock()
	ln.l.conns[k]++
	over := ln.l.conns[k] > ln.l.cfg.MaxConnsPerIP
	ln.l.mu.Unlock()
	return &conn{Conn: c, l: ln.l, key: k, over: over}, nil
}

// conn is a connection counted against MaxConnsPerIP until it is closed.
type conn struct {
	net.Conn
	l      *Limiter
	key    netip.Addr
	over   bool // beyond the limit when accepted: refused at its first request
	closed atomic.Bool
}

func (c *conn) Close() error {
	if !c.closed.Swap(true) {
		c.l.mu.Lock()
		if c.l.conns[c.key]--; c.l.conns[c.key] <= 0 {
			delete(c.l.conns, c.key)
		}
		c.l.mu.Unlock()
	}
	return c.Conn.Close()
}

// SyscallConn exposes the socket, so that the broker can park the
// connection with its writer pool (which duplicates the descriptor and
// closes this conn: the stream then no longer counts as a connection).
func (c *conn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.ErrUnsupported
	}
	return sc.SyscallConn()
}

type connKey struct{}

// ConnContext records c in ctx for the handler: set it as the server's
// ConnContext.
func (l *Limiter) ConnContext(ctx context.Context, c net.Conn) context.Context {
	if lc, ok := c.(*conn); ok && lc.over {
		return context.WithValue(ctx, connKey{}, lc)
	}
	return ctx
}

// refuse answers 429 with Retry-After and closes the connection after the
// reply.
func (l *Limiter) refuse(w http.ResponseWriter, r *http.Request, reason, msg string) {
	l.countRefusal(reason)
	l.logRefuse.do(func(suppressed uint64) {
		l.log.Warn("connlimit: refused", "reason", reason, "client", l.ClientIP(r).String(), "suppressed", suppressed)
	})
	h := w.Header()
	h.Set("Retry-After", l.retry)
	if r.ProtoMajor == 1 {
		h.Set("Connection", "close")
	}
	http.Error(w, msg, http.StatusTooManyRequests)
}

func (l *Limiter) acquireStream(ip netip.Addr) bool {
	k := key(ip)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.streams[k] >= l.cfg.MaxStreamsPerIP {
		return false
	}
	l.streams[k]++
	return true
}

func (l *Limiter) releaseStream(ip netip.Addr) {
	k := key(ip)
	l.mu.Lock()
	if l.streams[k]--; l.streams[k] <= 0 {
		delete(l.streams, k)
	}
	l.mu.Unlock()
}

// Handler wraps next with the limits, the body deadline, Connection: close
// on 429 and 503 answers, and panic recovery (a panic is logged with its
// stack, counted, and answered 500 if nothing was written yet).
func (l *Limiter) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, over := r.Context().Value(connKey{}).(*conn); over {
			l.refuse(w, r, "conns_per_ip", fmt.Sprintf("too many connections from this address (at most %d), retry later", l.cfg.MaxConnsPerIP))
			return
		}
		rw := &responseWriter{ResponseWriter: w, l: l, http1: r.ProtoMajor == 1}
		defer l.recover(rw, r)

		if l.cfg.MaxStreamsPerIP > 0 && l.cfg.IsStream != nil && l.cfg.IsStream(r) {
			if ip := l.ClientIP(r); ip.IsValid() {
				if !l.acquireStream(ip) {
					l.refuse(w, r, "streams_per_ip", fmt.Sprintf("too many streams from this address (at most %d), retry later", l.cfg.MaxStreamsPerIP))
					return
				}
				defer l.releaseStream(ip)
				next.ServeHTTP(noHijack{rw}, r)
				return
			}
		}
		if r.Body != nil && r.Body != http.NoBody && l.cfg.BodyTimeout > 0 {
			l.serveBody(rw, r, next)
			return
		}
		next.ServeHTTP(rw, r)
	})
}

// serveBody serves a request with a body under the body deadline. If the
// handler answers without reading the whole body (a refusal), the reply
// says Connection: close and the server does not wait for the rest of the
// body before closing: a refused anonymous publish costs nothing more
// whether its body ever comes or not.
func (l *Limiter) serveBody(rw *responseWriter, r *http.Request, next http.Handler) {
	rc := http.NewResponseController(rw.ResponseWriter)
	_ = rc.SetReadDeadline(time.Now().Add(l.cfg.BodyTimeout))
	body := &bodyReader{ReadCloser: r.Body, rc: rc, l: l}
	rw.body = body
	r.Body = body
	next.ServeHTTP(rw, r)
	if !body.eof.Load() {
		// The server would read up to 256 KB of the rest, waiting for it,
		// before closing: flush the reply and cut the reads now.
		_ = rc.Flush()
		_ = rc.SetReadDeadline(time.Now())
	}
}

// bodyReader watches a request body: at EOF it clears the read deadline
// (the server's background read that follows must not hit it), and a read
// that hits the deadline is counted.
type bodyReader struct {
	io.ReadCloser
	rc  *http.ResponseController
	l   *Limiter
	eof atomic.Bool
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == io.EOF:
		if !b.eof.Swap(true) {
			_ = b.rc.SetReadDeadline(time.Time{})
		}
	case err != nil && isTimeout(err):
		b.l.countRefusal("body_timeout")
	}
	return n, err
}

func isTimeout(err error) bool {
	ne, ok := errors.AsType[net.Error](err)
	return ok && ne.Timeout()
}

// responseWriter adds Connection: close to 429 and 503 answers (a refused
// client must not keep its connection), and to any answer given before the
// request body was read, on HTTP/1.x only: on HTTP/2 the header makes the
// server close the whole connection, every other stream of the client
// with it, and a refused stream costs nothing once it has ended.
type responseWriter struct {
	http.ResponseWriter
	l     *Limiter
	body  *bodyReader // nil without a body deadline
	http1 bool
	wrote bool
}

func (w *responseWriter) WriteHeader(code int) {
	if !w.wrote {
		w.wrote = true
		switch {
		case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
			w.closeConn()
			w.l.countRefusal("status_" + strconv.Itoa(code))
		case w.body != nil && !w.body.eof.Load():
			w.closeConn()
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

// closeConn asks an HTTP/1.x server to close the connection after the reply.
func (w *responseWriter) closeConn() {
	if w.http1 {
		w.Header().Set("Connection", "close")
	}
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the server's writer (Flush,
// deadlines, Hijack).
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// noHijack serves a counted stream: it has the writer's Flush and
// deadlines but not Hijack, so that the stream ends when its handler
// returns.
type noHijack struct{ w *responseWriter }

func (n noHijack) Header() http.Header         { return n.w.Header() }
func (n noHijack) Write(p []byte) (int, error) { return n.w.Write(p) }
func (n noHijack) WriteHeader(code int)        { n.w.WriteHeader(code) }
func (n noHijack) FlushError() error           { return http.NewResponseController(n.w).Flush() }
func (n noHijack) SetWriteDeadline(t time.Time) error {
	return http.NewResponseController(n.w).SetWriteDeadline(t)
}
func (n noHijack) SetReadDeadline(t time.Time) error {
	return http.NewResponseController(n.w).SetReadDeadline(t)
}

// recover turns a handler panic into a counted, logged 500 (or an aborted
// reply when the head is already out).
func (l *Limiter) recover(w *responseWriter, r *http.Request) {
	p := recover()
	if p == nil {
		return
	}
	if p == http.ErrAbortHandler { //nolint:errorlint // a sentinel panic value, compared as net/http does
		panic(p)
	}
	l.panics.Add(1)
	stack := debug.Stack()
	l.logPanic.do(func(suppressed uint64) {
		l.log.Error("connlimit: handler panic", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(p), "stack", string(stack), "suppressed", suppressed)
	})
	if !w.wrote {
		w.closeConn()
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	panic(http.ErrAbortHandler)
}

// rateLog lets one log line through per interval and counts the others.
type rateLog struct {
	every      time.Duration
	mu         sync.Mutex
	last       time.Time
	suppressed uint64
}

func (r *rateLog) do(log func(suppressed uint64)) {
	r.mu.Lock()
	now := time.Now()
	if !r.last.IsZero() && now.Sub(r.last) < r.every {
		r.suppressed++
		r.mu.Unlock()
		return
	}
	n := r.suppressed
	r.last, r.suppressed = now, 0
	r.mu.Unlock()
	log(n)
}
