package eventsource

import (
	"context"
	"time"
)

// Backoff exposes backoff to the external tests.
func Backoff(base, limit time.Duration, failures int, r float64) time.Duration {
	return backoff(base, limit, failures, r)
}

// SetJitter replaces the jitter source of c.
func SetJitter(c *Client, f func() float64) { c.jitter = f }

// SetSleep replaces the function c waits with between connections.
func SetSleep(c *Client, f func(ctx context.Context, d time.Duration) error) { c.sleep = f }
