package hub

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/herald-sse/herald/auth"
	"github.com/herald-sse/herald/broker"
	"github.com/herald-sse/herald/store"
)

// subscribe handles GET: topic selectors, replay position, optional token,
// then hands the stream to the broker. Every check that costs little runs
// first; selectors are compiled only once the request is authorized (a hub
// that requires a token compiles nothing for an anonymous or forged
// request).
func (h *Hub) subscribe(w http.ResponseWriter, r *http.Request) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		h.refuse(w, "subscribe", "malformed_query", http.StatusBadRequest, fmt.Sprintf("malformed query string: %v", err))
		return
	}
	topics := q["topic"]
	if len(topics) == 0 {
		h.refuse(w, "subscribe", "missing_topic", http.StatusBadRequest, `missing "topic" query parameter`)
		return
	}
	if label, reason := checkSelectors(topics, h.maxTopic); label != "" {
		h.refuse(w, "subscribe", label, http.StatusBadRequest, reason)
		return
	}
	last := lastEventID(r, q)
	if why := checkEventID(last); why != "" {
		h.refuse(w, "subscribe", "bad_last_event_id", http.StatusBadRequest, "Last-Event-ID "+why)
		return
	}
	sub := broker.Subscription{Topics: topics, LastEventID: last}

	claims, err := authenticate(h.sub, r, "subscriber")
	switch {
	case errors.Is(err, auth.ErrNoToken):
		if h.reqToken {
			h.authFailed("subscribe", err)
			challenge(w, http.StatusUnauthorized, "", "missing access token")
			return
		}
	case err != nil:
		h.authFailed("subscribe", err)
		h.log.Debug("hub: subscribe: token refused", "err", err)
		challenge(w, http.StatusUnauthorized, "invalid_token", "%s", tokenReason(err))
		return
	case claims.Subscribe != nil:
		if _, err := broker.NewMatcher(claims.Subscribe); err != nil {
			h.authFails.add("subscribe", "bad_selector")
			challenge(w, http.StatusUnauthorized, "invalid_token", "invalid access token: bad subscribe selector: %s", selectorReason(err))
			return
		}
		sub.Private = claims.Subscribe
	}
	if _, err := broker.NewMatcher(topics); err != nil {
		h.refuse(w, "subscribe", "invalid_selector", http.StatusBadRequest, "invalid topic selector: "+selectorReason(err))
		return
	}
	if h.feed != nil {
		sub.Subscriber = subscriberID(claims)
		if claims != nil {
			sub.Payload = claims.Payload
		}
	}

	if err := h.b.Subscribe(w, r, sub); err != nil {
		h.log.Debug("hub: subscription ended", "err", err, "topics", topics)
	}
}

// refuse counts a refusal of op for label and answers it with code and
// reason.
func (h *Hub) refuse(w http.ResponseWriter, op, label string, code int, reason string) {
	h.refusals.add(op, label)
	fail(w, code, "%s", reason)
}

// checkSelectors checks the topic selectors of one request without
// compiling them: their number (at most max), each one a valid topic, and
// the limits of [broker.CheckSelectors] (length, template expressions and
// variables). It returns a metric label and a one-line reason, or "" when
// the selectors pass. Its cost is linear in the selectors' length, so it
// runs before authorization.
func checkSelectors(selectors []string, max int) (label, reason string) {
	if len(selectors) > max {
		return "too_many_selectors", fmt.Sprintf("too many topic selectors: %d, at most %d", len(selectors), max)
	}
	for _, t := range selectors {
		if why := validTopic(t); why != "" {
			return "invalid_topic", why
		}
	}
	if err := broker.CheckSelectors(selectors); err != nil {
		return "selector_too_large", "topic selector refused: " + selectorReason(err)
	}
	return "", ""
}

// selectorReason is the reason of a selector error, without the package
// prefix.
func selectorReason(err error) string {
	return strings.TrimPrefix(err.Error(), "broker: ")
}

// checkEventID reports why id cannot be an update id ("" when it can, or
// is empty): longer than [store.MaxIDLen] or holding a control character.
// An id that passes can be echoed in a response header as is.
func checkEventID(id string) string {
	if len(id) > store.MaxIDLen {
		return fmt.Sprintf("is longer than %d bytes (%d)", store.MaxIDLen, len(id))
	}
	if strings.ContainsFunc(id, isControl) {
		return "contains a control character"
	}
	return ""
}

// isControl reports whether r is a C0 or C1 control or DEL.
func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) }

// lastEventID returns the replay position asked for by r: the Last-Event-ID
// header, else the lastEventID query parameter (for clients that cannot set
// headers), else the legacy Last-Event-ID query parameter. The header wins
// when several are present.
func lastEventID(r *http.Request, q url.Values) string {
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		return id
	}
	if id := q.Get("lastEventID"); id != "" {
		return id
	}
	return q.Get("Last-Event-ID")
}
