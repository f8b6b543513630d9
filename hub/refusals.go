package hub

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/golang-jwt/jwt/v5"

	"github.com/herald-sse/herald/auth"
)

// Count is the number of requests a hub refused for one reason, as reported
// by [Hub.Refusals] and [Hub.AuthFailures].
type Count struct {
	// Op is "subscribe" or "publish".
	Op string
	// Reason is a short snake_case label, such as "selector_too_large" or
	// "expired".
	Reason string
	// N is the number of refusals since the hub was created.
	N uint64
}

// counters counts refusals by (op, reason). The label sets are small and
// fixed by the code, so the map only grows to a few dozen entries.
type counters struct {
	m sync.Map // of countKey to *atomic.Uint64
}

type countKey struct{ op, reason string }

func (c *counters) add(op, reason string) {
	k := countKey{op, reason}
	v, ok := c.m.Load(k)
	if !ok {
		v, _ = c.m.LoadOrStore(k, new(atomic.Uint64))
	}
	v.(*atomic.Uint64).Add(1)
}

func (c *counters) snapshot() []Count {
	var out []Count
	c.m.Range(func(k, v any) bool {
		ck := k.(countKey)
		out = append(out, Count{Op: ck.op, Reason: ck.reason, N: v.(*atomic.Uint64).Load()})
		return true
	})
	slices.SortFunc(out, func(a, b Count) int {
		return strings.Compare(a.Op+"\x00"+a.Reason, b.Op+"\x00"+b.Reason)
	})
	return out
}

// Refusals returns how many subscribe and publish requests the hub refused
// before authentication or because of their content (selectors, replay
// position, form), by reason, sorted. Authentication failures are counted
// by [Hub.AuthFailures] instead. Connection-level refusals (limits,
// timeouts) belong to the server around the hub. Safe for concurrent use.
func (h *Hub) Refusals() []Count { return h.refusals.snapshot() }

// AuthFailures returns how many requests the hub refused for their token
// (missing, expired, bad signature, insufficient scope...), by reason,
// sorted. Safe for concurrent use.
func (h *Hub) AuthFailures() []Count { return h.authFails.snapshot() }

// authFailed counts an authentication failure of op.
func (h *Hub) authFailed(op string, err error) { h.authFails.add(op, authReason(err)) }

// authReason is the metric label of a token that failed verification.
func authReason(err error) string {
	switch {
	case errors.Is(err, auth.ErrNoToken):
		return "missing"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "not_yet_valid"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "bad_signature"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "audience"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "issuer"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "claim_missing"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "unverifiable"
	}
	return "invalid"
}
