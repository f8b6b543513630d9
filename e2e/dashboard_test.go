package e2e_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herald-sse/herald/internal/browsertest"
	"github.com/herald-sse/herald/web"
)

// text is JavaScript for the text of the element with the id.
func text(id string) string {
	return fmt.Sprintf("document.getElementById(%q).textContent", id)
}

// TestDashboard clicks through the dashboard that herald serve mounts at
// /: the counters come live from its stats stream, the subscribe panel
// opens an EventSource, the publish form posts with the token, the event
// shows up in the panel and the counters and rates move. It saves a
// screenshot as a test artifact.
func TestDashboard(t *testing.T) {
	addr := freeAddr(t)
	startHerald(t, addr, "--store", "memory")
	base := "http://" + addr
	b := browsertest.New(t)
	p := b.Page()
	p.Open(base + "/")

	state := fmt.Sprintf("[%s, %s, %s, %s, %s, %s]", text("status"), text("subscribers"), text("topics"),
		text("published"), text("pub-result"), text("sub-state"))
	p.WaitFor(text("status")+` === "live"`, 10*time.Second, state)
	p.WaitFor(text("subscribers")+` === "0"`, 10*time.Second, state)

	// Publishing without a token is refused, and the form says so.
	p.SetValue("#pub-token", "")
	p.Click("#pub-send")
	p.WaitFor(text("pub-result")+`.startsWith("401")`, 10*time.Second, state)

	// Subscribe to /demo: the broker's counters show the subscriber.
	p.SetValue("#sub-topic", "/demo")
	p.Click("#sub-start")
	p.WaitFor(text("sub-state")+` === "subscribed to /demo"`, 10*time.Second, state)
	p.WaitFor(text("subscribers")+` === "1" && `+text("topics")+` === "1"`, 10*time.Second, state)

	// Publish a typed, multi-line event from the form.
	p.SetValue("#pub-token", token(t))
	p.SetValue("#pub-topic", "/demo")
	p.SetValue("#pub-type", "greeting")
	p.SetValue("#pub-id", "dash-1")
	p.SetValue("#pub-data", "Hello from the form\nsecond line")
	p.Click("#pub-send")
	p.WaitFor(text("pub-result")+` === "Published dash-1"`, 10*time.Second, state)
	first := `document.querySelector("#events li")`
	p.WaitFor(first+` !== null`, 10*time.Second, state)
	var shown struct {
		Type, ID, Data string
	}
	p.Eval(`(() => { const li = document.querySelector("#events li");
		return {type: li.querySelector(".type").textContent, id: li.querySelector(".id").textContent,
		        data: li.querySelector("pre").textContent} })()`, &shown)
	if shown.Type != "greeting" || shown.ID != "dash-1" || shown.Data != "Hello from the form\nsecond line" {
		t.Errorf("subscribe panel shows %+v, want type greeting, id dash-1 and the two lines", shown)
	}
	p.WaitFor(text("published")+` === "1 in total" && `+text("delivered")+` === "1 in total"`, 10*time.Second, state)

	// A burst of updates from outside moves the rates and the chart. An
	// observer keeps the highest rate shown.
	p.Eval(`window.maxRate = 0; new MutationObserver(() => {
		maxRate = Math.max(maxRate, parseFloat(`+text("pub-rate")+`) || 0) }).observe(
		document.getElementById("pub-rate"), {childList: true, characterData: true, subtree: true}); true`, nil)
	tok := token(t)
	for i := range 40 {
		publish(t, base+"/.well-known/mercure", tok, url.Values{"topic": {"/demo"}, "data": {"burst " + strconv.Itoa(i)}})
		time.Sleep(25 * time.Millisecond)
	}
	p.WaitFor(text("published")+` === "41 in total"`, 10*time.Second, state)
	p.WaitFor(`document.querySelectorAll("#events li").length === 41`, 10*time.Second, state)
	p.WaitFor("maxRate >= 5", 10*time.Second, "maxRate")
	// Let a couple more stats events arrive, so the chart has a shape.
	time.Sleep(2 * time.Second)
	var painted bool
	p.Eval(`(() => { const c = document.getElementById("chart"); const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
		let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n > 500 })()`, &painted)
	if !painted {
		t.Error("the chart canvas is blank")
	}

	// Stop: the subscriber goes away.
	p.Click("#sub-stop")
	p.WaitFor(text("subscribers")+` === "0"`, 10*time.Second, state)
	p.Click("#sub-start")
	p.WaitFor(text("subscribers")+` === "1"`, 10*time.Second, state)
	p.Screenshot("dashboard")
}

// TestNoDashboard checks that --no-dashboard leaves / and the stats stream
// unserved.
func TestNoDashboard(t *testing.T) {
	addr := freeAddr(t)
	startHerald(t, addr, "--store", "memory", "--no-dashboard")
	for _, path := range []string{"/", web.StatsPath, "/dashboard/app.js"} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		resp.Body.Close()
		cancel()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s with --no-dashboard: %s, want 404", path, resp.Status)
		}
		if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			t.Errorf("GET %s with --no-dashboard is a stream", path)
		}
	}
}
