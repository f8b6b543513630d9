package main

import (
	"net/http"
	"net/http/httptest"
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

func startApp(t *testing.T) string {
	t.Helper()
	a, err := newApp()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.routes())
	t.Cleanup(func() {
		a.close()
		srv.Close()
	})
	return srv.URL
}

const messages = `[...document.querySelectorAll("#messages li")].map(li => li.querySelector(".who").textContent.split(" · ")[0] + ": " + li.querySelector(".text").textContent)`

func TestChatInBrowser(t *testing.T) {
	url := startApp(t)
	b := browsertest.New(t)
	alice, bob := b.Page(), b.Page()
	for _, p := range []*browsertest.Page{alice, bob} {
		p.Open(url)
		p.WaitFor(`document.getElementById("state").textContent === "connected"`, 10*time.Second, `document.getElementById("state").textContent`)
	}

	send := func(p *browsertest.Page, name, text string) {
		t.Helper()
		p.SetValue("#name", name)
		p.SetValue("#text", text)
		p.Click("button")
		p.WaitFor(`document.getElementById("text").value === ""`, 10*time.Second, `document.getElementById("state").textContent`)
	}
	send(alice, "alice", "hi <b>bob</b>")
	bob.WaitFor(messages+".length === 1", 10*time.Second, messages)
	send(bob, "bob", "hello alice")

	want := []string{"alice: hi <b>bob</b>", "bob: hello alice"}
	for name, p := range map[string]*browsertest.Page{"alice": alice, "bob": bob} {
		p.WaitFor(messages+".length === 2", 10*time.Second, messages)
		var got []string
		p.Eval(messages, &got)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s's tab shows %q, want %q", name, got, want)
		}
		var injected bool
		p.Eval(`document.querySelector("#messages b") !== null`, &injected)
		if injected {
			t.Errorf("%s's tab rendered a message as HTML", name)
		}
	}
	var mine []string
	alice.Eval(`[...document.querySelectorAll("#messages li.mine .text")].map(e => e.textContent)`, &mine)
	if !reflect.DeepEqual(mine, []string{"hi <b>bob</b>"}) {
		t.Errorf("alice's own messages = %q, want only hers", mine)
	}

	// A tab opened later gets the room's history.
	late := b.Page()
	late.Open(url)
	late.WaitFor(messages+".length === 2", 10*time.Second, messages)
	var got []string
	late.Eval(messages, &got)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("a late tab shows %q, want the history %q", got, want)
	}
	bob.Screenshot("example-chat")
}

func TestPostValidates(t *testing.T) {
	url := startApp(t)
	tests := []struct {
		body string
		code int
	}{
		{`{"name": "ann", "text": "hi"}`, http.StatusOK},
		{`{"name": "ann", "text": "   "}`, http.StatusBadRequest},
		{`{"name": "", "text": "hi"}`, http.StatusBadRequest},
		{`{"name": "` + strings.Repeat("n", 33) + `", "text": "hi"}`, http.StatusBadRequest},
		{`{"name": "ann", "text": "` + strings.Repeat("t", 501) + `"}`, http.StatusBadRequest},
		{`not json`, http.StatusBadRequest},
	}
	for _, tt := range tests {
		resp, err := http.Post(url+"/api/messages", "application/json", strings.NewReader(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.code {
			t.Errorf("POST /api/messages %.40q: %s, want %d", tt.body, resp.Status, tt.code)
		}
	}
}
