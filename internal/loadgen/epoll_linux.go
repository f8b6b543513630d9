//go:build linux

package loadgen

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// newReaderPool returns the epoll reader pool with one worker per sink.
func newReaderPool(cfg Config, rs *readers) (readerPool, error) {
	if cfg.goroutineReaders {
		return newGoroutinePool(rs), nil
	}
	return newEpollPool(cfg.Subscribers, cfg.ReadPause, rs)
}

// readerCount is the number of sinks the pool for cfg needs.
func readerCount(cfg Config) int {
	if cfg.goroutineReaders {
		return 1
	}
	return cfg.Readers
}

// epollPool reads raw sockets with a few workers, each owning an epoll
// instance, a read buffer and a sink. A connection costs its socket, an
// econn (56 bytes, a 64-byte allocation) and a slot (8 bytes).
//
// Receipt times are the kernel's receive timestamps (SO_TIMESTAMPNS) of
// the data read, so a reader's scheduling delay does not count as hub
// latency; that lets a reader pause after a wakeup that found few ready
// connections, to read more of them per wakeup with fewer context switches.
type epollPool struct {
	rs      *readers
	pause   time.Duration           // after a thin wakeup; <= 0: none
	slots   []atomic.Pointer[econn] // indexed by the epoll event's data
	next    atomic.Int64            // next free slot
	workers []*epollWorker
	wg      sync.WaitGroup
}

// econn is one connection: its parser state and its file descriptor. It
// belongs to its worker once registered.
type econn struct {
	stream
	fd     int32
	closed bool
}

type epollWorker struct {
	epfd   int
	wakefd int // eventfd: readable means stop
	sink   *sink
	buf    []byte
	oob    []byte
	iov    unix.Iovec
	msg    unix.Msghdr
}

// wakeData marks the wake eventfd in epoll events.
const wakeData = -1

// thinWakeup is the number of ready connections below which a reader
// pauses before waiting again.
const thinWakeup = 64

func newEpollPool(capacity int, pause time.Duration, rs *readers) (*epollPool, error) {
	p := &epollPool{rs: rs, pause: pause, slots: make([]atomic.Pointer[econn], capacity)}
	for _, k := range rs.sinks {
		w, err := newEpollWorker(k)
		if err != nil {
			p.closeWorkers()
			return nil, err
		}
		p.workers = append(p.workers, w)
	}
	for _, w := range p.workers {
		p.wg.Go(func() { p.loop(w) })
	}
	return p, nil
}

func newEpollWorker(k *sink) (*epollWorker, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("loadgen: epoll_create: %w", err)
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("loadgen: eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: wakeData}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(wakefd)
		return nil, fmt.Errorf("loadgen: epoll_ctl: %w", err)
	}
	w := &epollWorker{epfd: epfd, wakefd: wakefd, sink: k, buf: make([]byte, 64<<10), oob: make([]byte, 128)}
	w.iov.Base = &w.buf[0]
	w.iov.SetLen(len(w.buf))
	w.msg.Iov = &w.iov
	w.msg.SetIovlen(1)
	return w, nil
}

// add duplicates the socket of nc, closes nc (which removes it from the Go
// runtime's poller) and registers the duplicate with a worker.
func (p *epollPool) add(nc net.Conn, s stream) error {
	defer nc.Close()
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return errors.New("loadgen: connection has no file descriptor")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return fmt.Errorf("loadgen: raw conn: %w", err)
	}
	fd := -1
	var dupErr error
	if err := raw.Control(func(f uintptr) {
		fd, dupErr = unix.FcntlInt(f, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return fmt.Errorf("loadgen: raw conn: %w", err)
	}
	if dupErr != nil {
		return fmt.Errorf("loadgen: dup: %w", dupErr)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return fmt.Errorf("loadgen: set nonblock: %w", err)
	}
	// Without receive timestamps, receipts are timed when read.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	idx := p.next.Add(1) - 1
	if idx >= int64(len(p.slots)) {
		unix.Close(fd)
		return errors.New("loadgen: too many connections")
	}
	p.slots[idx].Store(&econn{stream: s, fd: int32(fd)})
	w := p.workers[idx%int64(len(p.workers))]
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(idx)}
	if err := unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		p.slots[idx].Store(nil)
		unix.Close(fd)
		return fmt.Errorf("loadgen: epoll_ctl: %w", err)
	}
	p.rs.open.Add(1)
	return nil
}

func (p *epollPool) loop(w *epollWorker) {
	events := make([]unix.EpollEvent, 512)
	k := w.sink
	for {
		n, err := unix.EpollWait(w.epfd, events, -1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return
		}
		for i := range n {
			idx := events[i].Fd
			if idx == wakeData {
				return
			}
			c := p.slots[idx].Load()
			if c == nil || c.closed {
				continue
			}
			nr, ts, err := w.recv(int(c.fd))
			if nr > 0 {
				if ts == 0 {
					ts = time.Now().UnixNano()
					k.userClock++
				}
				k.now = ts
				if c.feed(w.buf[:nr], k) != nil {
					p.drop(w, c)
				}
				continue
			}
			if errors.Is(err, unix.EAGAIN) {
				continue
			}
			p.drop(w, c) // EOF or a read error
		}
		if n < thinWakeup && p.pause > 0 {
			time.Sleep(p.pause)
		}
	}
}

// recv reads from fd into w.buf. It returns the bytes read and the
// kernel's receive timestamp of the data, or zero if there is none.
func (w *epollWorker) recv(fd int) (n int, tsNs int64, err error) {
	w.msg.Control = &w.oob[0]
	w.msg.SetControllen(len(w.oob))
	w.msg.Flags = 0
	for {
		r, _, e := unix.Syscall(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&w.msg)), 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 0, 0, e
		}
		n = int(r)
		break
	}
	oob := w.oob[:w.msg.Controllen]
	hdrLen := unix.CmsgLen(0)
	for len(oob) >= hdrLen {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < hdrLen || l > len(oob) {
			break
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_TIMESTAMPNS &&
			l-hdrLen >= int(unsafe.Sizeof(unix.Timespec{})) {
			ts := (*unix.Timespec)(unsafe.Pointer(&oob[hdrLen]))
			tsNs = ts.Nano()
		}
		oob = oob[min(unix.CmsgSpace(l-hdrLen), len(oob)):]
	}
	return n, tsNs, nil
}

// drop closes a connection the server ended.
func (p *epollPool) drop(w *epollWorker, c *econn) {
	_ = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, int(c.fd), nil)
	unix.Close(int(c.fd))
	c.closed = true
	p.rs.disconnects.Add(1)
	p.rs.open.Add(-1)
}

func (p *epollPool) stop() {
	var one [8]byte
	one[0] = 1 // eventfd counters are host-endian; any non-zero value wakes
	for _, w := range p.workers {
		_, _ = unix.Write(w.wakefd, one[:])
	}
	p.wg.Wait()
	n := min(p.next.Load(), int64(len(p.slots)))
	for i := range n {
		if c := p.slots[i].Load(); c != nil && !c.closed {
			unix.Close(int(c.fd))
			c.closed = true
			p.rs.open.Add(-1)
		}
	}
	p.closeWorkers()
}

func (p *epollPool) closeWorkers() {
	for _, w := range p.workers {
		unix.Close(w.epfd)
		unix.Close(w.wakefd)
	}
	p.workers = nil
}

// bindNoPort sets IP_BIND_ADDRESS_NO_PORT on a socket about to be bound to
// a source address, so that its port is chosen at connect time per
// destination and one source address can carry more connections.
func bindNoPort(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

// raiseFileLimit raises the soft RLIMIT_NOFILE to the hard limit and
// reports an error if need descriptors still do not fit.
func raiseFileLimit(need int) error {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("loadgen: getrlimit: %w", err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
			return fmt.Errorf("loadgen: setrlimit: %w", err)
		}
	}
	if uint64(need) > lim.Cur {
		return fmt.Errorf("loadgen: %d file descriptors needed, RLIMIT_NOFILE is %d", need, lim.Cur)
	}
	return nil
}
