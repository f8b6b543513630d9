package broker

import (
	"container/list"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/yosida95/uritemplate/v3"
)

// Limits of topic selectors. A selector is compiled into a regular
// expression whose size, and whose matching time against a topic, grow with
// the number of template expressions and variables: a single 391 KB
// template took seconds to compile and hundreds of MB to hold, and one of
// 10 expressions of 10 variables takes 235 µs to match a 100-byte topic.
// At these limits one template costs at most about 55 µs per 100-byte
// topic of reserved characters (1 µs for a short topic), and one list of
// selectors (one subscription) about 150 µs; see BenchmarkMatcherShared
// and docs/DESIGN.md. [CheckSelectors] and [NewMatcher] refuse a selector
// beyond them, before compiling anything.
const (
	// MaxSelectorLen is the longest selector, exact topic or template, in
	// bytes.
	MaxSelectorLen = 2048
	// MaxTemplateExpressions is the number of {…} expressions one URI
	// template may hold.
	MaxTemplateExpressions = 20
	// MaxTemplateVariables is the number of variables one URI template may
	// name, over all its expressions ({a,b}{c} names three).
	MaxTemplateVariables = 20
	// MaxRequestTemplateVariables is the number of template variables one
	// list of selectors (one subscription, one token) may name in all, which
	// bounds what one subscriber costs each update.
	MaxRequestTemplateVariables = 50
	// MaxRequestSelectorBytes is the total length of one list of
	// selectors, which bounds the memory one subscriber holds for them.
	MaxRequestSelectorBytes = 32 << 10
	// MaxRequestTemplateBytes is the total length of the URI templates in
	// one list of selectors. A compiled template holds about 50 bytes per
	// byte of its text (the regular expression has an instruction per
	// literal byte), so this and MaxRequestTemplateVariables bound the
	// compiled templates of one subscriber to about 100 KB (measured: 202
	// KB for two templates of 2 KiB, 192 KB for 100 short templates of
	// one variable).
	MaxRequestTemplateBytes = 2 << 10
)

// SelectorError reports a selector that cannot be compiled. Reason is a
// one-line explanation, without the selector itself (which may be long).
type SelectorError struct {
	Selector string
	Reason   string
}

func (e *SelectorError) Error() string {
	return fmt.Sprintf("broker: topic selector %q: %s", shorten(e.Selector, 64), e.Reason)
}

// shorten cuts s to at most n bytes, at a rune boundary, marking the cut.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// CheckSelectors reports the first selector that exceeds the limits above
// or is empty, as a *[SelectorError], without compiling anything: its cost
// is linear in the selectors' length. Call it before authorization, and
// compile (with [NewMatcher]) after. A nil error does not mean a template
// is valid: only compiling tells.
func CheckSelectors(selectors []string) error {
	total, size, tsize := 0, 0, 0
	for _, s := range selectors {
		if strings.HasPrefix(s, exactTag) || strings.HasPrefix(s, urlPatternTag) {
			// Mercure 1.0 matchers: the hub bounds them as it tags them,
			// and they are not URI templates (braces are literal or URL
			// pattern groups). They count towards the request's bytes.
			if size += len(s); size > MaxRequestSelectorBytes {
				return &SelectorError{s, fmt.Sprintf("the selectors are longer than %d bytes in all", MaxRequestSelectorBytes)}
			}
			continue
		}
		switch {
		case s == "":
			return &SelectorError{s, "empty selector"}
		case len(s) > MaxSelectorLen:
			return &SelectorError{s, fmt.Sprintf("longer than %d bytes (%d)", MaxSelectorLen, len(s))}
		}
		if size += len(s); size > MaxRequestSelectorBytes {
			return &SelectorError{s, fmt.Sprintf("the selectors are longer than %d bytes in all", MaxRequestSelectorBytes)}
		}
		exprs, vars := templateSize(s)
		if exprs > 0 {
			if tsize += len(s); tsize > MaxRequestTemplateBytes {
				return &SelectorError{s, fmt.Sprintf("the templates are longer than %d bytes in all", MaxRequestTemplateBytes)}
			}
		}
		switch {
		case exprs > MaxTemplateExpressions:
			return &SelectorError{s, fmt.Sprintf("more than %d template expressions (%d)", MaxTemplateExpressions, exprs)}
		case vars > MaxTemplateVariables:
			return &SelectorError{s, fmt.Sprintf("more than %d template variables (%d)", MaxTemplateVariables, vars)}
		}
		total += vars
		if total > MaxRequestTemplateVariables {
			return &SelectorError{s, fmt.Sprintf("the selectors name more than %d template variables in all", MaxRequestTemplateVariables)}
		}
	}
	return nil
}

// templateSize counts the {…} expressions of s and the variables they name
// (one more than the commas inside each). It does not validate s.
func templateSize(s string) (exprs, vars int) {
	in := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '{':
			exprs++
			vars++
			in = true
		case '}':
			in = false
		case ',':
			if in {
				vars++
			}
		}
	}
	return exprs, vars
}

// Matcher matches topics against a set of selectors. A selector is an exact
// topic, "*" (every topic), or an RFC 6570 URI template such as
// "https://example.com/books/{id}". A selector without '{' is always exact,
// so plain topics never pay for template matching.
//
// Templates are interned: every Matcher built from the same template text
// holds the same compiled template, so that a [Memo] can match a topic
// against it once for all of them.
//
// A nil *Matcher matches nothing. A Matcher is immutable once built and safe
// for concurrent use.
type Matcher struct {
	exact []string            // exact topics, deduplicated
	set   map[string]struct{} // exact topics as a set, only when there are many
	// wild holds the selectors that are not exact topics, nil when there
	// are none: most streams select exact topics only, and every open
	// stream holds a Matcher, so the common one stays at 40 bytes.
	wild *wildcards
}

// wildcards are the selectors of a Matcher that are not exact topics.
type wildcards struct {
	all       bool                 // "*"
	templates []*template          // compiled URI templates, interned
	patterns  []*urlPatternMatcher // Mercure 1.0 URL patterns (urlpattern.go)
}

// template is one compiled URI template, shared by every Matcher that uses
// it.
type template struct {
	src string
	re  *regexp.Regexp
}

// setThreshold is the number of exact topics above which Match uses a map.
// Below it a linear scan is faster and a subscriber's matcher stays small:
// it is held by every open stream.
const setThreshold = 8

// NewMatcher checks selectors with [CheckSelectors] and compiles them. An
// empty selector, one beyond the limits or an invalid URI template is an
// error (a *[SelectorError]); no input panics.
func NewMatcher(selectors []string) (*Matcher, error) {
	if err := CheckSelectors(selectors); err != nil {
		return nil, err
	}
	m, w := &Matcher{}, &wildcards{}
	for _, s := range selectors {
		if exact, up, ok, err := parseTagged(s); ok { // Mercure 1.0 selectors (urlpattern.go)
			switch {
			case err != nil:
				return nil, err
			case up != nil:
				w.patterns = append(w.patterns, up)
			case exact == "*":
				w.all = true
			case !slices.Contains(m.exact, exact):
				m.exact = append(m.exact, exact)
			}
			continue
		}
		switch {
		case s == "*":
			w.all = true
		case strings.Contains(s, "{"):
			t, err := compileTemplate(s)
			if err != nil {
				return nil, err
			}
			if !slices.Contains(w.templates, t) {
				w.templates = append(w.templates, t)
			}
		default:
			if !slices.Contains(m.exact, s) {
				m.exact = append(m.exact, s)
			}
		}
	}
	m.exact = slices.Clip(m.exact)
	if w.all || len(w.templates) > 0 || len(w.patterns) > 0 {
		m.wild = w
	}
	if len(m.exact) > setThreshold {
		m.set = make(map[string]struct{}, len(m.exact))
		for _, s := range m.exact {
			m.set[s] = struct{}{}
		}
	}
	return m, nil
}

// matchExact reports whether topic matches "*" or an exact selector.
func (m *Matcher) matchExact(topic string) bool {
	if m.wild != nil && m.wild.all {
		return true
	}
	if m.set != nil {
		_, ok := m.set[topic]
		return ok
	}
	return slices.Contains(m.exact, topic)
}

// Match reports whether topic matches any selector.
func (m *Matcher) Match(topic string) bool {
	if m == nil {
		return false
	}
	if m.matchExact(topic) {
		return true
	}
	if m.wild == nil {
		return false
	}
	for _, t := range m.wild.templates {
		if t.re.MatchString(topic) {
			return true
		}
	}
	for _, p := range m.wild.patterns {
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

// Memo shares template matching between the subscribers of one update:
// each distinct template is matched against the update's topics at most
// once, however many Matchers hold it. Call [Memo.Reset] with the update's
// topics, then [Matcher.MatchMemo] for every subscriber.
//
// The zero value is ready to use. A Memo is not safe for concurrent use:
// the goroutine that fans updates out owns it and reuses it from update to
// update.
type Memo struct {
	topics []string
	seen   map[*template]bool
}

// Reset forgets the previous update's results and starts memoizing
// matches against topics. It keeps its map, so a Memo reused from update
// to update does not allocate once it has grown.
func (mm *Memo) Reset(topics []string) {
	mm.topics = topics
	clear(mm.seen)
}

// MatchMemo is [Matcher.MatchAny] of the topics given to mm's last
// [Memo.Reset], with template results shared through mm.
func (m *Matcher) MatchMemo(mm *Memo) bool {
	if m == nil {
		return false
	}
	for _, t := range mm.topics {
		if m.matchExact(t) {
			return true
		}
	}
	if m.wild == nil {
		return false
	}
	for _, t := range m.wild.templates {
		hit, ok := mm.seen[t]
		if !ok {
			hit = slices.ContainsFunc(mm.topics, t.re.MatchString)
			if mm.seen == nil {
				mm.seen = make(map[*template]bool)
			}
			mm.seen[t] = hit
		}
		if hit {
			return true
		}
	}
	for _, p := range m.wild.patterns {
		if slices.ContainsFunc(mm.topics, p.match) {
			return true
		}
	}
	return false
}

// wildcard reports whether the matcher has selectors that the broker cannot
// index by exact topic ("*" or templates).
func (m *Matcher) wildcard() bool { return m.wild != nil }

// templates interns compiled URI templates by their text, least recently
// used first out. Matchers are built per request (from a token's
// selectors, from a subscription's topics), and the same few templates come
// back again and again; compiling one costs tens of microseconds. The cache
// is bounded by an estimate of the bytes its entries hold
// ([maxCachedTemplateBytes]); a template evicted while Matchers still hold
// it stays alive with them, and is compiled again (a new instance) when it
// is next asked for.
var templates struct {
	sync.Mutex
	m     map[string]*list.Element // of *cacheEntry
	lru   list.List                // front: most recently used
	bytes int
}

type cacheEntry struct {
	t    *template
	cost int
}

// maxCachedTemplateBytes bounds the estimated size of the template cache.
const maxCachedTemplateBytes = 16 << 20

// templateCost estimates the heap held by a compiled template: measured at
// 13 (variables) to 48 (literal text) bytes per byte of the regular
// expression, plus the source and the entry.
func templateCost(src string, re *regexp.Regexp) int {
	return 48*len(re.String()) + len(src) + 256
}

// TemplateCacheBytes returns the estimated bytes held by the template
// cache, for tests and metrics.
func TemplateCacheBytes() int {
	templates.Lock()
	defer templates.Unlock()
	return templates.bytes
}

// compileTemplate returns the interned template of s, compiling it on a
// cache miss.
func compileTemplate(s string) (*template, error) {
	templates.Lock()
	if e, ok := templates.m[s]; ok {
		templates.lru.MoveToFront(e)
		t := e.Value.(*cacheEntry).t
		templates.Unlock()
		return t, nil
	}
	templates.Unlock()

	re, err := templateRegexp(s)
	if err != nil {
		return nil, err
	}
	t := &template{src: s, re: re}
	cost := templateCost(s, re)

	templates.Lock()
	defer templates.Unlock()
	if e, ok := templates.m[s]; ok { // compiled concurrently: keep the first
		templates.lru.MoveToFront(e)
		return e.Value.(*cacheEntry).t, nil
	}
	if cost > maxCachedTemplateBytes {
		return t, nil
	}
	if templates.m == nil {
		templates.m = make(map[string]*list.Element)
	}
	for templates.bytes+cost > maxCachedTemplateBytes {
		last := templates.lru.Back()
		ce := templates.lru.Remove(last).(*cacheEntry)
		delete(templates.m, ce.t.src)
		templates.bytes -= ce.cost
	}
	templates.m[s] = templates.lru.PushFront(&cacheEntry{t: t, cost: cost})
	templates.bytes += cost
	return t, nil
}

// templateRegexp returns the anchored regular expression that matches the
// expansions of the RFC 6570 template s. The uritemplate package compiles
// with regexp.MustCompile; a template it turns into an invalid expression
// (a repeat count over 1000, a program too large) is an error here, not a
// panic.
func templateRegexp(s string) (re *regexp.Regexp, err error) {
	t, err := uritemplate.New(s)
	if err != nil {
		// The parser's message quotes the template: keep it short.
		return nil, &SelectorError{s, shorten(strings.TrimPrefix(err.Error(), "uritemplate: "), 120)}
	}
	defer func() {
		if p := recover(); p != nil {
			re, err = nil, &SelectorError{s, "template too complex to compile"}
		}
	}()
	return t.Regexp(), nil
}
