package browsertest_test

import (
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/herald-sse/herald/internal/browsertest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const page = `<!doctype html>
<title>t</title>
<input id="in"><button id="go" onclick="document.getElementById('out').textContent = 'got ' + document.getElementById('in').value">go</button>
<p id="out"></p>
<script>console.log("hello from the page"); setTimeout(() => { window.later = 42 }, 200)</script>`

func TestPage(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(page))
	}))
	defer srv.Close()
	t.Setenv("HERALD_ARTIFACTS", t.TempDir())

	b := browsertest.New(t)
	p := b.Page()
	p.Open(srv.URL)

	var title string
	p.Eval("document.title", &title)
	if title != "t" {
		t.Errorf("Eval(document.title) = %q, want %q", title, "t")
	}
	var sum int
	p.Eval("Promise.resolve(1 + 2)", &sum)
	if sum != 3 {
		t.Errorf("Eval(Promise.resolve(1 + 2)) = %d, want 3", sum)
	}
	if err := p.EvalErr(`(() => { throw new Error("boom") })()`, nil); err == nil {
		t.Error(`EvalErr(throw) = nil, want an error`)
	}

	p.WaitFor("window.later === 42", 5*time.Second, "window.later")

	p.SetValue("#in", "typed")
	p.Click("#go")
	p.WaitFor(`document.getElementById("out").textContent === "got typed"`, 5*time.Second, `document.getElementById("out").textContent`)

	// A second tab is independent of the first.
	q := b.Page()
	q.Open(srv.URL + "/other")
	var path string
	q.Eval("location.pathname", &path)
	if path != "/other" {
		t.Errorf("second tab location.pathname = %q, want /other", path)
	}
	q.Close()

	shot := p.Screenshot("browsertest-page")
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil {
		t.Fatalf("screenshot %s is not a PNG: %v", shot, err)
	}
	if cfg.Width < 100 || cfg.Height < 100 {
		t.Errorf("screenshot is %dx%d, want a full page", cfg.Width, cfg.Height)
	}
}
