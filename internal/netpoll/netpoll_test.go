//go:build linux

package netpoll_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/herald-sse/herald/internal/netpoll"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// source is a test Source: a queue of buffers guarded by a mutex.
type source struct {
	mu     sync.Mutex
	queue  [][]byte
	conn   *netpoll.Conn
	block  chan struct{} // when non-nil, Take waits on it (once)
	taking chan struct{} // when non-nil, Take signals it before blocking

	takes    atomic.Int64
	closes   atomic.Int64
	closeErr chan error // receives the Closed error (cap 1)
	onClosed func()
}

func newSource() *source {
	return &source{closeErr: make(chan error, 1)}
}

// push queues bufs and wakes the connection.
func (s *source) push(bufs ...[]byte) {
	s.mu.Lock()
	s.queue = append(s.queue, bufs...)
	c := s.conn
	s.mu.Unlock()
	if c != nil {
		c.Wake()
	}
}

func (s *source) setConn(c *netpoll.Conn) {
	s.mu.Lock()
	s.conn = c
	s.mu.Unlock()
}

func (s *source) Take(bufs [][]byte) [][]byte {
	s.takes.Add(1)
	s.mu.Lock()
	block, taking := s.block, s.taking
	s.block, s.taking = nil, nil
	s.mu.Unlock()
	if taking != nil {
		taking <- struct{}{}
	}
	if block != nil {
		<-block
	}
	s.mu.Lock()
	bufs = append(bufs, s.queue...)
	clear(s.queue)
	s.queue = s.queue[:0]
	s.mu.Unlock()
	return bufs
}

func (s *source) Closed(err error) {
	if s.closes.Add(1) == 1 {
		s.closeErr <- err
	}
	if s.onClosed != nil {
		s.onClosed()
	}
}

// taken reports whether Take was called and nothing is queued.
func (s *source) taken() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.takes.Load() > 0 && len(s.queue) == 0
}

// waitClosed waits for Closed and returns its error.
func (s *source) waitClosed(t *testing.T) error {
	t.Helper()
	select {
	case err := <-s.closeErr:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Closed was not called within 10s")
		return nil
	}
}

// pairs returns n connected loopback TCP pairs: the accepted server sides
// and the dialled client sides. The client sides are closed at cleanup.
func pairs(t testing.TB, n int) (servers []net.Conn, clients []*net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, n)
	acceptErr := make(chan error, 1)
	go func() {
		for range n {
			c, err := ln.Accept()
			if err != nil {
				acceptErr <- err
				return
			}
			accepted <- c
		}
		acceptErr <- nil
	}()
	for range n {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c.(*net.TCPConn))
	}
	if err := <-acceptErr; err != nil {
		t.Fatal(err)
	}
	close(accepted)
	for c := range accepted {
		servers = append(servers, c)
	}
	t.Cleanup(func() {
		for _, c := range clients {
			c.Close()
		}
	})
	return servers, clients
}

func newPoller(t testing.TB, cfg netpoll.Config) *netpoll.Poller {
	t.Helper()
	p, err := netpoll.New(cfg)
	if err != nil {
		t.Fatalf("New(%+v) = %v", cfg, err)
	}
	t.Cleanup(func() { p.Close() })
	if cfg.IOUring && !p.URing() {
		t.Skip("io_uring is not available")
	}
	return p
}

// both runs test once with sendmsg and once with io_uring.
func both(t *testing.T, test func(t *testing.T, uring bool)) {
	t.Run("sendmsg", func(t *testing.T) { test(t, false) })
	t.Run("iouring", func(t *testing.T) { test(t, true) })
	t.Run("blocking-epoll_wait", func(t *testing.T) {
		defer netpoll.BlockInEpollWait()()
		test(t, false)
	})
}

// TestRuntimePolled checks that workers wait in the runtime's poller, not
// in a thread blocked in epoll_wait, unless that is turned off.
func TestRuntimePolled(t *testing.T) {
	p, err := netpoll.New(netpoll.Config{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if !p.RuntimePolled() {
		t.Errorf("RuntimePolled() = false, want true")
	}
	p.Close()
	restore := netpoll.BlockInEpollWait()
	p, err = netpoll.New(netpoll.Config{Workers: 2})
	restore()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.RuntimePolled() {
		t.Errorf("RuntimePolled() = true after BlockInEpollWait, want false")
	}
}

func register(t testing.TB, p *netpoll.Poller, c net.Conn, s *source) *netpoll.Conn {
	t.Helper()
	pc, err := p.Register(c, s)
	if err != nil {
		t.Fatalf("Register = %v", err)
	}
	s.setConn(pc)
	return pc
}

// waitFor polls cond until it holds or 10 seconds pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// readEOF reads c to the end and returns what it read.
func readEOF(t *testing.T, c net.Conn) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("ReadAll = %v, want EOF", err)
	}
	return b
}

// TestManyConns writes interleaved private and shared buffers to 500
// connections from several goroutines and checks that every reader gets
// all of them in order.
func TestManyConns(t *testing.T) { both(t, testManyConns) }

func testManyConns(t *testing.T, uring bool) {
	const (
		nconn  = 500
		nmsg   = 100
		nprods = 4
	)
	p := newPoller(t, netpoll.Config{Workers: 3, IOUring: uring})
	servers, clients := pairs(t, nconn)
	srcs := make([]*source, nconn)
	for i, c := range servers {
		srcs[i] = newSource()
		register(t, p, c, srcs[i])
	}
	if got := p.Len(); got != nconn {
		t.Fatalf("Len() = %d, want %d", got, nconn)
	}
	shared := []byte("data: the same bytes for everyone\n\n")

	var readers sync.WaitGroup
	errs := make(chan error, nconn)
	for i, c := range clients {
		readers.Go(func() {
			c.SetReadDeadline(time.Now().Add(20 * time.Second))
			r := bufio.NewReader(c)
			for seq := range nmsg {
				want := fmt.Sprintf("id: %d-%d\n", i, seq)
				line, err := r.ReadString('\n')
				if err != nil || line != want {
					errs <- fmt.Errorf("conn %d: read %q, %v; want %q", i, line, err, want)
					return
				}
				got := make([]byte, len(shared))
				if _, err := io.ReadFull(r, got); err != nil || !bytes.Equal(got, shared) {
					errs <- fmt.Errorf("conn %d: read %q, %v; want %q", i, got, err, shared)
					return
				}
			}
		})
	}
	var prods sync.WaitGroup
	for w := range nprods {
		prods.Go(func() {
			for seq := range nmsg {
				for i := w; i < nconn; i += nprods {
					srcs[i].push([]byte(fmt.Sprintf("id: %d-%d\n", i, seq)), shared)
				}
			}
		})
	}
	prods.Wait()
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	for i, s := range srcs {
		if err := s.waitClosed(t); err != nil {
			t.Errorf("conn %d: Closed(%v), want Closed(nil)", i, err)
		}
		if n := s.closes.Load(); n != 1 {
			t.Errorf("conn %d: Closed called %d times, want 1", i, n)
		}
	}
	if got := p.Len(); got != 0 {
		t.Errorf("Len() after Close = %d, want 0", got)
	}
}

// TestLargeTake checks more buffers than IOV_MAX in one Take, including
// empty ones, arrive complete and in order.
func TestLargeTake(t *testing.T) { both(t, testLargeTake) }

func testLargeTake(t *testing.T, uring bool) {
	p := newPoller(t, netpoll.Config{Workers: 1, IOUring: uring})
	servers, clients := pairs(t, 1)
	s := newSource()
	var want bytes.Buffer
	var bufs [][]byte
	for i := range 5000 {
		b := []byte(fmt.Sprintf("%d,", i))
		if i%7 == 0 {
			b = nil
		}
		want.Write(b)
		bufs = append(bufs, b)
	}
	s.queue = bufs
	pc := register(t, p, servers[0], s) // Register takes once by itself
	waitFor(t, "Take", func() bool { return s.takes.Load() >= 1 })
	got := make([]byte, want.Len())
	clients[0].SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(clients[0], got); err != nil {
		t.Fatalf("ReadFull = %v", err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("read %d bytes that differ from the %d written", len(got), want.Len())
	}
	pc.Close()
	if err := s.waitClosed(t); err != nil {
		t.Errorf("Closed(%v), want Closed(nil)", err)
	}
}

// TestWakeCoalesces checks that Wakes arriving while the writer is busy
// cost one Take, not one each.
func TestWakeCoalesces(t *testing.T) { both(t, testWakeCoalesces) }

func testWakeCoalesces(t *testing.T, uring bool) {
	p := newPoller(t, netpoll.Config{Workers: 1, IOUring: uring})
	servers, clients := pairs(t, 2)
	a, b := newSource(), newSource()
	pa := register(t, p, servers[0], a)
	waitFor(t, "first Take", func() bool { return a.takes.Load() == 1 })

	release, taking := make(chan struct{}), make(chan struct{}, 1)
	a.mu.Lock()
	a.block, a.taking = release, taking
	a.mu.Unlock()
	a.push([]byte("one\n"))
	<-taking // the worker is inside Take number 2
	for i := range 100 {
		a.push([]byte(fmt.Sprintf("%d\n", i)))
	}
	close(release)

	// Conn b is on the same worker; its Take comes after a's queued pass.
	register(t, p, servers[1], b)
	waitFor(t, "b's Take", func() bool { return b.takes.Load() == 1 })
	if got := a.takes.Load(); got != 3 {
		t.Errorf("Take calls after 101 Wakes during a blocked Take = %d, want 3", got)
	}
	var want bytes.Buffer
	want.WriteString("one\n")
	for i := range 100 {
		fmt.Fprintf(&want, "%d\n", i)
	}
	got := make([]byte, want.Len())
	clients[0].SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(clients[0], got); err != nil || !bytes.Equal(got, want.Bytes()) {
		t.Errorf("read %q, %v; want %q", got, err, want.Bytes())
	}
	pa.Close()
	a.waitClosed(t)
}

// TestSlowReader checks that a reader that stops reading makes the writer
// keep the remainder without spinning and without taking more, and that
// everything arrives once the reader drains.
func TestSlowReader(t *testing.T) { both(t, testSlowReader) }

func testSlowReader(t *testing.T, uring bool) {
	const (
		chunk = 64 << 10
		total = 8 << 20
	)
	p := newPoller(t, netpoll.Config{Workers: 1, IOUring: uring})
	servers, clients := pairs(t, 1)
	client := clients[0]
	if err := client.SetReadBuffer(64 << 10); err != nil { // no autotuning to 32 MiB
		t.Fatal(err)
	}
	data := make([]byte, total+chunk)
	for i := range data {
		data[i] = byte(i % 251)
	}
	s := newSource()
	pc := register(t, p, servers[0], s)
	waitFor(t, "first Take", func() bool { return s.takes.Load() == 1 })
	var bufs [][]byte
	for off := 0; off < total; off += chunk {
		bufs = append(bufs, data[off:off+chunk])
	}
	s.push(bufs...)
	waitFor(t, "second Take", func() bool { return s.takes.Load() == 2 })

	// The socket fills; the worker must now sleep until EPOLLOUT.
	time.Sleep(100 * time.Millisecond)
	loops := p.Loops()
	s.push(data[total:]) // pending: must not be taken while the remainder waits
	time.Sleep(300 * time.Millisecond)
	if got := p.Loops() - loops; got > 5 {
		t.Errorf("worker woke %d times in 300ms with a blocked reader, want at most 5", got)
	}
	if got := s.takes.Load(); got != 2 {
		t.Errorf("Take calls while the remainder waits = %d, want 2", got)
	}

	got := make([]byte, len(data))
	client.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.ReadFull(client, got); err != nil {
		t.Fatalf("ReadFull = %v", err)
	}
	if !bytes.Equal(got, data) {
		for i := range got {
			if got[i] != data[i] {
				t.Fatalf("byte %d = %d, want %d", i, got[i], data[i])
			}
		}
	}
	// The third Take got the last chunk; more (empty) Takes follow each
	// time a remainder drains.
	if got := s.takes.Load(); got < 3 {
		t.Errorf("Take calls after draining = %d, want at least 3", got)
	}
	pc.Close()
	if err := s.waitClosed(t); err != nil {
		t.Errorf("Closed(%v), want Closed(nil)", err)
	}
}

// TestPeerClose checks that a peer going away is reported once, with an
// error, and that the socket is closed.
func TestPeerClose(t *testing.T) { both(t, testPeerClose) }

func testPeerClose(t *testing.T, uring bool) {
	tests := []struct {
		name    string
		pending bool // bytes queued but unread when the peer goes
		hangUp  func(c *net.TCPConn)
	}{
		{"close", false, func(c *net.TCPConn) { c.Close() }},
		{"close while blocked", true, func(c *net.TCPConn) { c.Close() }},
		{"reset", false, func(c *net.TCPConn) { c.SetLinger(0); c.Close() }},
		{"reset then write", false, func(c *net.TCPConn) { c.SetLinger(0); c.Close() }},
		{"shut down writing", false, func(c *net.TCPConn) { c.CloseWrite() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPoller(t, netpoll.Config{Workers: 1, IOUring: uring})
			servers, clients := pairs(t, 1)
			s := newSource()
			s.onClosed = func() { // what the broker does
				s.mu.Lock()
				c := s.conn
				s.mu.Unlock()
				c.Close()
			}
			pc := register(t, p, servers[0], s)
			if tt.pending {
				clients[0].SetReadBuffer(16 << 10)
				s.push(make([]byte, 4<<20))
				waitFor(t, "Take", s.taken)
			}
			tt.hangUp(clients[0])
			if tt.name == "reset then write" {
				s.push([]byte("to nobody\n"))
			}
			err := s.waitClosed(t)
			if err == nil {
				t.Fatalf("Closed(nil) after peer %s, want an error", tt.name)
			}
			t.Logf("Closed(%v)", err)
			time.Sleep(50 * time.Millisecond)
			pc.Close()
			pc.Wake()
			if n := s.closes.Load(); n != 1 {
				t.Errorf("Closed called %d times, want 1", n)
			}
			if got := p.Len(); got != 0 {
				t.Errorf("Len() = %d, want 0", got)
			}
			if _, err := servers[0].Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
				t.Errorf("Write on the server side = %v, want net.ErrClosed", err)
			}
		})
	}
}

// TestPeerSends checks that bytes from the peer are discarded and the
// stream continues.
func TestPeerSends(t *testing.T) { both(t, testPeerSends) }

func testPeerSends(t *testing.T, uring bool) {
	p := newPoller(t, netpoll.Config{Workers: 1, IOUring: uring})
	servers, clients := pairs(t, 1)
	s := newSource()
	pc := register(t, p, servers[0], s)
	if _, err := clients[0].Write(bytes.Repeat([]byte("GET / HTTP/1.1\r\n\r\n"), 1000)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	s.push([]byte("still here\n"))
	r := bufio.NewReader(clients[0])
	clients[0].SetReadDeadline(time.Now().Add(10 * time.Second))
	if line, err := r.ReadString('\n'); line != "still here\n" || err != nil {
		t.Fatalf("ReadString = %q, %v; want %q, nil", line, err, "still here\n")
	}
	if n := s.closes.Load(); n != 0 {
		t.Fatalf("Closed called %d times while the peer is connected, want 0", n)
	}
	pc.Close()
	if err := s.waitClosed(t); err != nil {
		t.Errorf("Closed(%v), want Closed(nil)", err)
	}
}

// TestConnClose checks Conn.Close: Closed(nil) once, the peer sees end of
// file, later Wakes are ignored.
func TestConnClose(t *testing.T) { both(t, testConnClose) }

func testConnClose(t *testing.T, uring bool) {
	p := newPoller(t, netpoll.Config{Workers: 2, IOUring: uring})
	servers, clients := pairs(t, 1)
	s := newSource()
	pc := register(t, p, servers[0], s)
	s.push([]byte("bye\n"))
	if got := string(readN(t, clients[0], 4)); got != "bye\n" {
		t.Fatalf("read %q, want %q", got, "bye\n")
	}
	pc.Close()
	pc.Close()
	if err := s.waitClosed(t); err != nil {
		t.Errorf("Closed(%v), want Closed(nil)", err)
	}
	takes := s.takes.Load()
	s.push([]byte("too late\n"))
	if got := readEOF(t, clients[0]); len(got) != 0 {
		t.Errorf("read %q after Close, want end of file", got)
	}
	pc.Close()
	if n := s.closes.Load(); n != 1 {
		t.Errorf("Closed called %d times, want 1", n)
	}
	if got := s.takes.Load(); got != takes {
		t.Errorf("Take called %d times after Close, want 0", got-takes)
	}
	if got := p.Len(); got != 0 {
		t.Errorf("Len() = %d, want 0", got)
	}
}

func readN(t *testing.T, c net.Conn, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("ReadFull = %v", err)
	}
	return b
}

// TestPollerClose checks that Close finishes idle and blocked connections
// alike, each with Closed(nil) exactly once, and refuses new ones.
func TestPollerClose(t *testing.T) { both(t, testPollerClose) }

func testPollerClose(t *testing.T, uring bool) {
	const n = 50
	p, err := netpoll.New(netpoll.Config{IOUring: uring})
	if err != nil {
		t.Fatalf("New = %v", err)
	}
	if uring && !p.URing() {
		p.Close()
		t.Skip("io_uring is not available")
	}
	servers, clients := pairs(t, n)
	srcs := make([]*source, n)
	conns := make([]*netpoll.Conn, n)
	for i, c := range servers {
		srcs[i] = newSource()
		conns[i] = register(t, p, c, srcs[i])
		if i%2 == 0 { // half of them blocked with a remainder
			clients[i].SetReadBuffer(16 << 10)
			srcs[i].push(make([]byte, 1<<20))
		}
	}
	for _, s := range srcs {
		waitFor(t, "Take", s.taken)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	for i, s := range srcs {
		if n := s.closes.Load(); n != 1 {
			t.Errorf("conn %d: Closed called %d times after Poller.Close, want 1", i, n)
		} else if err := <-s.closeErr; err != nil {
			t.Errorf("conn %d: Closed(%v), want Closed(nil)", i, err)
		}
	}
	for i := range n {
		if i%2 == 1 {
			if got := readEOF(t, clients[i]); len(got) != 0 {
				t.Errorf("conn %d: read %q, want end of file", i, got)
			}
		}
	}
	if got := p.Len(); got != 0 {
		t.Errorf("Len() = %d, want 0", got)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close() = %v", err)
	}
	conns[1].Wake()
	conns[1].Close()
	extra, _ := pairs(t, 1)
	defer extra[0].Close()
	if _, err := p.Register(extra[0], newSource()); !errors.Is(err, netpoll.ErrClosed) {
		t.Errorf("Register after Close = %v, want ErrClosed", err)
	}
}

func TestNewAndRegisterErrors(t *testing.T) { both(t, testNewAndRegisterErrors) }

func testNewAndRegisterErrors(t *testing.T, uring bool) {
	if _, err := netpoll.New(netpoll.Config{Workers: -1}); err == nil {
		t.Errorf("New(Workers: -1) = nil error, want an error")
	}
	p := newPoller(t, netpoll.Config{Workers: 1, IOUring: uring})
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if _, err := p.Register(a, newSource()); err == nil || errors.Is(err, netpoll.ErrClosed) {
		t.Errorf("Register(net.Pipe) = %v, want a not-a-socket error", err)
	}
	// The caller still owns the pipe after a failed Register.
	go b.Write([]byte("x"))
	if _, err := a.Read(make([]byte, 1)); err != nil {
		t.Errorf("Read after failed Register = %v, want nil", err)
	}
	if got := p.Len(); got != 0 {
		t.Errorf("Len() = %d, want 0", got)
	}
}

// TestURingRefused checks that a kernel refusing io_uring leaves a working
// poller that uses sendmsg.
func TestURingRefused(t *testing.T) {
	defer netpoll.RefuseURing(syscall.EPERM)()
	p, err := netpoll.New(netpoll.Config{Workers: 2, IOUring: true})
	if err != nil {
		t.Fatalf("New(IOUring: true) with io_uring refused = %v, want nil", err)
	}
	defer p.Close()
	if p.URing() {
		t.Fatalf("URing() = true with io_uring refused, want false")
	}
	servers, clients := pairs(t, 1)
	s := newSource()
	register(t, p, servers[0], s)
	s.push([]byte("hello\n"))
	if got := string(readN(t, clients[0], 6)); got != "hello\n" {
		t.Errorf("read %q, want %q", got, "hello\n")
	}
}

// lockedBuffer is an io.Writer safe for concurrent use.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestURingBroken checks that a ring failing at io_uring_enter, in the
// middle of a pass with more connections than one batch holds, falls back to
// sendmsg without losing anything.
func TestURingBroken(t *testing.T) {
	const n = 300 // more than one batch of 256 sends
	var log lockedBuffer
	p := newPoller(t, netpoll.Config{Workers: 1, IOUring: true, Logger: slog.New(slog.NewTextHandler(&log, nil))})
	servers, clients := pairs(t, n+1)
	srcs := make([]*source, n+1)
	for i, c := range servers {
		srcs[i] = newSource()
		register(t, p, c, srcs[i])
	}
	for _, s := range srcs {
		waitFor(t, "first Take", s.taken)
	}

	// Hold the worker in an empty Take while the ring is broken and every
	// other connection is woken, so that they all land in one pass.
	blocker := srcs[n]
	release, taking := make(chan struct{}), make(chan struct{}, 1)
	blocker.mu.Lock()
	blocker.block, blocker.taking = release, taking
	blocker.mu.Unlock()
	blocker.conn.Wake()
	<-taking
	if err := p.BreakURing(); err != nil {
		t.Fatal(err)
	}
	for i, s := range srcs[:n] {
		s.push([]byte(fmt.Sprintf("msg %d\n", i)), []byte("second\n"))
	}
	close(release)

	for i, c := range clients[:n] {
		want := fmt.Sprintf("msg %d\nsecond\n", i)
		if got := string(readN(t, c, len(want))); got != want {
			t.Errorf("conn %d: read %q, want %q", i, got, want)
		}
	}
	if got := strings.Count(log.String(), "io_uring disabled"); got != 1 {
		t.Errorf("log has %d io_uring disabled warnings, want 1:\n%s", got, log.String())
	}
	srcs[0].push([]byte("after\n"))
	if got := string(readN(t, clients[0], 6)); got != "after\n" {
		t.Errorf("read %q after fallback, want %q", got, "after\n")
	}
}

// TestWriteTimeout checks that a peer which stops reading is cut once its
// socket has refused bytes for Config.WriteTimeout, and that a peer which
// reads is not, however long its connection stays idle.
func TestWriteTimeout(t *testing.T) { both(t, testWriteTimeout) }

func testWriteTimeout(t *testing.T, uring bool) {
	const timeout = 200 * time.Millisecond
	p := newPoller(t, netpoll.Config{Workers: 1, IOUring: uring, WriteTimeout: timeout})
	servers, clients := pairs(t, 2)
	stuck, reader := clients[0], clients[1]
	if err := stuck.SetReadBuffer(16 << 10); err != nil {
		t.Fatal(err)
	}
	ss, rs := newSource(), newSource()
	register(t, p, servers[0], ss)
	rpc := register(t, p, servers[1], rs)
	waitFor(t, "first Takes", func() bool { return ss.takes.Load() == 1 && rs.takes.Load() == 1 })

	data := make([]byte, 4<<20) // far more than both sockets' buffers hold
	start := time.Now()
	ss.push(data)
	if err := ss.waitClosed(t); !errors.Is(err, netpoll.ErrWriteTimeout) {
		t.Fatalf("Closed(%v) for a peer that stopped reading, want ErrWriteTimeout", err)
	}
	if d := time.Since(start); d < timeout {
		t.Errorf("cut after %v, before the write timeout %v", d, timeout)
	}

	// The reader takes the same burst and then idles past the timeout.
	rs.push(data)
	reader.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(reader, make([]byte, len(data))); err != nil {
		t.Fatalf("reader: %v", err)
	}
	time.Sleep(3 * timeout) // several sweeps with nothing blocked
	select {
	case err := <-rs.closeErr:
		t.Fatalf("a reading peer was cut: Closed(%v)", err)
	default:
	}
	rpc.Close()
	if err := rs.waitClosed(t); err != nil {
		t.Errorf("Closed(%v), want Closed(nil)", err)
	}
}

// TestFinish checks that Finish writes what is pending, including bytes
// queued behind a full socket, and then closes the connection gracefully.
func TestFinish(t *testing.T) { both(t, testFinish) }

func testFinish(t *testing.T, uring bool) {
	p := newPoller(t, netpoll.Config{Workers: 1, IOUring: uring})
	servers, clients := pairs(t, 1)
	s := newSource()
	pc := register(t, p, servers[0], s)
	waitFor(t, "first Take", func() bool { return s.takes.Load() == 1 })
	data := make([]byte, 4<<20) // more than the socket holds: Finish must wait for the remainder
	for i := range data {
		data[i] = byte(i % 251)
	}
	s.push(data[:len(data)/2])
	s.mu.Lock()
	s.queue = append(s.queue, data[len(data)/2:]) // queued without a Wake: Finish takes it
	s.mu.Unlock()
	pc.Finish()
	got := readEOF(t, clients[0])
	if !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes before EOF, want the %d written", len(got), len(data))
	}
	if err := s.waitClosed(t); err != nil {
		t.Errorf("Closed(%v) after Finish, want Closed(nil)", err)
	}
}
