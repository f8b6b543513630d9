package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// SignOptions configures [SignToken]. The zero value mints an HS256 classic
// token that never expires.
type SignOptions struct {
	// Style is the generation of the token: [StyleMercure] (the zero
	// value) puts c.Publish, c.Subscribe and c.Payload in a "mercure"
	// claim; [StyleAccessToken] sets typ "at+jwt" and writes
	// authorization_details (c.Details, or when empty one detail per
	// action from c.Publish and c.Subscribe as Exact matchers).
	Style Style
	// Algorithm is the "alg" to sign with. Empty means HS256 for an HMAC
	// secret, RS256 for an RSA key, ES256/ES384/ES512 by the curve of an
	// ECDSA key, EdDSA for an Ed25519 key.
	Algorithm string
	// TTL, if positive, makes the token expire TTL from now; otherwise it
	// expires at c.ExpiresAt, or never when that is zero. Access tokens
	// must expire.
	TTL time.Duration
	// Issuer and Audience set iss and aud when not empty.
	Issuer   string
	Audience []string
	// KeyID sets the header's kid when not empty.
	KeyID string
}

// detailJSON is the JSON shape SignToken writes for a Detail.
type detailJSON struct {
	Type    string        `json:"type"`
	Actions []string      `json:"actions"`
	Topics  []matcherJSON `json:"topics"`
	Payload any           `json:"payload,omitempty"`
}

type matcherJSON struct {
	Match     string    `json:"match"`
	MatchType MatchType `json:"matchType,omitempty"`
}

// SignToken mints a token carrying c, signed with key: a []byte HMAC
// secret (at least as long as the hash), or a private key from
// [ParsePrivateKeyPEM] (*rsa.PrivateKey, *ecdsa.PrivateKey,
// ed25519.PrivateKey).
func SignToken(key any, c Claims, opts SignOptions) (string, error) {
	method, err := signingMethod(key, opts.Algorithm)
	if err != nil {
		return "", err
	}
	if c.Payload != nil {
		// Fail here, not in the verifier, when the payload cannot be encoded.
		if _, err := json.Marshal(c.Payload); err != nil {
			return "", fmt.Errorf("auth: sign: payload: %w", err)
		}
	}
	now := time.Now()
	claims := jwt.MapClaims{"iat": now.Unix()}
	switch {
	case opts.TTL > 0:
		claims["exp"] = now.Add(opts.TTL).Unix()
	case !c.ExpiresAt.IsZero():
		claims["exp"] = c.ExpiresAt.Unix()
	}
	if c.Subject != "" {
		claims["sub"] = c.Subject
	}
	if opts.Issuer != "" {
		claims["iss"] = opts.Issuer
	}
	if len(opts.Audience) > 0 {
		claims["aud"] = opts.Audience
	}
	tok := jwt.NewWithClaims(method, claims)
	switch opts.Style {
	case StyleMercure:
		m := map[string]any{}
		if c.Publish != nil {
			m["publish"] = c.Publish
		}
		if c.Subscribe != nil {
			m["subscribe"] = c.Subscribe
		}
		if c.Payload != nil {
			m["payload"] = c.Payload
		}
		claims["mercure"] = m
	case StyleAccessToken:
		if _, ok := claims["exp"]; !ok {
			return "", errors.New("auth: sign: an at+jwt access token must expire: give a TTL or ExpiresAt")
		}
		tok.Header["typ"] = "at+jwt"
		claims["authorization_details"] = detailsJSON(c)
	default:
		return "", fmt.Errorf("auth: sign: unknown style %d", opts.Style)
	}
	if opts.KeyID != "" {
		tok.Header["kid"] = opts.KeyID
	}
	s, err := tok.SignedString(key)
	if err != nil {
		return "", fmt.Errorf("auth: sign: %w", err)
	}
	return s, nil
}

// detailsJSON is the authorization_details claim of c.
func detailsJSON(c Claims) []detailJSON {
	details := c.Details
	if len(details) == 0 {
		exact := func(sels []string) []TopicMatcher {
			out := make([]TopicMatcher, len(sels))
			for i, s := range sels {
				out[i] = TopicMatcher{Match: s, Type: MatchExact}
			}
			return out
		}
		if len(c.Publish) > 0 {
			details = append(details, Detail{Publish: true, Topics: exact(c.Publish)})
		}
		if len(c.Subscribe) > 0 {
			details = append(details, Detail{Subscribe: true, Topics: exact(c.Subscribe), Payload: c.Payload})
		}
	}
	out := make([]detailJSON, 0, len(details))
	for _, d := range details {
		dj := detailJSON{Type: DetailType, Payload: d.Payload}
		if d.Publish {
			dj.Actions = append(dj.Actions, "publish")
		}
		if d.Subscribe {
			dj.Actions = append(dj.Actions, "subscribe")
		}
		for _, m := range d.Topics {
			mj := matcherJSON{Match: m.Match}
			if m.Type != MatchExact {
				mj.MatchType = m.Type
			}
			dj.Topics = append(dj.Topics, mj)
		}
		out = append(out, dj)
	}
	return out
}

// signingMethod picks the method for key and alg, refusing any pairing
// the verifier would refuse.
func signingMethod(key any, alg string) (jwt.SigningMethod, error) {
	if alg == "none" {
		return nil, errors.New(`auth: sign: alg "none" is never used`)
	}
	var def string
	switch k := key.(type) {
	case []byte:
		def = "HS256"
		if alg == "" {
			alg = def
		}
		n, ok := hmacMinKey[alg]
		if !ok {
			return nil, fmt.Errorf("auth: sign: %s needs an asymmetric key, not an HMAC secret", alg)
		}
		if len(k) < n {
			return nil, fmt.Errorf("auth: sign: key is %d bytes, need at least %d for %s", len(k), n, alg)
		}
	case *rsa.PrivateKey:
		def = "RS256"
	case *ecdsa.PrivateKey:
		def = ecAlgs[curveName(k.Curve)]
	case ed25519.PrivateKey:
		def = "EdDSA"
	default:
		return nil, fmt.Errorf("auth: sign: unsupported key type %T", key)
	}
	if alg == "" {
		alg = def
	}
	m := jwt.GetSigningMethod(alg)
	if m == nil {
		return nil, fmt.Errorf("auth: sign: unknown algorithm %q", alg)
	}
	ok := false
	switch key.(type) {
	case []byte:
		_, ok = m.(*jwt.SigningMethodHMAC)
	case *rsa.PrivateKey:
		switch m.(type) {
		case *jwt.SigningMethodRSA, *jwt.SigningMethodRSAPSS:
			ok = true
		}
	case *ecdsa.PrivateKey:
		ok = alg == def
	case ed25519.PrivateKey:
		_, ok = m.(*jwt.SigningMethodEd25519)
	}
	if !ok {
		return nil, fmt.Errorf("auth: sign: %s cannot be signed with a %T", alg, key)
	}
	return m, nil
}
