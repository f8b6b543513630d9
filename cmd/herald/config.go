package main

// Configuration sources, shared by every subcommand: each flag --foo-bar
// is read from the command line, else from HERALD_FOO_BAR, else (for a
// command with a --config flag) from the key foo-bar of a TOML file, else
// it keeps its default. This is built over the flag.FlagSet alone, so a
// flag added to a command is covered without further code.

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// exitConfig is the exit status of a usage or configuration error: a bad
// flag, environment variable or config file value. Nothing has been
// printed, opened or listened on when a command exits with it.
const exitConfig = 2

// configFlag is the flag that names a command's config file.
const configFlag = "config"

// source says where a flag's effective value came from.
type source string

const (
	fromDefault source = "default"
	fromFlag    source = "flag"
	fromEnv     source = "env"
	fromFile    source = "file"
)

// configError is a usage or configuration error; it exits with exitConfig.
func configError(format string, args ...any) error {
	return &exitError{exitConfig, fmt.Errorf(format, args...)}
}

// parseFlags parses args into fs, then fills every flag not given on the
// command line from its HERALD_* environment variable and, if fs has a
// --config flag that is set, from that file. Usage and configuration
// errors have exit status exitConfig. A mistyped flag prints its error
// once (by the caller) with a short usage line, not the whole flag list.
func parseFlags(fs *flag.FlagSet, args []string) error {
	_, err := parseFlagSources(fs, args)
	return err
}

// parseFlagSources is parseFlags that also reports where each flag's
// value came from, keyed by flag name.
func parseFlagSources(fs *flag.FlagSet, args []string) (map[string]source, error) {
	if err := parseArgs(fs, args); err != nil {
		return nil, err
	}
	src := map[string]source{}
	fs.VisitAll(func(f *flag.Flag) { src[f.Name] = fromDefault })
	fs.Visit(func(f *flag.Flag) { src[f.Name] = fromFlag })

	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if src[f.Name] != fromDefault || err != nil {
			return
		}
		name := envName(f.Name)
		if v, ok := os.LookupEnv(name); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = configError("%s=%q: %w", name, v, e)
				return
			}
			src[f.Name] = fromEnv
		}
	})
	if err != nil {
		return nil, err
	}
	if cf := fs.Lookup(configFlag); cf != nil && cf.Value.String() != "" {
		if err := loadConfigFile(fs, cf.Value.String(), src); err != nil {
			return nil, err
		}
	}
	return src, nil
}

// parseArgs runs fs.Parse without letting the flag package print: -h
// prints the full usage, any other error is returned once, followed by
// a pointer to -h, for the caller to print.
func parseArgs(fs *flag.FlagSet, args []string) error {
	out, usage := fs.Output(), fs.Usage
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(joinBoolArgs(fs, args))
	fs.SetOutput(out)
	fs.Usage = usage
	if err == nil {
		return nil
	}
	if errors.Is(err, flag.ErrHelp) {
		if usage != nil {
			usage()
		} else {
			fs.PrintDefaults()
		}
		return err
	}
	return configError("%w (run '%s -h' for the flags)", err, fs.Name())
}

// loadConfigFile sets every flag still at its default (src) from the
// TOML file path. Keys are flag names; a repeatable flag takes an array.
// Unknown keys, and values a flag refuses, are configuration errors.
func loadConfigFile(fs *flag.FlagSet, path string, src map[string]source) error {
	var doc map[string]any
	md, err := toml.DecodeFile(path, &doc)
	if err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			return configError("--config %s: line %d: %s", path, perr.Position.Line, perr.Message)
		}
		return configError("--config %s: %w", path, err)
	}
	keys := md.Keys()
	for _, k := range keys {
		if len(k) != 1 {
			continue // nested keys are reported with their table below
		}
		name := k[0]
		f := fs.Lookup(name)
		if f == nil || name == configFlag {
			return configError("--config %s: unknown key %q%s", path, name, suggest(fs, name))
		}
		vals, err := tomlValues(f, doc[name])
		if err != nil {
			return configError("--config %s: %s: %w", path, name, err)
		}
		if src[name] != fromDefault {
			continue // the command line or environment wins
		}
		if isRepeatable(f) {
			resetRepeatable(f)
		}
		for _, v := range vals {
			if err := f.Value.Set(v); err != nil {
				return configError("--config %s: %s = %s: %w", path, name, tomlLiteral(doc[name]), err)
			}
		}
		src[name] = fromFile
	}
	return nil
}

// tomlValues converts a decoded TOML value to the strings that f.Set
// takes: one for a scalar, one per element of an array (only for a
// repeatable flag).
func tomlValues(f *flag.Flag, v any) ([]string, error) {
	if arr, ok := v.([]any); ok {
		if !isRepeatable(f) {
			return nil, fmt.Errorf("takes one value, got an array")
		}
		out := make([]string, 0, len(arr))
		for _, e := range arr {
			s, err := tomlScalar(e)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, nil
	}
	s, err := tomlScalar(v)
	if err != nil {
		return nil, err
	}
	return []string{s}, nil
}

func tomlScalar(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case bool:
		return strconv.FormatBool(v), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64), nil
	case map[string]any:
		return "", errors.New("is a table, want a value (keys are flag names, without tables)")
	}
	return "", fmt.Errorf("unsupported value %v (%T)", v, v)
}

func tomlLiteral(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprint(v)
}

// isRepeatable reports whether f collects values (a slice-typed flag
// such as listFlag or csvFlag).
func isRepeatable(f *flag.Flag) bool {
	rv := reflect.ValueOf(f.Value)
	return rv.Kind() == reflect.Pointer && rv.Elem().Kind() == reflect.Slice
}

// resetRepeatable empties a repeatable flag, so that a file's array
// replaces its default instead of adding to it.
func resetRepeatable(f *flag.Flag) {
	rv := reflect.ValueOf(f.Value).Elem()
	rv.Set(reflect.Zero(rv.Type()))
}

// suggest returns a hint naming the flag closest to a mistyped key.
func suggest(fs *flag.FlagSet, name string) string {
	best, bestD := "", 4
	fs.VisitAll(func(f *flag.Flag) {
		if d := editDistance(name, f.Name); d < bestD {
			best, bestD = f.Name, d
		}
	})
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// envName maps a flag name to its environment variable: "foo-bar" is
// HERALD_FOO_BAR.
func envName(flagName string) string {
	return "HERALD_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// isSecret reports whether a flag holds a secret by its name: keys,
// secrets, passwords and tokens are masked by --print-config.
func isSecret(name string) bool {
	if name == "tls-key" { // a path
		return false
	}
	for _, w := range []string{"key", "secret", "password", "token"} {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
}

// masked is what --print-config shows instead of a secret.
const masked = "***"

// maskValue hides a secret value, and the password of any URL in a
// (comma-separated) value.
func maskValue(name, v string) string {
	if v == "" {
		return v
	}
	if isSecret(name) {
		// A path to a key file is not secret itself.
		if !strings.HasSuffix(name, "-file") && !strings.HasSuffix(name, "-dir") {
			return masked
		}
	}
	parts := strings.Split(v, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil || u.User == nil {
			continue
		}
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), masked)
			parts[i] = strings.Replace(u.String(), url.QueryEscape(masked), masked, 1)
		} else if u.User.Username() != "" && u.Scheme != "" {
			// redis://token@host: a lone user part is often the password.
			u.User = url.User(masked)
			parts[i] = strings.Replace(u.String(), url.QueryEscape(masked), masked, 1)
		}
	}
	return strings.Join(parts, ",")
}

// printConfig writes the effective configuration of fs as a TOML file
// that --config reads back, with secrets masked and each value's source
// in a comment.
func printConfig(w io.Writer, fs *flag.FlagSet, src map[string]source, skip ...string) {
	fmt.Fprintf(w, "# Effective configuration of %s (flag > env > file > default). Secrets are masked.\n", fs.Name())
	var names []string
	fs.VisitAll(func(f *flag.Flag) {
		for _, s := range skip {
			if s == f.Name {
				return
			}
		}
		names = append(names, f.Name)
	})
	sort.Strings(names)
	for _, n := range names {
		f := fs.Lookup(n)
		from := string(src[n])
		if src[n] == fromEnv {
			from = "env " + envName(n)
		}
		fmt.Fprintf(w, "%s = %s # %s\n", n, tomlValue(f), from)
	}
}

// tomlValue renders f's value as a TOML literal of the type its file key
// takes.
func tomlValue(f *flag.Flag) string {
	if isRepeatable(f) {
		rv := reflect.ValueOf(f.Value).Elem()
		elems := make([]string, rv.Len())
		for i := range elems {
			elems[i] = strconv.Quote(maskValue(f.Name, fmt.Sprint(rv.Index(i).Interface())))
		}
		return "[" + strings.Join(elems, ", ") + "]"
	}
	if g, ok := f.Value.(flag.Getter); ok {
		switch v := g.Get().(type) {
		case bool, int, int64, uint, uint64, float64:
			return fmt.Sprint(v)
		case time.Duration:
			return strconv.Quote(v.String())
		}
	}
	return strconv.Quote(maskValue(f.Name, f.Value.String()))
}
