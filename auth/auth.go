// Package auth verifies and mints the JSON Web Tokens that authorize
// publishers and subscribers of a Mercure hub.
//
// A token carries the classic Mercure claim:
//
//	{"mercure": {"publish": ["https://example.com/books/{id}"], "subscribe": ["*"], "payload": {...}}}
//
// "publish" lists the topic selectors the bearer may publish to, "subscribe"
// the selectors of the private updates it may receive, and "payload" is
// free-form data about the subscriber. A token without a "mercure" claim is
// valid but grants nothing.
//
// A [Verifier] checks the signature against a configured key with an
// explicit algorithm allowlist ("none" is never accepted, and the algorithm
// must match the kind of key, so an HMAC secret can never verify an RS256
// token), enforces exp and nbf with a small leeway, and decodes the claims.
// [TokenFromRequest] finds the token of an HTTP request, and [Sign] mints
// tokens for the herald token command and for tests.
package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Sentinel errors returned by [Verifier.Verify] and [Verifier.Authenticate].
// Callers use errors.Is: the returned errors wrap them with the cause.
var (
	// ErrNoToken reports that the request carries no token at all.
	ErrNoToken = errors.New("auth: no token")
	// ErrInvalidToken reports a token that was presented but cannot be
	// trusted: malformed, badly signed, signed with an algorithm outside
	// the allowlist, expired, not yet valid, for another audience, or with
	// a "mercure" claim of the wrong shape.
	ErrInvalidToken = errors.New("auth: invalid token")
)

// hmacMinKey is the smallest secret RFC 7518 section 3.2 allows for each
// HMAC algorithm: at least as long as the hash output.
var hmacMinKey = map[string]int{"HS256": 32, "HS384": 48, "HS512": 64}

// DefaultLeeway is the clock skew tolerated on exp and nbf when
// [Config.Leeway] is zero.
const DefaultLeeway = 30 * time.Second

// Config configures a [Verifier]. The zero value is not usable: Key is
// required.
//
// Only HMAC secrets are supported today. Public keys for RS256, ES256 and
// EdDSA will be added as further fields (one per key family); the verifier
// picks the key from the family of the token's algorithm, never from
// anything else the token says, so adding them cannot let an attacker make
// one kind of key verify another kind of signature.
type Config struct {
	// Key is the shared secret for the HMAC algorithms. It must be at least
	// as long as the output of the longest hash allowed in Algorithms
	// (32 bytes for HS256), as RFC 7518 requires.
	Key []byte
	// Algorithms is the allowlist of accepted "alg" header values. Nil or
	// empty means {"HS256"}. Supported today: "HS256", "HS384" and "HS512".
	// "none" is never accepted.
	Algorithms []string
	// Leeway is the clock skew tolerated when checking exp and nbf. Zero
	// means [DefaultLeeway]; negative means none.
	Leeway time.Duration
	// RequireExpiry rejects tokens without an exp claim. False accepts them
	// (the long-lived tokens Mercure deployments often configure as static
	// secrets have none); exp is always enforced when present.
	RequireExpiry bool
	// Audience, if not empty, must appear in the token's aud claim. Empty
	// means aud is not checked.
	Audience string
}

// Claims is what a verified token authorizes. The zero value authorizes
// nothing.
type Claims struct {
	// Publish are the topic selectors (exact topics, "*", or RFC 6570 URI
	// templates) the bearer may publish to.
	Publish []string
	// Subscribe are the topic selectors of the private updates the bearer
	// may receive.
	Subscribe []string
	// Payload is the free-form "payload" member of the mercure claim,
	// decoded as by encoding/json into an any; nil when absent.
	Payload any
	// Subject is the "sub" claim; empty when absent.
	Subject string
	// ExpiresAt is the "exp" claim; the zero time when absent.
	ExpiresAt time.Time
}

// mercureClaim is the JSON shape of the "mercure" claim.
type mercureClaim struct {
	Publish   []string `json:"publish,omitempty"`
	Subscribe []string `json:"subscribe,omitempty"`
	Payload   any      `json:"payload,omitempty"`
}

// tokenClaims is the JSON shape of a token's claims set.
type tokenClaims struct {
	Mercure *mercureClaim `json:"mercure,omitempty"`
	jwt.RegisteredClaims
}

// Verifier verifies tokens. It is immutable once built and safe for
// concurrent use.
type Verifier struct {
	key    []byte
	parser *jwt.Parser
	leeway time.Duration

	// cache holds recently verified tokens: publishers and subscribers
	// present the same token again and again, and verifying one (base64,
	// JSON, HMAC) costs more than the rest of a publish.
	mu    sync.Mutex
	cache map[string]cachedClaims
}

// cachedClaims is a verified token's claims and its validity window.
type cachedClaims struct {
	claims    *Claims
	notBefore time.Time // zero: none
	expires   time.Time // zero: never
}

const maxCachedTokens = 1024

// NewVerifier validates cfg and returns a verifier that keeps its own copy
// of the key.
func NewVerifier(cfg Config) (*Verifier, error) {
	algs := cfg.Algorithms
	if len(algs) == 0 {
		algs = []string{"HS256"}
	}
	algs = slices.Clone(algs)
	if len(cfg.Key) == 0 {
		return nil, errors.New("auth: new verifier: no key")
	}
	for _, alg := range algs {
		minLen, ok := hmacMinKey[alg]
		if !ok {
			return nil, fmt.Errorf("auth: new verifier: unsupported algorithm %q", alg)
		}
		if len(cfg.Key) < minLen {
			return nil, fmt.Errorf("auth: new verifier: %s key is %d bytes, need at least %d", alg, len(cfg.Key), minLen)
		}
	}
	leeway := cfg.Leeway
	switch {
	case leeway == 0:
		leeway = DefaultLeeway
	case leeway < 0:
		leeway = 0
	}
	opts := []jwt.ParserOption{jwt.WithValidMethods(algs), jwt.WithLeeway(leeway)}
	if cfg.RequireExpiry {
		opts = append(opts, jwt.WithExpirationRequired())
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	return &Verifier{key: slices.Clone(cfg.Key), parser: jwt.NewParser(opts...), leeway: leeway}, nil
}

// keyFunc returns the key for the token's algorithm family. The allowlist
// was already checked by the parser; this check keeps the key family tied
// to the algorithm family even if the allowlist grows.
func (v *Verifier) keyFunc(t *jwt.Token) (any, error) {
	if _, ok := t.Method.(*jwt.SigningMethodHMAC); ok {
		return v.key, nil
	}
	return nil, fmt.Errorf("no key for algorithm %v", t.Header["alg"])
}

// Verify checks token's signature and time claims and returns its claims.
// It returns [ErrNoToken] for an empty token and an error wrapping
// [ErrInvalidToken] for any other failure. The returned claims may be
// shared with other callers that present the same token: do not modify
// them. Verify is safe for concurrent use.
func (v *Verifier) Verify(token string) (*Claims, error) {
	if token == "" {
		return nil, ErrNoToken
	}
	now := time.Now()
	v.mu.Lock()
	cc, ok := v.cache[token]
	v.mu.Unlock()
	if ok {
		if (cc.expires.IsZero() || now.Before(cc.expires.Add(v.leeway))) &&
			(cc.notBefore.IsZero() || !now.Before(cc.notBefore.Add(-v.leeway))) {
			return cc.claims, nil
		}
		// Outside its window now: verify again for the precise error.
	}
	var tc tokenClaims
	if _, err := v.parser.ParseWithClaims(token, &tc, v.keyFunc); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	c := &Claims{Subject: tc.Subject}
	cc = cachedClaims{claims: c}
	if tc.ExpiresAt != nil {
		c.ExpiresAt = tc.ExpiresAt.Time
		cc.expires = tc.ExpiresAt.Time
	}
	if tc.NotBefore != nil {
		cc.notBefore = tc.NotBefore.Time
	}
	if m := tc.Mercure; m != nil {
		c.Publish, c.Subscribe, c.Payload = m.Publish, m.Subscribe, m.Payload
	}
	v.mu.Lock()
	if v.cache == nil || len(v.cache) >= maxCachedTokens {
		v.cache = make(map[string]cachedClaims)
	}
	v.cache[token] = cc
	v.mu.Unlock()
	return c, nil
}

// Authenticate finds the token of r with [TokenFromRequest] and verifies
// it. It returns [ErrNoToken] when r carries none, and an error wrapping
// [ErrInvalidToken] when the token found is empty, malformed or fails
// verification. The source is returned in every case.
func (v *Verifier) Authenticate(r *http.Request) (*Claims, Source, error) {
	token, src := TokenFromRequest(r)
	if src == SourceNone {
		return nil, src, ErrNoToken
	}
	if token == "" {
		return nil, src, fmt.Errorf("%w: empty or malformed %s", ErrInvalidToken, src)
	}
	c, err := v.Verify(token)
	return c, src, err
}

// Sign mints an HS256 token carrying c. If ttl is positive the token
// expires ttl from now; otherwise it expires at c.ExpiresAt, or never when
// that is zero (discouraged outside tests and trusted back ends). The
// "iat" claim is set to now and "sub" to c.Subject when not empty. key must
// be at least 32 bytes.
func Sign(key []byte, c Claims, ttl time.Duration) (string, error) {
	if len(key) < hmacMinKey["HS256"] {
		return "", fmt.Errorf("auth: sign: key is %d bytes, need at least %d", len(key), hmacMinKey["HS256"])
	}
	now := time.Now()
	tc := tokenClaims{
		Mercure: &mercureClaim{Publish: c.Publish, Subscribe: c.Subscribe, Payload: c.Payload},
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:  c.Subject,
			IssuedAt: jwt.NewNumericDate(now),
		},
	}
	switch {
	case ttl > 0:
		tc.ExpiresAt = jwt.NewNumericDate(now.Add(ttl))
	case !c.ExpiresAt.IsZero():
		tc.ExpiresAt = jwt.NewNumericDate(c.ExpiresAt)
	}
	if c.Payload != nil {
		// Fail here, not in the verifier, when the payload cannot be encoded.
		if _, err := json.Marshal(c.Payload); err != nil {
			return "", fmt.Errorf("auth: sign: payload: %w", err)
		}
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, tc).SignedString(key)
	if err != nil {
		return "", fmt.Errorf("auth: sign: %w", err)
	}
	return s, nil
}
