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

// subscribe handles GET and HEAD: topic selectors, replay position,
// optional token, then hands the stream to the broker. HEAD answers the
// head of the stream GET would open (or its error) without opening it.
// Every check that costs little runs first; selectors are compiled only
// once the request is authorized (a hub that requires a token compiles
// nothing for an anonymous or forged request).
func (h *Hub) subscribe(w http.ResponseWriter, r *http.Request) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		h.refuse(w, "subscribe", "malformed_query", http.StatusBadRequest, fmt.Sprintf("malformed query string: %v", err))
		return
	}
	topics, code, reason := h.parseSelectors(q)
	if code != 0 {
		h.refuse(w, "subscribe", "invalid_selector", code, reason)
		return
	}
	if err := broker.CheckSelectors(topics); err != nil {
		h.refuse(w, "subscribe", "selector_too_large", http.StatusBadRequest, "topic selector refused: "+selectorReason(err))
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
			h.missingToken(w)
			return
		}
	case err != nil:
		h.authFailed("subscribe", err)
		h.log.Debug("hub: subscribe: token refused", "err", err)
		challenge(w, http.StatusUnauthorized, "invalid_token", "%s", tokenReason(err))
		return
	default:
		if private := h.claimSelectors(claims, "subscribe"); private != nil {
			if _, err := broker.NewMatcher(private); err != nil {
				h.authFails.add("subscribe", "bad_selector")
				challenge(w, http.StatusUnauthorized, "invalid_token", "invalid access token: bad subscribe selector: %s", selectorReason(err))
				return
			}
			sub.Private = private
		}
	}
	if claims != nil {
		sub.Until = claims.ExpiresAt // the stream ends when the token does
	}
	if _, err := broker.NewMatcher(topics); err != nil {
		h.refuse(w, "subscribe", "invalid_selector", http.StatusBadRequest, "invalid topic selector: "+selectorReason(err))
		return
	}
	if h.feed != nil {
		sub.Subscriber = subscriberID(claims)
		sub.Payload = h.subscribePayload(claims, topics)
	}
	if r.Method == http.MethodHead {
		hdr := w.Header()
		hdr.Set("Content-Type", "text/event-stream")
		hdr.Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		return
	}

	if err := h.b.Subscribe(w, r, sub); err != nil {
		h.log.Debug("hub: subscription ended", "err", err, "topics", topics)
	}
}

// parseSelectors returns the broker selectors of a subscription request,
// or the status and reason of its first defect. Two generations of the
// protocol are understood, one per request:
//
//   - Mercure 0.x: repeatable "topic" (an exact topic, "*" or an RFC 6570
//     URI template);
//   - Mercure 1.0: repeatable "match" and "matchExact" (exact topics) and
//     "matchURLPattern" (WHATWG URL patterns), plus "match_exact" and
//     "match_urlpattern", the names of earlier 1.0 drafts. Any other name
//     that starts with "match" in any case is refused, as 1.0 requires, so
//     that a misspelled matcher type fails loudly.
//
// Mercure 1.0 does not define "topic" and 0.x does not define "match":
// a request with both is refused rather than half ignored.
func (h *Hub) parseSelectors(q url.Values) (selectors []string, code int, reason string) {
	var n1 int
	for name, vals := range q {
		if !strings.HasPrefix(strings.ToLower(name), "match") {
			continue
		}
		typ := matchParamType(name)
		if typ == "" {
			return nil, http.StatusBadRequest, fmt.Sprintf("unknown matcher parameter %q: use match, matchExact or matchURLPattern", name)
		}
		n1 += len(vals)
	}
	topics := q["topic"]
	switch {
	case len(topics) > 0 && n1 > 0:
		return nil, http.StatusBadRequest, `"topic" (Mercure 0.x) and "match" parameters (Mercure 1.0) cannot be mixed in one request`
	case len(topics) == 0 && n1 == 0:
		return nil, http.StatusBadRequest, `missing "topic" or "match" query parameter`
	case len(topics)+n1 > h.maxTopic:
		return nil, http.StatusBadRequest, fmt.Sprintf("too many topic selectors: %d, at most %d", len(topics)+n1, h.maxTopic)
	}
	if len(topics) > 0 {
		for _, t := range topics {
			if why := validTopic(t); why != "" {
				return nil, http.StatusBadRequest, why
			}
		}
		return topics, 0, ""
	}
	// Mercure 1.0, in a stable order: the parameter names in their order of
	// matchParamNames, each parameter's values in request order.
	selectors = make([]string, 0, n1)
	for _, name := range matchParamNames {
		for _, v := range q[name] {
			if why := validTopic(v); why != "" {
				return nil, http.StatusBadRequest, fmt.Sprintf("%s: %s", name, why)
			}
			selectors = append(selectors, h.selector(matchParamType(name), v))
		}
	}
	return selectors, 0, ""
}

// matchParamNames are the Mercure 1.0 matcher parameters.
var matchParamNames = [...]string{"match", "matchExact", "match_exact", "matchURLPattern", "match_urlpattern"}

// matchParamType is the matcher type of the query parameter name, or "".
func matchParamType(name string) string {
	switch name {
	case "match", "matchExact", "match_exact":
		return matchExact
	case "matchURLPattern", "match_urlpattern":
		return matchURLPattern
	}
	return ""
}

// refuse counts a refusal of op for label and answers it with code and
// reason.
func (h *Hub) refuse(w http.ResponseWriter, op, label string, code int, reason string) {
	h.refusals.add(op, label)
	fail(w, code, "%s", reason)
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
// headers), else last_event_id (earlier Mercure 1.0 drafts), else the
// legacy Last-Event-ID query parameter. The header wins when several are
// present.
func lastEventID(r *http.Request, q url.Values) string {
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		return id
	}
	for _, name := range [...]string{"lastEventID", "last_event_id", "Last-Event-ID"} {
		if id := q.Get(name); id != "" {
			return id
		}
	}
	return ""
}
