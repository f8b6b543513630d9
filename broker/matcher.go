package broker

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/yosida95/uritemplate/v3"
)

// Matcher matches topics against a set of selectors. A selector is an exact
// topic, "*" (every topic), or an RFC 6570 URI template such as
// "https://example.com/books/{id}". A selector without '{' is always exact,
// so plain topics never pay for template matching.
//
// A nil *Matcher matches nothing. A Matcher is immutable once built and safe
// for concurrent use.
type Matcher struct {
	exact     []string            // exact topics, deduplicated
	set       map[string]struct{} // exact topics as a set, only when there are many
	all       bool
	templates []*regexp.Regexp     // compiled URI templates
	patterns  []*urlPatternMatcher // Mercure 1.0 URL patterns (urlpattern.go)
}

// setThreshold is the number of exact topics above which Match uses a map.
// Below it a linear scan is faster and a subscriber's matcher stays small:
// it is held by every open stream.
const setThreshold = 8

// NewMatcher compiles selectors. An empty selector or an invalid URI template
// is an error.
func NewMatcher(selectors []string) (*Matcher, error) {
	m := &Matcher{}
	for _, s := range selectors {
		if exact, up, ok, err := parseTagged(s); ok { // Mercure 1.0 selectors (urlpattern.go)
			switch {
			case err != nil:
				return nil, err
			case up != nil:
				m.patterns = append(m.patterns, up)
			case exact == "*":
				m.all = true
			case !slices.Contains(m.exact, exact):
				m.exact = append(m.exact, exact)
			}
			continue
		}
		switch {
		case s == "":
			return nil, fmt.Errorf("broker: empty topic selector")
		case s == "*":
			m.all = true
		case strings.Contains(s, "{"):
			re, err := compileTemplate(s)
			if err != nil {
				return nil, err
			}
			m.templates = append(m.templates, re)
		default:
			if !slices.Contains(m.exact, s) {
				m.exact = append(m.exact, s)
			}
		}
	}
	m.exact = slices.Clip(m.exact)
	if len(m.exact) > setThreshold {
		m.set = make(map[string]struct{}, len(m.exact))
		for _, s := range m.exact {
			m.set[s] = struct{}{}
		}
	}
	return m, nil
}

// Match reports whether topic matches any selector.
func (m *Matcher) Match(topic string) bool {
	if m == nil {
		return false
	}
	if m.all {
		return true
	}
	if m.set != nil {
		if _, ok := m.set[topic]; ok {
			return true
		}
	} else if slices.Contains(m.exact, topic) {
		return true
	}
	for _, re := range m.templates {
		if re.MatchString(topic) {
			return true
		}
	}
	for _, p := range m.patterns {
		if p.match(topic) {
			return true
		}
	}
	return false
}

// MatchAny reports whether any of topics matches.
func (m *Matcher) MatchAny(topics []string) bool {
	for _, t := range topics {
		if m.Match(t) {
			return true
		}
	}
	return false
}

// wildcard reports whether the matcher has selectors that the broker cannot
// index by exact topic ("*" or templates).
func (m *Matcher) wildcard() bool { return m.all || len(m.templates) > 0 || len(m.patterns) > 0 }

// templates caches compiled URI templates by their text. Matchers are built
// per request (from a token's selectors, from a subscription's topics), and
// the same few templates come back again and again; compiling one costs
// tens of microseconds. The cache is bounded: when full it starts over.
var templates struct {
	sync.Mutex
	m map[string]*regexp.Regexp
}

const maxCachedTemplates = 4096

// compileTemplate returns the anchored regular expression that matches the
// expansions of the RFC 6570 template s.
func compileTemplate(s string) (*regexp.Regexp, error) {
	templates.Lock()
	re, ok := templates.m[s]
	templates.Unlock()
	if ok {
		return re, nil
	}
	t, err := uritemplate.New(s)
	if err != nil {
		return nil, fmt.Errorf("broker: topic selector %q: %w", s, err)
	}
	re = t.Regexp()
	templates.Lock()
	if templates.m == nil || len(templates.m) >= maxCachedTemplates {
		templates.m = make(map[string]*regexp.Regexp)
	}
	templates.m[s] = re
	templates.Unlock()
	return re, nil
}
