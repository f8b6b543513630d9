package e2e_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"testing"
	"time"

	"github.com/herald-sse/herald/hub"
	"github.com/herald-sse/herald/internal/browsertest"
)

// pageServer serves an empty HTML page: an origin other than the hub's
// for the harness to run in.
func pageServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte("<!doctype html><title>app</title><p>app page</p>"))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// crossOriginPublish is JavaScript that publishes from the page with
// fetch, the way a Mercure client does (Authorization header, so the
// browser sends a CORS preflight). It resolves to the status, or to
// "refused: ..." when the browser refuses to send or to show the answer.
const crossOriginPublish = `fetch(%q, {
  method: "POST",
  headers: {"Authorization": "Bearer " + %q, "Content-Type": "application/x-www-form-urlencoded"},
  body: new URLSearchParams({topic: "/news", data: %q}),
}).then(r => r.status, e => "refused: " + e.message)`

// TestCrossOrigin checks what pages on other origins can do: one whose
// origin is in CORSOrigins subscribes and publishes; one whose origin is
// not gets an EventSource error and no events, and its publications are
// refused (the fetch with a preflight, and a "simple" no-cors form post
// that needs no preflight, which CSRF protection must stop).
func TestCrossOrigin(t *testing.T) {
	allowed := pageServer(t)
	other := pageServer(t)
	h := startHub(t, hub.Config{CORSOrigins: []string{allowed.URL}}, nil)
	tok := token(t)
	sub := h.Endpoint() + "?topic=/news"
	b := browsertest.New(t)

	// The allowed origin subscribes, with credentials as Mercure clients
	// do, and publishes.
	good := openHarness(b, allowed.URL)
	good.Eval(fmt.Sprintf(`h.listen(%q, [], {withCredentials: true})`, sub), nil)
	good.WaitFor("h.opens[0] === 1", 10*time.Second, "[h.errors, h.state(0)]")
	var status any
	good.Eval(fmt.Sprintf(crossOriginPublish, h.Endpoint(), tok, "from the allowed origin"), &status)
	if status != float64(http.StatusOK) {
		t.Fatalf("publish from allowed origin %s: %v, want 200", allowed.URL, status)
	}
	good.WaitFor("h.events.length >= 1", 10*time.Second, "h.events")

	// The other origin is refused.
	bad := openHarness(b, other.URL)
	bad.Eval(fmt.Sprintf(`h.listen(%q)`, sub), nil)
	bad.WaitFor("h.state(0) === EventSource.CLOSED", 10*time.Second, "[h.errors, h.state(0)]")
	bad.Eval(fmt.Sprintf(crossOriginPublish, h.Endpoint(), tok, "from the other origin"), &status)
	if s, ok := status.(string); !ok || len(s) < 8 || s[:8] != "refused:" {
		t.Errorf("publish with fetch from other origin %s: %v, want refused", other.URL, status)
	}
	// A form post needs no preflight: the browser sends it, and the hub
	// must refuse it. The token is in the query, as a cookie would be.
	var sent bool
	bad.Eval(fmt.Sprintf(`fetch(%q, {method: "POST", mode: "no-cors",
		body: new URLSearchParams({topic: "/news", data: "csrf from the other origin"})}).then(() => true, () => false)`,
		h.Endpoint()+"?authorization="+url.QueryEscape(tok)), &sent)
	if !sent {
		t.Errorf("no-cors form post from the other origin was not sent; the test does not test the hub")
	}

	// A marker published after the refused attempts: anything they
	// appended would arrive before it.
	publish(t, h.Endpoint(), tok, url.Values{"topic": {"/news"}, "data": {"marker"}})
	good.WaitFor("h.events.length >= 2", 10*time.Second, "h.events")
	var gotData []string
	good.Eval("h.events.map(e => e.data)", &gotData)
	if want := []string{"from the allowed origin", "marker"}; !reflect.DeepEqual(gotData, want) {
		t.Errorf("allowed page received %q, want %q", gotData, want)
	}
	var badEvents, badOpens int
	bad.Eval("h.events.length", &badEvents)
	bad.Eval("h.opens[0]", &badOpens)
	if badEvents != 0 || badOpens != 0 {
		t.Errorf("page on a disallowed origin: %d events, %d opens, want none", badEvents, badOpens)
	}
}

// TestCrossOriginWithoutCORSOrigins checks the default: with no
// CORSOrigins, a page on another origin cannot subscribe.
func TestCrossOriginWithoutCORSOrigins(t *testing.T) {
	other := pageServer(t)
	h := startHub(t, hub.Config{}, nil)
	b := browsertest.New(t)
	p := openHarness(b, other.URL)
	p.Eval(fmt.Sprintf(`h.listen(%q)`, h.Endpoint()+"?topic=/news"), nil)
	p.WaitFor("h.state(0) === EventSource.CLOSED", 10*time.Second, "[h.errors, h.state(0)]")
	var opens, errs int
	p.Eval("h.opens[0]", &opens)
	p.Eval("h.errors[0]", &errs)
	if opens != 0 || errs == 0 {
		t.Errorf("cross-origin EventSource without CORSOrigins: %d opens, %d errors, want 0 opens and an error", opens, errs)
	}
}
