package broker

import (
	"fmt"
	"strings"
	"sync"

	"github.com/dunglas/go-urlpattern"
)

// Tagged selectors carry the matcher types of Mercure 1.0 through the
// []string selector API ([Subscription.Topics], [Subscription.Private],
// [NewMatcher]) without changing the meaning of the classic selectors. A
// tag starts with a NUL byte, which no topic or selector accepted by the hub
// can contain, so a tagged selector can never be mistaken for a classic one
// and a classic one can never forge a tag.
const (
	exactTag      = "\x00exact\x00"
	urlPatternTag = "\x00urlpattern\x00"
)

// MaxURLPatternLength is the longest URL pattern [URLPatternSelector]
// selectors may carry; [NewMatcher] refuses longer ones. Compiling a pattern
// costs time and memory roughly in proportion to its length (the regular
// expressions are RE2, so matching stays linear).
const MaxURLPatternLength = 2048

// ExactSelector returns a selector that matches topic byte for byte, even if
// it contains '{' (Mercure 1.0's Exact matcher type). As Mercure 1.0
// requires, "*" stays the wildcard that matches every topic.
func ExactSelector(topic string) string { return exactTag + topic }

// URLPatternSelector returns a selector that matches the topics that the
// WHATWG URL pattern matches (Mercure 1.0's URLPattern matcher type).
// Relative patterns and relative topics are resolved against base, the hub's
// URL; base must be an absolute URL without NUL bytes.
func URLPatternSelector(pattern, base string) string {
	return urlPatternTag + base + "\x00" + pattern
}

// SelectorType describes a selector for presentation: the Mercure 1.0
// matcher type ("Exact" or "URLPattern") and the pattern the subscriber gave,
// or "" and s itself for a classic selector (exact topic, "*" or URI
// template).
func SelectorType(s string) (matchType, pattern string) {
	switch {
	case strings.HasPrefix(s, exactTag):
		return "Exact", s[len(exactTag):]
	case strings.HasPrefix(s, urlPatternTag):
		_, p, _ := strings.Cut(s[len(urlPatternTag):], "\x00")
		return "URLPattern", p
	}
	return "", s
}

// urlPatternMatcher matches topics against one compiled URL pattern.
type urlPatternMatcher struct {
	p    *urlpattern.URLPattern
	base string
}

func (m *urlPatternMatcher) match(topic string) bool { return m.p.Test(topic, m.base) }

// parseTagged decodes a tagged selector: an exact topic (exact != "") or a
// compiled URL pattern (up != nil). ok is false for a classic selector.
func parseTagged(s string) (exact string, up *urlPatternMatcher, ok bool, err error) {
	switch {
	case strings.HasPrefix(s, exactTag):
		t := s[len(exactTag):]
		if t == "" {
			return "", nil, true, fmt.Errorf("broker: empty exact selector")
		}
		return t, nil, true, nil
	case strings.HasPrefix(s, urlPatternTag):
		base, p, found := strings.Cut(s[len(urlPatternTag):], "\x00")
		if !found || p == "" {
			return "", nil, true, fmt.Errorf("broker: malformed URL pattern selector")
		}
		up, err := compileURLPattern(p, base)
		return "", up, true, err
	}
	return "", nil, false, nil
}

// urlPatterns caches compiled URL patterns by base and pattern, like
// templates: bounded, and started over when full.
var urlPatterns struct {
	sync.Mutex
	m map[string]*urlPatternMatcher
}

const maxCachedURLPatterns = 1024

// compileURLPattern compiles pattern against base, without the ignoreCase
// option (Mercure 1.0 forbids it). The module's regular expressions are Go
// RE2 ones, so matching is linear in the topic's length.
func compileURLPattern(pattern, base string) (m *urlPatternMatcher, err error) {
	if len(pattern) > MaxURLPatternLength {
		return nil, fmt.Errorf("broker: URL pattern is %d bytes, at most %d", len(pattern), MaxURLPatternLength)
	}
	key := base + "\x00" + pattern
	urlPatterns.Lock()
	m, ok := urlPatterns.m[key]
	urlPatterns.Unlock()
	if ok {
		return m, nil
	}
	defer func() {
		// Input from the network: a bug in the parser must cost one 400,
		// not the process.
		if r := recover(); r != nil {
			m, err = nil, fmt.Errorf("broker: URL pattern %q: cannot compile", pattern)
		}
	}()
	p, err := urlpattern.New(pattern, base, nil)
	if err != nil {
		return nil, fmt.Errorf("broker: URL pattern %q: %w", pattern, err)
	}
	m = &urlPatternMatcher{p: p, base: base}
	urlPatterns.Lock()
	if urlPatterns.m == nil || len(urlPatterns.m) >= maxCachedURLPatterns {
		urlPatterns.m = make(map[string]*urlPatternMatcher)
	}
	urlPatterns.m[key] = m
	urlPatterns.Unlock()
	return m, nil
}
