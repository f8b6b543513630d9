package broker

import "github.com/herald-sse/herald/internal/netpoll"

// parker is the shared writer pool that holds parked connections.
type parker = *netpoll.Poller

func newParker(cfg Config) (parker, error) {
	return netpoll.New(netpoll.Config{Workers: cfg.Writers, IOUring: cfg.IOUring, Logger: cfg.Logger, WriteTimeout: cfg.WriteTimeout})
}
