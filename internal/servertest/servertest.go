// Package servertest starts private Redis and NATS servers for tests that
// flush, restart, pause or delete things, and a TCP proxy that can stall or
// redirect connections. It never touches the shared servers.
//
// A missing server binary skips the test, or fails it when CI=true.
package servertest

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Server is a server process the test started. Its methods are safe for
// concurrent use. The test's cleanup kills it.
type Server struct {
	tb   testing.TB
	name string
	args []string
	Addr string // host:port
	Dir  string // the server's working directory

	mu  sync.Mutex
	cmd *exec.Cmd
}

// freePort returns a loopback port that nothing listens on now.
func freePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func lookBin(tb testing.TB, name string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("%s not installed: %v", name, err)
		}
		tb.Skipf("%s not installed: %v", name, err)
	}
	return p
}

// StartRedis starts a redis-server on a free loopback port, without
// persistence, and returns it.
func StartRedis(tb testing.TB) *Server {
	tb.Helper()
	bin := lookBin(tb, "redis-server")
	port := freePort(tb)
	dir := tb.TempDir()
	s := &Server{tb: tb, name: bin, Dir: dir, Addr: "127.0.0.1:" + strconv.Itoa(port),
		args: []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", dir, "--protected-mode", "no"}}
	s.Start()
	tb.Cleanup(s.Kill)
	return s
}

// StartNATS starts a nats-server with JetStream (file storage under a
// temporary directory) on a free loopback port, and returns it.
func StartNATS(tb testing.TB) *Server {
	tb.Helper()
	bin := lookBin(tb, "nats-server")
	port := freePort(tb)
	dir := tb.TempDir()
	s := &Server{tb: tb, name: bin, Dir: dir, Addr: "127.0.0.1:" + strconv.Itoa(port),
		args: []string{"-a", "127.0.0.1", "-p", strconv.Itoa(port), "-js", "-sd", dir}}
	s.Start()
	tb.Cleanup(s.Kill)
	return s
}

// URL returns the server's address as a nats:// or redis:// URL.
func (s *Server) URL(scheme string) string { return scheme + "://" + s.Addr }

// Start starts the server (again) and waits until it accepts connections.
func (s *Server) Start() {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.tb.Fatalf("%s already running", s.name)
	}
	cmd := exec.Command(s.name, s.args...)
	cmd.Dir = s.Dir
	if err := cmd.Start(); err != nil {
		s.tb.Fatalf("starting %s: %v", s.name, err)
	}
	s.cmd = cmd
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			s.tb.Fatalf("%s on %s not listening after 10s: %v", s.name, s.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill kills the server (SIGKILL: no shutdown, no save) and waits for it.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGCONT) // in case it was stopped
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
}

// Stop pauses the server with SIGSTOP, and returns once it is stopped:
// connections stay open and nothing answers. Cont resumes it.
func (s *Server) Stop() {
	s.signal(syscall.SIGSTOP)
	s.mu.Lock()
	pid := 0
	if s.cmd != nil {
		pid = s.cmd.Process.Pid
	}
	s.mu.Unlock()
	if pid == 0 {
		return
	}
	// Signals are delivered asynchronously: wait for the stopped state
	// ("T" in /proc/<pid>/stat, after the command name in parentheses).
	for range 1000 {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return // not Linux: best effort
		}
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) && b[i+2] == 'T' {
			return
		}
		time.Sleep(time.Millisecond)
	}
	s.tb.Fatalf("%s not stopped 1s after SIGSTOP", s.name)
}

// Cont resumes a server paused by Stop.
func (s *Server) Cont() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig os.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.cmd.Process.Signal(sig)
	}
}

// Proxy forwards TCP connections to a target address. It can stall
// (accept and hold bytes without forwarding them) and switch targets,
// which drops every open connection, as a failover does. The test's
// cleanup closes it.
type Proxy struct {
	ln net.Listener
	wg sync.WaitGroup

	mu      sync.Mutex
	target  string
	stalled chan struct{} // non-nil while stalled; closed by Resume
	conns   map[net.Conn]struct{}
}

// NewProxy returns a proxy to target on a free loopback port.
func NewProxy(tb testing.TB, target string) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.accept)
	tb.Cleanup(p.Close)
	return p
}

// Addr returns the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Stall stops forwarding bytes in both directions; connections stay open.
func (p *Proxy) Stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stalled == nil {
		p.stalled = make(chan struct{})
	}
}

// Resume forwards again after Stall.
func (p *Proxy) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stalled != nil {
		close(p.stalled)
		p.stalled = nil
	}
}

// Switch sends new connections to target and drops the open ones.
func (p *Proxy) Switch(target string) {
	p.mu.Lock()
	p.target = target
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
}

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() {
	p.ln.Close()
	p.Resume()
	p.Switch("")
	p.wg.Wait()
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		target := p.target
		p.mu.Unlock()
		up, err := net.DialTimeout("tcp", target, time.Second)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Go(func() { p.pipe(up, c) })
		p.wg.Go(func() { p.pipe(c, up) })
	}
}

// pipe copies from src to dst, holding bytes while stalled.
func (p *Proxy) pipe(dst, src net.Conn) {
	defer func() {
		p.mu.Lock()
		delete(p.conns, dst)
		delete(p.conns, src)
		p.mu.Unlock()
		dst.Close()
		src.Close()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			stalled := p.stalled
			p.mu.Unlock()
			if stalled != nil {
				<-stalled
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// WaitFor polls cond every 10ms until it is true or the timeout passes,
// and reports whether it became true. For conditions on real servers,
// whose timing the test cannot control.
func WaitFor(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(10 * time.Millisecond):
		}
	}
	return true
}
