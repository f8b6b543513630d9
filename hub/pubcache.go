package hub

import (
	"sync"
	"sync/atomic"

	"github.com/herald-sse/herald/auth"
	"github.com/herald-sse/herald/broker"
)

// maxCachedMatchers bounds the publish matchers a hub keeps; the cache is
// emptied when it is full. The verifier keeps at most 1024 tokens, so
// publishers that reuse their token keep hitting it.
const maxCachedMatchers = 1024

// matcherCache maps the claims of a verified publisher token to the
// matcher of its publish selectors. The verifier hands out the same
// *auth.Claims for every request that presents a cached token, and claims
// are never modified, so a pointer is a sound key: a publish then neither
// copies the selectors nor builds a matcher. Safe for concurrent use.
type matcherCache struct {
	m sync.Map // *auth.Claims → *broker.Matcher
	n atomic.Int64
}

// publishMatcher returns the matcher of the publish selectors of c (not
// nil), from the cache or built and cached.
func (h *Hub) publishMatcher(c *auth.Claims) (*broker.Matcher, error) {
	if m, ok := h.matchers.m.Load(c); ok {
		return m.(*broker.Matcher), nil
	}
	m, err := broker.NewMatcher(h.claimSelectors(c, "publish"))
	if err != nil {
		return nil, err // not cached: a bad selector is refused every time
	}
	if h.matchers.n.Add(1) > maxCachedMatchers {
		h.matchers.m.Clear()
		h.matchers.n.Store(1)
	}
	h.matchers.m.Store(c, m)
	return m, nil
}
