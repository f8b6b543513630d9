package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxHead bounds a subscribe response head.
const maxHead = 8 << 10

// subDialer opens subscriber connections: a TCP dial, a hand-written GET
// request and a minimal parse of the response head.
type subDialer struct {
	addr    string
	req     []byte // the request; ConnPlaceholder in it becomes the connection's number
	srcs    []netip.Addr
	timeout time.Duration
}

func newSubDialer(cfg Config, u *url.URL) *subDialer {
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "80")
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\n", u.RequestURI(), u.Host)
	h := http.Header{
		"Accept":        {"text/event-stream"},
		"Cache-Control": {"no-cache"},
		"User-Agent":    {"herald-bench"},
	}
	for _, src := range []http.Header{cfg.Header, cfg.SubHeader} {
		for k, v := range src {
			h[http.CanonicalHeaderKey(k)] = v
		}
	}
	_ = h.Write(&b) // a bytes.Buffer does not fail
	b.WriteString("\r\n")
	return &subDialer{addr: host, req: b.Bytes(), srcs: cfg.SourceIPs, timeout: cfg.ConnectTimeout}
}

// open opens connection number i and reads its response head into buf.
// It returns the connection and its stream state with the bytes read past
// the head already parsed.
func (d *subDialer) open(ctx context.Context, i int, buf []byte) (net.Conn, stream, error) {
	nd := net.Dialer{Timeout: d.timeout}
	if len(d.srcs) > 0 {
		nd.LocalAddr = &net.TCPAddr{IP: d.srcs[i%len(d.srcs)].AsSlice()}
		nd.Control = bindNoPort
	}
	nc, err := nd.DialContext(ctx, "tcp", d.addr)
	if err != nil {
		return nil, stream{}, err
	}
	s, err := d.handshake(nc, i, buf)
	if err != nil {
		nc.Close()
		return nil, stream{}, err
	}
	return nc, s, nil
}

var connPlaceholder = []byte(ConnPlaceholder)

func (d *subDialer) handshake(nc net.Conn, i int, buf []byte) (stream, error) {
	if err := nc.SetDeadline(time.Now().Add(d.timeout)); err != nil {
		return stream{}, err
	}
	req := d.req
	if i >= 0 && bytes.Contains(req, connPlaceholder) {
		req = bytes.ReplaceAll(req, connPlaceholder, strconv.AppendInt(nil, int64(i), 10))
	}
	if _, err := nc.Write(req); err != nil {
		return stream{}, err
	}
	n := 0
	for {
		if n == len(buf) {
			return stream{}, errors.New("loadgen: response head too large")
		}
		m, err := nc.Read(buf[n:])
		n += m
		if end, rest := headEnd(buf[:n]); end >= 0 {
			s, herr := parseHead(buf[:end])
			if herr != nil {
				return stream{}, herr
			}
			if ferr := s.feed(buf[rest:n], discard{}); ferr != nil {
				return stream{}, fmt.Errorf("loadgen: stream ended during handshake: %w", ferr)
			}
			return s, nc.SetDeadline(time.Time{})
		}
		if err != nil {
			return stream{}, fmt.Errorf("loadgen: read response head: %w", err)
		}
	}
}

// headEnd finds the blank line ending a response head. It returns the
// length of the head and the offset of the body, or -1.
func headEnd(b []byte) (end, body int) {
	if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
		return i, i + 4
	}
	if i := bytes.Index(b, []byte("\n\n")); i >= 0 {
		return i, i + 2
	}
	return -1, -1
}

// parseHead checks the status line and picks the body framing.
func parseHead(head []byte) (stream, error) {
	lines := strings.Split(string(head), "\n")
	status := strings.TrimRight(lines[0], "\r")
	proto, rest, _ := strings.Cut(status, " ")
	code, _, _ := strings.Cut(rest, " ")
	if !strings.HasPrefix(proto, "HTTP/1.") {
		return stream{}, fmt.Errorf("loadgen: bad status line %q", status)
	}
	if code != "200" {
		return stream{}, fmt.Errorf("loadgen: subscribe: status %s", rest)
	}
	var s stream
	for _, line := range lines[1:] {
		name, value, ok := strings.Cut(strings.TrimRight(line, "\r"), ":")
		if ok && strings.EqualFold(strings.TrimSpace(name), "Transfer-Encoding") &&
			strings.Contains(strings.ToLower(value), "chunked") {
			s.body = bodyChunked
		}
	}
	return s, nil
}
