//go:build linux

package netpoll

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	maxIovecs   = 1024 // IOV_MAX on Linux
	maxEvents   = 256  // events per epoll_wait
	maxKeepBufs = 4096 // scratch [][]byte capacity a worker keeps between writes
	discardSize = 4096 // scratch buffer for bytes the peer sends
	wakeupKey   = 0    // epoll data of the eventfd; connections use keys >= 1

	connEvents = unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET
)

// setupURing creates a worker's io_uring; tests replace it to simulate a
// kernel that refuses io_uring.
var setupURing = newURing

// runtimePoll lets the runtime's poller watch each worker's epoll set;
// tests turn it off to exercise the blocking fallback.
var runtimePoll = true

// one is the 8-byte little-endian value written to an eventfd.
var one = [8]byte{1}

// Poller is a fixed pool of writer goroutines for parked connections. Each
// goroutine (a worker) owns an epoll set and an eventfd that wakes it;
// connections are spread over the workers round-robin.
//
// Create a Poller with [New]; the zero value is not usable. A Poller is safe
// for concurrent use. Its owner must call [Poller.Close], which closes every
// registered connection and stops the workers.
type Poller struct {
	workers []*worker
	next    atomic.Uint32 // round-robin worker choice
	n       atomic.Int64  // registered connections
	closed  atomic.Bool
	wg      sync.WaitGroup
	log     *slog.Logger

	writeTimeout time.Duration // zero: none
	stop         chan struct{} // closed by Close: stops the sweeper
}

// Conn is a connection registered with a [Poller]. Its methods are safe for
// concurrent use and never block.
//
// Per-connection state is this struct (96 bytes on 64-bit platforms) plus
// one map entry in its worker; the remainder slice is allocated only while
// the socket is full.
type Conn struct {
	w   *worker
	src Source

	// Owned by the worker goroutine.
	pending [][]byte // unwritten remainder; nil when the socket has room
	blocked int64    // when pending became non-nil (UnixNano); see Config.WriteTimeout
	stalled bool     // on the worker's stalled list

	fd  int32
	key uint32 // epoll data and key in worker.conns; unique per worker

	queued  atomic.Bool // on the worker's dirty list
	closing atomic.Bool // Close was called
	ending  atomic.Bool // Finish was called: close once everything is written
	done    atomic.Bool // finished: socket closed, Closed called (set by the worker)
}

// worker is one writer goroutine with its epoll set.
//
// Fields under mu may be touched by any goroutine; the rest belong to the
// worker goroutine.
type worker struct {
	p    *Poller
	epfd int
	evfd int
	// epf owns epfd. Go's own netpoller watches it, so a worker with
	// nothing to do is a parked goroutine rather than a thread blocked in
	// epoll_wait: a blocked thread holds its P in the syscall state, which
	// keeps sysmon waking every 20 µs to retake it and makes every wake-up
	// take the slow path back to a P (about 15% of the server's CPU at
	// 50,000 deliveries/s before this was changed). Nil when the runtime
	// cannot poll an epoll descriptor; the worker then blocks in
	// epoll_wait.
	epf *os.File
	erc syscall.RawConn

	mu       sync.Mutex
	dirty    []*Conn // connections woken since the last pass
	conns    map[uint32]*Conn
	lastKey  uint32
	stopping bool // no more Register or eventfd writes; the worker exits

	spare []*Conn // the other dirty list
	// stalled lists the connections that had a remainder when they were
	// last checked (a superset of those with one now); sweep cuts those
	// blocked longer than the write timeout. nstalled is its length, read
	// by the sweeper to skip workers with nothing to check.
	stalled  []*Conn
	nstalled atomic.Int32
	sweepDue atomic.Bool // the sweeper asked for a sweep
	bufs     [][]byte
	iov      []unix.Iovec
	msg      unix.Msghdr
	discard  []byte
	ring     *uring        // nil: one sendmsg per connection
	loops    atomic.Uint64 // epoll_wait returns, for tests
	written  atomic.Uint64 // bytes the sockets accepted
}

// New starts a Poller with cfg.Workers writer goroutines. It returns an
// error if an epoll set or eventfd cannot be created.
func New(cfg Config) (*Poller, error) {
	n := cfg.Workers
	if n < 0 {
		return nil, fmt.Errorf("netpoll: new: negative Workers %d", n)
	}
	if n == 0 {
		n = runtime.GOMAXPROCS(0)
	}
	p := &Poller{log: cfg.Logger, writeTimeout: max(cfg.WriteTimeout, 0), stop: make(chan struct{})}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	for range n {
		w, err := newWorker(p)
		if err != nil {
			for _, w := range p.workers {
				w.closeFDs()
			}
			return nil, err
		}
		p.workers = append(p.workers, w)
	}
	if cfg.IOUring {
		for _, w := range p.workers {
			r, err := setupURing()
			if err != nil {
				p.log.Info("netpoll: io_uring unavailable, using sendmsg", "err", err)
				break
			}
			w.ring = r
		}
	}
	for _, w := range p.workers {
		p.wg.Go(w.run)
	}
	if p.writeTimeout > 0 {
		p.wg.Go(p.sweeper)
	}
	return p, nil
}

// sweeper asks every worker with blocked connections to check them for the
// write timeout, every writeTimeout/8. The check itself runs on the worker,
// which owns the connections' remainders.
func (p *Poller) sweeper() {
	t := time.NewTicker(max(p.writeTimeout/8, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		for _, w := range p.workers {
			if w.nstalled.Load() == 0 {
				continue
			}
			w.sweepDue.Store(true)
			w.mu.Lock()
			if !w.stopping {
				w.signal()
			}
			w.mu.Unlock()
		}
	}
}

// sweep finishes the connections blocked for longer than the write timeout
// and forgets those that are no longer blocked.
func (w *worker) sweep() {
	now := time.Now().UnixNano()
	limit := int64(w.p.writeTimeout)
	keep := w.stalled[:0]
	for _, c := range w.stalled {
		switch {
		case c.done.Load() || c.pending == nil:
			c.stalled = false
		case now-c.blocked >= limit:
			c.stalled = false
			w.finish(c, ErrWriteTimeout)
		default:
			keep = append(keep, c)
		}
	}
	clear(w.stalled[len(keep):])
	w.stalled = keep
	w.nstalled.Store(int32(len(keep)))
}

func newWorker(p *Poller) (*worker, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("netpoll: epoll_create1: %w", err)
	}
	evfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("netpoll: eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: wakeupKey}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(evfd)
		return nil, fmt.Errorf("netpoll: epoll_ctl eventfd: %w", err)
	}
	w := &worker{
		p:       p,
		epfd:    epfd,
		evfd:    evfd,
		conns:   make(map[uint32]*Conn),
		iov:     make([]unix.Iovec, 0, maxIovecs),
		discard: make([]byte, discardSize),
	}
	// An epoll descriptor is itself pollable: it is readable while its
	// ready list is not empty. Non-blocking, os.NewFile registers it with
	// the runtime's poller.
	if runtimePoll && unix.SetNonblock(epfd, true) == nil {
		w.epf = os.NewFile(uintptr(epfd), "netpoll-epoll")
		// Deadlines work only on descriptors the runtime polls: this
		// decides the mode once, before the worker starts.
		if w.epf.SetReadDeadline(time.Time{}) == nil {
			if rc, err := w.epf.SyscallConn(); err == nil {
				w.erc = rc
			}
		}
	}
	return w, nil
}

// closeFDs closes the worker's epoll set and eventfd.
func (w *worker) closeFDs() {
	if w.epf != nil {
		w.epf.Close()
	} else {
		unix.Close(w.epfd)
	}
	unix.Close(w.evfd)
}

// wait returns the next batch of epoll events. It parks the goroutine in
// the runtime's poller until the epoll set is ready and then collects the
// events with a non-blocking epoll_wait; without a pollable descriptor it
// blocks in epoll_wait.
func (w *worker) wait(events []unix.EpollEvent) (int, error) {
	if w.erc != nil {
		var n int
		var werr error
		err := w.erc.Read(func(uintptr) bool {
			for {
				n, werr = unix.EpollWait(w.epfd, events, 0)
				if werr != unix.EINTR {
					return werr != nil || n > 0
				}
			}
		})
		if err != nil {
			return 0, err
		}
		return n, werr
	}
	for {
		n, err := unix.EpollWait(w.epfd, events, -1)
		if err != unix.EINTR {
			return n, err
		}
	}
}

// Register hands c to the poller and returns its handle. c must implement
// syscall.Conn with a socket descriptor (a *net.TCPConn or *net.UnixConn);
// anything buffered on it, such as a bufio.Writer from http.Hijacker, must
// already be flushed. Register schedules a first [Source.Take], so bytes
// queued before the call are written too.
//
// On success the poller owns c: it closes c when the connection finishes
// and then calls src.Closed. The caller must not use c any more. On error
// the caller still owns c and src.Closed is not called; after
// [Poller.Close] the error is [ErrClosed]. If the poller is closed while
// Register runs, src.Closed(nil) may be called before Register returns.
func (p *Poller) Register(c net.Conn, src Source) (*Conn, error) {
	if p.closed.Load() {
		return nil, ErrClosed
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil, fmt.Errorf("netpoll: register: %T is not a syscall.Conn", c)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("netpoll: register: %w", err)
	}
	// Take a duplicate of the descriptor and, once registered, close the
	// net.Conn: the runtime then drops its netFD, addresses and poll
	// descriptor, and a parked connection costs only a Conn.
	fd, derr := -1, error(nil)
	if err := rc.Control(func(s uintptr) { fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return nil, fmt.Errorf("netpoll: register: %w", err)
	}
	if derr != nil {
		return nil, fmt.Errorf("netpoll: register: dup: %w", derr)
	}
	w := p.workers[int(p.next.Add(1)-1)%len(p.workers)]
	cn := &Conn{w: w, src: src, fd: int32(fd)}

	w.mu.Lock()
	if w.stopping {
		w.mu.Unlock()
		unix.Close(fd)
		return nil, ErrClosed
	}
	for {
		w.lastKey++
		if _, used := w.conns[w.lastKey]; w.lastKey != wakeupKey && !used {
			break
		}
	}
	cn.key = w.lastKey
	// epoll_ctl runs under mu so that it cannot race with the worker
	// closing its epoll set.
	ev := unix.EpollEvent{Events: connEvents, Fd: int32(cn.key)}
	if err := unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		w.mu.Unlock()
		unix.Close(fd)
		return nil, fmt.Errorf("netpoll: register: epoll_ctl: %w", err)
	}
	w.conns[cn.key] = cn
	p.n.Add(1)
	w.mu.Unlock()
	_ = c.Close() // the duplicate keeps the socket open

	cn.Wake()
	return cn, nil
}

// Written returns how many bytes the poller's sockets have accepted.
func (p *Poller) Written() uint64 {
	var n uint64
	for _, w := range p.workers {
		n += w.written.Load()
	}
	return n
}

// Len returns the number of registered connections that are not finished
// yet.
func (p *Poller) Len() int { return int(p.n.Load()) }

// Close closes every registered connection, calling each Source's Closed
// with a nil error, stops the writer goroutines and waits for them. Bytes
// not yet written are dropped. Register fails with [ErrClosed] afterwards;
// Wake and Conn.Close do nothing. Close is idempotent and always returns
// nil. It must not be called from a [Source] method, which runs on a worker
// that Close waits for.
func (p *Poller) Close() error {
	if !p.closed.CompareAndSwap(false, true) {
		p.wg.Wait()
		return nil
	}
	close(p.stop)
	for _, w := range p.workers {
		w.mu.Lock()
		w.stopping = true
		w.signal()
		w.mu.Unlock()
	}
	p.wg.Wait()
	return nil
}

// Wake tells the poller that the Source has new pending bytes: the
// connection's writer calls Take and writes the result soon. Wakes that
// arrive before the writer gets to the connection are coalesced into one
// Take. If the socket is full, the Take waits until the remainder is
// written. Wake never blocks and may be called from any goroutine,
// including from within [Source.Take] and [Source.Closed].
func (c *Conn) Wake() {
	if c.done.Load() || !c.queued.CompareAndSwap(false, true) {
		return
	}
	c.w.enqueue(c)
}

// Close asks the writer to finish the connection: nothing more is written,
// the socket is closed and the Source's Closed is called with a nil error,
// unless the connection already finished for another reason. Close does
// not wait for this; it is idempotent and may be called from any
// goroutine, including from within [Source.Closed].
func (c *Conn) Close() {
	if c.done.Load() || !c.closing.CompareAndSwap(false, true) {
		return
	}
	// The worker clears queued before it looks at closing, so either this
	// CompareAndSwap succeeds or a pass that will see closing is pending.
	if c.queued.CompareAndSwap(false, true) {
		c.w.enqueue(c)
	}
}

// Finish asks the writer to write everything the Source has pending (one
// more Take), then to finish the connection as [Conn.Close] does: the
// socket is closed and the Source's Closed is called with a nil error. A
// graceful close, for ending a stream after its last complete event. Finish
// never blocks; it is idempotent and may be called from any goroutine.
func (c *Conn) Finish() {
	if c.done.Load() || !c.ending.CompareAndSwap(false, true) {
		return
	}
	c.Wake() // or a pass already queued sees ending: it clears queued before it looks

}

// enqueue adds c to the dirty list and wakes the worker if the list was
// empty.
func (w *worker) enqueue(c *Conn) {
	w.mu.Lock()
	if w.stopping {
		w.mu.Unlock()
		return
	}
	w.dirty = append(w.dirty, c)
	if len(w.dirty) == 1 {
		w.signal()
	}
	w.mu.Unlock()
}

// signal writes the eventfd. The caller holds mu and has checked (or is
// setting) stopping, so evfd is still open: the worker closes it only after
// it has seen stopping.
func (w *worker) signal() {
	for {
		_, err := unix.Write(w.evfd, one[:])
		if err != unix.EINTR {
			// EAGAIN means the counter is saturated: the worker is
			// already due to wake up.
			return
		}
	}
}

// run is the worker goroutine's loop.
func (w *worker) run() {
	events := make([]unix.EpollEvent, maxEvents)
	var err error
	for {
		var n int
		n, err = w.wait(events)
		if err != nil {
			err = fmt.Errorf("netpoll: epoll_wait: %w", err)
			w.p.log.Error("netpoll: worker stopped", "err", err)
			break
		}
		w.loops.Add(1)
		wakeup := false
		for i := range events[:n] {
			ev := &events[i]
			if ev.Fd == wakeupKey {
				wakeup = true
				continue
			}
			w.mu.Lock()
			c := w.conns[uint32(ev.Fd)]
			w.mu.Unlock()
			if c != nil {
				w.handle(c, ev.Events)
			}
		}
		if wakeup && w.wakeup() {
			break
		}
	}
	w.shutdown(err)
}

// wakeup drains the eventfd and processes the dirty list. It reports
// whether the worker must stop.
func (w *worker) wakeup() bool {
	var buf [8]byte
	for {
		_, err := unix.Read(w.evfd, buf[:])
		if err != unix.EINTR {
			break
		}
	}
	w.mu.Lock()
	list := w.dirty
	w.dirty = w.spare
	stopping := w.stopping
	w.mu.Unlock()
	if stopping {
		return true
	}
	if w.sweepDue.Swap(false) {
		w.sweep()
	}
	for _, c := range list {
		// Clear queued first: a Wake from now on queues c again.
		c.queued.Store(false)
		switch {
		case c.done.Load():
		case c.closing.Load():
			w.finish(c, nil)
		case c.pending != nil:
			// Waiting for EPOLLOUT, which takes again after the remainder.
		case c.ending.Load():
			w.flush(c) // finishes c once it is written; no batching
		case w.ring != nil:
			w.queueSend(c)
		default:
			w.flush(c)
		}
	}
	if w.ring != nil {
		w.submit()
		clear(w.bufs)
		if cap(w.bufs) <= maxKeepBufs {
			w.bufs = w.bufs[:0]
		} else {
			w.bufs = nil
		}
	}
	clear(list)
	w.spare = list[:0]
	return false
}

// handle processes the epoll events of c.
func (w *worker) handle(c *Conn, events uint32) {
	if c.done.Load() {
		return
	}
	if c.closing.Load() {
		w.finish(c, nil)
		return
	}
	if events&unix.EPOLLERR != 0 {
		err := ErrPeerClosed
		if errno, gerr := unix.GetsockoptInt(int(c.fd), unix.SOL_SOCKET, unix.SO_ERROR); gerr == nil && errno != 0 {
			err = fmt.Errorf("netpoll: socket: %w", syscall.Errno(errno))
		}
		w.finish(c, err)
		return
	}
	if events&(unix.EPOLLHUP|unix.EPOLLRDHUP) != 0 {
		w.finish(c, ErrPeerClosed)
		return
	}
	if events&unix.EPOLLIN != 0 {
		if err := w.discardInput(c); err != nil {
			w.finish(c, err)
			return
		}
	}
	if events&unix.EPOLLOUT != 0 && c.pending != nil {
		rest, err := w.write(c, c.pending)
		switch {
		case err != nil:
			w.finish(c, err)
		case len(rest) > 0:
			c.pending = rest
		default:
			c.pending = nil
			w.flush(c)
		}
	}
}

// discardInput reads and drops whatever the peer sent. It returns
// ErrPeerClosed at end of file.
func (w *worker) discardInput(c *Conn) error {
	for {
		n, err := unix.Read(int(c.fd), w.discard)
		switch {
		case err == unix.EINTR:
		case err == unix.EAGAIN:
			return nil
		case err != nil:
			return fmt.Errorf("netpoll: read: %w", err)
		case n == 0:
			return ErrPeerClosed
		}
	}
}

// flush takes the pending bytes of c and writes them, keeping what the
// socket does not accept.
func (w *worker) flush(c *Conn) {
	bufs := c.src.Take(w.bufs[:0])
	if len(bufs) > 0 {
		w.writeTaken(c, bufs)
		clear(bufs) // drop references to the shared buffers
		if cap(bufs) <= maxKeepBufs {
			w.bufs = bufs[:0]
		}
	}
	if c.ending.Load() && c.pending == nil && !c.done.Load() {
		w.finish(c, nil) // Finish: everything is written
	}
}

// writeTaken writes bufs, which c's Source handed over, and keeps what the
// socket does not accept as c's remainder. Bufs may be scratch space.
func (w *worker) writeTaken(c *Conn, bufs [][]byte) {
	rest, err := w.write(c, bufs)
	if err != nil {
		w.finish(c, err)
		return
	}
	if len(rest) > 0 {
		// rest aliases bufs: copy the headers (not the bytes).
		c.pending = append([][]byte(nil), rest...)
		if w.p.writeTimeout > 0 {
			c.blocked = time.Now().UnixNano()
			if !c.stalled {
				c.stalled = true
				w.stalled = append(w.stalled, c)
				w.nstalled.Store(int32(len(w.stalled)))
			}
		}
	}
}

// write writes bufs to c with non-blocking vectored sends until they are all
// written or the socket is full. It returns the unwritten rest, a subslice
// of bufs whose first element may be resliced.
func (w *worker) write(c *Conn, bufs [][]byte) ([][]byte, error) {
	for len(bufs) > 0 {
		iov := w.iov[:0]
		for _, b := range bufs {
			if len(iov) == maxIovecs {
				break
			}
			if len(b) > 0 {
				v := unix.Iovec{Base: unsafe.SliceData(b)}
				v.SetLen(len(b))
				iov = append(iov, v)
			}
		}
		if len(iov) == 0 {
			return nil, nil
		}
		n, err := w.sendmsg(int(c.fd), iov)
		clear(iov) // don't keep pointers into the shared buffers
		if err == unix.EAGAIN {
			return bufs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("netpoll: write: %w", err)
		}
		w.written.Add(uint64(n))
		bufs = advance(bufs, n)
	}
	return nil, nil
}

// advance drops the first n bytes of bufs, and the empty buffers that
// follow them.
func advance(bufs [][]byte, n int) [][]byte {
	for n > 0 && len(bufs) > 0 {
		if n < len(bufs[0]) {
			bufs[0] = bufs[0][n:]
			break
		}
		n -= len(bufs[0])
		bufs = bufs[1:]
	}
	for len(bufs) > 0 && len(bufs[0]) == 0 {
		bufs = bufs[1:]
	}
	return bufs
}

// sendmsg is writev with MSG_NOSIGNAL, so a reset peer yields EPIPE rather
// than a SIGPIPE, and MSG_DONTWAIT. It retries on EINTR.
func (w *worker) sendmsg(fd int, iov []unix.Iovec) (int, error) {
	w.msg.Iov = &iov[0]
	w.msg.SetIovlen(len(iov))
	defer func() { w.msg.Iov = nil }()
	for {
		n, _, errno := unix.Syscall(unix.SYS_SENDMSG, uintptr(fd), uintptr(unsafe.Pointer(&w.msg)), unix.MSG_NOSIGNAL|unix.MSG_DONTWAIT)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return 0, errno
		}
		return int(n), nil
	}
}

// finish removes c from the epoll set, closes its socket and reports err to
// its Source.
func (w *worker) finish(c *Conn, err error) {
	if c.done.Swap(true) {
		return
	}
	w.mu.Lock()
	delete(w.conns, c.key)
	// Deleting before closing keeps the epoll set exact even if the
	// runtime still holds a reference to the descriptor.
	_ = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, int(c.fd), nil)
	w.mu.Unlock()
	c.pending = nil
	if cerr := unix.Close(int(c.fd)); cerr != nil && err == nil {
		w.p.log.Debug("netpoll: close", "err", cerr)
	}
	w.p.n.Add(-1)
	c.src.Closed(err)
}

// shutdown finishes every connection of the worker and releases its
// descriptors. Err is passed to the Sources (nil on Poller.Close).
func (w *worker) shutdown(err error) {
	w.mu.Lock()
	w.stopping = true // also when epoll_wait failed: refuse new work
	conns := make([]*Conn, 0, len(w.conns))
	for _, c := range w.conns {
		conns = append(conns, c)
	}
	w.dirty = nil
	w.mu.Unlock()
	for _, c := range conns {
		w.finish(c, err)
	}
	w.mu.Lock()
	w.closeFDs()
	w.mu.Unlock()
	if w.ring != nil {
		w.ring.Close()
		w.ring = nil
	}
}
