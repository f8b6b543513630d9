package hub

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/herald-sse/herald/auth"
	"github.com/herald-sse/herald/broker"
)

// subscribe handles GET: topic selectors, replay position, optional token,
// then hands the stream to the broker.
func (h *Hub) subscribe(w http.ResponseWriter, r *http.Request) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		fail(w, http.StatusBadRequest, "malformed query string: %v", err)
		return
	}
	topics := q["topic"]
	if len(topics) == 0 {
		fail(w, http.StatusBadRequest, `missing "topic" query parameter`)
		return
	}
	if len(topics) > h.maxTopic {
		fail(w, http.StatusBadRequest, "too many topic selectors: %d, at most %d", len(topics), h.maxTopic)
		return
	}
	for _, t := range topics {
		if why := validTopic(t); why != "" {
			fail(w, http.StatusBadRequest, "%s", why)
			return
		}
	}
	if _, err := broker.NewMatcher(topics); err != nil {
		fail(w, http.StatusBadRequest, "invalid topic selector: %s", strings.TrimPrefix(err.Error(), "broker: "))
		return
	}
	sub := broker.Subscription{Topics: topics, LastEventID: lastEventID(r, q)}

	claims, err := authenticate(h.sub, r, "subscriber")
	switch {
	case errors.Is(err, auth.ErrNoToken):
		if h.reqToken {
			challenge(w, http.StatusUnauthorized, "", "missing access token")
			return
		}
	case err != nil:
		h.log.Debug("hub: subscribe: token refused", "err", err)
		challenge(w, http.StatusUnauthorized, "invalid_token", "%s", tokenReason(err))
		return
	case claims.Subscribe != nil:
		if _, err := broker.NewMatcher(claims.Subscribe); err != nil {
			challenge(w, http.StatusUnauthorized, "invalid_token", "invalid access token: bad subscribe selector: %s", strings.TrimPrefix(err.Error(), "broker: "))
			return
		}
		sub.Private = claims.Subscribe
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
