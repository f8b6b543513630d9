package hub_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/herald-sse/herald/auth"
	"github.com/herald-sse/herald/hub"
)

// FuzzBatchPublish runs arbitrary batch bodies through the hub: each gets
// either a whole-request 4xx, or 200 with exactly one result per non-blank
// line, whose statuses are 200, a 4xx or 424, and as many updates stored
// as results say 200.
func FuzzBatchPublish(f *testing.F) {
	for _, seed := range []string{
		`{"topic":"a","data":"x"}`,
		"{\"topic\":[\"a\",\"b\"],\"id\":\"i\",\"type\":\"t\",\"retry\":5,\"private\":true}\n{\"topic\":\"a\",\"id\":\"i\"}",
		"\n\n \r\n", `{"topic":null}`, `{"topic":"a","retry":1e3}`, `[1,2]`, `"a"`, `{"topic":"a"}{}`,
		"{\"topic\":\"\\u0000\"}", `{"topic":"/.well-known/mercure/x"}`, "{\"topic\":\"a\",\"data\":\"\xc3\"}",
	} {
		f.Add(seed, false)
	}
	tok, err := auth.Sign(pubKey, auth.Claims{Publish: []string{"*"}}, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body string, cont bool) {
		e := newEnv(t, defaultConfig())
		q := ""
		if cont {
			q = "?on-error=continue"
		}
		w := e.serve(batchRequest(body, tok, q))
		if w.Code != http.StatusOK {
			if w.Code < 400 || w.Code >= 500 {
				t.Fatalf("batch POST %q = %d, want 200 or 4xx", body, w.Code)
			}
			if n := len(e.updates(t)); n != 0 {
				t.Fatalf("batch POST %q = %d, but %d updates stored", body, w.Code, n)
			}
			return
		}
		lines := 0
		for l := range bytes.SplitSeq([]byte(body), []byte("\n")) {
			if len(bytes.TrimSpace(l)) > 0 {
				lines++
			}
		}
		var res []hub.BatchResult
		dec := json.NewDecoder(w.Body)
		for dec.More() {
			var r hub.BatchResult
			if err := dec.Decode(&r); err != nil {
				t.Fatalf("batch answer to %q: %v", body, err)
			}
			res = append(res, r)
		}
		ok := 0
		for _, r := range res {
			switch {
			case r.Status == http.StatusOK:
				ok++
			case r.Status >= 400 && r.Status < 500:
			default:
				t.Errorf("batch POST %q: result %+v, want 200 or 4xx", body, r)
			}
		}
		if len(res) != lines {
			t.Errorf("batch POST %q: %d results for %d lines", body, len(res), lines)
		}
		if n := len(e.updates(t)); n != ok {
			t.Errorf("batch POST %q: %d updates stored, %d results 200", body, n, ok)
		}
		if got := w.Header().Get("Herald-Batch-Stored"); got != strconv.Itoa(ok) {
			t.Errorf("batch POST %q: Herald-Batch-Stored %q, want %d", body, got, ok)
		}
	})
}
