package hub

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/herald-sse/herald/auth"
	"github.com/herald-sse/herald/broker"
)

// SubscriptionsPath is the root of the subscriptions API, and the prefix of
// the topics of subscription events, when [Config.Subscriptions] is set.
const SubscriptionsPath = Path + "/subscriptions"

// MaxPendingPresence is how many subscription starts and ends may wait to
// be applied to the subscriptions list; beyond it they are dropped (and the
// drops logged) and the list is then reconciled with the broker's open
// streams, so a burst of connections never blocks the streams.
const MaxPendingPresence = 4096

const (
	jsonLDContext = "https://mercure.rocks/"
	jsonLDType    = "application/ld+json"
)

// subscription is the JSON-LD document of one subscription, in events and
// in the API.
type subscription struct {
	Context     string `json:"@context,omitempty"`
	ID          string `json:"id"`
	Type        string `json:"type"`
	Subscriber  string `json:"subscriber"`
	Topic       string `json:"topic,omitempty"`     // Mercure 0.x subscriptions
	MatchType   string `json:"matchType,omitempty"` // Mercure 1.0 subscriptions
	Match       string `json:"match,omitempty"`     // Mercure 1.0 subscriptions
	Active      bool   `json:"active"`
	Payload     any    `json:"payload,omitempty"`
	LastEventID string `json:"lastEventID,omitempty"`
}

// subscriptionCollection is the JSON-LD document of a list of
// subscriptions.
type subscriptionCollection struct {
	Context       string         `json:"@context"`
	ID            string         `json:"id"`
	Type          string         `json:"type"`
	LastEventID   string         `json:"lastEventID"`
	Subscriptions []subscription `json:"subscriptions"`
}

// subscriptionURL is the id of the subscription of subscriber to topic, and
// the topic of its events. Both variables are percent-encoded as RFC 6570
// expands {var}: every byte but the unreserved characters, so that a
// selector like "/.well-known/mercure/subscriptions{/topic}{/subscriber}"
// matches every subscription ("urn:uuid:..." has colons, which
// url.PathEscape would keep). An empty variable ends the path before it.
func subscriptionURL(topic, subscriber string) string {
	p := SubscriptionsPath
	if topic == "" {
		return p
	}
	p += "/" + escapeVar(topic)
	if subscriber == "" {
		return p
	}
	return p + "/" + escapeVar(subscriber)
}

// escapeVar percent-encodes every byte of s but ALPHA, DIGIT, "-", ".",
// "_" and "~", with uppercase hex digits.
func escapeVar(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) * 3)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '.', c == '_', c == '~':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// subscriptionURL1 is the id of a Mercure 1.0 subscription, and the topic
// of its events: /.well-known/mercure/subscriptions/{matchType}/{match}/{subscriber},
// each variable percent-encoded once as a whole. Empty trailing variables
// end the path before them.
func subscriptionURL1(matchType, match, subscriber string) string {
	p := SubscriptionsPath + "/" + matchType
	if match == "" {
		return p
	}
	p += "/" + escapeVar(match)
	if subscriber == "" {
		return p
	}
	return p + "/" + escapeVar(subscriber)
}

// newSubscription is the document of p's subscription with the selector
// sel: in the Mercure 1.0 shape (matchType, match) for a 1.0 matcher, in
// the 0.x shape (topic) for a classic selector.
func newSubscription(p broker.Presence, sel string) subscription {
	s := subscription{
		Type:       "Subscription",
		Subscriber: p.Subscriber,
		Active:     p.Active,
		Payload:    p.Payload,
	}
	if mt, match := broker.SelectorType(sel); mt != "" {
		s.ID, s.MatchType, s.Match = subscriptionURL1(mt, match, p.Subscriber), mt, match
		return s
	}
	s.ID, s.Topic = subscriptionURL(sel, p.Subscriber), sel
	return s
}

// subscriberID is the id of a new subscriber: its token's "sub" claim,
// else a fresh "urn:uuid:..." id.
func subscriberID(claims *auth.Claims) string {
	if claims != nil && claims.Subject != "" {
		return claims.Subject
	}
	return "urn:uuid:" + uuid.NewString()
}

// OnSubscription queues the subscription event of p. It never blocks, so
// it is fit for [broker.Config.OnSubscription]: give the broker a function
// that calls it on the hub built over that broker. It does nothing on a nil
// Hub, on a hub without [Config.Subscriptions], and after [Hub.Close].
func (h *Hub) OnSubscription(p broker.Presence) {
	if h == nil || h.feed == nil {
		return
	}
	h.feed.push(p)
}

// Close stops the goroutines that keep the subscriptions list and publish
// subscription events, and waits for them; starts and ends still queued
// are dropped. Then it removes this hub's subscriptions from the list
// (other hubs sharing it publish their end) and closes the list unless it
// was given in [Config.Presence]. Call it before shutting the broker down.
// Close is idempotent; on a hub without [Config.Subscriptions] it does
// nothing. It always returns nil.
func (h *Hub) Close() error {
	if h.feed != nil {
		h.closeOnce.Do(h.feed.close)
	}
	return nil
}

// isSubscriptionsPath reports whether escapedPath is under SubscriptionsPath.
func isSubscriptionsPath(escapedPath string) bool {
	return escapedPath == SubscriptionsPath || strings.HasPrefix(escapedPath, SubscriptionsPath+"/")
}

// subscriptions serves the subscriptions API: the collection, the
// subscriptions to one topic selector, and one subscription.
func (h *Hub) subscriptions(w http.ResponseWriter, r *http.Request) {
	h.setCORS(w, r)
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodOptions:
		h.preflight(w, r, "GET, HEAD, OPTIONS", http.MethodGet, http.MethodHead)
		return
	default:
		w.Header().Set("Allow", "GET, HEAD, OPTIONS")
		fail(w, http.StatusMethodNotAllowed, "method %s not allowed", r.Method)
		return
	}
	// 0.x: {topic}/{subscriber}; 1.0: {matchType}/{match}/{subscriber},
	// told apart by the matcher type in the first segment.
	var vars [3]string
	n, v1 := 2, false
	if rest, ok := strings.CutPrefix(r.URL.EscapedPath(), SubscriptionsPath+"/"); ok {
		segs := strings.Split(rest, "/")
		if segs[0] == matchExact || segs[0] == matchURLPattern {
			n, v1 = 3, true
		}
		if len(segs) > n {
			fail(w, http.StatusNotFound, "not found")
			return
		}
		for i, seg := range segs {
			v, err := url.PathUnescape(seg)
			if err != nil {
				fail(w, http.StatusBadRequest, "malformed path segment %q", seg)
				return
			}
			if v == "" {
				fail(w, http.StatusNotFound, "not found")
				return
			}
			vars[i] = v
		}
	}
	topic, subscriber := vars[0], vars[1]
	id := subscriptionURL(topic, subscriber) // the canonical form, as in events
	matchType, match := "", ""
	if v1 {
		matchType, match, subscriber = vars[0], vars[1], vars[2]
		id = subscriptionURL1(matchType, match, subscriber)
	}

	claims, err := authenticate(h.sub, r, "subscriber")
	switch {
	case errors.Is(err, auth.ErrNoToken):
		h.missingToken(w)
		return
	case err != nil:
		h.log.Debug("hub: subscriptions: token refused", "err", err)
		challenge(w, http.StatusUnauthorized, "invalid_token", "%s", tokenReason(err))
		return
	}
	m, err := broker.NewMatcher(h.claimSelectors(claims, "subscribe"))
	if err != nil {
		challenge(w, http.StatusUnauthorized, "invalid_token", "invalid access token: bad subscribe selector: %s", strings.TrimPrefix(err.Error(), "broker: "))
		return
	}
	if !m.Match(id) {
		challenge(w, http.StatusForbidden, "insufficient_scope", "not authorized to read %q", id)
		return
	}

	// Subscription events are live only (see presenceFeed): lastEventID
	// is the log's position, which they do not move. A client that wants
	// no change missed subscribes to the events before it reads the list.
	last, err := h.b.LastEventID(r.Context())
	if err != nil {
		h.log.Error("hub: subscriptions", "err", err)
		fail(w, http.StatusServiceUnavailable, "history unavailable")
		return
	}
	if last == "" {
		last = "earliest"
	}
	ctx, cancel := context.WithTimeout(r.Context(), presenceTimeout)
	all, err := h.feed.list(ctx)
	cancel()
	if err != nil {
		h.log.Error("hub: list subscriptions", "err", err)
		fail(w, http.StatusServiceUnavailable, "subscriptions list unavailable")
		return
	}
	var subs []subscription
	for _, sub := range all {
		switch {
		case subscriber != "" && sub.Subscriber != subscriber:
		case v1 && (sub.MatchType != matchType || (match != "" && sub.Match != match)):
		case !v1 && topic != "" && (sub.MatchType != "" || sub.Topic != topic):
		default:
			subs = append(subs, sub)
		}
	}
	slices.SortStableFunc(subs, func(a, b subscription) int { return cmp.Compare(a.ID, b.ID) })

	var doc any
	switch {
	case subscriber != "":
		if len(subs) == 0 {
			fail(w, http.StatusNotFound, "no active subscription %q", id)
			return
		}
		s := subs[0]
		s.Context, s.LastEventID = jsonLDContext, last
		doc = s
	default:
		if subs == nil {
			subs = []subscription{} // "subscriptions": [], not null
		}
		doc = subscriptionCollection{
			Context:       jsonLDContext,
			ID:            id,
			Type:          "Subscriptions",
			LastEventID:   last,
			Subscriptions: subs,
		}
	}
	body, err := json.Marshal(doc)
	if err != nil {
		h.log.Error("hub: encode subscriptions", "err", err)
		fail(w, http.StatusInternalServerError, "internal error")
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", jsonLDType)
	hdr.Set("Cache-Control", "no-cache")
	_, _ = w.Write(body)
}
