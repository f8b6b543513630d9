//go:build unix

package loadgen

import (
	"net"
	"syscall"
)

// connAlive reports whether the server has neither closed nor written to
// the idle connection nc: a peek at its socket, which does not block (Go's
// sockets are non-blocking) and reads nothing.
func connAlive(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := true
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		// EAGAIN: nothing to read, the connection is fine. Zero bytes
		// (EOF), unexpected bytes or another error: it is not.
		_, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK)
		alive = rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK
		return true
	})
	return alive && err == nil
}
