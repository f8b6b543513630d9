package hub

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/herald-sse/herald/auth"
	"github.com/herald-sse/herald/broker"
)

// Path is the Mercure endpoint served by a [Hub].
const Path = "/.well-known/mercure"

// HealthPath is the health check endpoint served by a [Hub].
const HealthPath = "/healthz"

// DefaultMaxBodyBytes is the publish body limit when [Config.MaxBodyBytes]
// is zero.
const DefaultMaxBodyBytes = 1 << 20

// DefaultMaxTopics is the limit of topic selectors in one subscription
// request when [Config.MaxTopics] is zero.
const DefaultMaxTopics = 100

// Config configures a [Hub]. The zero value is valid: it serves anonymous
// subscribers public updates and refuses every publication.
type Config struct {
	// PublisherKey is the HS256 secret that signs publishers' tokens (at
	// least 32 bytes). Nil or empty refuses every publication with 403 and says why,
	// unless PublishAnonymous is set.
	PublisherKey []byte
	// SubscriberKey is the HS256 secret that signs subscribers' tokens (at
	// least 32 bytes). Nil or empty means PublisherKey. When both are empty, only
	// anonymous subscriptions to public updates are possible and a request
	// that presents a token is refused with 401.
	SubscriberKey []byte
	// RequireSubscriberToken refuses subscribers without a valid token
	// (401). False serves anonymous subscribers the public updates.
	RequireSubscriberToken bool
	// PublishAnonymous lets requests without a token publish to any topic,
	// private ones included. DANGEROUS: anyone who can reach the hub can
	// then publish anything; enable it only on a trusted network. A token
	// that is presented is still verified and must authorize the topics.
	PublishAnonymous bool
	// MaxBodyBytes limits the size of a publish request body; larger
	// bodies are refused with 413. Zero means [DefaultMaxBodyBytes] (1 MiB).
	MaxBodyBytes int64
	// MaxTopics limits the topic selectors of one subscription request;
	// more are refused with 400. Zero means [DefaultMaxTopics].
	MaxTopics int
	// CORSOrigins are the exact origins ("https://app.example.com", scheme,
	// host and optional port) whose browser pages may subscribe and publish
	// cross-origin, with credentials (cookies). Nil allows no cross-origin
	// access. "*" is refused: an arbitrary origin is never allowed with
	// credentials.
	CORSOrigins []string
	// Logger receives the hub's logs. Nil discards them.
	Logger *slog.Logger
	// Subscriptions turns on Mercure's active subscriptions: a private
	// subscription event is published to
	// /.well-known/mercure/subscriptions/{topic}/{subscriber} when a
	// subscription starts or ends, and GET [SubscriptionsPath] (and below
	// it) lists the active ones. The broker must report its streams to
	// [Hub.OnSubscription] (set [broker.Config.OnSubscription]), and the
	// caller must call [Hub.Close]. False answers 404 on those paths and
	// publishes nothing.
	Subscriptions bool
}

// Hub is the Mercure HTTP handler. It is a plain [http.Handler]: mount it
// at the root of a server (it serves [Path], [SubscriptionsPath] and
// [HealthPath] and answers 404 elsewhere) or route only those paths to it.
// A Hub is safe for concurrent use. It does not own its broker: the caller
// shuts the broker down, after [Hub.Close].
type Hub struct {
	b        *broker.Broker
	pub      *auth.Verifier // nil: no publisher key
	sub      *auth.Verifier // nil: no subscriber key
	origins  map[string]bool
	csrf     *http.CrossOriginProtection
	maxBody  int64
	maxTopic int
	log      *slog.Logger
	reqToken bool
	anonPub  bool

	feed      *presenceFeed // nil unless Config.Subscriptions
	closeOnce sync.Once

	refusals  counters // see Refusals
	authFails counters // see AuthFailures
}

// New validates cfg and returns a hub that serves b. The hub keeps its own
// copy of cfg. With [Config.Subscriptions] it starts the goroutine that
// publishes subscription events, which [Hub.Close] stops.
func New(b *broker.Broker, cfg Config) (*Hub, error) {
	if b == nil {
		return nil, errors.New("hub: nil broker")
	}
	h := &Hub{
		b:        b,
		origins:  make(map[string]bool, len(cfg.CORSOrigins)),
		csrf:     http.NewCrossOriginProtection(),
		maxBody:  cfg.MaxBodyBytes,
		maxTopic: cfg.MaxTopics,
		log:      cfg.Logger,
		reqToken: cfg.RequireSubscriberToken,
		anonPub:  cfg.PublishAnonymous,
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	switch {
	case h.maxBody == 0:
		h.maxBody = DefaultMaxBodyBytes
	case h.maxBody < 0:
		return nil, fmt.Errorf("hub: negative MaxBodyBytes %d", h.maxBody)
	}
	switch {
	case h.maxTopic == 0:
		h.maxTopic = DefaultMaxTopics
	case h.maxTopic < 0:
		return nil, fmt.Errorf("hub: negative MaxTopics %d", h.maxTopic)
	}
	var err error
	if len(cfg.PublisherKey) > 0 {
		if h.pub, err = auth.NewVerifier(auth.Config{Key: cfg.PublisherKey}); err != nil {
			return nil, fmt.Errorf("hub: publisher key: %w", err)
		}
	}
	switch {
	case len(cfg.SubscriberKey) > 0:
		if h.sub, err = auth.NewVerifier(auth.Config{Key: cfg.SubscriberKey}); err != nil {
			return nil, fmt.Errorf("hub: subscriber key: %w", err)
		}
	default:
		h.sub = h.pub
	}
	if h.sub == nil && h.reqToken {
		return nil, errors.New("hub: RequireSubscriberToken needs SubscriberKey or PublisherKey")
	}
	for _, o := range cfg.CORSOrigins {
		origin, err := parseOrigin(o)
		if err != nil {
			return nil, err
		}
		if err := h.csrf.AddTrustedOrigin(origin); err != nil {
			return nil, fmt.Errorf("hub: CORS origin %q: %w", o, err)
		}
		h.origins[origin] = true
	}
	if cfg.Subscriptions {
		h.feed = newPresenceFeed(h) // last: nothing can fail after it starts
	}
	return h, nil
}

// parseOrigin checks that o is a serialized origin (scheme://host[:port])
// and returns it in the lowercase form browsers send.
func parseOrigin(o string) (string, error) {
	if o == "*" || o == "null" {
		return "", fmt.Errorf("hub: CORS origin %q not allowed: list exact origins", o)
	}
	u, err := url.Parse(o)
	if err != nil {
		return "", fmt.Errorf("hub: CORS origin %q: %w", o, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" || strings.HasSuffix(o, "?") || strings.HasSuffix(o, "#") {
		return "", fmt.Errorf("hub: CORS origin %q: want scheme://host[:port]", o)
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}

// ServeHTTP routes r to the subscribe, publish, preflight, subscriptions
// and health handlers.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case Path:
		h.setCORS(w, r)
		switch r.Method {
		case http.MethodGet:
			h.subscribe(w, r)
		case http.MethodPost:
			h.publish(w, r)
		case http.MethodOptions:
			h.preflight(w, r, "GET, POST, OPTIONS", http.MethodGet, http.MethodPost)
		default:
			w.Header().Set("Allow", "GET, POST, OPTIONS")
			fail(w, http.StatusMethodNotAllowed, "method %s not allowed", r.Method)
		}
	case HealthPath:
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			fail(w, http.StatusMethodNotAllowed, "method %s not allowed", r.Method)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if r.Method == http.MethodGet {
			_, _ = w.Write([]byte("ok"))
		}
	default:
		if h.feed != nil && isSubscriptionsPath(r.URL.EscapedPath()) {
			h.subscriptions(w, r)
			return
		}
		fail(w, http.StatusNotFound, "not found")
	}
}

// setCORS adds the CORS response headers when r comes from an allowed
// origin. Responses to a disallowed origin carry none, so the browser hides
// them from the page.
func (h *Hub) setCORS(w http.ResponseWriter, r *http.Request) {
	if len(h.origins) == 0 {
		return
	}
	hdr := w.Header()
	hdr.Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	if !h.origins[origin] {
		return
	}
	hdr.Set("Access-Control-Allow-Origin", origin)
	hdr.Set("Access-Control-Allow-Credentials", "true")
	hdr.Set("Access-Control-Expose-Headers", "Last-Event-ID")
}

// preflight answers OPTIONS: a CORS preflight from an allowed origin for
// one of methods gets 204 with those methods and the headers a Mercure
// client uses; one from another origin, or for another method, gets 403. A
// plain OPTIONS gets 204 with Allow set to allow.
func (h *Hub) preflight(w http.ResponseWriter, r *http.Request, allow string, methods ...string) {
	hdr := w.Header()
	hdr.Set("Allow", allow)
	reqMethod := r.Header.Get("Access-Control-Request-Method")
	if r.Header.Get("Origin") == "" || reqMethod == "" {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	hdr.Add("Vary", "Access-Control-Request-Method")
	hdr.Add("Vary", "Access-Control-Request-Headers")
	if !h.origins[r.Header.Get("Origin")] {
		fail(w, http.StatusForbidden, "origin %q not allowed", r.Header.Get("Origin"))
		return
	}
	if !slices.Contains(methods, reqMethod) {
		fail(w, http.StatusForbidden, "method %q not allowed", reqMethod)
		return
	}
	hdr.Set("Access-Control-Allow-Methods", strings.Join(methods, ", "))
	hdr.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Last-Event-ID, Cache-Control")
	hdr.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}

// fail answers an error: status code, text/plain, and a one-line reason.
func fail(w http.ResponseWriter, code int, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	msg = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, msg)
	http.Error(w, msg, code)
}

// challenge answers 401 or 403 with a Bearer challenge; bearerErr is the
// RFC 6750 error code, or "" when no token was presented.
func challenge(w http.ResponseWriter, code int, bearerErr string, format string, args ...any) {
	v := "Bearer"
	if bearerErr != "" {
		v += ` error="` + bearerErr + `"`
	}
	w.Header().Set("WWW-Authenticate", v)
	fail(w, code, format, args...)
}

// authenticate verifies the token of r with v. A nil v (no key configured)
// refuses any token that is presented. It returns auth.ErrNoToken when r
// carries none.
func authenticate(v *auth.Verifier, r *http.Request, role string) (*auth.Claims, error) {
	if v != nil {
		c, _, err := v.Authenticate(r)
		return c, err
	}
	if _, src := auth.TokenFromRequest(r); src != auth.SourceNone {
		return nil, fmt.Errorf("%w: no %s key is configured", auth.ErrInvalidToken, role)
	}
	return nil, auth.ErrNoToken
}

// tokenReason is the one-line reason for a token that failed verification.
func tokenReason(err error) string {
	return "invalid access token: " + strings.TrimPrefix(strings.TrimPrefix(err.Error(), auth.ErrInvalidToken.Error()), ": ")
}

// validTopic reports why t cannot be a topic or selector, or "" if it can:
// Mercure topics are non-empty UTF-8 without C0, C1 or DEL controls.
func validTopic(t string) string {
	if t == "" {
		return "empty topic"
	}
	if !utf8.ValidString(t) {
		return fmt.Sprintf("topic %q is not valid UTF-8", t)
	}
	for _, r := range t {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) {
			return fmt.Sprintf("topic %q contains a control character", t)
		}
	}
	return ""
}

// allowed reports whether every topic matches m and, when one does not,
// returns it.
func allowed(m *broker.Matcher, topics []string) (string, bool) {
	if i := slices.IndexFunc(topics, func(t string) bool { return !m.Match(t) }); i >= 0 {
		return topics[i], false
	}
	return "", true
}
