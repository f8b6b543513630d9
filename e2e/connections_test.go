package e2e_test

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/herald-sse/herald/hub"
	"github.com/herald-sse/herald/internal/browsertest"
)

// TestSixConnectionsPerOrigin shows the HTTP/1.1 limit that docs/BROWSERS.md
// describes: a browser opens at most six connections to one origin, so a
// seventh EventSource never opens while six streams are live, and a page
// that needs many topics must use one subscription with several topic
// parameters.
func TestSixConnectionsPerOrigin(t *testing.T) {
	h := startHub(t, hub.Config{}, nil)
	tok := token(t)
	b := browsertest.New(t)
	p := openHarness(b, h.URL+hub.HealthPath)

	topics := []string{"/a", "/b", "/c", "/d", "/e", "/f", "/g"}
	for _, topic := range topics {
		p.Eval(fmt.Sprintf(`h.listen(%q)`, h.Endpoint()+"?topic="+url.QueryEscape(topic)), nil)
	}
	p.WaitFor("h.opens.filter(n => n > 0).length === 6", 10*time.Second, "h.opens")
	// The seventh stays connecting: give it time to prove it.
	time.Sleep(time.Second)
	var opens []int
	p.Eval("h.opens", &opens)
	if want := []int{1, 1, 1, 1, 1, 1, 0}; !slices.Equal(opens, want) {
		t.Fatalf("seven EventSources on one HTTP/1.1 origin: opens %v, want six open and one waiting", opens)
	}
	var state int
	p.Eval("h.state(6)", &state)
	if state != 0 {
		t.Errorf("seventh EventSource readyState = %d, want 0 (CONNECTING)", state)
	}

	// One subscription with every topic: one connection.
	p.Eval("h.closeAll()", nil)
	q := make(url.Values)
	q["topic"] = topics
	p.Eval(fmt.Sprintf(`h.events = []; h.listen(%q)`, h.Endpoint()+"?"+q.Encode()), nil)
	p.WaitFor("h.opens[7] === 1", 10*time.Second, "h.opens")
	for _, topic := range topics {
		publish(t, h.Endpoint(), tok, url.Values{"topic": {topic}, "data": {"on " + topic}})
	}
	p.WaitFor(fmt.Sprintf("h.events.length >= %d", len(topics)), 10*time.Second, "h.events")
	var got []string
	p.Eval("h.events.map(e => e.src + ' ' + e.data)", &got)
	var want []string
	for _, topic := range topics {
		want = append(want, "7 on "+topic)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("multi-topic subscription received %q, want %q", got, want)
	}
}
