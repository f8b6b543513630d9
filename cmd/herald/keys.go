package main

import (
	"context"
	"crypto"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"

	"github.com/herald-sse/herald/auth"
	"github.com/herald-sse/herald/hub"
)

// tokenConfig is what `herald serve` reads about token verification beyond
// the HMAC secrets.
type tokenConfig struct {
	publisherKeyFile  string
	subscriberKeyFile string
	jwksURL           string
	issuer            string
	audience          string
	legacyTokens      bool
	reusedIDs         bool
}

// asymmetric reports whether public keys or a JWKS are configured: then no
// publisher secret is generated when --publisher-key is empty.
func (t tokenConfig) asymmetric() bool {
	return t.publisherKeyFile != "" || t.jwksURL != ""
}

// authServers is the issuer as the hub's authorization servers, or nil.
func (t tokenConfig) authServers() []string {
	if t.issuer == "" {
		return nil
	}
	return []string{t.issuer}
}

// verifiers builds the publishers' and subscribers' verifiers and the base
// URL of relative URL patterns. pubKey and subKey are the HMAC secrets
// (either may be empty). The returned close function stops the JWKS
// refresh.
func verifiers(ctx context.Context, t tokenConfig, pubKey, subKey []byte, logger *slog.Logger) (pub, sub *auth.Verifier, base string, closeFn func(), err error) {
	closeFn = func() {}
	var pubKeys, subKeys []crypto.PublicKey
	if t.publisherKeyFile != "" {
		if pubKeys, err = readPublicKeys("--publisher-key-file", t.publisherKeyFile); err != nil {
			return nil, nil, "", closeFn, err
		}
	}
	subKeys = pubKeys
	if t.subscriberKeyFile != "" {
		if subKeys, err = readPublicKeys("--subscriber-key-file", t.subscriberKeyFile); err != nil {
			return nil, nil, "", closeFn, err
		}
	}
	var jwks *auth.JWKS
	if t.jwksURL != "" {
		if jwks, err = auth.NewJWKS(ctx, t.jwksURL, auth.JWKSConfig{Logger: logger}); err != nil {
			return nil, nil, "", closeFn, &exitError{2, fmt.Errorf("--jwks-url: %w", err)}
		}
		closeFn = func() { _ = jwks.Close() }
	}
	build := func(role string, key []byte, keys []crypto.PublicKey) (*auth.Verifier, error) {
		if len(key) == 0 && len(keys) == 0 && jwks == nil {
			return nil, nil
		}
		v, err := auth.NewVerifier(auth.Config{
			Key: key, PublicKeys: keys, JWKS: jwks,
			Issuer: t.issuer, Audience: t.audience,
			RejectMercureClaim: !t.legacyTokens,
		})
		if err != nil {
			return nil, &exitError{2, fmt.Errorf("%s tokens: %w", role, err)}
		}
		return v, nil
	}
	if pub, err = build("publisher", pubKey, pubKeys); err != nil {
		closeFn()
		return nil, nil, "", func() {}, err
	}
	if sub, err = build("subscriber", subKey, subKeys); err != nil {
		closeFn()
		return nil, nil, "", func() {}, err
	}
	// The audience is the hub's resource identifier, its URL in Mercure
	// 1.0: when it is one, relative URL patterns resolve against it.
	if u, perr := url.Parse(t.audience); perr == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" {
		base = t.audience
	}
	if base != "" && !strings.HasSuffix(base, hub.Path) {
		logger.Warn("herald: --jwt-audience is a URL that does not end in "+hub.Path+"; relative URL patterns resolve against it", "audience", base)
	}
	return pub, sub, base, closeFn, nil
}

func readPublicKeys(flagName, file string) ([]crypto.PublicKey, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, &exitError{2, fmt.Errorf("%s: %w", flagName, err)}
	}
	keys, err := auth.ParsePublicKeyPEM(data)
	if err != nil {
		return nil, &exitError{2, fmt.Errorf("%s %s: %w", flagName, file, err)}
	}
	return keys, nil
}
