//go:build !linux

package loadgen

import "syscall"

// newReaderPool returns the goroutine-per-connection reader: epoll is
// Linux only.
func newReaderPool(_ Config, rs *readers) (readerPool, error) {
	return newGoroutinePool(rs), nil
}

// readerCount is the number of sinks the pool needs.
func readerCount(Config) int { return 1 }

// bindNoPort is nil: IP_BIND_ADDRESS_NO_PORT is Linux only.
var bindNoPort func(network, address string, c syscall.RawConn) error

// raiseFileLimit leaves the limit alone; the dial errors tell.
func raiseFileLimit(int) error { return nil }
