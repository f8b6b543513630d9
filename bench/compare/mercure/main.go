// mercurebench: the Mercure hub (github.com/dunglas/mercure library, as its
// docs show) with anonymous subscribers and an HS256 publisher key, on
// /.well-known/mercure. --transport local (no history) or bolt (durable).
package main

import (
	"flag"
	"log"
	"net/http"

	"github.com/dunglas/mercure"
	"go.uber.org/zap"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8093", "listen address")
	key := flag.String("publisher-key", "", "HS256 publisher key")
	transport := flag.String("transport", "local", "local or bolt")
	boltPath := flag.String("bolt-path", "mercure.db", "bolt file")
	flag.Parse()
	zc := zap.NewProductionConfig()
	zc.Level = zap.NewAtomicLevelAt(zap.WarnLevel)
	logger, err := zc.Build()
	if err != nil {
		log.Fatal(err)
	}
	opts := []mercure.Option{
		mercure.WithLogger(logger),
		mercure.WithAnonymous(),
		mercure.WithPublisherJWT([]byte(*key), "HS256"),
	}
	if *transport == "bolt" {
		t, err := mercure.NewBoltTransport(logger, *boltPath, "", 0, 0.3)
		if err != nil {
			log.Fatal(err)
		}
		opts = append(opts, mercure.WithTransport(t))
	}
	h, err := mercure.NewHub(opts...)
	if err != nil {
		log.Fatal(err)
	}
	defer h.Stop()
	mux := http.NewServeMux()
	mux.Handle("/.well-known/mercure", h)
	log.Fatal(http.ListenAndServe(*addr, mux))
}
