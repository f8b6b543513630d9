package hub

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/herald-sse/herald/auth"
	"github.com/herald-sse/herald/store"
)

const formType = "application/x-www-form-urlencoded"

// publish handles POST: cross-origin check, authentication, body parsing,
// validation, topic authorization, then broker.Publish. Every check runs
// before anything is appended.
func (h *Hub) publish(w http.ResponseWriter, r *http.Request) {
	// Refuse cross-origin browser POSTs (CSRF, with a cookie token or with
	// PublishAnonymous) unless the origin is one of CORSOrigins.
	if err := h.csrf.Check(r); err != nil {
		h.refusals.add("publish", "cross_origin")
		fail(w, http.StatusForbidden, "cross-origin publish refused: origin not allowed")
		return
	}
	claims, ok := h.authenticatePublisher(w, r)
	if !ok {
		return
	}
	// The exact form type, by far the most common, skips the parser.
	if ct := r.Header.Get("Content-Type"); ct != formType {
		mt, _, err := mime.ParseMediaType(ct)
		if err == nil && mt == BatchType {
			h.publishBatch(w, r, claims) // batch.go
			return
		}
		if err != nil || mt != formType {
			w.Header().Set("Accept-Post", formType+", "+BatchType)
			h.refusals.add("publish", "content_type")
			if strings.HasPrefix(mt, "multipart/") {
				fail(w, http.StatusUnsupportedMediaType, "multipart bodies are not supported: use %s", formType)
				return
			}
			fail(w, http.StatusUnsupportedMediaType, "Content-Type must be %s", formType)
			return
		}
	}
	buf := bodyBufs.Get().(*bytes.Buffer)
	defer putBodyBuf(buf)
	buf.Reset()
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		if mbe, ok := errors.AsType[*http.MaxBytesError](err); ok {
			h.refusals.add("publish", "body_too_large")
			fail(w, http.StatusRequestEntityTooLarge, "request body larger than %d bytes", mbe.Limit)
			return
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// The server's body read deadline passed: a slow or absent body.
			h.refuse(w, "publish", "body_timeout", http.StatusRequestTimeout, "request body not received in time")
			return
		}
		h.refuse(w, "publish", "body_read", http.StatusBadRequest, fmt.Sprintf("reading request body: %v", err))
		return
	}
	form, err := url.ParseQuery(buf.String())
	if err != nil {
		h.refuse(w, "publish", "malformed_form", http.StatusBadRequest, fmt.Sprintf("malformed form body: %v", err))
		return
	}
	u, code, reason := parseUpdate(form, r.Host)
	if code != 0 {
		h.refuse(w, "publish", "invalid_update", code, reason)
		return
	}
	if claims != nil && claims.Style == auth.StyleAccessToken && len(u.Topics) > 1 {
		fail(w, http.StatusBadRequest, `a Mercure 1.0 update has exactly one "topic" field, got %d`, len(u.Topics))
		return
	}
	if claims != nil {
		m, err := h.publishMatcher(claims)
		if err != nil {
			h.authFails.add("publish", "bad_selector")
			challenge(w, http.StatusUnauthorized, "invalid_token", "invalid access token: bad publish selector: %s", strings.TrimPrefix(err.Error(), "broker: "))
			return
		}
		if t, ok := allowed(m, u.Topics); !ok {
			h.authFails.add("publish", "insufficient_scope")
			challenge(w, http.StatusForbidden, "insufficient_scope", "not authorized to publish to topic %q", t)
			return
		}
	}

	if u.ID == "" {
		// Minted here rather than by the store, so that a 504 can name
		// the id to retry with.
		u.ID = store.NewID()
	}
	stored, err := h.b.Publish(r.Context(), u)
	if h.reuseIDs && errors.Is(err, store.ErrDuplicateID) {
		u.ID = "" // Config.AllowReusedIDs: the hub assigns its own id
		stored, err = h.b.Publish(r.Context(), u)
	}
	if err != nil {
		code, reason := h.publishFailure(r.Context(), err, u.ID)
		switch code {
		case http.StatusConflict:
			h.refuse(w, "publish", "duplicate_id", code, reason)
		case http.StatusBadRequest:
			h.refuse(w, "publish", "invalid_update", code, reason)
		default:
			fail(w, code, "%s", reason)
		}
		return
	}
	if h.log.Enabled(r.Context(), slog.LevelDebug) { // spares boxing the topics
		h.log.Debug("hub: published", "id", stored.ID, "topics", stored.Topics, "private", stored.Private)
	}
	hdr := w.Header()
	hdr["Content-Type"] = textPlain
	hdr["X-Content-Type-Options"] = noSniff
	_, _ = io.WriteString(w, stored.ID)
}

// storeReason returns the last part of a store error's message, without
// the package prefixes, for a client.
func storeReason(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 && strings.HasPrefix(msg[i+2:], "store: ") {
		msg = msg[:i] // "...: too big: store: invalid update" → "...: too big"
	}
	if i := strings.Index(msg, "append: "); i >= 0 {
		msg = msg[i+len("append: "):]
	}
	return msg
}

// Header values of every successful publish, shared: net/http copies the
// header map before it writes it and never modifies a value slice.
var (
	textPlain = []string{"text/plain; charset=utf-8"}
	noSniff   = []string{"nosniff"}
)

// bodyBufs recycles the buffers publish bodies are read into; the form
// parser copies what it keeps.
var bodyBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBody is the largest buffer put back in bodyBufs, so one huge
// publish does not pin its buffer.
const maxPooledBody = 64 << 10

func putBodyBuf(b *bytes.Buffer) {
	if b.Cap() <= maxPooledBody {
		bodyBufs.Put(b)
	}
}

// authenticatePublisher returns the publisher's claims, nil claims for an
// allowed anonymous publisher, or answers the request and returns false.
func (h *Hub) authenticatePublisher(w http.ResponseWriter, r *http.Request) (*auth.Claims, bool) {
	if name := queryToken(r); name != "" {
		// Issue 11.6: URLs end up in proxy logs and browser history. Only
		// subscribers, whose EventSource cannot set headers, may use them.
		challenge(w, http.StatusBadRequest, "invalid_request", "access token in the %q query parameter refused for publishing: send it in the Authorization header", name)
		return nil, false
	}
	claims, err := authenticate(h.pub, r, "publisher")
	if err != nil && (!errors.Is(err, auth.ErrNoToken) || !h.anonPub) {
		h.authFailed("publish", err)
	}
	switch {
	case err == nil:
		return claims, true
	case errors.Is(err, auth.ErrNoToken) && h.anonPub:
		return nil, true
	case errors.Is(err, auth.ErrNoToken) && h.pub == nil:
		fail(w, http.StatusForbidden, "publishing is disabled: no publisher key is configured")
	case errors.Is(err, auth.ErrNoToken):
		h.missingToken(w)
	default:
		h.log.Debug("hub: publish: token refused", "err", err)
		challenge(w, http.StatusUnauthorized, "invalid_token", "%s", tokenReason(err))
	}
	return nil, false
}

// queryToken returns the name of the query parameter of r that carries an
// access token, or "".
func queryToken(r *http.Request) string {
	if r.URL == nil || r.URL.RawQuery == "" {
		return ""
	}
	q := r.URL.Query()
	for _, name := range [...]string{"authorization", "access_token"} {
		if q.Has(name) {
			return name
		}
	}
	return ""
}

// parseUpdate builds an update from the publish form, or returns the status
// and reason of its first defect. Unknown fields are ignored: Mercure
// allows extensions.
func parseUpdate(f url.Values, host string) (u store.Update, code int, reason string) {
	bad := func(format string, args ...any) (store.Update, int, string) {
		return store.Update{}, http.StatusBadRequest, fmt.Sprintf(format, args...)
	}
	u.Topics = f["topic"]
	if len(u.Topics) == 0 {
		return bad(`missing "topic" field`)
	}
	for _, t := range u.Topics {
		if why := validTopic(t); why != "" {
			return bad("%s", why)
		}
		if t == "*" {
			return bad(`topic "*" is the wildcard of subscribers: an update cannot be published to it`)
		}
	}
	for _, name := range [...]string{"data", "id", "type", "retry"} {
		if len(f[name]) > 1 {
			return bad("field %q given more than once", name)
		}
	}

	u.ID = f.Get("id")
	switch {
	case strings.HasPrefix(u.ID, "#"):
		return bad(`"id" must not start with '#'`)
	case len(u.ID) > store.MaxIDLen:
		return bad(`"id" is longer than %d bytes (%d)`, store.MaxIDLen, len(u.ID))
	case strings.ContainsAny(u.ID, "\r\n\x00"):
		return bad(`"id" must not contain CR, LF or NUL`)
	case strings.ContainsFunc(u.ID, isControl):
		return bad(`"id" must not contain control characters`)
	case !utf8.ValidString(u.ID):
		return bad(`"id" is not valid UTF-8`)
	case u.ID == "earliest":
		return bad(`"id" "earliest" is reserved for replay requests`)
	}
	u.Type = f.Get("type")
	switch {
	case strings.ContainsAny(u.Type, "\r\n"):
		return bad(`"type" must not contain CR or LF`)
	case !utf8.ValidString(u.Type):
		return bad(`"type" is not valid UTF-8`)
	case u.Type == "mercure":
		return bad(`"type" "mercure" is reserved for the hub's own events`)
	}
	if s := f.Get("retry"); s != "" {
		if strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
			return bad(`"retry" must be ASCII digits (milliseconds)`)
		}
		ms, err := strconv.ParseInt(s, 10, 64)
		if err != nil || ms > math.MaxInt64/int64(time.Millisecond) {
			return bad(`"retry" is too large`)
		}
		u.Retry = time.Duration(ms) * time.Millisecond
	}
	u.Data = f.Get("data")
	if !utf8.ValidString(u.Data) {
		return bad(`"data" is not valid UTF-8`)
	}
	u.Private = f.Has("private")

	for _, t := range u.Topics {
		if reserved(t, host) {
			return store.Update{}, http.StatusForbidden, fmt.Sprintf("topic %q is in the hub's reserved %s namespace", t, Path)
		}
	}
	return u, 0, ""
}

// reserved reports whether topic addresses the hub's own namespace (the
// path /.well-known/mercure or below it, after percent-decoding and
// dot-segment removal, whatever the scheme and host), which is kept for
// events the hub itself generates. Only absolute URLs and absolute paths
// are checked, so that plain relative topic names such as "mercure" stay
// usable.
func reserved(topic, host string) bool {
	if !strings.Contains(topic, ".well-known") && !strings.Contains(topic, "%") {
		return false // the fast path: no way to spell the reserved path
	}
	u, err := url.Parse(topic)
	if err != nil || (!u.IsAbs() && !strings.HasPrefix(topic, "/")) {
		return false
	}
	base := &url.URL{Scheme: "https", Host: host, Path: Path}
	p := base.ResolveReference(u).Path
	return p == Path || strings.HasPrefix(p, Path+"/")
}
