package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Phases, as reported by [Progress].
const (
	phaseConnect = iota
	phaseSettle
	phaseWarmup
	phasePublish
	phaseDrain
	phaseIdle
	phaseDone
)

var phaseNames = [...]string{"connect", "settle", "warmup", "publish", "drain", "idle", "done"}

// fdReserve is the file descriptors kept for everything but subscribers.
const fdReserve = 128

// Run runs one benchmark described by cfg and returns its figures. It
// opens cfg.Subscribers connections, publishes (unless idle), waits for the
// deliveries, then closes every connection it opened. When ctx is done it
// stops early and returns the figures so far with ctx's error. Run may be
// called concurrently; each call owns its connections and goroutines and
// none outlive it.
func Run(ctx context.Context, cfg Config) (Result, error) {
	cfg, u, err := cfg.normalize()
	if err != nil {
		return Result{}, err
	}
	if cfg.Readers == 0 {
		cfg.Readers = min(runtime.GOMAXPROCS(0), 8)
	}
	if err := raiseFileLimit(cfg.Subscribers + fdReserve); err != nil {
		return Result{}, err
	}
	r := &runner{cfg: cfg, start: time.Now()}
	r.rs = newReaders(readerCount(cfg), &r.measureFrom)
	pool, err := newReaderPool(cfg, r.rs)
	if err != nil {
		return Result{}, err
	}
	progCtx, stopProgress := context.WithCancel(ctx)
	var wg sync.WaitGroup
	if cfg.Progress != nil {
		wg.Go(func() { r.progress(progCtx) })
	}
	res, err := r.run(ctx, u, pool)
	stopProgress()
	wg.Wait()
	return res, err
}

// runner is the state of one Run.
type runner struct {
	cfg   Config
	start time.Time
	rs    *readers

	phase       atomic.Int32
	measureFrom atomic.Uint64 // first measured sequence number, 0 before
	connErrs    atomic.Int64
	published   atomic.Uint64 // publishes done, warmup included

	measureStart time.Time // start of the measured phase; set by publish
}

func (r *runner) run(ctx context.Context, u *url.URL, pool readerPool) (res Result, err error) {
	cfg := r.cfg
	res = Result{
		SubURL:      cfg.SubURL,
		PubURL:      cfg.PubURL,
		SubURLs:     cfg.SubURLs,
		PubURLs:     cfg.PubURLs,
		PID:         cfg.PID,
		Subscribers: cfg.Subscribers,
		Publishers:  cfg.Publishers,
		Rate:        cfg.Rate,
		Size:        cfg.Size,
	}
	if cfg.PubURL == "" {
		res.Publishers, res.Size, res.Rate = 0, 0, 0
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			pool.stop()
		}
	}
	defer stop()
	var errs []error
	if cfg.PID != 0 {
		rss, err := procRSS(cfg.PID)
		if err != nil {
			return res, err // a wrong PID: fail before the load
		}
		res.ServerRSSBeforeBytes = rss
	}

	r.phase.Store(phaseConnect)
	if err := r.connect(ctx, u, pool, &res); err != nil {
		return res, err
	}
	if res.Connected == 0 {
		return res, fmt.Errorf("loadgen: no subscriber connected: %s", res.ConnectError)
	}

	r.phase.Store(phaseSettle)
	sleep(ctx, cfg.Settle)
	if cfg.PID != 0 {
		rss, err := procRSS(cfg.PID)
		errs = append(errs, err)
		res.ServerRSSConnectedBytes = rss
		res.ServerRSSPerSubscriberBytes = float64(rss-res.ServerRSSBeforeBytes) / float64(res.Connected)
	}

	if cfg.PubURL == "" {
		r.phase.Store(phaseIdle)
		sleep(ctx, cfg.Duration)
	} else {
		errs = append(errs, r.publish(ctx, &res))
	}
	if cfg.PID != 0 {
		rss, err := procRSS(cfg.PID)
		errs = append(errs, err)
		res.ServerRSSAfterBytes = rss
	}
	r.phase.Store(phaseDone)
	res.Disconnects = int(r.rs.disconnects.Load())
	stop()
	r.collect(&res)
	errs = append(errs, ctx.Err())
	return res, errors.Join(errs...)
}

// connect opens the subscriber connections, ConnectConcurrency at a time,
// paced by ConnectRate.
func (r *runner) connect(ctx context.Context, u *url.URL, pool readerPool, res *Result) error {
	cfg := r.cfg
	dialers := []*subDialer{newSubDialer(cfg, u)}
	for _, s := range cfg.SubURLs {
		su, _ := url.Parse(s) // checked by normalize
		dialers = append(dialers, newSubDialer(cfg, su))
	}
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		mu       sync.Mutex // guards hist and firstErr
		hist     = newHist()
		firstErr error
	)
	start := time.Now()
	workers := min(cfg.ConnectConcurrency, cfg.Subscribers)
	for range workers {
		wg.Go(func() {
			h := newHist()
			buf := make([]byte, maxHead)
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= cfg.Subscribers {
					break
				}
				if cfg.ConnectRate > 0 {
					sleep(ctx, time.Until(start.Add(time.Duration(float64(i)*float64(time.Second)/cfg.ConnectRate))))
				}
				t0 := time.Now()
				nc, s, err := dialers[i%len(dialers)].open(ctx, i, buf)
				if err == nil {
					err = pool.add(nc, s)
				}
				if err != nil {
					r.connErrs.Add(1)
					mu.Lock()
					if firstErr == nil && ctx.Err() == nil {
						firstErr = err
					}
					mu.Unlock()
					continue
				}
				record(h, time.Since(t0).Microseconds())
			}
			mu.Lock()
			hist.Merge(h)
			mu.Unlock()
		})
	}
	wg.Wait()
	res.ConnectSeconds = time.Since(start).Seconds()
	res.Connected = int(hist.TotalCount())
	res.ConnectErrors = int(r.connErrs.Load())
	if firstErr != nil {
		res.ConnectError = firstErr.Error()
	}
	res.ConnectUs = summarize(hist)
	return ctx.Err()
}

// publish runs the warmup, the measured phase and the drain.
func (r *runner) publish(ctx context.Context, res *Result) error {
	cfg := r.cfg
	now := time.Now()
	sched := &schedule{
		rate:     cfg.Rate,
		start:    now,
		warmEnd:  now.Add(cfg.Warmup),
		events:   uint64(cfg.Events),
		duration: cfg.Duration,
		mf:       &r.measureFrom,
	}
	var pubs []*publisher // one per publish URL
	for _, pu := range append([]string{cfg.PubURL}, cfg.PubURLs...) {
		c := cfg
		c.PubURL = pu
		p := newPublisher(c, &r.published)
		defer p.close()
		pubs = append(pubs, p)
	}
	stats := make([]pubStats, cfg.Publishers)
	var wg sync.WaitGroup
	for i := range stats {
		stats[i].hist = newHist()
		pub := pubs[i%len(pubs)]
		wg.Go(func() { pub.run(ctx, sched, &stats[i]) })
	}
	var errs []error
	if cfg.Warmup > 0 {
		r.phase.Store(phaseWarmup)
		sleep(ctx, cfg.Warmup)
	}
	r.phase.Store(phasePublish)
	cpu0, err := r.cpu()
	errs = append(errs, err)
	wg.Wait()
	pubEnd := time.Now()

	hist := newHist()
	for _, st := range stats {
		res.WarmupEvents += st.warm
		res.Published += st.ok
		res.PublishErrors += st.failed
		hist.Merge(st.hist)
	}
	for _, p := range pubs {
		if res.PublishError == "" {
			res.PublishError = p.err
		}
	}
	res.PublishUs = summarize(hist)
	if ms := sched.started(); !ms.IsZero() {
		r.measureStart = ms
		res.PublishSeconds = pubEnd.Sub(ms).Seconds()
		if res.PublishSeconds > 0 {
			res.PublishesPerSec = float64(res.Published) / res.PublishSeconds
		}
	}

	r.phase.Store(phaseDrain)
	expected := res.Published * uint64(res.Connected)
	deadline := time.Now().Add(cfg.DrainTimeout)
	for r.received() < expected && time.Now().Before(deadline) && ctx.Err() == nil &&
		r.rs.open.Load() > 0 {
		sleep(ctx, 5*time.Millisecond)
	}
	cpu1, err := r.cpu()
	errs = append(errs, err)
	res.ServerCPUSeconds = cpu1.server - cpu0.server
	res.GeneratorCPUSeconds = cpu1.self - cpu0.self
	return errors.Join(errs...)
}

type cpuSample struct{ server, self float64 }

func (r *runner) cpu() (cpuSample, error) {
	var s cpuSample
	var err1, err2 error
	if r.cfg.PID != 0 {
		s.server, err1 = procCPU(r.cfg.PID)
	}
	s.self, err2 = procCPU(0)
	if err2 != nil && runtime.GOOS != "linux" {
		err2 = nil // no /proc: no generator CPU figure
	}
	return s, errors.Join(err1, err2)
}

func (r *runner) received() uint64 {
	var n uint64
	for _, k := range r.rs.sinks {
		n += k.received.Load()
	}
	return n
}

func (r *runner) receivedAll() uint64 {
	var n uint64
	for _, k := range r.rs.sinks {
		n += k.all.Load()
	}
	return n
}

// collect adds the readers' figures to res; the readers must be stopped.
func (r *runner) collect(res *Result) {
	hist := newHist()
	var lastNs int64
	res.ReceiveClock = "kernel"
	for _, k := range r.rs.sinks {
		if k.userClock > 0 {
			res.ReceiveClock = "user"
		}
		res.Received += k.received.Load()
		res.Duplicates += k.dups
		res.OutOfOrder += k.late
		lastNs = max(lastNs, k.lastNs)
		hist.Merge(k.hist)
	}
	res.LatencyUs = summarize(hist)
	res.Expected = res.Published * uint64(res.Connected)
	if res.Expected > res.Received {
		res.Lost = res.Expected - res.Received
	}
	if res.Expected > 0 {
		res.LossRatio = float64(res.Lost) / float64(res.Expected)
	}
	if !r.measureStart.IsZero() && lastNs > 0 {
		// From the start of the measured phase to the last receipt.
		if span := float64(lastNs-r.measureStart.UnixNano()) / 1e9; span > 0 {
			res.DeliveriesPerSec = float64(res.Received) / span
		}
	}
	if res.Received > 0 {
		res.ServerCPUUsPerDelivery = res.ServerCPUSeconds * 1e6 / float64(res.Received)
		res.GeneratorCPUUsPerDelivery = res.GeneratorCPUSeconds * 1e6 / float64(res.Received)
	}
}

// progress calls cfg.Progress every ProgressInterval until ctx is done.
func (r *runner) progress(ctx context.Context) {
	t := time.NewTicker(r.cfg.ProgressInterval)
	defer t.Stop()
	prev, prevT := uint64(0), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			all := r.receivedAll()
			p := Progress{
				Phase:          phaseNames[r.phase.Load()],
				Elapsed:        now.Sub(r.start),
				Connected:      int(r.rs.open.Load()),
				ConnectErrors:  int(r.connErrs.Load()),
				Disconnects:    int(r.rs.disconnects.Load()),
				Published:      r.published.Load(),
				Received:       all,
				ReceivedPerSec: float64(all-prev) / now.Sub(prevT).Seconds(),
			}
			prev, prevT = all, now
			r.cfg.Progress(p)
		}
	}
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
