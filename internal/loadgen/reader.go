package loadgen

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// readerPool owns the subscriber connections once their response head is
// read, reads them and feeds their streams to sinks.
type readerPool interface {
	// add takes ownership of nc, whose stream state is s.
	add(nc net.Conn, s stream) error
	// stop stops the readers, closes every connection and waits.
	stop()
}

// readers is what the reader pools share with the run: one sink per
// reader goroutine (or one for all, guarded) and connection counters.
type readers struct {
	sinks       []*sink
	open        atomic.Int64 // connections held
	disconnects atomic.Int64 // connections lost before stop
}

func newReaders(n int, measureFrom *atomic.Uint64) *readers {
	rs := &readers{sinks: make([]*sink, n)}
	for i := range rs.sinks {
		rs.sinks[i] = &sink{measureFrom: measureFrom, hist: newHist()}
	}
	return rs
}

// sink accumulates deliveries for one reader. Apart from the atomic
// counters, its fields belong to the reader that owns it until the pool
// is stopped.
type sink struct {
	measureFrom *atomic.Uint64 // first measured sequence number; 0 while warming up

	received atomic.Uint64 // distinct measured deliveries
	all      atomic.Uint64 // every delivery found, warmup and duplicates included

	now       int64  // receipt time of the bytes being fed, Unix ns
	lastNs    int64  // receipt time of the last measured delivery
	userClock uint64 // reads timed by this process's clock, not the kernel's
	dups      uint64
	late      uint64
	hist      *hdrhistogram.Histogram // latency in µs
}

func (k *sink) deliver(s *stream, seq uint64, sentNs int64) {
	k.all.Add(1)
	dup, late := s.observe(seq)
	mf := k.measureFrom.Load()
	if mf == 0 || seq < mf {
		return
	}
	if dup {
		k.dups++
		return
	}
	if late {
		k.late++
	}
	k.received.Add(1)
	k.lastNs = k.now
	record(k.hist, (k.now-sentNs)/1000)
}

// discard drops deliveries; it parses the bytes read with a response head.
type discard struct{}

func (discard) deliver(*stream, uint64, int64) {}

// goroutinePool reads each connection in its own goroutine. It is the
// reader on systems without epoll, and heavier: a goroutine and a buffer
// per connection.
type goroutinePool struct {
	rs *readers
	wg sync.WaitGroup

	mu       sync.Mutex // guards the fields below and rs.sinks[0]
	conns    map[net.Conn]struct{}
	stopping bool
}

func newGoroutinePool(rs *readers) *goroutinePool {
	return &goroutinePool{rs: rs, conns: make(map[net.Conn]struct{})}
}

func (p *goroutinePool) add(nc net.Conn, s stream) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopping {
		nc.Close()
		return net.ErrClosed
	}
	p.conns[nc] = struct{}{}
	p.rs.open.Add(1)
	p.wg.Go(func() { p.read(nc, &s) })
	return nil
}

func (p *goroutinePool) read(nc net.Conn, s *stream) {
	buf := make([]byte, 4096)
	k := p.rs.sinks[0]
	for {
		n, err := nc.Read(buf)
		if n > 0 {
			p.mu.Lock()
			k.now = time.Now().UnixNano()
			k.userClock++
			ferr := s.feed(buf[:n], k)
			p.mu.Unlock()
			if ferr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.stopping {
		p.rs.disconnects.Add(1)
	}
	p.rs.open.Add(-1)
	delete(p.conns, nc)
	nc.Close()
}

func (p *goroutinePool) stop() {
	p.mu.Lock()
	p.stopping = true
	for nc := range p.conns {
		nc.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
