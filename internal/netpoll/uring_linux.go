//go:build linux

package netpoll

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The io_uring path batches the sends of one dirty-list pass: each
// connection's Take becomes one IORING_OP_SENDMSG entry, and a single
// io_uring_enter submits them all and collects their results. The sends
// carry MSG_DONTWAIT, so the kernel completes every entry inline (with a
// byte count or -EAGAIN) instead of parking it: when io_uring_enter
// returns, no request is in flight and no memory is still referenced by
// the kernel. What a send leaves unwritten is handled exactly as on the
// sendmsg path.

const (
	uringEntries = 256  // submission queue size; at most this many sends per batch
	uringIovecs  = 4096 // iovecs per batch

	ioringOpSendmsg      = 9
	ioringEnterGetevents = 1 << 0
	ioringFeatSingleMmap = 1 << 0
	ioringSetupSubmitAll = 1 << 7
	ioringOffSqRing      = 0
	ioringOffCqRing      = 0x8000000
	ioringOffSqes        = 0x10000000
)

// uringParams is struct io_uring_params.
type uringParams struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFd uint32
	resv                                                                   [3]uint32
	sqOff                                                                  struct {
		head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
		userAddr                                                        uint64
	}
	cqOff struct {
		head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
		userAddr                                                        uint64
	}
}

// uringSQE is struct io_uring_sqe.
type uringSQE struct {
	opcode      uint8
	flags       uint8
	ioprio      uint16
	fd          int32
	off         uint64
	addr        uint64
	len         uint32
	msgFlags    uint32
	userData    uint64
	bufIndex    uint16
	personality uint16
	spliceFdIn  int32
	addr3       uint64
	_           uint64
}

// uringCQE is struct io_uring_cqe.
type uringCQE struct {
	userData uint64
	res      int32
	flags    uint32
}

// The kernel's layouts, checked at compile time.
var (
	_ [120]byte = [unsafe.Sizeof(uringParams{})]byte{}
	_ [64]byte  = [unsafe.Sizeof(uringSQE{})]byte{}
	_ [16]byte  = [unsafe.Sizeof(uringCQE{})]byte{}
)

// uring is one worker's ring. It is used only by its worker goroutine.
type uring struct {
	fd      int
	sqRing  []byte
	cqRing  []byte
	sqesMem []byte

	sqHead, sqTail *uint32
	sqMask         uint32
	sqArray        []uint32
	sqes           []uringSQE
	cqHead, cqTail *uint32
	cqMask         uint32
	cqes           []uringCQE

	jobs []uringJob
	msgs []unix.Msghdr
	iov  []unix.Iovec
}

// uringJob is one queued send: bufs[start:end] of the worker's scratch.
type uringJob struct {
	c          *Conn
	start, end int
	completed  bool
}

// newURing sets up a ring, or returns the error of io_uring_setup (EPERM,
// ENOSYS, EINVAL...) so that the caller falls back to sendmsg.
func newURing() (*uring, error) {
	var p uringParams
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, uringEntries, uintptr(unsafe.Pointer(&p)), 0)
	if errno != 0 {
		return nil, fmt.Errorf("netpoll: io_uring_setup: %w", errno)
	}
	r := &uring{fd: int(fd)}
	if p.features&ioringFeatSingleMmap == 0 {
		r.Close()
		return nil, fmt.Errorf("netpoll: io_uring: kernel too old (no IORING_FEAT_SINGLE_MMAP)")
	}
	size := max(int(p.sqOff.array+p.sqEntries*4), int(p.cqOff.cqes)+int(p.cqEntries)*int(unsafe.Sizeof(uringCQE{})))
	ring, err := unix.Mmap(r.fd, ioringOffSqRing, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("netpoll: io_uring mmap: %w", err)
	}
	r.sqRing, r.cqRing = ring, ring
	sqes, err := unix.Mmap(r.fd, ioringOffSqes, int(p.sqEntries)*int(unsafe.Sizeof(uringSQE{})), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("netpoll: io_uring mmap: %w", err)
	}
	r.sqesMem = sqes
	base := unsafe.Pointer(&ring[0])
	r.sqHead = (*uint32)(unsafe.Add(base, p.sqOff.head))
	r.sqTail = (*uint32)(unsafe.Add(base, p.sqOff.tail))
	r.sqMask = *(*uint32)(unsafe.Add(base, p.sqOff.ringMask))
	r.sqArray = unsafe.Slice((*uint32)(unsafe.Add(base, p.sqOff.array)), p.sqEntries)
	r.sqes = unsafe.Slice((*uringSQE)(unsafe.Pointer(&sqes[0])), p.sqEntries)
	r.cqHead = (*uint32)(unsafe.Add(base, p.cqOff.head))
	r.cqTail = (*uint32)(unsafe.Add(base, p.cqOff.tail))
	r.cqMask = *(*uint32)(unsafe.Add(base, p.cqOff.ringMask))
	r.cqes = unsafe.Slice((*uringCQE)(unsafe.Add(base, p.cqOff.cqes)), p.cqEntries)
	r.jobs = make([]uringJob, 0, p.sqEntries)
	r.msgs = make([]unix.Msghdr, p.sqEntries)
	r.iov = make([]unix.Iovec, 0, uringIovecs)
	return r, nil
}

// Close unmaps and closes the ring.
func (r *uring) Close() {
	if r.sqesMem != nil {
		unix.Munmap(r.sqesMem)
	}
	if r.sqRing != nil {
		unix.Munmap(r.sqRing)
	}
	unix.Close(r.fd)
}

// queueSend takes the pending bytes of c into the worker's scratch and adds
// a send for them to the batch, submitting the batch first if it is full.
func (w *worker) queueSend(c *Conn) {
	r := w.ring
	start := len(w.bufs)
	w.bufs = c.src.Take(w.bufs)
	need := 0
	for _, b := range w.bufs[start:] {
		if len(b) > 0 {
			need++
		}
	}
	if need == 0 {
		clear(w.bufs[start:])
		w.bufs = w.bufs[:start]
		return
	}
	need = min(need, maxIovecs)
	if len(r.jobs) == cap(r.jobs) || len(r.iov)+need > cap(r.iov) || start >= maxKeepBufs/2 {
		w.submit()
		n := copy(w.bufs, w.bufs[start:])
		clear(w.bufs[n:])
		w.bufs, start = w.bufs[:n], 0
		if w.ring == nil { // the ring failed: back to sendmsg
			w.writeTaken(c, w.bufs)
			clear(w.bufs)
			w.bufs = w.bufs[:0]
			return
		}
	}
	iov0 := len(r.iov)
	for _, b := range w.bufs[start:] {
		if len(r.iov)-iov0 == need {
			break
		}
		if len(b) > 0 {
			v := unix.Iovec{Base: unsafe.SliceData(b)}
			v.SetLen(len(b))
			r.iov = append(r.iov, v)
		}
	}
	i := len(r.jobs)
	msg := &r.msgs[i]
	msg.Iov = &r.iov[iov0]
	msg.SetIovlen(need)
	tail := *r.sqTail // only this goroutine writes the tail
	slot := tail & r.sqMask
	r.sqes[slot] = uringSQE{
		opcode:   ioringOpSendmsg,
		fd:       c.fd,
		addr:     uint64(uintptr(unsafe.Pointer(msg))),
		len:      1,
		msgFlags: unix.MSG_NOSIGNAL | unix.MSG_DONTWAIT,
		userData: uint64(i),
	}
	r.sqArray[slot] = slot
	atomic.StoreUint32(r.sqTail, tail+1)
	r.jobs = append(r.jobs, uringJob{c: c, start: start, end: len(w.bufs)})
}

// submit sends the queued batch, waits for every completion and applies the
// results.
func (w *worker) submit() {
	r := w.ring
	n := len(r.jobs)
	if n == 0 {
		return
	}
	toSubmit := uint32(n)
	done := 0
	for done < n {
		_, _, errno := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), uintptr(toSubmit), uintptr(n-done), ioringEnterGetevents, 0, 0)
		if errno != 0 && errno != unix.EINTR && errno != unix.EAGAIN && errno != unix.EBUSY {
			w.ringFailed(fmt.Errorf("netpoll: io_uring_enter: %w", errno))
			return
		}
		toSubmit = *r.sqTail - atomic.LoadUint32(r.sqHead) // not yet consumed
		head := *r.cqHead
		tail := atomic.LoadUint32(r.cqTail)
		for ; head != tail; head++ {
			cqe := r.cqes[head&r.cqMask]
			job := &r.jobs[cqe.userData]
			job.completed = true
			w.complete(*job, cqe.res)
			done++
		}
		atomic.StoreUint32(r.cqHead, head)
	}
	clear(r.jobs)
	r.jobs = r.jobs[:0]
	clear(r.iov)
	r.iov = r.iov[:0]
	for i := range r.msgs[:n] {
		r.msgs[i].Iov = nil
	}
}

// complete applies the result res of job's send: a byte count or -errno.
func (w *worker) complete(job uringJob, res int32) {
	c := job.c
	if c.done.Load() {
		return
	}
	bufs := w.bufs[job.start:job.end]
	if res < 0 {
		errno := unix.Errno(-res)
		if errno != unix.EAGAIN {
			w.finish(c, fmt.Errorf("netpoll: write: %w", errno))
			return
		}
	} else {
		w.written.Add(uint64(res))
		bufs = advance(bufs, int(res))
	}
	if len(bufs) == 0 {
		return
	}
	// The socket took part of it, or the batch held only the first
	// IOV_MAX buffers: go on with plain sendmsg.
	w.writeTaken(c, bufs)
}

// ringFailed handles an io_uring_enter error, which cannot happen with a
// ring that was set up unless the kernel is out of memory: the ring is
// dropped and the batch's sends that have no completion go through
// sendmsg. Every submitted send completes inline, so none is in flight.
func (w *worker) ringFailed(err error) {
	w.p.log.Warn("netpoll: io_uring disabled, using sendmsg", "err", err)
	r := w.ring
	w.ring = nil
	jobs := r.jobs
	r.Close()
	for _, job := range jobs {
		if !job.completed {
			w.complete(job, 0)
		}
	}
}
