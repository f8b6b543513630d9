package broker_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/herald-sse/herald/broker"
	"github.com/herald-sse/herald/store"
	"github.com/herald-sse/herald/store/memstore"
)

// stormWriter is a ResponseWriter that discards what it is sent and reports
// its first flush: the stream's replay is written and it is live.
type stormWriter struct {
	h    http.Header
	n    int64
	live func()
	once sync.Once
}

func (w *stormWriter) Header() http.Header         { return w.h }
func (w *stormWriter) WriteHeader(int)             {}
func (w *stormWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }
func (w *stormWriter) FlushError() error {
	w.once.Do(w.live)
	return nil
}

// BenchmarkReconnectStorm measures a reconnect storm: 10,000 clients
// reconnect at once, each 1,000 updates behind, and the broker replays each
// from its position before it goes live. It reports the time until every
// stream is live, the process CPU that took and the peak heap, with the
// shared replay cache (each update encoded once, by the tail) and without
// it (each replay reads the store and encodes its own copy).
//
//	go test -run '^$' -bench ReconnectStorm -benchtime 1x ./broker/
func BenchmarkReconnectStorm(b *testing.B) {
	const (
		clients = 10_000
		behind  = 1_000
	)
	for _, tc := range []struct {
		name  string
		cache int
	}{{"shared-cache", 0}, {"no-cache", -1}} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				live, cpu, peak := reconnectStorm(b, tc.cache, clients, behind)
				b.ReportMetric(float64(live.Milliseconds()), "ms-until-all-live")
				b.ReportMetric(float64(cpu.Milliseconds()), "cpu-ms")
				b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
			}
		})
	}
}

func reconnectStorm(b *testing.B, cache, clients, behind int) (live, cpu time.Duration, peak uint64) {
	st := memstore.New(memstore.Config{MaxLen: 2 * behind})
	defer st.Close()
	br, err := broker.New(st, broker.Config{NoPark: true, Heartbeat: -1, ReplayCache: cache, MaxPending: 64 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer br.Shutdown(context.Background())
	data := strings.Repeat("p", 100)
	var from store.Update
	for i := range behind + 1 {
		u, err := br.Publish(context.Background(), store.Update{Topics: []string{"prices"}, Data: data})
		if err != nil {
			b.Fatal(err)
		}
		if i == 0 {
			from = u
		}
	}
	for br.Stats().Published < uint64(behind+1) {
		time.Sleep(time.Millisecond)
	}
	runtime.GC()

	stopSampling := make(chan struct{})
	sampled := make(chan uint64)
	go func() {
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		var peak uint64
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			peak = max(peak, sample[0].Value.Uint64())
			select {
			case <-stopSampling:
				sampled <- peak
				return
			case <-t.C:
			}
		}
	}()

	var allLive sync.WaitGroup
	allLive.Add(clients)
	ctx, cancel := context.WithCancel(context.Background())
	var streams sync.WaitGroup
	cpu0 := cpuTime()
	start := time.Now()
	for range clients {
		w := &stormWriter{h: http.Header{}, live: allLive.Done}
		r := httptest.NewRequest(http.MethodGet, "/?topic=prices", nil).WithContext(ctx)
		streams.Go(func() {
			br.Subscribe(w, r, broker.Subscription{Topics: []string{"prices"}, LastEventID: from.ID})
		})
	}
	allLive.Wait()
	live = time.Since(start)
	cpu = cpuTime() - cpu0
	close(stopSampling)
	peak = <-sampled
	cancel()
	streams.Wait()
	return live, cpu, peak
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(fmt.Sprint("getrusage: ", err))
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
