package loadgen

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// PayloadPlaceholder is replaced in [Config.PubBody] by each event's payload.
const PayloadPlaceholder = "{{payload}}"

// ConnPlaceholder is replaced in an idle run's [Config.SubURL] by each
// connection's number (0, 1, ...): ?topic=t-{{n}} gives every subscriber
// its own topic.
const ConnPlaceholder = "{{n}}"

// DefaultPubBody is the publish body used when [Config.PubBody] is empty: a
// Mercure publish form for the topic "bench".
const DefaultPubBody = "topic=bench&data=" + PayloadPlaceholder

// Config describes one benchmark run. It is passed by value to [Run]; a
// zero field means the documented default.
type Config struct {
	// SubURL is the subscribe URL, for example
	// http://127.0.0.1:8080/.well-known/mercure?topic=bench. Only http URLs
	// are supported: subscribers speak raw HTTP/1.1. Required. In idle runs
	// (no PubURL) it may contain ConnPlaceholder, replaced by each
	// connection's number, to spread the subscribers over many topics.
	SubURL string

	// PubURL is the publish URL, for example
	// http://127.0.0.1:8080/.well-known/mercure. Empty means idle mode: the
	// subscribers connect, stay for Duration and nothing is published, which
	// measures the memory of idle subscribers.
	PubURL string

	// SubURLs are more subscribe URLs, to spread the subscribers over
	// several hubs of a cluster: connection i uses the (i mod n)-th of
	// SubURL followed by SubURLs (n URLs). The same rules as SubURL apply
	// to each. Nil means SubURL only.
	SubURLs []string

	// PubURLs are more publish URLs: publisher goroutine j uses the
	// (j mod n)-th of PubURL followed by PubURLs (n URLs), so that the
	// publishes are spread over several hubs. Set PubURL too. Nil means
	// PubURL only.
	PubURLs []string

	// PubBody is the publish request body; every PayloadPlaceholder in it is
	// replaced by the event's payload. Empty means DefaultPubBody.
	PubBody string

	// PubBatch is the number of events sent in one publish request: with
	// more than 1, the body holds PubBody once per event, each followed by
	// a line feed (newline-delimited, as Herald's batch publish reads
	// them; a PubBody that starts with '{' is then sent as
	// application/x-ndjson unless a Content-Type header is given). Every
	// event of a request that gets a 2xx answer counts as published; an
	// event the hub refused inside a batch shows as loss. Latency is
	// measured for each event from its own send time. Zero means 1.
	PubBatch int

	// Header is sent with both the subscribe and the publish requests.
	Header http.Header
	// PubHeader is sent with publish requests, after Header.
	PubHeader http.Header
	// SubHeader is sent with subscribe requests, after Header.
	SubHeader http.Header

	// Subscribers is the number of subscriber connections. Zero means 1.
	Subscribers int

	// Rate is the number of events published per second. Zero means flat
	// out: every publisher publishes as fast as the hub answers.
	Rate float64

	// Publishers is the number of concurrent publishers. Zero means 1.
	// With more than one, the hub may order concurrent publishes
	// differently from their sequence numbers, which shows as out-of-order
	// deliveries; ordering is measured exactly only with one publisher.
	Publishers int

	// Duration is how long the measured publish phase lasts (after Warmup);
	// in idle mode, how long the subscribers stay connected. Zero means 10s
	// unless Events is set (then the phase lasts until Events are published),
	// and zero in idle mode.
	Duration time.Duration

	// Events is the number of measured events to publish (after Warmup).
	// Zero means no limit: Duration decides.
	Events int

	// Warmup is how long events are published before measuring starts;
	// they are delivered but not counted. Zero means no warmup.
	Warmup time.Duration

	// Size is the payload size in bytes. A payload is never shorter than
	// its marker (~seq~time~, about 25 bytes). Zero means 100.
	Size int

	// ConnectRate is the number of new subscriber connections per second.
	// Zero means no pacing: as fast as ConnectConcurrency dials allow.
	ConnectRate float64

	// ConnectConcurrency is the number of connections being opened at once.
	// Zero means 64.
	ConnectConcurrency int

	// ConnectTimeout bounds the dial and the response head of one
	// subscriber connection. Zero means 10s.
	ConnectTimeout time.Duration

	// PublishTimeout bounds one publish request. Zero means 10s.
	PublishTimeout time.Duration

	// DrainTimeout is how long to wait after the last publish for the
	// outstanding deliveries. Zero means 5s.
	DrainTimeout time.Duration

	// Settle is how long to wait after connecting before reading the
	// server's memory. Zero means 1s when PID is set, otherwise none.
	Settle time.Duration

	// SourceIPs are local addresses that subscriber connections are bound
	// to, in turn, so that more connections than one address's ephemeral
	// ports fit. Empty means the system chooses. See [ParseSourceIPs].
	SourceIPs []netip.Addr

	// PID is the server's process id. When set (Linux), the server's
	// resident memory and CPU time are read from /proc. Zero means unknown.
	PID int

	// Readers is the number of reader goroutines (each owning one epoll
	// instance on Linux). Zero means GOMAXPROCS, at most 8.
	Readers int

	// ReadPause is how long a reader pauses after a wakeup that found few
	// ready connections (Linux), so that it reads more per wakeup: it
	// saves much of the generator's CPU when deliveries trickle in, and
	// costs no accuracy because receipts are timed by the kernel's receive
	// timestamps. Zero means 200µs; negative means no pause.
	ReadPause time.Duration

	// Progress, when not nil, is called every ProgressInterval from a
	// goroutine owned by Run, and not after Run returns.
	Progress func(Progress)

	// ProgressInterval is the interval between Progress calls. Zero means 1s.
	ProgressInterval time.Duration

	// goroutineReaders selects the one-goroutine-per-connection reader on
	// every system (for tests).
	goroutineReaders bool
}

// Progress is a snapshot of a running benchmark passed to [Config.Progress].
type Progress struct {
	// Phase is "connect", "settle", "warmup", "publish", "drain" or "idle".
	Phase string
	// Elapsed is the time since Run started.
	Elapsed time.Duration
	// Connected is the number of subscriber connections open.
	Connected int
	// ConnectErrors is the number of connections that could not be opened.
	ConnectErrors int
	// Disconnects is the number of connections lost after connecting.
	Disconnects int
	// Published is the number of events published so far (including warmup).
	Published uint64
	// Received is the number of deliveries so far (including warmup).
	Received uint64
	// ReceivedPerSec is the delivery rate since the previous Progress.
	ReceivedPerSec float64
}

// normalize validates cfg and fills in the defaults.
func (cfg Config) normalize() (Config, *url.URL, error) {
	var u *url.URL
	for i, s := range append([]string{cfg.SubURL}, cfg.SubURLs...) {
		su, err := url.Parse(s)
		if err != nil {
			return cfg, nil, fmt.Errorf("loadgen: subscribe url: %w", err)
		}
		if su.Scheme != "http" {
			return cfg, nil, fmt.Errorf("loadgen: subscribe url %q: scheme must be http", s)
		}
		if su.Host == "" {
			return cfg, nil, fmt.Errorf("loadgen: subscribe url %q: no host", s)
		}
		if strings.Contains(s, ConnPlaceholder) && cfg.PubURL != "" {
			return cfg, nil, fmt.Errorf("loadgen: subscribe url %q: %s (one topic per connection) is for idle runs only", s, ConnPlaceholder)
		}
		if i == 0 {
			u = su
		}
	}
	if cfg.PubURL == "" && len(cfg.PubURLs) > 0 {
		return cfg, nil, errors.New("loadgen: more publish urls without a first one (PubURL)")
	}
	for _, s := range append([]string{cfg.PubURL}, cfg.PubURLs...) {
		if cfg.PubURL == "" {
			break
		}
		pu, err := url.Parse(s)
		if err != nil {
			return cfg, nil, fmt.Errorf("loadgen: publish url: %w", err)
		}
		if pu.Scheme != "http" && pu.Scheme != "https" {
			return cfg, nil, fmt.Errorf("loadgen: publish url %q: scheme must be http or https", s)
		}
	}
	switch {
	case cfg.Subscribers < 0, cfg.Rate < 0, cfg.Publishers < 0, cfg.Duration < 0, cfg.Events < 0,
		cfg.Warmup < 0, cfg.Size < 0, cfg.ConnectRate < 0, cfg.ConnectConcurrency < 0,
		cfg.ConnectTimeout < 0, cfg.PublishTimeout < 0, cfg.DrainTimeout < 0, cfg.Settle < 0,
		cfg.PID < 0, cfg.Readers < 0, cfg.ProgressInterval < 0, cfg.PubBatch < 0:
		return cfg, nil, errors.New("loadgen: config: negative value")
	}
	if cfg.PubBody == "" {
		cfg.PubBody = DefaultPubBody
	}
	if cfg.PubURL != "" && !strings.Contains(cfg.PubBody, PayloadPlaceholder) {
		return cfg, nil, fmt.Errorf("loadgen: publish body %q has no %s", cfg.PubBody, PayloadPlaceholder)
	}
	if cfg.Subscribers == 0 {
		cfg.Subscribers = 1
	}
	if cfg.Publishers == 0 {
		cfg.Publishers = 1
	}
	if cfg.Duration == 0 && cfg.Events == 0 && cfg.PubURL != "" {
		cfg.Duration = 10 * time.Second
	}
	if cfg.Size == 0 {
		cfg.Size = 100
	}
	if cfg.ConnectConcurrency == 0 {
		cfg.ConnectConcurrency = 64
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	if cfg.PublishTimeout == 0 {
		cfg.PublishTimeout = 10 * time.Second
	}
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = 5 * time.Second
	}
	if cfg.Settle == 0 && cfg.PID != 0 {
		cfg.Settle = time.Second
	}
	if cfg.ReadPause == 0 {
		cfg.ReadPause = 200 * time.Microsecond
	}
	if cfg.ProgressInterval == 0 {
		cfg.ProgressInterval = time.Second
	}
	return cfg, u, nil
}

// ParseSourceIPs parses a list of local source addresses: a number N
// (127.0.0.1 through 127.0.0.N), a range "127.0.0.1-127.0.0.50", a single
// address, or a comma-separated list of these. Ranges are IPv4 only and may
// hold at most 65536 addresses.
func ParseSourceIPs(s string) ([]netip.Addr, error) {
	var out []netip.Addr
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if n, err := strconv.Atoi(part); err == nil {
			if n < 1 || n > 254 {
				return nil, fmt.Errorf("loadgen: source ips %q: count must be 1 to 254", part)
			}
			a := netip.AddrFrom4([4]byte{127, 0, 0, 1})
			for range n {
				out = append(out, a)
				a = a.Next()
			}
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		first, err := netip.ParseAddr(strings.TrimSpace(lo))
		if err != nil {
			return nil, fmt.Errorf("loadgen: source ips %q: %w", part, err)
		}
		if !isRange {
			out = append(out, first)
			continue
		}
		last, err := netip.ParseAddr(strings.TrimSpace(hi))
		if err != nil {
			return nil, fmt.Errorf("loadgen: source ips %q: %w", part, err)
		}
		if !first.Is4() || !last.Is4() || last.Less(first) {
			return nil, fmt.Errorf("loadgen: source ips %q: want an ascending IPv4 range", part)
		}
		for a := first; ; a = a.Next() {
			out = append(out, a)
			if len(out) > 1<<16 {
				return nil, fmt.Errorf("loadgen: source ips %q: range too large", part)
			}
			if a == last {
				break
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("loadgen: source ips %q: empty", s)
	}
	return out, nil
}
