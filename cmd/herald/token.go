// herald token: mint a JWT for publishers and subscribers.
//
//	herald token --key "$HERALD_PUBLISHER_KEY" --publish '*'
//	herald token --key "$KEY" --subscribe 'https://example.com/users/42/{+rest}' --ttl 24h --subject 42
//
// The key is the HS256 secret the hub verifies tokens with: --publisher-key
// of `herald serve` for publisher tokens, --subscriber-key (when it is set)
// for subscriber tokens. --key defaults to HERALD_KEY, then to
// HERALD_PUBLISHER_KEY, so `herald serve` and `herald token` can share one
// environment variable.

package main

import (
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
const tokenUsage = `usage: herald token --key KEY (--publish SELECTOR | --subscribe SELECTOR)... [flags]

Mint an HS256 JWT with a Mercure claim and print it. A selector is an exact
topic, '*' (every topic) or an RFC 6570 URI template. Use the hub's
--publisher-key for publisher tokens and its --subscriber-key (if set) for
subscriber tokens.

Environment: HERALD_KEY (falls back to HERALD_PUBLISHER_KEY), HERALD_TTL,
HERALD_SUBJECT, HERALD_PAYLOAD, HERALD_PUBLISH, HERALD_SUBSCRIBE (one
selector each). A flag on the command line wins. Prefer the environment
for the key: a command line is visible to other users of the machine.

Examples:
  herald token --key "$HERALD_PUBLISHER_KEY" --publish '*'
  export HERALD_TOKEN=$(herald token --publish 'news' --subscribe 'news' --ttl 24h)

Flags:
`

// runToken runs `herald token` with args (the arguments after "token").
func runToken(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("herald token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		key, subject, payload string
		publish, subscribe    listFlag
		ttl                   time.Duration
	)
	fs.StringVar(&key, "key", "", "HS256 `secret` to sign with, at least 32 bytes (env HERALD_KEY, else HERALD_PUBLISHER_KEY)")
	fs.Var(&publish, "publish", "topic `selector` the bearer may publish to (repeatable)")
	fs.Var(&subscribe, "subscribe", "topic `selector` of the private updates the bearer may receive (repeatable)")
	fs.DurationVar(&ttl, "ttl", time.Hour, "lifetime of the token; 0 = never expires (discouraged)")
	fs.StringVar(&subject, "subject", "", "\"sub\" claim (who the token is for)")
	fs.StringVar(&payload, "payload", "", "`JSON` value for the mercure claim's \"payload\" member")
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
	if key == "" {
		key = os.Getenv("HERALD_PUBLISHER_KEY")
	}
	if key == "" {
		return &exitError{2, errors.New("no key: give --key or set HERALD_KEY or HERALD_PUBLISHER_KEY (the hub's --publisher-key)")}
	}
	if len(publish) == 0 && len(subscribe) == 0 {
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
	if len(key) < 32 {
		return &exitError{2, fmt.Errorf("key is %d bytes, need at least 32", len(key))}
	}
	tok, err := auth.Sign([]byte(key), c, ttl)
	if err != nil {
		return err
	}
	if ttl == 0 {
		fmt.Fprintln(stderr, "herald token: warning: --ttl 0: this token never expires; anyone who obtains it keeps its rights until the key changes")
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
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
