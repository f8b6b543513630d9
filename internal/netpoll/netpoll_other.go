//go:build !linux

package netpoll

import "net"

// Poller is a pool of writer goroutines for parked connections. On this
// operating system it cannot be created: [New] returns [ErrUnsupported].
type Poller struct{}

// Conn is a connection registered with a [Poller].
type Conn struct{}

// New returns [ErrUnsupported] on this operating system.
func New(cfg Config) (*Poller, error) { return nil, ErrUnsupported }

// Register returns [ErrUnsupported] on this operating system.
func (p *Poller) Register(c net.Conn, src Source) (*Conn, error) { return nil, ErrUnsupported }

// Close does nothing on this operating system.
func (p *Poller) Close() error { return nil }

// Len returns zero on this operating system.
func (p *Poller) Len() int { return 0 }

// Wake does nothing on this operating system.
func (c *Conn) Wake() {}

// Close does nothing on this operating system.
func (c *Conn) Close() {}

// Finish does nothing on this operating system.
func (c *Conn) Finish() {}

// Written returns zero on this operating system.
func (p *Poller) Written() uint64 { return 0 }
