package eventsource

import "time"

// backoff returns how long to wait before the next connection.
//
// base is the reconnection time, limit caps the backoff, failures counts
// the consecutive failed connections (0 after a connection that delivered
// an event) and r, in [0, 1], is the jitter.
//
// After zero or one failure the wait is base, as in browsers. From the
// second consecutive failure on, the ceiling doubles with each failure,
// base*2^(failures-1), capped at limit, and the wait is drawn uniformly
// between base and that ceiling ("full jitter" above the reconnection
// time, which the spec makes a minimum). If base is at least limit, the
// wait is base.
func backoff(base, limit time.Duration, failures int, r float64) time.Duration {
	if failures < 2 || base >= limit {
		return base
	}
	ceiling := base
	for i := 1; i < failures; i++ {
		if ceiling > limit/2 {
			ceiling = limit
			break
		}
		ceiling *= 2
	}
	ceiling = min(ceiling, limit)
	span := ceiling - base
	f := r * float64(span)
	switch {
	case !(f > 0): // also catches NaN
		return base
	case f >= float64(span): // r >= 1, or rounding up near the top
		return ceiling
	}
	return base + time.Duration(f)
}
