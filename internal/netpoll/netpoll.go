package netpoll

import (
	"errors"
	"log/slog"
	"time"
)

// Source is the producer side of one connection; the broker's subscriber
// implements it.
type Source interface {
	// Take appends the bytes pending for the connection to bufs and returns
	// it; it returns bufs unchanged when nothing is pending. Each appended
	// element is an immutable slice, possibly shared with other
	// connections, which the poller never modifies. Take is called only
	// from the connection's writer goroutine, never concurrently for one
	// connection, and never while an earlier Take's bytes are still
	// unwritten.
	Take(bufs [][]byte) [][]byte

	// Closed is called exactly once when the connection is finished, after
	// its socket has been closed. Err is nil after [Conn.Close] or
	// [Poller.Close], otherwise the reason: [ErrPeerClosed] or a wrapped
	// read, write or socket error. Closed is called from a writer
	// goroutine with no lock held, so it may call [Conn.Close] or
	// [Conn.Wake], but it must not block.
	Closed(err error)
}

// Config configures a [Poller]. The zero value is ready to use.
type Config struct {
	// Workers is the number of writer goroutines, each with its own epoll
	// set. Zero means runtime.GOMAXPROCS(0).
	Workers int

	// IOUring makes each worker batch the sends of one pass over its
	// woken connections into a single io_uring_enter system call instead
	// of one sendmsg per connection. When the kernel refuses io_uring
	// (EPERM or ENOSYS in many containers, or io_uring_disabled) the
	// poller logs it and uses sendmsg. False means sendmsg.
	IOUring bool

	// Logger receives unexpected errors of the writer goroutines. Nil
	// means a logger that discards everything.
	Logger *slog.Logger

	// WriteTimeout cuts a connection whose socket has refused bytes for
	// this long: the clock starts when a send first leaves a remainder
	// (the peer stopped reading and the kernel's buffers are full) and
	// stops when the remainder is written. Such a connection finishes with
	// [ErrWriteTimeout]. Zero or negative means no timeout. The check runs
	// every WriteTimeout/8, so a connection is cut between WriteTimeout and
	// 1.125×WriteTimeout after it blocked.
	WriteTimeout time.Duration
}

// ErrUnsupported is returned by [New] on operating systems where the poller
// is not implemented.
var ErrUnsupported = errors.New("netpoll: unsupported")

// ErrClosed is returned by [Poller.Register] after [Poller.Close].
var ErrClosed = errors.New("netpoll: poller closed")

// ErrWriteTimeout is passed to [Source.Closed] when the socket refused
// bytes for longer than [Config.WriteTimeout].
var ErrWriteTimeout = errors.New("netpoll: write timed out: the peer stopped reading")

// ErrPeerClosed is passed to [Source.Closed] when the peer closed or shut
// down its side of the connection.
var ErrPeerClosed = errors.New("netpoll: peer closed the connection")
