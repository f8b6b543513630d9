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

	"github.com/herald-sse/herald/auth"
	"github.com/herald-sse/herald/internal/browsertest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const lines = `[...document.querySelectorAll("#lines li")].map(li => li.textContent)`

func TestLogsInBrowser(t *testing.T) {
	key := []byte("logs-example-test-key-0123456789abcdef")
	a, err := newApp(key)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.routes())
	t.Cleanup(func() {
		a.close()
		srv.Close()
	})
	tok, err := auth.Sign(key, auth.Claims{Publish: []string{"logs"}}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// What `herald pub --topic logs --lines` does for each line.
	publish := func(line string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/.well-known/mercure",
			strings.NewReader(url.Values{"topic": {"logs"}, "data": {line}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("publish %q: %s", line, resp.Status)
		}
	}

	b := browsertest.New(t)
	p := b.Page()
	p.Open(srv.URL)
	const state = `document.getElementById("state").textContent`
	p.WaitFor(state+` === "live"`, 10*time.Second, state)

	want := []string{
		"2026-11-25T12:00:00Z INFO server started",
		"    at main.go:42   (indented, trailing spaces)   ",
		"2026-11-25T12:00:01Z WARN disk 91% full",
		"2026-11-25T12:00:02Z ERROR <script>alert(1)</script>",
		"unicode ✓ 中文 🎉",
	}
	for _, line := range want {
		publish(line)
	}
	p.WaitFor(lines+".length === 5", 10*time.Second, lines)
	var got []string
	p.Eval(lines, &got)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("page shows\n%q\nwant\n%q", got, want)
	}
	var classes []string
	p.Eval(`[...document.querySelectorAll("#lines li")].map(li => li.className)`, &classes)
	if w := []string{"", "", "warn", "error", ""}; !reflect.DeepEqual(classes, w) {
		t.Errorf("line classes %q, want %q", classes, w)
	}
	var count string
	p.Eval(`document.getElementById("count").textContent`, &count)
	if count != "5 lines" {
		t.Errorf("count shows %q, want %q", count, "5 lines")
	}

	// The filter hides the lines that do not match, new ones included.
	p.SetValue("#filter", "ERROR")
	publish("INFO after the filter")
	p.WaitFor(lines+".length === 6", 10*time.Second, lines)
	var visible []string
	p.Eval(`[...document.querySelectorAll("#lines li:not(.hidden)")].map(li => li.textContent)`, &visible)
	if w := []string{want[3]}; !reflect.DeepEqual(visible, w) {
		t.Errorf("with filter ERROR the page shows %q, want %q", visible, w)
	}

	// A page opened later shows the history first.
	late := b.Page()
	late.Open(srv.URL)
	late.WaitFor(lines+".length === 6", 10*time.Second, lines)
	late.Eval(lines, &got)
	if w := append(want, "INFO after the filter"); !reflect.DeepEqual(got, w) {
		t.Errorf("a late page shows %q, want %q", got, w)
	}
	p.Screenshot("example-logs")
}
