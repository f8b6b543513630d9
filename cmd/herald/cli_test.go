package main

import (
	"strings"
	"testing"
	"time"

	"github.com/herald-sse/herald/auth"
	"github.com/herald-sse/herald/hub"
)

// TestBoolFlagSeparateValue checks that "--flag false" works like
// "--flag=false" for every boolean flag.
func TestBoolFlagSeparateValue(t *testing.T) {
	res := runCmd(t, "serve", "--io-uring", "false", "--no-dashboard", "true", "--print-config")
	if res.code != 0 {
		t.Fatalf("herald serve --io-uring false --no-dashboard true: exit %d, stderr %q", res.code, res.stderr)
	}
	for _, want := range []string{"io-uring = false # flag\n", "no-dashboard = true # flag\n"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("herald serve --io-uring false --no-dashboard true --print-config: no %q in\n%s", want, res.stdout)
		}
	}
}

// TestMistypedFlag checks that a flag the command does not know prints
// its error once and a pointer to -h, not the whole flag list.
func TestMistypedFlag(t *testing.T) {
	for _, cmd := range []string{"serve", "pub", "sub", "token", "bench"} {
		res := runCmd(t, cmd, "--bogus-flag")
		if res.code != exitConfig {
			t.Errorf("herald %s --bogus-flag: exit %d, want %d", cmd, res.code, exitConfig)
		}
		if n := strings.Count(res.stderr, "bogus-flag"); n != 1 {
			t.Errorf("herald %s --bogus-flag: the error %d times, want once:\n%s", cmd, n, res.stderr)
		}
		if want := "(run 'herald " + cmd + " -h' for the flags)"; !strings.Contains(res.stderr, want) || strings.Count(res.stderr, "\n") > 1 {
			t.Errorf("herald %s --bogus-flag: stderr %q, want one line ending %q", cmd, res.stderr, want)
		}
	}
}

// TestTokenRefusesInvalidSelector checks that herald token does not mint
// a token with a selector the hub would never match.
func TestTokenRefusesInvalidSelector(t *testing.T) {
	for _, sel := range []string{"{unclosed", "", "  ", "{+}"} {
		res := runCmd(t, "token", "--key", testKey, "--publish", "news", "--subscribe", sel)
		if res.code != exitConfig || res.stdout != "" || !strings.Contains(res.stderr, "--subscribe") {
			t.Errorf("herald token --subscribe %q: exit %d, stdout %q, stderr %q; want exit 2 naming --subscribe", sel, res.code, res.stdout, res.stderr)
		}
	}
	if res := runCmd(t, "token", "--key", testKey, "--publish", "https://example.com/books/{id}"); res.code != 0 {
		t.Errorf("herald token --publish <URI template>: exit %d, stderr %q", res.code, res.stderr)
	}
}

// TestPubHints checks the advice after a 404 from a URL without the
// Mercure path and after a 401.
func TestPubHints(t *testing.T) {
	th := newTestHub(t, hub.Config{})
	base := strings.TrimSuffix(th.url, hub.Path)
	tok := mintToken(t, "--publish", "*")
	res := runCmd(t, "pub", "--hub", base, "--token", tok, "--topic", "t", "--data", "x")
	if res.code != 1 || !strings.Contains(res.stderr, "hint: the Mercure endpoint is at the path "+hub.Path+": "+base+hub.Path) {
		t.Errorf("herald pub --hub %s: exit %d, stderr %q; want the Mercure path hint", base, res.code, res.stderr)
	}
	other, err := signWith("another-key-0123456789abcdef0123456789")
	if err != nil {
		t.Fatal(err)
	}
	res = runCmd(t, "pub", "--hub", th.url, "--token", other, "--topic", "t", "--data", "x")
	if res.code != 1 || !strings.Contains(res.stderr, "generates a new key on every run") {
		t.Errorf("herald pub with a token of another key: exit %d, stderr %q; want the 401 hint", res.code, res.stderr)
	}
}

// TestBenchToken checks that herald bench takes its token from
// HERALD_TOKEN (or --token), and that a run whose publishes all failed
// exits 1 and says why.
func TestBenchToken(t *testing.T) {
	th := newTestHub(t, hub.Config{})
	args := []string{"bench", "--sub-url", th.url + "?topic=bench", "--pub-url", th.url,
		"--subscribers", "2", "--events", "3", "--rate", "0", "--warmup", "0s", "--drain-timeout", "2s", "--quiet"}
	t.Setenv("HERALD_TOKEN", mintToken(t, "--publish", "*"))
	if res := runCmd(t, args...); res.code != 0 || !strings.Contains(res.stdout, "published   3 ") {
		t.Errorf("HERALD_TOKEN=... herald bench: exit %d\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
	}
	other, err := signWith("another-key-0123456789abcdef0123456789")
	if err != nil {
		t.Fatal(err)
	}
	res := runCmd(t, append(args, "--token", other)...)
	if res.code != 1 || !strings.Contains(res.stderr, "every publish failed (3 errors") || !strings.Contains(res.stderr, "generates a new key on every run") {
		t.Errorf("herald bench --token <other key>: exit %d, stderr %q; want exit 1, every publish failed, and the 401 hint", res.code, res.stderr)
	}
}

// signWith mints a publisher token for every topic signed with key.
func signWith(key string) (string, error) {
	return auth.Sign([]byte(key), auth.Claims{Publish: []string{"*"}, Subscribe: []string{"*"}}, time.Hour)
}
