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
	"github.com/herald-sse/herald/store"
	"github.com/herald-sse/herald/store/memstore"
)

// Path is the Mercure endpoint served by a [Hub].
const Path = "/.well-known/mercure"

// HealthPath is the health check endpoint served by a [Hub].
const HealthPath = "/healthz"

// DefaultMaxBodyBytes is the publish body limit when [Config.MaxBodyBytes]
// is zero.
const DefaultMaxBodyBytes = 1 << 20

// DefaultBaseURL is the base URL of relative Mercure 1.0 URL patterns and
// topics when [Config.BaseURL] is empty. ".invalid" (RFC 6761) cannot be a
// real host, so no absolute topic resolves to it by accident.
const DefaultBaseURL = "https://herald.invalid" + Path

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
	// MaxBatch limits the updates of one batch publish (Content-Type
	// [BatchType]); more are refused with 413 before any is stored. Zero
	// means [DefaultMaxBatch] (1000).
	MaxBatch int
	// MaxBatchBytes limits the size of a batch publish body; larger bodies
	// are refused with 413 before any update is stored. Each update (one
	// line) is also limited to MaxBodyBytes. Zero means
	// [DefaultMaxBatchBytes] (8 MiB).
	MaxBatchBytes int64
	// MaxTopics limits the topic selectors of one subscription request;
	// more are refused with 400. Zero means [DefaultMaxTopics].
	MaxTopics int
	// CORSOrigins are the exact origins ("https://app.example.com", scheme,
	// host and optional port) whose browser pages may subscribe and publish
	// cross-origin, with credentials (cookies). Nil allows no cross-origin
	// access. "*" is refused: an arbitrary origin is never allowed with
	// credentials.
	CORSOrigins []string
	// PublisherVerifier, if not nil, verifies publishers' tokens instead of
	// a verifier built from PublisherKey: use it for public keys, JWKS,
	// issuer and audience checks (see [auth.Config]). The hub does not
	// close it.
	PublisherVerifier *auth.Verifier
	// SubscriberVerifier, if not nil, verifies subscribers' tokens instead
	// of a verifier built from SubscriberKey. Nil falls back to
	// SubscriberKey, then to the publishers' verifier.
	SubscriberVerifier *auth.Verifier
	// BaseURL is the hub's own URL (".../.well-known/mercure"), against
	// which Mercure 1.0 URL patterns and topics that are relative are
	// resolved. It never comes from the request (a client could otherwise
	// widen what its token's relative patterns match). Empty means
	// [DefaultBaseURL], under which relative patterns match relative
	// topics and absolute ones absolute topics.
	BaseURL string
	// AllowReusedIDs accepts a publish whose id an earlier update already
	// has: the hub ignores the publisher's id and assigns its own (which
	// the response carries), as Mercure lets a hub do. False answers 409,
	// which keeps every id naming one update, so that Last-Event-ID is
	// never ambiguous.
	AllowReusedIDs bool
	// Resource is the hub's OAuth 2.0 resource identifier (the aud of its
	// access tokens), announced in the protected resource metadata served
	// at [ResourceMetadataPath]. Empty omits it.
	Resource string
	// AuthorizationServers are the issuers of the hub's tokens, announced
	// in the protected resource metadata. Nil omits them (self-issued
	// tokens).
	AuthorizationServers []string
	// Logger receives the hub's logs. Nil discards them.
	Logger *slog.Logger
	// Subscriptions turns on Mercure's active subscriptions: a private
	// subscription event is sent to the streams subscribed to
	// /.well-known/mercure/subscriptions/{topic}/{subscriber} when a
	// subscription starts or ends, and GET [SubscriptionsPath] (and below
	// it) lists the active ones. The events are live only: they are not
	// stored in the history, carry no id, and are not replayed. The broker must report its streams to
	// [Hub.OnSubscription] (set [broker.Config.OnSubscription]), and the
	// caller must call [Hub.Close]. False answers 404 on those paths and
	// publishes nothing.
	Subscriptions bool
	// Presence is the registry of active subscriptions when Subscriptions
	// is set. Give every hub of a cluster the same shared registry
	// (redisstore.NewPresence, natsstore.NewPresence) so that each lists
	// every hub's subscribers and a crashed hub's subscriptions expire
	// with an event. Nil means an in-process registry: this hub's
	// subscribers only. [Hub.Close] removes this hub's entries from it but
	// does not close a registry given here.
	Presence store.Presence
}

// Hub is the Mercure HTTP handler. It is a plain [http.Handler]: mount it
// at the root of a server (it serves [Path], [SubscriptionsPath] and
// [HealthPath] and answers 404 elsewhere) or route only those paths to it.
// A Hub is safe for concurrent use. It does not own its broker: the caller
// shuts the broker down, after [Hub.Close].
type Hub struct {
	b             *broker.Broker
	pub           *auth.Verifier // nil: no publisher key
	sub           *auth.Verifier // nil: no subscriber key
	origins       map[string]bool
	csrf          *http.CrossOriginProtection
	maxBody       int64
	maxTopic      int
	maxBatch      int
	maxBatchBytes int64
	log           *slog.Logger
	reqToken      bool
	anonPub       bool
	base          string
	reuseIDs      bool

	resource    string
	authServers []string
	metadata    string // the absolute URL of the resource metadata, or ""

	matchers  matcherCache  // publish matchers by token claims (pubcache.go)
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
		b:             b,
		origins:       make(map[string]bool, len(cfg.CORSOrigins)),
		csrf:          http.NewCrossOriginProtection(),
		maxBody:       cfg.MaxBodyBytes,
		maxTopic:      cfg.MaxTopics,
		maxBatch:      cfg.MaxBatch,
		maxBatchBytes: cfg.MaxBatchBytes,
		log:           cfg.Logger,
		reqToken:      cfg.RequireSubscriberToken,
		anonPub:       cfg.PublishAnonymous,
		base:          cfg.BaseURL,
		reuseIDs:      cfg.AllowReusedIDs,

		resource:    cfg.Resource,
		authServers: slices.Clone(cfg.AuthorizationServers),
		metadata:    metadataURL(cfg.Resource),
	}
	if h.base == "" {
		h.base = DefaultBaseURL
	}
	if u, err := url.Parse(h.base); err != nil || !u.IsAbs() || u.Host == "" || strings.ContainsRune(h.base, 0) {
		return nil, fmt.Errorf("hub: BaseURL %q is not an absolute URL", cfg.BaseURL)
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
	switch {
	case h.maxBatch == 0:
		h.maxBatch = DefaultMaxBatch
	case h.maxBatch < 0:
		return nil, fmt.Errorf("hub: negative MaxBatch %d", h.maxBatch)
	}
	switch {
	case h.maxBatchBytes == 0:
		h.maxBatchBytes = DefaultMaxBatchBytes
	case h.maxBatchBytes < 0:
		return nil, fmt.Errorf("hub: negative MaxBatchBytes %d", h.maxBatchBytes)
	}
	var err error
	switch {
	case cfg.PublisherVerifier != nil:
		h.pub = cfg.PublisherVerifier
	case len(cfg.PublisherKey) > 0:
		if h.pub, err = auth.NewVerifier(auth.Config{Key: cfg.PublisherKey}); err != nil {
			return nil, fmt.Errorf("hub: publisher key: %w", err)
		}
	}
	switch {
	case cfg.SubscriberVerifier != nil:
		h.sub = cfg.SubscriberVerifier
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
		reg, own := cfg.Presence, false
		if reg == nil {
			reg, own = memstore.NewPresence(), true
		}
		h.feed = newPresenceFeed(h, reg, own) // last: nothing can fail after it starts
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
		case http.MethodGet, http.MethodHead:
			h.subscribe(w, r)
		case http.MethodPost:
			h.publish(w, r)
		case http.MethodOptions:
			h.preflight(w, r, "GET, HEAD, POST, OPTIONS", http.MethodGet, http.MethodPost)
		default:
			w.Header().Set("Allow", "GET, HEAD, POST, OPTIONS")
			fail(w, http.StatusMethodNotAllowed, "method %s not allowed", r.Method)
		}
	case ResourceMetadataPath:
		h.serveResourceMetadata(w, r)
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
	hdr.Set("Access-Control-Expose-Headers", "Last-Event-ID, Mercure-Last-Event-ID")
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

// challenge answers with an RFC 6750 Bearer challenge; bearerErr is the
// error code ("invalid_token", "insufficient_scope", "invalid_request"),
// or "" when no token was presented. The error_description is the same
// one-line reason as the body: it names the rule that refused, never a key
// or the token.
func challenge(w http.ResponseWriter, code int, bearerErr string, format string, args ...any) {
	v := "Bearer"
	if bearerErr != "" {
		v += ` error="` + bearerErr + `", error_description="` + quoteSafe(fmt.Sprintf(format, args...)) + `"`
	}
	w.Header().Set("WWW-Authenticate", v)
	fail(w, code, format, args...)
}

// quoteSafe makes s fit an RFC 6750 quoted error_description: printable
// ASCII without quote and backslash (RFC 6750 section 3 allows %x20-21 / %x23-5B
// / %x5D-7E), anything else becomes '?'.
func quoteSafe(s string) string {
	const maxLen = 200
	b := make([]byte, 0, min(len(s), maxLen))
	for i := 0; i < len(s) && len(b) < maxLen; i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			c = '?'
		}
		b = append(b, c)
	}
	return string(b)
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
