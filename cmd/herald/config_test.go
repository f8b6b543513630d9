package main

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// exampleConfig is the commented example configuration in the repository.
const exampleConfig = "../../deploy/herald.toml"

// writeConfig writes a config file into a temporary directory.
func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "herald.toml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// serveFlagNames returns the flags of `herald serve` that a config file
// may set.
func serveFlagNames() []string {
	var c serveConfig
	fs := flag.NewFlagSet("herald serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.flags(fs)
	var names []string
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name != configFlag && f.Name != "print-config" {
			names = append(names, f.Name)
		}
	})
	return names
}

// TestConfigExampleComplete checks that the example configuration sets
// every flag of `herald serve`, to its default.
func TestConfigExampleComplete(t *testing.T) {
	var doc map[string]any
	if _, err := toml.DecodeFile(exampleConfig, &doc); err != nil {
		t.Fatalf("DecodeFile(%s): %v", exampleConfig, err)
	}
	for _, n := range serveFlagNames() {
		if _, ok := doc[n]; !ok {
			t.Errorf("%s: no key %q: add it, with a comment, set to the flag's default", exampleConfig, n)
		}
	}
	defaults := runCmd(t, "serve", "--print-config")
	fromFile := runCmd(t, "serve", "--config", exampleConfig, "--print-config")
	if defaults.code != 0 || fromFile.code != 0 {
		t.Fatalf("herald serve --print-config: exit %d / with --config %s: exit %d; stderr:\n%s%s",
			defaults.code, exampleConfig, fromFile.code, defaults.stderr, fromFile.stderr)
	}
	source := regexp.MustCompile(` # .*`)
	if got, want := source.ReplaceAllString(fromFile.stdout, ""), source.ReplaceAllString(defaults.stdout, ""); got != want {
		t.Errorf("--print-config with --config %s differs from the defaults:\n%s\nwant:\n%s", exampleConfig, got, want)
	}
	if n := strings.Count(fromFile.stdout, "# file\n"); n != len(serveFlagNames()) {
		t.Errorf("--print-config with --config %s: %d values from the file, want %d:\n%s", exampleConfig, n, len(serveFlagNames()), fromFile.stdout)
	}
}

// TestConfigPrecedence checks flag > env > file > default, and that
// --print-config names each value's source and reads back as a config.
func TestConfigPrecedence(t *testing.T) {
	cfg := writeConfig(t, `
heartbeat = "7s"     # file only
retry = "3s"         # file and env
max-topics = 7       # file, env and flag
cors-origins = ["https://a.example", "https://b.example"]
no-dashboard = true
`)
	t.Setenv("HERALD_RETRY", "4s")
	t.Setenv("HERALD_MAX_TOPICS", "8")
	res := runCmd(t, "serve", "--config", cfg, "--max-topics", "9", "--print-config")
	if res.code != 0 {
		t.Fatalf("herald serve --print-config: exit %d, stderr %q", res.code, res.stderr)
	}
	for _, want := range []string{
		`heartbeat = "7s" # file`,
		`retry = "4s" # env HERALD_RETRY`,
		`max-topics = 9 # flag`,
		`cors-origins = ["https://a.example", "https://b.example"] # file`,
		`no-dashboard = true # file`,
		`history = 100000 # default`,
	} {
		if !strings.Contains(res.stdout, want+"\n") {
			t.Errorf("herald serve --print-config: no line %q in\n%s", want, res.stdout)
		}
	}
	// The printed configuration is itself a valid config file.
	again := runCmd(t, "serve", "--config", writeConfig(t, res.stdout), "--print-config")
	if again.code != 0 {
		t.Fatalf("--print-config output as --config: exit %d, stderr %q", again.code, again.stderr)
	}
	for _, want := range []string{`heartbeat = "7s" # file`, `retry = "4s" # env HERALD_RETRY`, `cors-origins = ["https://a.example", "https://b.example"] # file`} {
		if !strings.Contains(again.stdout, want+"\n") {
			t.Errorf("--print-config output read back as --config: no line %q in\n%s", want, again.stdout)
		}
	}
}

// TestConfigFileFromEnv checks that HERALD_CONFIG names the file too.
func TestConfigFileFromEnv(t *testing.T) {
	t.Setenv("HERALD_CONFIG", writeConfig(t, `max-topics = 12`))
	res := runCmd(t, "serve", "--print-config")
	if res.code != 0 || !strings.Contains(res.stdout, "max-topics = 12 # file\n") {
		t.Fatalf("HERALD_CONFIG=file herald serve --print-config: exit %d, stdout:\n%s\nstderr %q", res.code, res.stdout, res.stderr)
	}
}

// TestPrintConfigMasksSecrets checks that keys and URL passwords are
// never printed.
func TestPrintConfigMasksSecrets(t *testing.T) {
	const pub, sub = "publisher-secret-0123456789abcdef0123", "subscriber-secret-0123456789abcdef012"
	res := runCmd(t, "serve", "--print-config", "--publisher-key", pub, "--subscriber-key", sub,
		"--store", "redis", "--redis-url", "redis://user:hunter2@redis.internal:6379/0",
		"--nats-url", "nats://tok3n@a:4222,nats://u:pw@b:4222")
	if res.code != 0 {
		t.Fatalf("herald serve --print-config: exit %d, stderr %q", res.code, res.stderr)
	}
	for _, secret := range []string{pub, sub, "hunter2", "tok3n", ":pw@"} {
		if strings.Contains(res.stdout, secret) {
			t.Errorf("herald serve --print-config printed the secret %q:\n%s", secret, res.stdout)
		}
	}
	for _, want := range []string{
		`publisher-key = "***" # flag`,
		`redis-url = "redis://user:***@redis.internal:6379/0" # flag`,
		`nats-url = "nats://***@a:4222,nats://u:***@b:4222" # flag`,
	} {
		if !strings.Contains(res.stdout, want+"\n") {
			t.Errorf("herald serve --print-config: no line %q in\n%s", want, res.stdout)
		}
	}
}

// TestConfigErrors checks that every bad flag, environment or file value
// exits with status 2 and one line on stderr before anything is printed
// on stdout or created on disk.
func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		file string // config file contents, if any
		env  map[string]string
		args []string
		want string // in stderr
	}{
		{name: "unknown store", args: []string{"--store", "mysql"}, want: `--store "mysql": want bolt, memory, redis or nats`},
		{name: "cors star", args: []string{"--cors-origins", "*"}, want: `CORS origin "*" not allowed`},
		{name: "mistyped flag", args: []string{"--histroy", "5"}, want: "flag provided but not defined: -histroy (run 'herald serve -h' for the flags)"},
		{name: "bad flag value", args: []string{"--heartbeat", "soon"}, want: `invalid value "soon" for flag -heartbeat`},
		{name: "negative history", args: []string{"--history", "-1"}, want: "--history must be positive"},
		{name: "bad addr", args: []string{"--addr", "8080"}, want: `--addr "8080": want host:port`},
		{name: "bad log level", args: []string{"--log-level", "loud"}, want: `--log-level "loud"`},
		{name: "bad redis url", args: []string{"--store", "redis", "--redis-url", "http://x"}, want: "--redis-url"},
		{name: "short key", args: []string{"--publisher-key", "short"}, want: "HS256 key is 5 bytes"},
		{name: "tls cert without key", args: []string{"--tls-cert", "c.pem"}, want: "--tls-cert and --tls-key go together"},
		{name: "tls missing files", args: []string{"--tls-cert", "nope.pem", "--tls-key", "nope.key"}, want: "--tls-cert nope.pem"},
		{name: "h2c with tls", args: []string{"--h2c", "--acme-domain", "a.example"}, want: "--h2c is cleartext HTTP/2"},
		{name: "acme ip", args: []string{"--acme-domain", "127.0.0.1"}, want: `--acme-domain "127.0.0.1": want a DNS name`},
		{name: "drain spread", args: []string{"--drain-spread", "10s"}, want: "--drain-spread 10s must be below --shutdown-timeout 5s"},
		{name: "bad env", env: map[string]string{"HERALD_MAX_BODY": "lots"}, want: `HERALD_MAX_BODY="lots"`},
		{name: "env store", env: map[string]string{"HERALD_STORE": "mysql"}, want: `--store "mysql"`},
		{name: "file unknown key", file: "histroy = 5\n", want: `unknown key "histroy" (did you mean "history"?)`},
		{name: "file syntax", file: "addr = \":8080\"\nhistory = = 5\n", want: "line 2"},
		{name: "file bad duration", file: "heartbeat = 15\n", want: `heartbeat = 15: parse error`},
		{name: "file array for scalar", file: "addr = [\":1\", \":2\"]\n", want: "addr: takes one value, got an array"},
		{name: "file table", file: "[redis]\nurl = \"redis://x\"\n", want: `unknown key "redis"`},
		{name: "file store", file: "store = \"mysql\"\n", want: `--store "mysql"`},
		{name: "file cors", file: "cors-origins = [\"*\"]\n", want: `CORS origin "*" not allowed`},
		{name: "missing file", args: []string{"--config", "does-not-exist.toml"}, want: "--config does-not-exist.toml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			dataDir := filepath.Join(t.TempDir(), "data")
			args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir}, tt.args...)
			if tt.file != "" {
				args = append(args, "--config", writeConfig(t, tt.file))
			}
			res := runCmd(t, args...)
			if res.code != exitConfig {
				t.Errorf("herald %s: exit %d, want %d; stderr %q", strings.Join(args, " "), res.code, exitConfig, res.stderr)
			}
			if !strings.Contains(res.stderr, tt.want) {
				t.Errorf("herald %s: stderr %q, want it to contain %q", strings.Join(args, " "), res.stderr, tt.want)
			}
			if n := strings.Count(strings.TrimSpace(res.stderr), "\n"); n != 0 && !strings.Contains(tt.name, "drain") {
				t.Errorf("herald %s: %d lines on stderr, want one:\n%s", strings.Join(args, " "), n+1, res.stderr)
			}
			if res.stdout != "" {
				t.Errorf("herald %s: printed %q on stdout before refusing the configuration", strings.Join(args, " "), res.stdout)
			}
			if _, err := os.Stat(dataDir); err == nil {
				t.Errorf("herald %s: created the data dir before refusing the configuration", strings.Join(args, " "))
			}
		})
	}
}

// TestUnreachableStoreStartsUnready checks that a store that cannot be
// reached does not stop the hub (a restart during an engine outage must not
// crash-loop): it runs, says the log is unreachable, and is not ready.
func TestUnreachableStoreStartsUnready(t *testing.T) {
	bg := startCmd(t, "serve", "--addr", "127.0.0.1:0", "--store", "redis", "--redis-url", "redis://127.0.0.1:1/0")
	waitFor(t, "the unreachable log to be reported", func() bool {
		return strings.Contains(bg.stderr.String(), "log unreachable")
	})
	select {
	case <-bg.done:
		t.Fatalf("herald serve with an unreachable store exited %d; stderr %q", bg.code, bg.stderr.String())
	default:
	}
}
