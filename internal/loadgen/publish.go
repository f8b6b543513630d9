package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// schedule hands out sequence numbers and their send times to publishers,
// decides where warmup ends and when publishing stops. It is safe for
// concurrent use.
type schedule struct {
	rate     float64
	start    time.Time
	warmEnd  time.Time
	events   uint64
	duration time.Duration
	mf       *atomic.Uint64 // published: the first measured sequence number

	mu           sync.Mutex
	seq          uint64
	measureFrom  uint64
	measureStart time.Time
	done         bool
}

// next returns the next sequence number, once its time has come, and
// whether it is measured. ok is false when publishing is over.
func (s *schedule) next(ctx context.Context) (seq uint64, measured, ok bool) {
	s.mu.Lock()
	if s.done {
		s.mu.Unlock()
		return 0, false, false
	}
	now := time.Now()
	at := now
	if s.rate > 0 {
		// Slot times follow the schedule; a publisher that fell behind
		// publishes at once, catching up.
		at = s.start.Add(time.Duration(float64(s.seq) * float64(time.Second) / s.rate))
		if at.Before(now) {
			at = now
		}
	}
	if s.measureFrom == 0 && !at.Before(s.warmEnd) {
		s.measureFrom = s.seq + 1
		s.measureStart = at
		s.mf.Store(s.measureFrom)
	}
	if s.measureFrom != 0 {
		if (s.events > 0 && s.seq+1-s.measureFrom >= s.events) ||
			(s.duration > 0 && !at.Before(s.measureStart.Add(s.duration))) {
			s.done = true
			s.mu.Unlock()
			return 0, false, false
		}
	}
	s.seq++
	seq, measured = s.seq, s.measureFrom != 0
	s.mu.Unlock()
	if d := at.Sub(now); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return 0, false, false
		}
	}
	return seq, measured, ctx.Err() == nil
}

// started returns the start of the measured phase, or the zero time.
func (s *schedule) started() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.measureStart
}

// publisher posts events. It is shared by the publisher goroutines of a
// run; each goroutine has its own poster and its own pubStats.
//
// Plain http publish URLs are published by a raw HTTP/1.1 keep-alive
// client per goroutine (rawClient), which costs a fraction of net/http's
// CPU per publish; https URLs, and the rare URLs and headers net/http
// would refuse or rewrite, go through a shared net/http client.
type publisher struct {
	raw     *rawTarget   // the raw client's request, or nil
	client  *http.Client // the net/http client when raw is nil
	url     string
	header  http.Header
	prefix  string // the body template around the first placeholder
	suffix  string // the rest, placeholders still in it
	size    int
	batch   int            // Config.PubBatch: events per request
	line    [][]byte       // with batch > 1: the body template split at every placeholder
	sent    *atomic.Uint64 // publishes done, any outcome
	errOnce sync.Once
	err     string
}

// pubStats are the counts and publish latencies of one publisher goroutine.
type pubStats struct {
	ok, failed, warm uint64
	hist             *hdrhistogram.Histogram
}

// newPublisher returns the publisher of a run with cfg; sent counts the
// publishes done.
func newPublisher(cfg Config, sent *atomic.Uint64) *publisher {
	h := http.Header{"User-Agent": {"herald-bench"}}
	for _, src := range []http.Header{cfg.Header, cfg.PubHeader} {
		for k, v := range src {
			h[http.CanonicalHeaderKey(k)] = v
		}
	}
	if h.Get("Content-Type") == "" {
		ct := "application/x-www-form-urlencoded"
		if t := strings.TrimSpace(cfg.PubBody); strings.HasPrefix(t, "{") || strings.HasPrefix(t, "[") {
			ct = "application/json"
			if cfg.PubBatch > 1 {
				ct = "application/x-ndjson"
			}
		}
		h.Set("Content-Type", ct)
	}
	var line [][]byte
	if cfg.PubBatch > 1 {
		// One line per event, the whole body posted as the payload of
		// the template "{{payload}}".
		for part := range strings.SplitSeq(cfg.PubBody, PayloadPlaceholder) {
			line = append(line, []byte(part))
		}
		cfg.PubBody = PayloadPlaceholder
	}
	prefix, suffix, _ := strings.Cut(cfg.PubBody, PayloadPlaceholder)
	p := &publisher{
		raw:    newRawTarget(cfg, h),
		url:    cfg.PubURL,
		header: h,
		prefix: prefix,
		suffix: suffix,
		size:   cfg.Size,
		batch:  max(cfg.PubBatch, 1),
		line:   line,
		sent:   sent,
	}
	if p.raw == nil {
		p.client = newHTTPClient(cfg)
	}
	return p
}

// newHTTPClient returns the net/http client shared by the publishers.
func newHTTPClient(cfg Config) *http.Client {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: cfg.PublishTimeout}).DialContext,
		MaxIdleConns:        cfg.Publishers,
		MaxIdleConnsPerHost: cfg.Publishers,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &http.Client{Transport: tr, Timeout: cfg.PublishTimeout}
}

// poster publishes the events of one publisher goroutine.
type poster interface {
	// post publishes one event with the given payload.
	post(ctx context.Context, payload []byte) error
	// close releases the poster's connection, if it has its own.
	close()
}

// newPoster returns the poster of one publisher goroutine: a raw client
// with its own connection, or the shared net/http client.
func (p *publisher) newPoster(ctx context.Context) poster {
	if p.raw != nil {
		return p.raw.newClient(ctx)
	}
	return httpPoster{p}
}

// httpPoster posts through the publisher's shared net/http client.
type httpPoster struct{ p *publisher }

// post publishes one event through net/http.
func (h httpPoster) post(ctx context.Context, payload []byte) error {
	return h.p.postHTTP(ctx, payload)
}

// close does nothing: the publisher closes the shared client's connections.
func (httpPoster) close() {}

// run publishes until the schedule ends.
func (p *publisher) run(ctx context.Context, sched *schedule, st *pubStats) {
	ps := p.newPoster(ctx)
	defer ps.close()
	var payload, ev []byte
	for {
		// One event, or with batch > 1 up to batch events, one line each.
		var t0 time.Time
		var n, measured uint64
		payload = payload[:0]
		for n < uint64(p.batch) {
			seq, m, ok := sched.next(ctx)
			if !ok {
				break
			}
			now := time.Now()
			if n == 0 {
				t0 = now
			}
			n++
			if m {
				measured++
			}
			if p.batch == 1 {
				payload = appendPayload(payload, seq, now.UnixNano(), p.size)
				break
			}
			ev = appendPayload(ev[:0], seq, now.UnixNano(), p.size)
			for i, part := range p.line {
				if i > 0 {
					payload = append(payload, ev...)
				}
				payload = append(payload, part...)
			}
			payload = append(payload, '\n')
		}
		if n == 0 {
			return
		}
		err := ps.post(ctx, payload)
		lat := time.Since(t0)
		p.sent.Add(n)
		st.warm += n - measured
		switch {
		case measured == 0:
		case err != nil:
			st.failed += measured
			p.errOnce.Do(func() { p.err = err.Error() })
		default:
			st.ok += measured
			record(st.hist, lat.Microseconds())
		}
		if n < uint64(p.batch) {
			return // the schedule is over
		}
	}
}

// postHTTP publishes one event through net/http.
func (p *publisher) postHTTP(ctx context.Context, payload []byte) error {
	var body bytes.Buffer
	body.Grow(len(p.prefix) + len(p.suffix) + len(payload))
	body.WriteString(p.prefix)
	body.Write(payload)
	body.WriteString(strings.ReplaceAll(p.suffix, PayloadPlaceholder, string(payload)))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, &body)
	if err != nil {
		return fmt.Errorf("loadgen: publish: %w", err)
	}
	req.Header = p.header.Clone()
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("loadgen: publish: %w", err)
	}
	_, cerr := io.Copy(io.Discard, io.LimitReader(resp.Body, maxRespBody))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("loadgen: publish: status %s", resp.Status)
	}
	if cerr != nil {
		return fmt.Errorf("loadgen: publish: read response: %w", cerr)
	}
	return nil
}

// close closes the shared net/http client's idle connections.
func (p *publisher) close() {
	if p.client != nil {
		p.client.CloseIdleConnections()
	}
}

// appendPayload appends the payload of event seq sent at sentNs: the
// marker ~seq~sentNs~ padded with 'x' to size bytes. Every byte is an
// unreserved URL character, so the payload needs no escaping in a query,
// a form body or a JSON string.
func appendPayload(b []byte, seq uint64, sentNs int64, size int) []byte {
	start := len(b)
	b = append(b, '~')
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, '~')
	b = strconv.AppendInt(b, sentNs, 10)
	b = append(b, '~')
	for len(b)-start < size {
		b = append(b, 'x')
	}
	return b
}
