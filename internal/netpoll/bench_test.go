//go:build linux

package netpoll_test

import (
	"bytes"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/herald-sse/herald/internal/netpoll"
)

// drainer reads and discards everything arriving on a set of client
// connections with a few goroutines, each with its own epoll set, so the
// readers cost little next to the writers being measured.
type drainer struct {
	received atomic.Int64
	stop     atomic.Bool
	wg       sync.WaitGroup
}

func startDrainer(tb testing.TB, clients []*net.TCPConn, goroutines int) *drainer {
	tb.Helper()
	d := &drainer{}
	for g := range goroutines {
		epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			tb.Fatal(err)
		}
		for i := g; i < len(clients); i += goroutines {
			fd := fdOf(tb, clients[i])
			ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
			if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
				tb.Fatal(err)
			}
		}
		d.wg.Go(func() {
			defer unix.Close(epfd)
			events := make([]unix.EpollEvent, 128)
			buf := make([]byte, 64<<10)
			for !d.stop.Load() {
				n, err := unix.EpollWait(epfd, events, 20)
				if err != nil && err != unix.EINTR {
					return
				}
				for _, ev := range events[:max(n, 0)] {
					for {
						m, err := unix.Read(int(ev.Fd), buf)
						if m <= 0 || err != nil {
							break
						}
						d.received.Add(int64(m))
					}
				}
			}
		})
	}
	tb.Cleanup(d.close)
	return d
}

func (d *drainer) close() {
	d.stop.Store(true)
	d.wg.Wait()
}

// waitReceived waits until at least n bytes arrived in total.
func (d *drainer) waitReceived(tb testing.TB, n int64) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for d.received.Load() < n {
		if time.Now().After(deadline) {
			tb.Fatalf("received %d bytes, want %d", d.received.Load(), n)
		}
		time.Sleep(20 * time.Microsecond)
	}
}

func fdOf(tb testing.TB, c syscall.Conn) int {
	tb.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		tb.Fatal(err)
	}
	fd := -1
	if err := rc.Control(func(s uintptr) { fd = int(s) }); err != nil {
		tb.Fatal(err)
	}
	return fd
}

// cpuTime returns the user plus system CPU time of the process.
func cpuTime(tb testing.TB) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkFanout delivers one shared 100-byte event to 1,000 parked
// loopback connections per op. Ns/delivery is wall time per connection
// write; cpu-ns/delivery is the whole process's CPU time (writers, the
// producer and the reading goroutines) per delivery.
func BenchmarkFanout(b *testing.B) {
	b.Run("sendmsg", func(b *testing.B) { benchFanout(b, false) })
	b.Run("iouring", func(b *testing.B) { benchFanout(b, true) })
}

func benchFanout(b *testing.B, uring bool) {
	const (
		nconn  = 1000
		window = 32 // ops in flight before the producer waits for readers
	)
	p := newPoller(b, netpoll.Config{IOUring: uring})
	servers, clients := pairs(b, nconn)
	srcs := make([]*source, nconn)
	for i, c := range servers {
		srcs[i] = newSource()
		register(b, p, c, srcs[i])
	}
	d := startDrainer(b, clients, 4)
	msg := bytes.Repeat([]byte("x"), 100)
	for _, s := range srcs { // warm up each connection once
		s.push(msg)
	}
	d.waitReceived(b, nconn*int64(len(msg)))
	base := d.received.Load()

	b.ReportAllocs()
	b.ResetTimer()
	cpu0, t0 := cpuTime(b), time.Now()
	for i := range b.N {
		for _, s := range srcs {
			s.push(msg)
		}
		if i >= window {
			d.waitReceived(b, base+int64(i-window)*nconn*int64(len(msg)))
		}
	}
	d.waitReceived(b, base+int64(b.N)*nconn*int64(len(msg)))
	elapsed, cpu := time.Since(t0), cpuTime(b)-cpu0
	b.StopTimer()
	deliveries := float64(b.N) * nconn
	b.ReportMetric(float64(elapsed.Nanoseconds())/deliveries, "ns/delivery")
	b.ReportMetric(float64(cpu.Nanoseconds())/deliveries, "cpu-ns/delivery")
}

// TestIdleMemory registers thousands of idle loopback connections and
// reports the heap each one costs the poller, and what the runtime's own
// connection state costs per side.
func TestIdleMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 10,000 descriptors")
	}
	n := 5000
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		_ = unix.Setrlimit(unix.RLIMIT_NOFILE, &lim)
	}
	if avail := int(lim.Cur) - 200; 2*n > avail {
		n = avail / 2
	}
	if n < 500 {
		t.Skipf("RLIMIT_NOFILE %d is too low", lim.Cur)
	}
	p := newPoller(t, netpoll.Config{})
	srcs := make([]*source, n)
	for i := range srcs {
		srcs[i] = newSource()
	}
	m0 := heap()
	servers, clients := pairs(t, n)
	m1 := heap()
	for i, c := range servers {
		register(t, p, c, srcs[i])
	}
	for _, s := range srcs {
		waitFor(t, "first Take", s.taken)
	}
	clear(servers) // the poller closed them; only its own state remains
	m2 := heap()
	runtimeSide := float64(m1-m0) / float64(2*n)
	// Server side now: the poller's state, with the runtime's net.Conn
	// released (Register closes it after duplicating the descriptor).
	perConn := (float64(m2) - float64(m0) - runtimeSide*float64(n)) / float64(n)
	t.Logf("%d idle conns: poller %.0f B/conn (Conn struct %d B); runtime net.TCPConn+netFD per side ≈ %.0f B (heap only; pollDesc and socket buffers are outside the Go heap)",
		n, perConn, netpoll.ConnSize, runtimeSide)
	if perConn > 512 {
		t.Errorf("poller heap per idle conn = %.0f B, want at most 512", perConn)
	}
	runtime.KeepAlive(clients)
}

// heap returns the live heap after a full collection.
func heap() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
