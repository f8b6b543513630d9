// Command ticker is a live price ticker: the server publishes a new price
// for each symbol many times a second, and the page shows the latest one.
// It uses Herald's Go library only: a broker mounted on the application's
// mux at /api/events.
//
//	go run ./examples/ticker
//
// then open http://localhost:8080.
//
// The page subscribes to every symbol with ONE EventSource
// (?topic=/prices/AAPL&topic=/prices/MSFT&...), not one per symbol: over
// HTTP/1.1 a browser opens at most six connections to an origin (see
// docs/BROWSERS.md).
package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"log"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"time"

	"github.com/herald-sse/herald/broker"
	"github.com/herald-sse/herald/store"
	"github.com/herald-sse/herald/store/memstore"
)

//go:embed index.html
var page []byte

// symbols are the instruments of the ticker and their opening prices.
var symbols = []struct {
	Symbol string
	Open   float64
}{{"AAPL", 231.4}, {"MSFT", 418.9}, {"GOOG", 171.2}, {"AMZN", 186.5}, {"NVDA", 124.6}, {"TSLA", 248.1}, {"META", 561.0}, {"NFLX", 702.3}}

func main() {
	addr := flag.String("addr", "localhost:8080", "address to listen on")
	every := flag.Duration("every", 20*time.Millisecond, "time between two price updates (each for one symbol)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	a, err := newApp()
	if err != nil {
		log.Fatal(err)
	}
	a.start(*every)
	log.Printf("ticker: open http://%s", ln.Addr())
	srv := &http.Server{Handler: a.routes(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		a.close() // stop the prices and end the streams, so Shutdown does not wait on them
		_ = srv.Shutdown(context.Background())
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

// quote is the data of one update.
type quote struct {
	Symbol string  `json:"symbol"`
	Price  float64 `json:"price"`
	Change float64 `json:"change"` // since the open, in percent
}

// app publishes random-walk prices to /prices/{symbol}.
type app struct {
	st *memstore.Store
	b  *broker.Broker

	cancel context.CancelFunc
	wg     sync.WaitGroup // the price generator

	mu     sync.Mutex
	prices map[string]float64 // the latest price published for each symbol
}

func newApp() (*app, error) {
	// Only the latest price matters: keep a short history, enough for a
	// client that reconnects after a blip to catch up.
	st := memstore.New(memstore.Config{MaxLen: 1000})
	b, err := broker.New(st, broker.Config{})
	if err != nil {
		return nil, err
	}
	a := &app{st: st, b: b, prices: make(map[string]float64), cancel: func() {}}
	for _, s := range symbols {
		a.prices[s.Symbol] = s.Open
	}
	return a, nil
}

// start publishes a price every interval, for one symbol after another,
// until stop or close.
func (a *app) start(every time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	a.wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			s := symbols[i%len(symbols)]
			if err := a.publish(ctx, s.Symbol, s.Open); err != nil && ctx.Err() == nil {
				log.Printf("ticker: %v", err)
			}
		}
	})
}

// publish moves the price of symbol a little and publishes it.
func (a *app) publish(ctx context.Context, symbol string, open float64) error {
	a.mu.Lock()
	p := a.prices[symbol] * (1 + rand.NormFloat64()*0.002)
	p = math.Round(p*100) / 100
	a.prices[symbol] = p
	a.mu.Unlock()
	data, _ := json.Marshal(quote{Symbol: symbol, Price: p, Change: math.Round((p/open-1)*10000) / 100})
	_, err := a.b.Publish(ctx, store.Update{Topics: []string{"/prices/" + symbol}, Data: string(data)})
	return err
}

// stop stops the price generator and waits for it.
func (a *app) stop() {
	a.cancel()
	a.wg.Wait()
}

// close stops the prices, ends the streams and closes the log.
func (a *app) close() {
	a.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = a.b.Shutdown(ctx)
	_ = a.st.Close()
}

// latest returns the last price published for each symbol.
func (a *app) latest() map[string]float64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	m := make(map[string]float64, len(a.prices))
	for k, v := range a.prices {
		m[k] = v
	}
	return m
}

func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(page)
	})
	mux.HandleFunc("GET /api/symbols", func(w http.ResponseWriter, r *http.Request) {
		names := make([]string, len(symbols))
		for i, s := range symbols {
			names[i] = s.Symbol
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(names)
	})
	mux.Handle("GET /api/events", a.b) // ?topic=/prices/AAPL&topic=/prices/MSFT...
	return mux
}
