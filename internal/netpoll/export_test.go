//go:build linux

package netpoll

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Loops returns how many times the poller's workers returned from
// epoll_wait, so tests can check that an idle or blocked poller does not
// spin.
func (p *Poller) Loops() uint64 {
	var n uint64
	for _, w := range p.workers {
		n += w.loops.Load()
	}
	return n
}

// ConnSize is the size of the poller's per-connection struct.
const ConnSize = unsafe.Sizeof(Conn{})

// URing reports whether the poller's workers send through io_uring.
func (p *Poller) URing() bool {
	for _, w := range p.workers {
		if w.ring == nil {
			return false
		}
	}
	return true
}

// RuntimePolled reports whether every worker waits in the runtime's poller
// rather than in a blocking epoll_wait.
func (p *Poller) RuntimePolled() bool {
	for _, w := range p.workers {
		if w.erc == nil {
			return false
		}
	}
	return true
}

// BlockInEpollWait makes pollers created until the returned function is
// called wait in a blocking epoll_wait, as on a runtime that cannot poll an
// epoll descriptor.
func BlockInEpollWait() (restore func()) {
	runtimePoll = false
	return func() { runtimePoll = true }
}

// RefuseURing makes io_uring setup fail with err until the returned
// function is called.
func RefuseURing(err error) (restore func()) {
	setupURing = func() (*uring, error) { return nil, err }
	return func() { setupURing = newURing }
}

// BreakURing replaces each worker's io_uring descriptor with /dev/null, so
// that the next io_uring_enter fails as a broken ring would. Call it only
// while the poller is idle.
func (p *Poller) BreakURing() error {
	for _, w := range p.workers {
		if w.ring == nil {
			continue
		}
		null, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		err = unix.Dup3(null, w.ring.fd, unix.O_CLOEXEC)
		unix.Close(null)
		if err != nil {
			return err
		}
	}
	return nil
}
