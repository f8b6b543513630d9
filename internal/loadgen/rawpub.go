package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Limits of the raw publish client.
const (
	// maxRespBody bounds the response body read per publish, as on the
	// net/http path: the rest is left unread and the connection closed.
	maxRespBody = 1 << 20
	// maxRespHead bounds a response head (interim 1xx responses included),
	// the trailers of a chunked body and each chunk-size line.
	maxRespHead = 1 << 20
	// max1xx bounds the interim responses before the final one.
	max1xx = 5
	// rawReadBuf is the size of a raw client's read buffer; a longer head
	// line is cut to this length (the rest is read and dropped).
	rawReadBuf = 4 << 10
	// idleCheck is how long a connection may stay unused before it is
	// checked, before the next request is written, for a close by the
	// server (an idle timeout): a request written on such a connection
	// would fail although the server is fine.
	idleCheck = 5 * time.Millisecond
)

// Errors of the raw publish client, wrapped in "loadgen: publish: ...".
var (
	errHeadTooLarge = errors.New("response head too large")
	errChunked      = errors.New("malformed chunked encoding")
	errTooMany1xx   = errors.New("too many 1xx informational responses")
)

// rawTarget is what the raw publish clients of one run share: the address
// to dial, the request head and the body template. It is read-only.
type rawTarget struct {
	addr    string
	head    []byte   // the request head up to and including "Content-Length: "
	parts   [][]byte // the body template split at every PayloadPlaceholder
	fixed   int      // the length of the body without its payloads
	timeout time.Duration
}

// newRawTarget prepares the raw HTTP/1.1 publish client for cfg, whose
// publish requests carry the headers h. It returns nil when the request
// must go through net/http instead: an https URL (TLS), or a URL or header
// that net/http would refuse or rewrite (no host, a non-ASCII host, an
// invalid header), so that net/http reports the same errors as before.
func newRawTarget(cfg Config, h http.Header) *rawTarget {
	u, err := url.Parse(cfg.PubURL)
	if err != nil || u.Scheme != "http" || u.Hostname() == "" || !isASCII(u.Host) {
		return nil
	}
	if u.User != nil && h.Get("Authorization") == "" {
		// As net/http's Client does for a URL with user information.
		pass, _ := u.User.Password()
		h = h.Clone()
		h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(u.User.Username()+":"+pass)))
	}
	for k, vs := range h {
		if !validHeaderName(k) {
			return nil
		}
		for _, v := range vs {
			if !validHeaderValue(v) {
				return nil
			}
		}
	}
	port := u.Port()
	if port == "" {
		port = "80"
	}
	host := u.Host
	if host[len(host)-1] == ':' { // an empty port, as net/http writes it
		host = host[:len(host)-1]
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: %s\r\n", u.RequestURI(), host)
	if ua := h.Get("User-Agent"); ua != "" {
		fmt.Fprintf(&b, "User-Agent: %s\r\n", ua)
	}
	// net/http writes these itself, whatever the header says.
	exclude := map[string]bool{"Host": true, "User-Agent": true, "Content-Length": true, "Transfer-Encoding": true, "Trailer": true}
	_ = h.WriteSubset(&b, exclude) // a bytes.Buffer does not fail
	b.WriteString("Content-Length: ")
	t := &rawTarget{
		addr:    net.JoinHostPort(u.Hostname(), port),
		head:    b.Bytes(),
		timeout: cfg.PublishTimeout,
	}
	for p := range bytes.SplitSeq([]byte(cfg.PubBody), []byte(PayloadPlaceholder)) {
		t.parts = append(t.parts, p)
		t.fixed += len(p)
	}
	return t
}

// rawClient is the raw HTTP/1.1 keep-alive publish client of one publisher
// goroutine: one connection at a time, opened when needed, a request
// buffer and a read buffer reused for every publish. Unlike net/http's
// client it does not follow redirects: a 3xx is a failed publish, like any
// status but 2xx, whose error gives the status. Only its goroutine
// calls post; close may be called once, from that goroutine, and the
// context's cancellation may close the connection from another one.
type rawClient struct {
	t      *rawTarget
	req    []byte          // the request being sent: head and body
	br     *bufio.Reader   // reads the connection
	long   []byte          // the start of a head line too long for br
	status []byte          // the status of the last response, after the protocol
	budget int             // bytes readLine may still read
	used   time.Time       // when the connection was last used
	done   <-chan struct{} // the client's context's Done channel

	// conn is written by the client's goroutine with mu held, read by it
	// freely and by the cancellation with mu held.
	mu     sync.Mutex
	conn   net.Conn
	closed bool        // by close or ctx: no more connections
	stop   func() bool // stops the cancellation hook
}

// newClient returns a raw client for one publisher goroutine. It closes
// its connection when ctx is done.
func (t *rawTarget) newClient(ctx context.Context) *rawClient {
	c := &rawClient{t: t, br: bufio.NewReaderSize(nil, rawReadBuf), done: ctx.Done()}
	c.stop = context.AfterFunc(ctx, c.shut)
	return c
}

// shut closes the connection for good.
func (c *rawClient) shut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.conn != nil {
		c.conn.Close()
	}
}

// close closes the client and its connection.
func (c *rawClient) close() {
	c.stop()
	c.shut()
}

// drop closes the connection; the next publish opens a new one.
func (c *rawClient) drop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.conn.Close()
	c.conn = nil
}

// dial opens a connection.
func (c *rawClient) dial(ctx context.Context, deadline time.Time) error {
	d := net.Dialer{Deadline: deadline}
	nc, err := d.DialContext(ctx, "tcp", c.t.addr)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		nc.Close()
		return net.ErrClosed
	}
	c.conn = nc
	c.br.Reset(nc)
	return nil
}

// post publishes one event with the given payload: it writes the request
// and reads the response. Any failure is reported, never retried: the
// connection is closed and the next publish opens a new one. The publish
// stops when ctx is done; a ctx that the client's own context does not
// cover (never the case in a run) costs a hook and its allocations.
func (c *rawClient) post(ctx context.Context, payload []byte) error {
	if done := ctx.Done(); done != nil && done != c.done {
		stop := c.watch(ctx)
		defer stop()
	}
	err := c.do(ctx, payload)
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("loadgen: publish: %w", ctx.Err())
	}
	return err
}

// watch makes the connection's deadline expire when ctx is done, which
// stops the publish under way. The returned stop removes the hook and
// waits for it if it has started.
func (c *rawClient) watch(ctx context.Context) (stop func()) {
	ran := make(chan struct{})
	remove := context.AfterFunc(ctx, func() {
		defer close(ran)
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.conn != nil {
			c.conn.SetDeadline(time.Unix(1, 0))
		}
	})
	return func() {
		if !remove() {
			<-ran
		}
	}
}

// do is post without the context's hook.
func (c *rawClient) do(ctx context.Context, payload []byte) error {
	now := time.Now()
	deadline := now.Add(c.t.timeout)
	c.build(payload)
	if c.conn != nil && now.Sub(c.used) > idleCheck && !connAlive(c.conn) {
		c.drop() // closed by the server while idle: nothing was sent yet
	}
	if c.conn == nil {
		if err := c.dial(ctx, deadline); err != nil {
			return fmt.Errorf("loadgen: publish: %w", err)
		}
	}
	if err := c.conn.SetDeadline(deadline); err != nil {
		c.drop()
		return fmt.Errorf("loadgen: publish: %w", err)
	}
	if err := ctx.Err(); err != nil {
		// Done before the deadline was set, which would undo the hooks.
		c.drop()
		return fmt.Errorf("loadgen: publish: %w", err)
	}
	if _, err := c.conn.Write(c.req); err != nil {
		c.drop()
		return fmt.Errorf("loadgen: publish: write request: %w", err)
	}
	code, keep, err := c.readResponse()
	if err != nil || !keep || c.br.Buffered() > 0 {
		// Bytes past the response are a confused server: start afresh.
		c.drop()
	} else {
		c.used = time.Now()
	}
	if code != 0 && code/100 != 2 {
		return fmt.Errorf("loadgen: publish: status %s", c.status)
	}
	if err != nil {
		return fmt.Errorf("loadgen: publish: read response: %w", err)
	}
	return nil
}

// build writes the request for payload into c.req.
func (c *rawClient) build(payload []byte) {
	t := c.t
	n := t.fixed + (len(t.parts)-1)*len(payload)
	b := append(c.req[:0], t.head...)
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, "\r\n\r\n"...)
	for i, p := range t.parts {
		if i > 0 {
			b = append(b, payload...)
		}
		b = append(b, p...)
	}
	c.req = b
}

// readResponse reads one final response, after any interim (1xx) ones,
// and discards its body. It returns the status code (zero if no valid
// status line was read; the status text is left in c.status) and whether
// the connection may carry the next request.
func (c *rawClient) readResponse() (int, bool, error) {
	c.budget = maxRespHead
	for n1xx := 0; ; n1xx++ {
		line, err := c.readLine()
		if err != nil {
			return 0, false, err
		}
		code, http10, ok := parseStatusLine(line)
		if !ok {
			return 0, false, fmt.Errorf("malformed status line %q", line)
		}
		c.status = append(c.status[:0], trimSpace(line[len("HTTP/1.x "):])...)
		h, err := c.readHeader(http10)
		if err != nil {
			return code, false, err
		}
		if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
			if n1xx == max1xx {
				return 0, false, errTooMany1xx
			}
			continue
		}
		keep := h.keepAlive && code != http.StatusSwitchingProtocols
		switch {
		case code < 200, code == http.StatusNoContent, code == http.StatusNotModified:
			// No body.
		case h.chunked:
			var all bool
			all, err = c.readChunked()
			keep = keep && all
		case h.length >= 0:
			n := min(h.length, maxRespBody)
			err = c.discard(int(n))
			keep = keep && n == h.length
		default: // the body ends with the connection
			if _, err = c.br.Discard(maxRespBody); err == io.EOF {
				err = nil
			}
			keep = false
		}
		return code, keep && err == nil, err
	}
}

// respHeader is what the raw client needs of a response's header.
type respHeader struct {
	length    int64 // Content-Length, or -1
	chunked   bool
	keepAlive bool
}

// readHeader reads the header fields of a response up to the blank line.
func (c *rawClient) readHeader(http10 bool) (respHeader, error) {
	h := respHeader{length: -1, keepAlive: !http10}
	var te, cl, closing bool
	for {
		line, err := c.readLine()
		if err != nil {
			return h, err
		}
		if len(line) == 0 {
			break
		}
		i := bytes.IndexByte(line, ':')
		if i <= 0 || line[0] == ' ' || line[0] == '\t' {
			continue // a folded line or junk: nothing we use
		}
		name, value := trimSpace(line[:i]), trimSpace(line[i+1:])
		switch {
		case equalFold(name, "Content-Length"):
			n, ok := parseLength(value)
			if !ok || (cl && n != h.length) {
				return h, fmt.Errorf("bad Content-Length %q", value)
			}
			h.length, cl = n, true
		case equalFold(name, "Transfer-Encoding"):
			te = true
			h.chunked = false
			for tok, rest := nextToken(value); tok != nil; tok, rest = nextToken(rest) {
				h.chunked = equalFold(tok, "chunked")
			}
		case equalFold(name, "Connection"):
			for tok, rest := nextToken(value); tok != nil; tok, rest = nextToken(rest) {
				switch {
				case equalFold(tok, "close"):
					closing = true
				case equalFold(tok, "keep-alive") && http10:
					h.keepAlive = true
				}
			}
		}
	}
	if closing {
		h.keepAlive = false
	}
	if te && !http10 {
		// The transfer coding decides the length; a body not chunked
		// last ends with the connection.
		h.length = -1
	} else {
		h.chunked = false
	}
	return h, nil
}

// readChunked discards a chunked body and its trailers. It reports false
// when the body was longer than maxRespBody and was not read to its end.
func (c *rawClient) readChunked() (bool, error) {
	left := maxRespBody
	for {
		c.budget = maxRespHead
		line, err := c.readLine()
		if err != nil {
			return false, err
		}
		size, ok := parseChunkSize(line)
		if !ok {
			return false, errChunked
		}
		if size == 0 {
			break
		}
		if size > int64(left) {
			return false, c.discard(left)
		}
		if err := c.discard(int(size)); err != nil {
			return false, err
		}
		left -= int(size)
		if line, err = c.readLine(); err != nil {
			return false, err
		}
		if len(line) != 0 {
			return false, errChunked
		}
	}
	c.budget = maxRespHead
	for { // the trailers
		line, err := c.readLine()
		if err != nil {
			return false, err
		}
		if len(line) == 0 {
			return true, nil
		}
	}
}

// discard reads and drops n bytes of a body.
func (c *rawClient) discard(n int) error {
	_, err := c.br.Discard(n)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// readLine reads one line of a response head or of a chunked body's
// framing and returns it without its line ending. The line is valid until
// the next read. A line longer than the read buffer is cut to its first
// rawReadBuf bytes; all of it counts towards c.budget.
func (c *rawClient) readLine() ([]byte, error) {
	line, err := c.br.ReadSlice('\n')
	c.budget -= len(line)
	if err == bufio.ErrBufferFull {
		c.long = append(c.long[:0], line...)
		for err == bufio.ErrBufferFull && c.budget >= 0 {
			line, err = c.br.ReadSlice('\n')
			c.budget -= len(line)
		}
		line = c.long
	}
	if c.budget < 0 {
		return nil, errHeadTooLarge
	}
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
	}
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// parseStatusLine parses "HTTP/1.x NNN reason".
func parseStatusLine(line []byte) (code int, http10, ok bool) {
	if len(line) < len("HTTP/1.x NNN") || string(line[:7]) != "HTTP/1." ||
		line[7] < '0' || line[7] > '9' || line[8] != ' ' || (len(line) > 12 && line[12] != ' ') {
		return 0, false, false
	}
	for _, d := range line[9:12] {
		if d < '0' || d > '9' {
			return 0, false, false
		}
		code = code*10 + int(d-'0')
	}
	return code, line[7] == '0', code >= 100
}

// parseLength parses a Content-Length value.
func parseLength(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, d := range b {
		if d < '0' || d > '9' {
			return 0, false
		}
		n = n*10 + int64(d-'0')
	}
	return n, true
}

// parseChunkSize parses a chunk-size line, ignoring any chunk extension.
func parseChunkSize(line []byte) (int64, bool) {
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	line = trimSpace(line)
	if len(line) == 0 || len(line) > 15 {
		return 0, false
	}
	var n int64
	for _, d := range line {
		switch {
		case d >= '0' && d <= '9':
			d -= '0'
		case d >= 'a' && d <= 'f':
			d -= 'a' - 10
		case d >= 'A' && d <= 'F':
			d -= 'A' - 10
		default:
			return 0, false
		}
		n = n<<4 | int64(d)
	}
	return n, true
}

// trimSpace returns b without leading and trailing spaces and tabs.
func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// nextToken returns the first element of the comma-separated list b,
// trimmed, and the rest of the list. tok is nil at the end of the list
// (b nil), and empty but not nil for an empty element.
func nextToken(b []byte) (tok, rest []byte) {
	if b == nil {
		return nil, nil
	}
	if i := bytes.IndexByte(b, ','); i >= 0 {
		return trimSpace(b[:i]), b[i+1:]
	}
	return trimSpace(b), nil
}

// equalFold reports whether b equals the ASCII string s, ignoring case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// isASCII reports whether s is printable ASCII.
func isASCII(s string) bool {
	for i := range len(s) {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// validHeaderName reports whether k is an HTTP token, as net/http
// requires of a header field name.
func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for i := range len(k) {
		c := k[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validHeaderValue reports whether v has no control characters but tab,
// as net/http requires of a header field value.
func validHeaderValue(v string) bool {
	for i := range len(v) {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
