package hub

import (
	"github.com/herald-sse/herald/auth"
	"github.com/herald-sse/herald/broker"
)

// Mercure 1.0 matcher types, as in subscription events and the API.
const (
	matchExact      = string(auth.MatchExact)
	matchURLPattern = string(auth.MatchURLPattern)
)

// selector translates a Mercure 1.0 topic matcher into a broker selector:
// "*" stays the wildcard whatever the type; Exact and URLPattern become the
// broker's tagged selectors, relative URL patterns resolved against the
// hub's configured base URL.
func (h *Hub) selector(matchType, match string) string {
	switch {
	case match == "*":
		return "*"
	case matchType == matchURLPattern:
		return broker.URLPatternSelector(match, h.base)
	}
	return broker.ExactSelector(match)
}

// claimSelectors returns the broker selectors the claims grant for action
// ("publish" or "subscribe"): the mercure claim's selectors of a classic
// token, the matchers of the access token's details that grant the action.
// nil grants nothing.
func (h *Hub) claimSelectors(c *auth.Claims, action string) []string {
	if c == nil {
		return nil
	}
	if c.Style == auth.StyleMercure {
		if action == "publish" {
			return c.Publish
		}
		return c.Subscribe
	}
	ms := c.Matchers(action)
	if len(ms) == 0 {
		return nil
	}
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = h.selector(string(m.Type), m.Match)
	}
	return out
}

// subscribePayload is the payload of a subscription made with claims:
// the mercure claim's payload of a classic token; for an access token, the
// payload of the first subscribe detail one of whose matchers matches one
// of the subscription's selectors (Mercure 1.0 matches the subscription's
// own matcher string as if it were a topic). Herald keeps one payload per
// stream, so a stream whose matchers match different details gets the
// first one found, in request order.
func (h *Hub) subscribePayload(c *auth.Claims, selectors []string) any {
	if c == nil {
		return nil
	}
	if c.Style == auth.StyleMercure {
		return c.Payload
	}
	for _, sel := range selectors {
		_, pattern := broker.SelectorType(sel)
		for _, d := range c.Details {
			if !d.Subscribe {
				continue
			}
			for _, m := range d.Topics {
				bm, err := broker.NewMatcher([]string{h.selector(string(m.Type), m.Match)})
				if err == nil && bm.Match(pattern) {
					return d.Payload
				}
			}
		}
	}
	return nil
}
