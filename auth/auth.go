// Package auth verifies and mints the JSON Web Tokens that authorize
// publishers and subscribers of a Mercure hub. It speaks both generations of
// the protocol, decided per token.
//
// A classic (Mercure 0.x) token carries the "mercure" claim:
//
//	{"mercure": {"publish": ["https://example.com/books/{id}"], "subscribe": ["*"], "payload": {...}}}
//
// "publish" lists the topic selectors the bearer may publish to, "subscribe"
// the selectors of the private updates it may receive, and "payload" is
// free-form data about the subscriber. A classic token without a "mercure"
// claim is valid but grants nothing.
//
// A Mercure 1.0 access token follows RFC 9068: its header says
// "typ": "at+jwt", it must carry exp, and its rights come only from the
// RFC 9396 "authorization_details" entries of type "mercure" (or
// "https://mercure.rocks/authorization-detail", the name of earlier 1.0
// drafts):
//
//	{"authorization_details": [{"type": "mercure", "actions": ["subscribe"],
//	  "topics": [{"match": "https://example.com/books/:id", "matchType": "URLPattern"}]}]}
//
// A 1.0 token with no such entry grants nothing; one with a malformed entry
// is invalid as a whole.
//
// A [Verifier] checks the signature against configured keys with an
// explicit algorithm allowlist ("none" is never accepted): an HMAC secret
// ([Config.Key]), PEM public keys ([Config.PublicKeys], see
// [ParsePublicKeyPEM]) and a JWKS URL ([Config.JWKS], see [NewJWKS]). The
// key is chosen by the family of the token's algorithm, never by anything
// else the token says, so an HMAC secret can never verify an RS256 token and
// a public key can never serve as an HMAC secret. It enforces exp and nbf
// with a small leeway, iss and aud when configured, and decodes the claims
// strictly: claim names are matched exactly (not case-insensitively) and a
// header or claims set with a duplicate name is refused, so that two parsers
// can never read one token two ways. [TokenFromRequest] finds the token of
// an HTTP request, and [Sign] and [SignToken] mint tokens for the herald
// token command and for tests.
package auth

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/golang-jwt/jwt/v5"
)

// Sentinel errors returned by [Verifier.Verify] and [Verifier.Authenticate].
// Callers use errors.Is: the returned errors wrap them with the cause.
var (
	// ErrNoToken reports that the request carries no token at all.
	ErrNoToken = errors.New("auth: no token")
	// ErrInvalidToken reports a token that was presented but cannot be
	// trusted: malformed, badly signed, signed with an algorithm outside
	// the allowlist, expired, not yet valid, for another audience or
	// issuer, or with claims of the wrong shape.
	ErrInvalidToken = errors.New("auth: invalid token")
)

// hmacMinKey is the smallest secret RFC 7518 section 3.2 allows for each
// HMAC algorithm: at least as long as the hash output.
var hmacMinKey = map[string]int{"HS256": 32, "HS384": 48, "HS512": 64}

// DefaultLeeway is the clock skew tolerated on exp and nbf when
// [Config.Leeway] is zero.
const DefaultLeeway = 30 * time.Second

// Config configures a [Verifier]. At least one of Key, PublicKeys and JWKS
// is required.
type Config struct {
	// Key is the shared secret for the HMAC algorithms. It must be at least
	// as long as the output of the longest HMAC hash allowed in Algorithms
	// (32 bytes for HS256), as RFC 7518 requires. Nil: no HMAC algorithm
	// is accepted.
	Key []byte
	// PublicKeys are the keys of the asymmetric algorithms: *rsa.PublicKey
	// (RS256, RS384, RS512, PS256, PS384, PS512), *ecdsa.PublicKey on P-256
	// (ES256), P-384 (ES384) or P-521 (ES512), and ed25519.PublicKey
	// (EdDSA). [ParsePublicKeyPEM] reads them from PEM files. A token is
	// checked against every key of its algorithm's family.
	PublicKeys []crypto.PublicKey
	// JWKS supplies asymmetric keys from a JSON Web Key Set, selected by the
	// token's kid. Never used for HMAC algorithms. The caller closes it.
	JWKS *JWKS
	// Algorithms is the allowlist of accepted "alg" header values. Nil or
	// empty means every algorithm the configured keys support, except that
	// an HMAC Key alone allows only HS256 unless listed here. "none" is
	// never accepted, and each listed algorithm must have a key.
	Algorithms []string
	// Leeway is the clock skew tolerated when checking exp and nbf. Zero
	// means [DefaultLeeway]; negative means none.
	Leeway time.Duration
	// RequireExpiry rejects classic (mercure-claim) tokens without an exp
	// claim. False accepts them (the long-lived tokens Mercure deployments
	// often configure as static secrets have none). Mercure 1.0 access
	// tokens always need exp; exp is always enforced when present.
	RequireExpiry bool
	// Audience, if not empty, must appear in the token's aud claim (a
	// string, or an array of strings that contains it). Empty means aud is
	// not checked. Mercure 1.0 names this the hub's resource identifier.
	Audience string
	// Issuer, if not empty, must equal the token's iss claim. Empty means
	// iss is not checked.
	Issuer string
	// RejectMercureClaim refuses classic tokens (any token whose header
	// typ is not "at+jwt"). False accepts both generations.
	RejectMercureClaim bool
}

// Style tells which generation of the protocol a token follows. The zero
// value is [StyleMercure].
type Style int

const (
	// StyleMercure is a classic token: rights from the "mercure" claim.
	StyleMercure Style = iota
	// StyleAccessToken is a Mercure 1.0 RFC 9068 access token (typ
	// at+jwt): rights from authorization_details.
	StyleAccessToken
)

// String returns "mercure" or "at+jwt".
func (s Style) String() string {
	if s == StyleAccessToken {
		return "at+jwt"
	}
	return "mercure"
}

// Claims is what a verified token authorizes. The zero value authorizes
// nothing.
type Claims struct {
	// Style is the generation of the token. Publish and Subscribe are set
	// for classic tokens, Details for access tokens.
	Style Style
	// Publish are the topic selectors (exact topics, "*", or RFC 6570 URI
	// templates) the bearer of a classic token may publish to.
	Publish []string
	// Subscribe are the topic selectors of the private updates the bearer
	// of a classic token may receive.
	Subscribe []string
	// Details are the mercure authorization details of an access token, in
	// token order.
	Details []Detail
	// Payload is the free-form "payload" member of the mercure claim,
	// decoded into an any; nil when absent. For access tokens see
	// [Claims.SubscribePayload].
	Payload any
	// Subject is the "sub" claim; empty when absent.
	Subject string
	// ExpiresAt is the "exp" claim; the zero time when absent.
	ExpiresAt time.Time
}

// tokenClaims is the JSON shape of a token's claims set. It is decoded by
// the strict decoder of decodeStrict, not by encoding/json.
type tokenClaims struct {
	Mercure *mercureClaim    `json:"mercure,omitzero"`
	Details jsontext.Value   `json:"authorization_details,omitzero"`
	Issuer  string           `json:"iss,omitzero"`
	Subject string           `json:"sub,omitzero"`
	Aud     audience         `json:"aud,omitzero"`
	Exp     *jwt.NumericDate `json:"exp,omitzero"`
	Nbf     *jwt.NumericDate `json:"nbf,omitzero"`
	Iat     *jwt.NumericDate `json:"iat,omitzero"`
	ID      string           `json:"jti,omitzero"`
}

// mercureClaim is the JSON shape of the "mercure" claim.
type mercureClaim struct {
	Publish   []string `json:"publish,omitzero"`
	Subscribe []string `json:"subscribe,omitzero"`
	Payload   any      `json:"payload,omitzero"`
}

// audience is the aud claim: one string or an array of strings.
type audience []string

func (a *audience) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	if dec.PeekKind() == '"' {
		var s string
		if err := jsonv2.UnmarshalDecode(dec, &s); err != nil {
			return err
		}
		*a = audience{s}
		return nil
	}
	var l []string
	if err := jsonv2.UnmarshalDecode(dec, &l); err != nil {
		return err
	}
	*a = l
	return nil
}

// UnmarshalJSON is called by golang-jwt's parser (through encoding/json);
// it hands the raw claims to the strict decoder instead.
func (tc *tokenClaims) UnmarshalJSON(b []byte) error {
	type plain tokenClaims // no methods: no recursion
	var p plain
	if err := decodeStrict(b, &p); err != nil {
		return err
	}
	*tc = tokenClaims(p)
	return nil
}

// decodeStrict decodes b into v with JSON names matched exactly and
// duplicate names, invalid UTF-8 and trailing data refused (the defaults of
// the encoding/json/v2 semantics, spelled out here).
func decodeStrict(b []byte, v any) error {
	return jsonv2.Unmarshal(b, v,
		jsonv2.MatchCaseInsensitiveNames(false),
		jsontext.AllowDuplicateNames(false),
		jsontext.AllowInvalidUTF8(false))
}

// The jwt.Claims interface, for the parser's time and audience checks.
func (tc *tokenClaims) GetExpirationTime() (*jwt.NumericDate, error) { return tc.Exp, nil }
func (tc *tokenClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return tc.Iat, nil }
func (tc *tokenClaims) GetNotBefore() (*jwt.NumericDate, error)      { return tc.Nbf, nil }
func (tc *tokenClaims) GetIssuer() (string, error)                   { return tc.Issuer, nil }
func (tc *tokenClaims) GetSubject() (string, error)                  { return tc.Subject, nil }
func (tc *tokenClaims) GetAudience() (jwt.ClaimStrings, error) {
	return jwt.ClaimStrings(tc.Aud), nil
}

// Verifier verifies tokens. It is immutable once built and safe for
// concurrent use.
type Verifier struct {
	hmacKey   []byte
	rsaKeys   []*rsa.PublicKey
	ecKeys    []*ecdsa.PublicKey
	edKeys    []ed25519.PublicKey
	jwks      *JWKS
	legacyOK  bool
	parser    *jwt.Parser // classic tokens
	atParser  *jwt.Parser // access tokens: exp required
	leeway    time.Duration
	algorithm map[string]bool

	// cache holds recently verified tokens: publishers and subscribers
	// present the same token again and again, and verifying one (base64,
	// JSON, signature) costs more than the rest of a publish.
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

// asymmetric lists the asymmetric algorithms a key family supports.
var (
	rsaAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
	ecAlgs  = map[string]string{"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
	jwkAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)

// NewVerifier validates cfg and returns a verifier that keeps its own copy
// of the keys.
func NewVerifier(cfg Config) (*Verifier, error) {
	v := &Verifier{jwks: cfg.JWKS, legacyOK: !cfg.RejectMercureClaim, algorithm: make(map[string]bool)}
	supported := map[string]bool{}
	if n := hmacMinKey["HS256"]; len(cfg.Key) > 0 && len(cfg.Key) < n {
		return nil, fmt.Errorf("auth: new verifier: HS256 key is %d bytes, need at least %d", len(cfg.Key), n)
	}
	if len(cfg.Key) > 0 {
		v.hmacKey = slices.Clone(cfg.Key)
		for alg, n := range hmacMinKey {
			if len(cfg.Key) >= n {
				supported[alg] = true
			}
		}
	}
	for _, k := range cfg.PublicKeys {
		switch k := k.(type) {
		case *rsa.PublicKey:
			if k.N.BitLen() < 2048 {
				return nil, fmt.Errorf("auth: new verifier: RSA key is %d bits, need at least 2048", k.N.BitLen())
			}
			v.rsaKeys = append(v.rsaKeys, k)
			for _, a := range rsaAlgs {
				supported[a] = true
			}
		case *ecdsa.PublicKey:
			alg, ok := ecAlgs[curveName(k.Curve)]
			if !ok {
				return nil, fmt.Errorf("auth: new verifier: unsupported ECDSA curve %s", curveName(k.Curve))
			}
			v.ecKeys = append(v.ecKeys, k)
			supported[alg] = true
		case ed25519.PublicKey:
			v.edKeys = append(v.edKeys, k)
			supported["EdDSA"] = true
		default:
			return nil, fmt.Errorf("auth: new verifier: unsupported public key type %T", k)
		}
	}
	if v.jwks != nil {
		for _, a := range jwkAlgs {
			supported[a] = true
		}
	}
	if len(supported) == 0 && len(cfg.Key) == 0 {
		return nil, errors.New("auth: new verifier: no key")
	}
	algs := cfg.Algorithms
	if len(algs) == 0 {
		for a := range supported {
			if _, isHMAC := hmacMinKey[a]; !isHMAC || a == "HS256" {
				algs = append(algs, a)
			}
		}
		slices.Sort(algs)
	}
	for _, alg := range algs {
		if n, isHMAC := hmacMinKey[alg]; isHMAC && len(cfg.Key) > 0 && len(cfg.Key) < n {
			return nil, fmt.Errorf("auth: new verifier: %s key is %d bytes, need at least %d", alg, len(cfg.Key), n)
		}
		if !supported[alg] {
			return nil, fmt.Errorf("auth: new verifier: unsupported algorithm %q: no key of its kind is configured", alg)
		}
		v.algorithm[alg] = true
	}
	if len(v.algorithm) == 0 {
		return nil, errors.New("auth: new verifier: no algorithm")
	}
	leeway := cfg.Leeway
	switch {
	case leeway == 0:
		leeway = DefaultLeeway
	case leeway < 0:
		leeway = 0
	}
	v.leeway = leeway
	opts := []jwt.ParserOption{jwt.WithValidMethods(algs), jwt.WithLeeway(leeway)}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	v.atParser = jwt.NewParser(append(slices.Clone(opts), jwt.WithExpirationRequired())...)
	if cfg.RequireExpiry {
		opts = append(opts, jwt.WithExpirationRequired())
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

// curveName is the name of c, or "unknown".
func curveName(c elliptic.Curve) string {
	if c == nil || c.Params() == nil {
		return "unknown"
	}
	return c.Params().Name
}

// keyFunc returns the keys for the token's algorithm family. The allowlist
// was already checked by the parser; this keeps the key family tied to the
// algorithm family whatever the allowlist says: an HMAC algorithm gets the
// secret and nothing else, an asymmetric one gets public keys of its own
// type (and curve) and never the secret.
func (v *Verifier) keyFunc(t *jwt.Token) (any, error) {
	var keys []jwt.VerificationKey
	switch m := t.Method.(type) {
	case *jwt.SigningMethodHMAC:
		if v.hmacKey == nil {
			return nil, fmt.Errorf("no HMAC key for %s", m.Alg())
		}
		return v.hmacKey, nil
	case *jwt.SigningMethodRSA, *jwt.SigningMethodRSAPSS:
		for _, k := range v.rsaKeys {
			keys = append(keys, k)
		}
	case *jwt.SigningMethodECDSA:
		for _, k := range v.ecKeys {
			if ecAlgs[curveName(k.Curve)] == m.Alg() {
				keys = append(keys, k)
			}
		}
	case *jwt.SigningMethodEd25519:
		for _, k := range v.edKeys {
			keys = append(keys, k)
		}
	default:
		return nil, fmt.Errorf("no key for algorithm %v", t.Header["alg"])
	}
	if v.jwks != nil {
		jk, err := v.jwks.keys(t)
		if err != nil && len(keys) == 0 {
			return nil, err
		}
		for _, k := range jk {
			if keyMatchesMethod(k, t.Method) {
				keys = append(keys, k)
			}
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("no key for algorithm %s", t.Method.Alg())
	}
	if len(keys) == 1 {
		return keys[0], nil
	}
	return jwt.VerificationKeySet{Keys: keys}, nil
}

// keyMatchesMethod reports whether k is a public key of m's family (and
// curve): a JWK Set may mix key types, and "oct" keys never qualify.
func keyMatchesMethod(k any, m jwt.SigningMethod) bool {
	switch m := m.(type) {
	case *jwt.SigningMethodRSA, *jwt.SigningMethodRSAPSS:
		_, ok := k.(*rsa.PublicKey)
		return ok
	case *jwt.SigningMethodECDSA:
		ec, ok := k.(*ecdsa.PublicKey)
		return ok && ecAlgs[curveName(ec.Curve)] == m.Alg()
	case *jwt.SigningMethodEd25519:
		_, ok := k.(ed25519.PublicKey)
		return ok
	}
	return false
}

// header is the JOSE header fields Verify reads itself.
type header struct {
	Alg string `json:"alg"`
	Typ string `json:"typ,omitzero"`
}

// tokenStyle checks the header of token strictly (exact names, no
// duplicates) and returns the generation its typ names.
func tokenStyle(token string) (Style, error) {
	h, _, ok := strings.Cut(token, ".")
	if !ok {
		return 0, fmt.Errorf("%w: token is malformed", jwt.ErrTokenMalformed)
	}
	raw, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return 0, fmt.Errorf("%w: header is not base64url", jwt.ErrTokenMalformed)
	}
	var hd header
	if err := decodeStrict(raw, &hd); err != nil {
		return 0, fmt.Errorf("%w: header: %w", jwt.ErrTokenMalformed, err)
	}
	typ := strings.ToLower(hd.Typ)
	switch typ {
	case "at+jwt", "application/at+jwt":
		return StyleAccessToken, nil
	case "", "jwt", "application/jwt":
		return StyleMercure, nil
	}
	return 0, fmt.Errorf("header typ %q is neither at+jwt nor JWT", hd.Typ)
}

// Verify checks token's signature and claims and returns its claims. It
// returns [ErrNoToken] for an empty token and an error wrapping
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
	style, err := tokenStyle(token)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	parser := v.parser
	switch {
	case style == StyleAccessToken:
		parser = v.atParser
	case !v.legacyOK:
		return nil, fmt.Errorf("%w: not an at+jwt access token (classic mercure-claim tokens are refused)", ErrInvalidToken)
	}
	var tc tokenClaims
	if _, err := parser.ParseWithClaims(token, &tc, v.keyFunc); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	c := &Claims{Style: style, Subject: tc.Subject}
	switch style {
	case StyleMercure:
		if m := tc.Mercure; m != nil {
			c.Publish, c.Subscribe, c.Payload = m.Publish, m.Subscribe, m.Payload
		}
	case StyleAccessToken:
		if c.Details, err = parseDetails(tc.Details); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
		}
	}
	cc = cachedClaims{claims: c}
	if tc.Exp != nil {
		c.ExpiresAt = tc.Exp.Time
		cc.expires = tc.Exp.Time
	}
	if tc.Nbf != nil {
		cc.notBefore = tc.Nbf.Time
	}
	v.mu.Lock()
	if v.cache == nil || len(v.cache) >= maxCachedTokens {
		v.cache = make(map[string]cachedClaims)
	}
	v.cache[token] = cc
	v.mu.Unlock()
	return c, nil
}

// isNull reports whether b is the JSON null (or absent).
func isNull(b []byte) bool { b = bytes.TrimSpace(b); return len(b) == 0 || string(b) == "null" }

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

// Sign mints an HS256 classic (mercure-claim) token carrying c. If ttl is
// positive the token expires ttl from now; otherwise it expires at
// c.ExpiresAt, or never when that is zero (discouraged outside tests and
// trusted back ends). The "iat" claim is set to now and "sub" to c.Subject
// when not empty. key must be at least 32 bytes. [SignToken] mints the
// other styles and algorithms.
func Sign(key []byte, c Claims, ttl time.Duration) (string, error) {
	if len(key) < hmacMinKey["HS256"] {
		return "", fmt.Errorf("auth: sign: key is %d bytes, need at least %d", len(key), hmacMinKey["HS256"])
	}
	return SignToken(key, c, SignOptions{TTL: ttl})
}
