package broker_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/herald-sse/herald/broker"
)

// vars returns a template of n expressions of k variables each.
func vars(n, k int) string {
	var b strings.Builder
	b.WriteString("https://example.com/")
	for e := range n {
		b.WriteString("{+")
		for v := range k {
			if v > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "v%d_%d", e, v)
		}
		b.WriteString("}/")
	}
	return b.String()
}

func TestMatcherLimits(t *testing.T) {
	long := "https://example.com/" + strings.Repeat("a", broker.MaxSelectorLen)
	tests := []struct {
		name      string
		selectors []string
		reason    string // "" means accepted
	}{
		{"at length limit", []string{long[:broker.MaxSelectorLen]}, ""},
		{"template bytes", []string{long[:2000] + "{a}", long[:2000] + "{b}", long[:2000] + "{c}"}, "templates are longer than 2048 bytes in all"},
		{"over length limit", []string{long}, "longer than 2048 bytes"},
		{"391 KB template", []string{"https://example.com/{+" + strings.Repeat("a", 391<<10) + "}"}, "longer than 2048 bytes"},
		{"expressions at limit", []string{vars(broker.MaxTemplateExpressions, 1)}, ""},
		{"too many expressions", []string{vars(broker.MaxTemplateExpressions+1, 1)}, "more than 20 template expressions (21)"},
		{"variables at limit", []string{vars(1, broker.MaxTemplateVariables)}, ""},
		{"too many variables", []string{vars(1, broker.MaxTemplateVariables+1)}, "more than 20 template variables (21)"},
		{"1002 variables", []string{"{" + strings.Repeat("a,", 1001) + "a}"}, "more than 20 template variables (1002)"},
		{"request budget", []string{vars(1, 20), vars(2, 10), vars(4, 5), vars(5, 4), vars(10, 2), vars(1, 1)}, "more than 50 template variables in all"},
		{"empty", []string{"a", ""}, "empty selector"},
		{"request bytes", slices.Repeat([]string{long[:2000]}, 17), "longer than 32768 bytes in all"},
		{"invalid template", []string{"https://example.com/{unclosed"}, "topic selector"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := broker.NewMatcher(tt.selectors)
			if tt.reason == "" {
				if err != nil || m == nil {
					t.Fatalf("NewMatcher(%.40q) = %v, %v, want a matcher", tt.selectors, m, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("NewMatcher(%.40q) error = %v, want one containing %q", tt.selectors, err, tt.reason)
			}
			if _, ok := errors.AsType[*broker.SelectorError](err); !ok {
				t.Errorf("NewMatcher(%.40q) error = %T, want *broker.SelectorError", tt.selectors, err)
			}
			if len(err.Error()) > 300 || strings.Contains(err.Error(), "\n") {
				t.Errorf("NewMatcher error is not one short line: %q", err)
			}
			if err := broker.CheckSelectors(tt.selectors); tt.reason != "topic selector" && err == nil {
				t.Errorf("CheckSelectors(%.40q) = nil, want an error", tt.selectors)
			}
		})
	}
}

// TestMatcherNoPanic feeds templates that the uritemplate package turns into
// regular expressions that regexp.MustCompile refuses: they must be errors.
func TestMatcherNoPanic(t *testing.T) {
	for _, s := range []string{
		"{" + strings.Repeat("a,", 1001) + "a}", // repeat count over 1000
		"{a,b}{c,d}",
		"{}", "{", "}", "{,}", "{+}", "{a:0}", "{a:99999}", "{a*,b*}", "{%zz}",
	} {
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Errorf("NewMatcher(%.40q) panicked: %v", s, p)
				}
			}()
			_, _ = broker.NewMatcher([]string{s})
		}()
	}
}

func TestMatcherMemo(t *testing.T) {
	big := vars(4, 5)
	a, err := broker.NewMatcher([]string{"x", big})
	if err != nil {
		t.Fatal(err)
	}
	b, err := broker.NewMatcher([]string{big, "https://example.com/books/{id}"})
	if err != nil {
		t.Fatal(err)
	}
	var memo broker.Memo
	for _, topics := range [][]string{
		{"x"}, {"y"}, {"https://example.com/books/1"}, {"https://example.com/a/b/c/d/"},
		{"nope", "https://example.com/books/2"}, nil,
	} {
		memo.Reset(topics)
		for i, m := range []*broker.Matcher{a, b, a, b, nil} {
			if got, want := m.MatchMemo(&memo), m.MatchAny(topics); got != want {
				t.Errorf("matcher %d: MatchMemo(%q) = %v, want MatchAny's %v", i, topics, got, want)
			}
		}
	}
}

func TestMatcherCacheBounded(t *testing.T) {
	for i := range 3000 {
		if _, err := broker.NewMatcher([]string{fmt.Sprintf("%s%d/{id}", vars(4, 4), i)}); err != nil {
			t.Fatal(err)
		}
		if got := broker.TemplateCacheBytes(); got > 16<<20 {
			t.Fatalf("after %d templates TemplateCacheBytes() = %d, want at most %d", i+1, got, 16<<20)
		}
	}
}

// FuzzMatcher checks that no selector panics, that a refused one has a
// one-line reason, and that an accepted one matches consistently with and
// without a Memo.
func FuzzMatcher(f *testing.F) {
	for _, s := range []string{
		"https://example.com/books/{id}", "{+path}", "*", "plain", "{a,b,c}", "{?q,page}",
		"{" + strings.Repeat("a,", 1001) + "a}", "{a:5}", "{a*}", "{#frag}", "{/x,y}{;p}{.e}{&z}",
	} {
		f.Add(s, "https://example.com/books/1")
	}
	f.Fuzz(func(t *testing.T, sel, topic string) {
		m, err := broker.NewMatcher([]string{sel})
		if err != nil {
			if msg := err.Error(); strings.ContainsAny(msg, "\r\n") || utf8.RuneCountInString(msg) > 400 {
				t.Fatalf("NewMatcher(%q) error is not one short line: %q", sel, msg)
			}
			return
		}
		var memo broker.Memo
		memo.Reset([]string{topic})
		if got, want := m.MatchMemo(&memo), m.Match(topic); got != want {
			t.Fatalf("NewMatcher(%q): MatchMemo(%q) = %v, Match = %v", sel, topic, got, want)
		}
	})
}

// BenchmarkMatcherShared measures the template matching of one update
// against 1,000 subscribers that share one large template (the most the
// limits allow) and one ordinary subscriber, as the broker's wildcard loop
// runs it: MatchAny per subscriber (each matches the template again) or
// MatchMemo (the template is matched once per update).
func BenchmarkMatcherShared(b *testing.B) {
	big := vars(5, 4) // 20 variables, the most one template may name
	attackers := make([]*broker.Matcher, 1000)
	for i := range attackers {
		m, err := broker.NewMatcher([]string{big})
		if err != nil {
			b.Fatal(err)
		}
		attackers[i] = m
	}
	ordinary, err := broker.NewMatcher([]string{"https://example.com/books/{id}"})
	if err != nil {
		b.Fatal(err)
	}
	topics := []string{"https://example.com/books/" + strings.Repeat("a/b,c", 16)}
	run := func(b *testing.B, subs []*broker.Matcher, memo bool) {
		var mm broker.Memo
		b.ReportAllocs()
		for b.Loop() {
			mm.Reset(topics)
			for _, m := range subs {
				if memo {
					m.MatchMemo(&mm)
				} else {
					m.MatchAny(topics)
				}
			}
			if memo {
				ordinary.MatchMemo(&mm)
			} else {
				ordinary.MatchAny(topics)
			}
		}
	}
	b.Run("ordinary-only", func(b *testing.B) { run(b, nil, false) })
	b.Run("1000-shared/MatchAny", func(b *testing.B) { run(b, attackers, false) })
	b.Run("1000-shared/MatchMemo", func(b *testing.B) { run(b, attackers, true) })
}
