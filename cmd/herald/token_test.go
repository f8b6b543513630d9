package main

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/herald-sse/herald/auth"
	"github.com/herald-sse/herald/hub"
)

func verifyToken(t *testing.T, key, token string) *auth.Claims {
	t.Helper()
	v, err := auth.NewVerifier(auth.Config{Key: []byte(key)})
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(token)
	if err != nil {
		t.Fatalf("Verify(%q) error: %v", token, err)
	}
	return c
}

func TestTokenClaims(t *testing.T) {
	res := runCmd(t, "token", "--key", testKey, "--publish", "news", "--publish", "https://example.com/{id}",
		"--subscribe", "*", "--subject", "alice", "--payload", `{"user":42,"roles":["admin"]}`, "--ttl", "90m")
	if res.code != 0 || res.stderr != "" {
		t.Fatalf("herald token: exit %d, stderr %q; want 0 and no stderr", res.code, res.stderr)
	}
	if strings.Count(res.stdout, "\n") != 1 || !strings.HasSuffix(res.stdout, "\n") {
		t.Errorf("herald token stdout = %q, want one line", res.stdout)
	}
	c := verifyToken(t, testKey, strings.TrimSpace(res.stdout))
	if want := []string{"news", "https://example.com/{id}"}; !reflect.DeepEqual(c.Publish, want) {
		t.Errorf("token publish = %q, want %q", c.Publish, want)
	}
	if want := []string{"*"}; !reflect.DeepEqual(c.Subscribe, want) {
		t.Errorf("token subscribe = %q, want %q", c.Subscribe, want)
	}
	if c.Subject != "alice" {
		t.Errorf("token subject = %q, want alice", c.Subject)
	}
	if want := map[string]any{"user": float64(42), "roles": []any{"admin"}}; !reflect.DeepEqual(c.Payload, want) {
		t.Errorf("token payload = %#v, want %#v", c.Payload, want)
	}
	if d := time.Until(c.ExpiresAt); d < 89*time.Minute || d > 91*time.Minute {
		t.Errorf("token expires in %v, want 90m", d)
	}
}

func TestTokenDefaultTTLAndNoExpiry(t *testing.T) {
	c := verifyToken(t, testKey, mintToken(t, "--publish", "*"))
	if d := time.Until(c.ExpiresAt); d < 59*time.Minute || d > 61*time.Minute {
		t.Errorf("default token expires in %v, want 1h", d)
	}
	if c.Subscribe != nil {
		t.Errorf("token subscribe = %q, want none", c.Subscribe)
	}

	res := runCmd(t, "token", "--key", testKey, "--subscribe", "a", "--ttl", "0")
	if res.code != 0 {
		t.Fatalf("herald token --ttl 0: exit %d, stderr %q", res.code, res.stderr)
	}
	if !strings.Contains(res.stderr, "warning") || !strings.Contains(res.stderr, "never expires") {
		t.Errorf("herald token --ttl 0 stderr = %q, want a warning that it never expires", res.stderr)
	}
	if c := verifyToken(t, testKey, strings.TrimSpace(res.stdout)); !c.ExpiresAt.IsZero() {
		t.Errorf("--ttl 0 token expires at %v, want no expiry", c.ExpiresAt)
	}
}

func TestTokenKeyFromEnv(t *testing.T) {
	const other = "another-key-of-at-least-32-bytes-!!"
	t.Setenv("HERALD_KEY", "")
	t.Setenv("HERALD_PUBLISHER_KEY", testKey)
	res := runCmd(t, "token", "--publish", "*")
	if res.code != 0 {
		t.Fatalf("herald token with HERALD_PUBLISHER_KEY: exit %d, stderr %q", res.code, res.stderr)
	}
	verifyToken(t, testKey, strings.TrimSpace(res.stdout))

	t.Setenv("HERALD_KEY", other) // wins over HERALD_PUBLISHER_KEY
	res = runCmd(t, "token", "--publish", "*")
	if res.code != 0 {
		t.Fatalf("herald token with HERALD_KEY: exit %d, stderr %q", res.code, res.stderr)
	}
	verifyToken(t, other, strings.TrimSpace(res.stdout))

	res = runCmd(t, "token", "--key", testKey, "--publish", "*") // the flag wins over both
	verifyToken(t, testKey, strings.TrimSpace(res.stdout))
}

func TestTokenUsageErrors(t *testing.T) {
	t.Setenv("HERALD_KEY", "")
	t.Setenv("HERALD_PUBLISHER_KEY", "")
	tests := []struct {
		args []string
		want string // in stderr
	}{
		{[]string{"--publish", "*"}, "no key"},
		{[]string{"--key", testKey}, "at least one --publish or --subscribe"},
		{[]string{"--key", "short", "--publish", "*"}, "key is 5 bytes, need at least 32"},
		{[]string{"--key", testKey, "--publish", "*", "--payload", "{nope"}, "--payload is not valid JSON"},
		{[]string{"--key", testKey, "--publish", "*", "--ttl", "-1h"}, "--ttl must not be negative"},
		{[]string{"--key", testKey, "--publish", "*", "extra"}, `unexpected argument "extra"`},
		{[]string{"--bogus"}, "flag provided but not defined"},
	}
	for _, tt := range tests {
		res := runCmd(t, append([]string{"token"}, tt.args...)...)
		if res.code != 2 || !strings.Contains(res.stderr, tt.want) || res.stdout != "" {
			t.Errorf("herald token %q = exit %d, stdout %q, stderr %q; want exit 2, no stdout, stderr containing %q",
				tt.args, res.code, res.stdout, res.stderr, tt.want)
		}
	}
}

func TestTokenAcceptedByHub(t *testing.T) {
	th := newTestHub(t, hub.Config{})
	tok := mintToken(t, "--publish", "news")
	res := runCmd(t, "pub", "--hub", th.url, "--token", tok, "--topic", "news", "--data", "x", "--id", "first")
	if res.code != 0 || res.stdout != "first\n" {
		t.Fatalf("herald pub with a minted token = exit %d, stdout %q, stderr %q; want 0, %q", res.code, res.stdout, res.stderr, "first\n")
	}
}

func TestHelpMentionsEnvironment(t *testing.T) {
	tests := []struct {
		cmd  string
		want []string
	}{
		{"token", []string{"HERALD_KEY", "HERALD_PUBLISHER_KEY", "-publish", "-subscribe", "-ttl", "-subject", "-payload"}},
		{"pub", []string{"HERALD_HUB", "HERALD_TOKEN", "-topic", "-data", "-lines", "-id", "-type", "-retry", "-private", "herald token --key"}},
		{"sub", []string{"HERALD_HUB", "HERALD_TOKEN", "-json", "-last-event-id", "-header", "-count", `{"type":"message","data":"hello","id":"42"}`}},
	}
	for _, tt := range tests {
		res := runCmd(t, tt.cmd, "-h")
		if res.code != 0 {
			t.Errorf("herald %s -h: exit %d, want 0", tt.cmd, res.code)
		}
		for _, w := range tt.want {
			if !strings.Contains(res.stderr, w) {
				t.Errorf("herald %s -h output does not mention %q:\n%s", tt.cmd, w, res.stderr)
			}
		}
	}
}
