package e2e_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/herald-sse/herald/auth"
	"github.com/herald-sse/herald/broker"
	"github.com/herald-sse/herald/hub"
	"github.com/herald-sse/herald/internal/browsertest"
	"github.com/herald-sse/herald/store/memstore"
)

// The herald binary, built once per test run by the first test that asks
// for it (heraldBinary), in binDir.
var (
	binDir    string
	binOnce   sync.Once
	binPath   string
	binOutput []byte // of a failed build
	binError  error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "herald-e2e-bin-")
	if err != nil {
		panic(err)
	}
	binDir = dir
	goleak.VerifyTestMain(cleanup{m}) // exits
}

// cleanup runs the tests, then removes binDir: goleak.VerifyTestMain
// calls os.Exit, so TestMain cannot defer it.
type cleanup struct{ m *testing.M }

func (c cleanup) Run() int {
	code := c.m.Run()
	os.RemoveAll(binDir)
	return code
}

// heraldBinary builds ./cmd/herald once per test run and returns its path.
func heraldBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			binError = fmt.Errorf("the go command is not on PATH: %w", err)
			return
		}
		binPath = filepath.Join(binDir, "herald")
		cmd := exec.Command(goBin, "build", "-o", binPath, "./cmd/herald")
		cmd.Dir = ".."
		binOutput, binError = cmd.CombinedOutput()
	})
	if binError != nil {
		t.Fatalf("go build ./cmd/herald: %v\n%s", binError, binOutput)
	}
	return binPath
}

// testKey signs the publisher tokens of every hub in these tests.
var testKey = []byte("e2e-test-publisher-key-0123456789abcdef")

// token returns a token that may publish and subscribe to every topic.
func token(t *testing.T) string {
	t.Helper()
	tok, err := auth.Sign(testKey, auth.Claims{Publish: []string{"*"}, Subscribe: []string{"*"}}, time.Hour)
	if err != nil {
		t.Fatalf("auth.Sign: %v", err)
	}
	return tok
}

// testHub is an in-process hub on an httptest server.
type testHub struct {
	URL    string // the server's base URL
	Broker *broker.Broker
}

// Endpoint returns the Mercure endpoint URL of h.
func (h *testHub) Endpoint() string { return h.URL + hub.Path }

// startHub starts a hub (memory store, short retry) on a new httptest
// server, with extra routes mounted next to it if mount is not nil. It is
// stopped when the test ends: the broker first, so the streams end.
func startHub(t *testing.T, cfg hub.Config, mount func(mux *http.ServeMux, b *broker.Broker)) *testHub {
	t.Helper()
	st := memstore.New(memstore.Config{})
	b, err := broker.New(st, broker.Config{Retry: 300 * time.Millisecond})
	if err != nil {
		t.Fatalf("broker.New: %v", err)
	}
	cfg.PublisherKey = testKey
	h, err := hub.New(b, cfg)
	if err != nil {
		t.Fatalf("hub.New: %v", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", h)
	if mount != nil {
		mount(mux, b)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := b.Shutdown(ctx); err != nil {
			t.Errorf("broker.Shutdown: %v", err)
		}
		srv.Close()
		st.Close()
	})
	return &testHub{URL: srv.URL, Broker: b}
}

// publish posts an update to the Mercure endpoint with tok and returns
// its id. It fails the test unless the hub answers 200.
func publish(t *testing.T, endpoint, tok string, form url.Values) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("publish %v: %v", form, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("publish %v: %s: %s", form, resp.Status, body)
	}
	return string(body)
}

// harness is JavaScript that a test evaluates in a page to record what
// EventSource objects receive. h.listen(url, types, init) opens one and
// returns its index; every event of the default type and of the listed
// types is pushed to h.events as {src, type, data, id}.
const harness = `window.h = {
  events: [], opens: [], errors: [], sources: [],
  listen(url, types, init) {
    const i = this.sources.length;
    const es = new EventSource(url, init || {});
    const rec = e => this.events.push({src: i, type: e.type, data: e.data, id: e.lastEventId});
    es.onmessage = rec;
    for (const t of types || []) es.addEventListener(t, rec);
    this.opens[i] = 0; this.errors[i] = 0;
    es.onopen = () => this.opens[i]++;
    es.onerror = () => this.errors[i]++;
    this.sources.push(es);
    return i;
  },
  state(i) { return this.sources[i].readyState },
  closeAll() { for (const s of this.sources) s.close() },
}; true`

// event is one event recorded by the harness.
type event struct {
	Src  int    `json:"src"`
	Type string `json:"type"`
	Data string `json:"data"`
	ID   string `json:"id"`
}

// events returns what the harness recorded in p.
func events(p *browsertest.Page) []event {
	var evs []event
	p.Eval("h.events", &evs)
	return evs
}

// openHarness opens url (any page of the origin the test needs) and
// installs the harness in it.
func openHarness(b *browsertest.Browser, url string) *browsertest.Page {
	p := b.Page()
	p.Open(url)
	p.Eval(harness, nil)
	return p
}
