package main

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/herald-sse/herald/internal/browsertest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	state = `document.getElementById("state").textContent`
	texts = `[...document.querySelectorAll("#list li .text")].map(e => e.textContent)`
)

func TestNotificationsInBrowser(t *testing.T) {
	a, err := newApp([]byte("notifications-test-key-0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.routes())
	t.Cleanup(func() {
		a.close()
		srv.Close()
	})
	notify := func(user, text string) {
		t.Helper()
		resp, err := http.PostForm(srv.URL+"/api/notify", url.Values{"user": {user}, "text": {text}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("notify(%q, %q): %s", user, text, resp.Status)
		}
	}

	// The cookie is per browser: one browser per user.
	alice := browsertest.New(t).Page()
	alice.Open(srv.URL + "/?user=alice")
	alice.WaitFor(state+` === "live"`, 10*time.Second, state)
	bobBrowser := browsertest.New(t)
	bob := bobBrowser.Page()
	bob.Open(srv.URL + "/?user=bob")
	bob.WaitFor(state+` === "live"`, 10*time.Second, state)

	// Bob's page also asks for Alice's topic: its token does not cover
	// it, so the hub must send it nothing.
	bob.Eval(`window.spy = []; window.spyOpen = false;
		const spySource = new EventSource("/.well-known/mercure?topic=/users/alice/notifications&lastEventID=earliest");
		spySource.onopen = () => (window.spyOpen = true);
		spySource.addEventListener("notification", (e) => window.spy.push(e.data));
		spySource.onmessage = (e) => window.spy.push(e.data); true`, nil)
	bob.WaitFor("spyOpen", 10*time.Second, "")

	notify("alice", "a1: your build passed")
	notify("bob", "b1: new follower")
	// Alice's page sends one to Bob with its form.
	alice.SetValue(`#send [name=user]`, "bob")
	alice.SetValue(`#send [name=text]`, "b2: <i>hello</i> from alice")
	alice.Click("#send button")
	bob.WaitFor(texts+".length === 2", 10*time.Second, texts)
	notify("alice", "a2: invoice paid")
	alice.WaitFor(texts+".length === 2", 10*time.Second, texts)

	check := func(name string, p *browsertest.Page, want []string) {
		t.Helper()
		var got []string
		p.Eval(texts, &got)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s's page shows %q, want %q (newest first)", name, got, want)
		}
	}
	check("alice", alice, []string{"a2: invoice paid", "a1: your build passed"})
	check("bob", bob, []string{"b2: <i>hello</i> from alice", "b1: new follower"})
	var spied []string
	bob.Eval("window.spy", &spied)
	if len(spied) != 0 {
		t.Errorf("Bob's page subscribed to Alice's topic and received %q, want nothing", spied)
	}

	// A new page for Bob gets the notifications still in the history.
	again := bobBrowser.Page()
	again.Open(srv.URL + "/?user=bob")
	again.WaitFor(texts+".length === 2", 10*time.Second, texts)
	check("bob's second", again, []string{"b2: <i>hello</i> from alice", "b1: new follower"})
	alice.Screenshot("example-notifications")
}

func TestIndexSetsScopedCookie(t *testing.T) {
	a, err := newApp([]byte("notifications-test-key-0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	tests := []struct {
		target string
		code   int
		cookie bool
	}{
		{"/?user=alice", http.StatusOK, true},
		{"/", http.StatusOK, false},
		{"/?user=Alice!", http.StatusBadRequest, false},
		{"/?user=" + strings.Repeat("a", 33), http.StatusBadRequest, false},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		a.routes().ServeHTTP(rec, httptest.NewRequest("GET", tt.target, nil))
		if rec.Code != tt.code {
			t.Errorf("GET %s: %d, want %d", tt.target, rec.Code, tt.code)
		}
		c := rec.Result().Cookies()
		if got := len(c) == 1; got != tt.cookie {
			t.Errorf("GET %s: cookies %v, want a cookie: %v", tt.target, c, tt.cookie)
			continue
		}
		if tt.cookie && (c[0].Name != "mercureAuthorization" || !c[0].HttpOnly || c[0].Path != "/.well-known/mercure" || c[0].SameSite != http.SameSiteStrictMode) {
			t.Errorf("GET %s: cookie %+v, want an HttpOnly, SameSite=Strict mercureAuthorization cookie for /.well-known/mercure", tt.target, c[0])
		}
	}
}
