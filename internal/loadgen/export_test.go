package loadgen

import (
	"context"
	"sync/atomic"
)

// Mark is a marker found by the stream parser.
type Mark struct {
	Seq    uint64
	SentNs int64
}

type collect struct{ marks []Mark }

func (c *collect) deliver(_ *stream, seq uint64, sentNs int64) {
	c.marks = append(c.marks, Mark{seq, sentNs})
}

// ParseStream feeds chunks, in order, to a fresh per-connection parser
// and returns the markers found and the first error.
func ParseStream(chunked bool, chunks [][]byte) ([]Mark, error) {
	var s stream
	if chunked {
		s.body = bodyChunked
	}
	c := &collect{}
	for _, p := range chunks {
		if err := s.feed(p, c); err != nil {
			return c.marks, err
		}
	}
	return c.marks, nil
}

// ErrStreamEnd is errStreamEnd.
var ErrStreamEnd = errStreamEnd

// Observe runs seqs through one connection's ordering window and counts
// duplicates and late arrivals.
func Observe(seqs []uint64) (dups, late int) {
	var s stream
	for _, q := range seqs {
		d, l := s.observe(q)
		if d {
			dups++
		}
		if l {
			late++
		}
	}
	return dups, late
}

// AppendPayload is appendPayload.
var AppendPayload = appendPayload

// UseGoroutineReaders makes Run read with one goroutine per connection.
func UseGoroutineReaders(cfg *Config) { cfg.goroutineReaders = true }

type counter struct{ n int }

func (c *counter) deliver(*stream, uint64, int64) { c.n++ }

// Feeder returns a function that feeds a fresh parser and a function that
// counts the markers it found.
func Feeder(chunked bool) (feed func([]byte) error, count func() int) {
	s := &stream{}
	if chunked {
		s.body = bodyChunked
	}
	c := &counter{}
	return func(p []byte) error { return s.feed(p, c) }, func() int { return c.n }
}

// Poster is the client of one publisher goroutine.
type Poster struct {
	pub *publisher
	p   poster
}

// NewPoster returns the client that one publisher goroutine of a run
// with cfg would use; netHTTP forces the net/http client.
func NewPoster(ctx context.Context, cfg Config, netHTTP bool) (*Poster, error) {
	if cfg.SubURL == "" {
		cfg.SubURL = "http://127.0.0.1/"
	}
	cfg, _, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	pub := newPublisher(cfg, new(atomic.Uint64))
	if netHTTP && pub.raw != nil {
		pub.raw, pub.client = nil, newHTTPClient(cfg)
	}
	return &Poster{pub: pub, p: pub.newPoster(ctx)}, nil
}

// Post publishes one event with the given payload.
func (p *Poster) Post(ctx context.Context, payload []byte) error { return p.p.post(ctx, payload) }

// Close closes the client's connections.
func (p *Poster) Close() {
	p.p.close()
	p.pub.close()
}

// Raw reports whether p is the raw HTTP/1.1 client.
func (p *Poster) Raw() bool { return p.pub.raw != nil }
