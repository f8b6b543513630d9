// herald token: mint a JWT for publishers and subscribers.
//
//	herald token --key "$HERALD_PUBLISHER_KEY" --publish '*'
//	herald token --key "$KEY" --subscribe 'https://example.com/users/42/{+rest}' --ttl 24h --subject 42
//	herald token --style at+jwt --key-file publisher.pem --subscribe-pattern 'https://example.com/books/:id'
//
// The key is the HS256 secret the hub verifies tokens with: --publisher-key
// of `herald serve` for publisher tokens, --subscriber-key (when it is set)
// for subscriber tokens. --key defaults to HERALD_KEY, then to
// HERALD_PUBLISHER_KEY, so `herald serve` and `herald token` can share one
// environment variable.

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/herald-sse/herald/auth"
	"github.com/herald-sse/herald/broker"
)

// tokenUsage is the header of `herald token -h`.
const tokenUsage = `usage: herald token (--key KEY | --key-file FILE) (--publish SELECTOR | --subscribe SELECTOR)... [flags]

Mint a JWT and print it. Two styles:

  --style mercure (default)  a classic Mercure token: a "mercure" claim whose
                             selectors are exact topics, '*' or RFC 6570 URI
                             templates.
  --style at+jwt             a Mercure 1.0 access token (RFC 9068, typ at+jwt):
                             authorization_details of type "mercure"; --publish
                             and --subscribe are Exact matchers ('*' is every
                             topic), --publish-pattern and --subscribe-pattern
                             URL patterns. It must expire (--ttl > 0).

Sign with an HMAC secret (--key, the hub's --publisher-key or
--subscriber-key) or with a PEM private key (--key-file: RSA, ECDSA P-256/
P-384 or Ed25519; the hub verifies with the public half given to
--publisher-key-file or --subscriber-key-file, or from --jwks-url). A
--key-file that holds no PEM block is read as an HMAC secret.

Environment: HERALD_KEY (falls back to HERALD_PUBLISHER_KEY), HERALD_TTL,
HERALD_SUBJECT, HERALD_PAYLOAD, HERALD_PUBLISH, HERALD_SUBSCRIBE (one
selector each), and HERALD_<FLAG> for the others. A flag on the command
line wins. Prefer the environment or a file for the key: a command line is
visible to other users of the machine.

Examples:
  herald token --key "$HERALD_PUBLISHER_KEY" --publish '*'
  export HERALD_TOKEN=$(herald token --publish 'news' --subscribe 'news' --ttl 24h)
  herald token --style at+jwt --key-file es256.pem --audience https://hub.example/.well-known/mercure \
    --subject alice --subscribe-pattern 'https://example.com/users/alice/*'

Flags:
`

// runToken runs `herald token` with args (the arguments after "token").
func runToken(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("herald token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		key, keyFile, subject, payload string
		style, alg, issuer, kid        string
		publish, subscribe             listFlag
		publishPattern, subscribePat   listFlag
		audience                       listFlag
		ttl                            time.Duration
	)
	fs.StringVar(&key, "key", "", "HMAC `secret` to sign with, at least 32 bytes (env HERALD_KEY, else HERALD_PUBLISHER_KEY)")
	fs.StringVar(&keyFile, "key-file", "", "`file` with a PEM private key (RSA, ECDSA, Ed25519) or an HMAC secret to sign with")
	fs.StringVar(&style, "style", "mercure", "token style: mercure (classic mercure claim) or at+jwt (Mercure 1.0 access token)")
	fs.StringVar(&alg, "alg", "", "signing `algorithm` (default: HS256, RS256, ES256/ES384 or EdDSA after the key)")
	fs.Var(&publish, "publish", "topic `selector` the bearer may publish to (repeatable)")
	fs.Var(&subscribe, "subscribe", "topic `selector` of the private updates the bearer may receive (repeatable)")
	fs.Var(&publishPattern, "publish-pattern", "at+jwt only: URL `pattern` of the topics the bearer may publish to (repeatable)")
	fs.Var(&subscribePat, "subscribe-pattern", "at+jwt only: URL `pattern` of the private topics the bearer may receive (repeatable)")
	fs.DurationVar(&ttl, "ttl", time.Hour, "lifetime of the token; 0 = never expires (discouraged; refused for at+jwt)")
	fs.StringVar(&subject, "subject", "", "\"sub\" claim (who the token is for)")
	fs.StringVar(&payload, "payload", "", "`JSON` value of the subscriber's payload")
	fs.StringVar(&issuer, "issuer", "", "\"iss\" claim (the hub's --jwt-issuer)")
	fs.Var(&audience, "audience", "\"aud\" claim, repeatable (the hub's --jwt-audience)")
	fs.StringVar(&kid, "kid", "", "\"kid\" header: the key's id in the hub's JWKS")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), tokenUsage)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &exitError{2, fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	var opts auth.SignOptions
	switch style {
	case "mercure":
		if len(publishPattern) > 0 || len(subscribePat) > 0 {
			return &exitError{2, errors.New("--publish-pattern and --subscribe-pattern need --style at+jwt: classic tokens have no URL patterns")}
		}
	case "at+jwt":
		opts.Style = auth.StyleAccessToken
		if ttl == 0 {
			return &exitError{2, errors.New("--style at+jwt tokens must expire: give --ttl > 0")}
		}
	default:
		return &exitError{2, fmt.Errorf("--style %q: want mercure or at+jwt", style)}
	}
	signKey, err := tokenKey(key, keyFile)
	if err != nil {
		return err
	}
	if len(publish)+len(subscribe)+len(publishPattern)+len(subscribePat) == 0 {
		return &exitError{2, errors.New("nothing to authorize: give at least one --publish or --subscribe selector")}
	}
	if ttl < 0 {
		return &exitError{2, fmt.Errorf("--ttl must not be negative, got %v", ttl)}
	}
	for _, sels := range []struct {
		flag string
		list []string
	}{{"--publish", publish}, {"--subscribe", subscribe}} {
		for _, sel := range sels.list {
			if err := checkSelector(sel); err != nil {
				return &exitError{2, fmt.Errorf("%s %q: %w", sels.flag, sel, err)}
			}
		}
	}
	c := auth.Claims{Publish: publish, Subscribe: subscribe, Subject: subject}
	if payload != "" {
		if err := json.Unmarshal([]byte(payload), &c.Payload); err != nil {
			return &exitError{2, fmt.Errorf("--payload is not valid JSON: %w", err)}
		}
	}
	if opts.Style == auth.StyleAccessToken {
		c.Details = tokenDetails(publish, publishPattern, subscribe, subscribePat, c.Payload)
	}
	opts.Algorithm, opts.TTL, opts.Issuer, opts.Audience, opts.KeyID = alg, ttl, issuer, audience, kid
	tok, err := auth.SignToken(signKey, c, opts)
	if err != nil {
		return &exitError{2, errors.New(strings.TrimPrefix(err.Error(), "auth: sign: "))}
	}
	if ttl == 0 {
		fmt.Fprintln(stderr, "herald token: warning: --ttl 0: this token never expires; anyone who obtains it keeps its rights until the key changes")
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}

// tokenKey returns the signing key: the --key secret, else the contents of
// --key-file (a PEM private key, or an HMAC secret), else HERALD_PUBLISHER_KEY.
func tokenKey(key, keyFile string) (any, error) {
	switch {
	case key != "" && keyFile != "":
		return nil, &exitError{2, errors.New("give --key or --key-file, not both")}
	case keyFile != "":
		data, err := os.ReadFile(keyFile)
		if err != nil {
			return nil, &exitError{2, fmt.Errorf("--key-file: %w", err)}
		}
		if bytes.Contains(data, []byte("-----BEGIN")) {
			k, err := auth.ParsePrivateKeyPEM(data)
			if err != nil {
				return nil, &exitError{2, fmt.Errorf("--key-file %s: %w", keyFile, err)}
			}
			return k, nil
		}
		key = strings.TrimRight(string(data), "\r\n")
	case key == "":
		key = os.Getenv("HERALD_PUBLISHER_KEY")
	}
	if key == "" {
		return nil, &exitError{2, errors.New("no key: give --key or --key-file, or set HERALD_KEY or HERALD_PUBLISHER_KEY (the hub's --publisher-key)")}
	}
	if len(key) < 32 {
		return nil, &exitError{2, fmt.Errorf("key is %d bytes, need at least 32", len(key))}
	}
	return []byte(key), nil
}

// tokenDetails builds the authorization_details of an at+jwt token: one
// detail per action, Exact matchers then URL patterns.
func tokenDetails(publish, publishPattern, subscribe, subscribePattern []string, payload any) []auth.Detail {
	matchers := func(exact, patterns []string) []auth.TopicMatcher {
		var out []auth.TopicMatcher
		for _, m := range exact {
			out = append(out, auth.TopicMatcher{Match: m, Type: auth.MatchExact})
		}
		for _, m := range patterns {
			out = append(out, auth.TopicMatcher{Match: m, Type: auth.MatchURLPattern})
		}
		return out
	}
	var details []auth.Detail
	if ms := matchers(publish, publishPattern); len(ms) > 0 {
		details = append(details, auth.Detail{Publish: true, Topics: ms})
	}
	if ms := matchers(subscribe, subscribePattern); len(ms) > 0 {
		details = append(details, auth.Detail{Subscribe: true, Topics: ms, Payload: payload})
	}
	return details
}

// checkSelector refuses a topic selector the hub would never match: empty,
// or a URI template that does not parse.
func checkSelector(sel string) error {
	if strings.TrimSpace(sel) == "" {
		return errors.New("empty selector: want a topic, '*' or an RFC 6570 URI template")
	}
	if _, err := broker.NewMatcher([]string{sel}); err != nil {
		return fmt.Errorf("not a valid topic selector (a topic, '*' or an RFC 6570 URI template): %w", err)
	}
	return nil
}
