package hub_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herald-sse/herald/auth"
	"github.com/herald-sse/herald/broker"
	"github.com/herald-sse/herald/hub"
	"github.com/herald-sse/herald/store"
	"github.com/herald-sse/herald/store/memstore"
)

// batchRequest builds a batch POST to the Mercure endpoint with query q.
func batchRequest(body, token, q string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, hub.Path+q, strings.NewReader(body))
	r.Header.Set("Content-Type", hub.BatchType)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	return r
}

// batchResults decodes the answer of a batch publish.
func batchResults(t *testing.T, w *httptest.ResponseRecorder) []hub.BatchResult {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != hub.BatchType {
		t.Fatalf("batch POST: Content-Type = %q, want %q (body %q)", ct, hub.BatchType, w.Body.String())
	}
	var res []hub.BatchResult
	sc := bufio.NewScanner(w.Body)
	for sc.Scan() {
		var r hub.BatchResult
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("batch answer line %q: %v", sc.Text(), err)
		}
		res = append(res, r)
	}
	return res
}

// want is an expected batch result: status, then a substring of the error
// (or, for 200, the id when not "").
type want struct {
	status int
	text   string
}

func TestBatchPublish(t *testing.T) {
	tok := sign(t, pubKey, []string{"urn:topic:a", "urn:topic:b", "https://example.com/books/{id}"}, nil)
	tests := []struct {
		name   string
		cfg    *hub.Config // nil: defaultConfig()
		query  string
		lines  []string
		want   []want
		stored []string // the data of the stored updates, in order
	}{
		{name: "all stored", lines: []string{
			`{"topic":"urn:topic:a","data":"1","id":"i1"}`,
			`{"topic":["urn:topic:b","https://example.com/books/7"],"data":"2","type":"t","retry":1500,"private":true}`,
			``, // blank lines are skipped
			`{"topic":"urn:topic:a","data":"line\nbreak"}`,
		}, want: []want{{200, "i1"}, {200, ""}, {200, ""}}, stored: []string{"1", "2", "line\nbreak"}},
		{name: "stops at the first refused", lines: []string{
			`{"topic":"urn:topic:a","data":"1"}`,
			`{"topic":"urn:topic:c","data":"2","id":"mine"}`,
			`{"topic":"urn:topic:a","data":"3"}`,
		}, want: []want{{200, ""}, {403, `not authorized to publish to topic "urn:topic:c"`}, {424, "update 2 of the batch was refused"}}, stored: []string{"1"}},
		{name: "continue past refused", query: "?on-error=continue", lines: []string{
			`{"topic":"urn:topic:a","data":"1"}`,
			`{"topic":["urn:topic:a","urn:topic:c"],"data":"2"}`,
			`{"topic":"urn:topic:a","data":"3"}`,
		}, want: []want{{200, ""}, {403, `"urn:topic:c"`}, {200, ""}}, stored: []string{"1", "3"}},
		{name: "duplicate ids in one batch", query: "?on-error=continue", lines: []string{
			`{"topic":"urn:topic:a","data":"1","id":"x"}`,
			`{"topic":"urn:topic:a","data":"2","id":"x"}`,
			`{"topic":"urn:topic:a","data":"3","id":"y"}`,
		}, want: []want{{200, "x"}, {409, `update id "x" already exists`}, {200, "y"}}, stored: []string{"1", "3"}},
		{name: "duplicate id stops", lines: []string{
			`{"topic":"urn:topic:a","data":"1","id":"x"}`,
			`{"topic":"urn:topic:a","data":"2","id":"x"}`,
			`{"topic":"urn:topic:a","data":"3","id":"y"}`,
		}, want: []want{{200, "x"}, {409, "already exists"}, {424, "not attempted"}}, stored: []string{"1"}},
		{name: "a duplicate before a refused line stops first", lines: []string{
			`{"topic":"urn:topic:a","data":"1","id":"x"}`,
			`{"topic":"urn:topic:a","data":"2","id":"x"}`,
			`{"topic":"urn:topic:c","data":"3"}`,
			`{"topic":"urn:topic:a","data":"4"}`,
		}, want: []want{{200, "x"}, {409, "already exists"}, {424, "update 2 of the batch was refused"}, {424, "update 2 of the batch was refused"}}, stored: []string{"1"}},
		{name: "reused ids allowed", cfg: &hub.Config{PublisherKey: pubKey, AllowReusedIDs: true}, lines: []string{
			`{"topic":"urn:topic:a","data":"1","id":"x"}`,
			`{"topic":"urn:topic:a","data":"2","id":"x"}`,
		}, want: []want{{200, "x"}, {200, ""}}, stored: []string{"1", "2"}},
		{name: "invalid updates", query: "?on-error=continue", lines: []string{
			`{"topic":"urn:topic:a","data":"ok"}`,
			`not json`,
			`{"topic":"urn:topic:a","dat":"typo"}`,
			`{"data":"no topic"}`,
			`{"topic":7}`,
			`{"topic":"urn:topic:a","retry":-1}`,
			`{"topic":"urn:topic:a","retry":1.5}`,
			`{"topic":"urn:topic:a","id":"#frag"}`,
			`{"topic":"urn:topic:a","id":"a\u0000b"}`,
			`{"topic":"urn:topic:a","type":"mercure"}`,
			`{"topic":"urn:topic:a"} {"topic":"urn:topic:a"}`,
			"{\"topic\":\"urn:topic:a\",\"data\":\"\xff\"}",
			`{"topic":"/.well-known/mercure/subscriptions/x"}`,
			`{"topic":"*"}`,
		}, want: []want{
			{200, ""},
			{400, "malformed update: invalid character"},
			{400, `malformed update: unknown field "dat"`},
			{400, `missing "topic" field`},
			{400, `"topic" must be a string or an array of strings`},
			{400, `"retry" must not be negative`},
			{400, "malformed update"},
			{400, `"id" must not start with '#'`},
			{400, `"id" must not contain CR, LF or NUL`},
			{400, `"type" "mercure" is reserved`},
			{400, "more than one JSON value"},
			{400, "not valid UTF-8"},
			{403, "reserved /.well-known/mercure namespace"},
			{400, "wildcard of subscribers"},
		}, stored: []string{"ok"}},
		{name: "update larger than MaxBodyBytes", cfg: &hub.Config{PublisherKey: pubKey, MaxBodyBytes: 64}, query: "?on-error=continue", lines: []string{
			`{"topic":"urn:topic:a","data":"` + strings.Repeat("x", 64) + `"}`,
			`{"topic":"urn:topic:a","data":"small"}`,
		}, want: []want{{413, "larger than 64 bytes"}, {200, ""}}, stored: []string{"small"}},
		{name: "CRLF lines", lines: []string{`{"topic":"urn:topic:a","data":"1"}` + "\r", `{"topic":"urn:topic:b","data":"2"}` + "\r"},
			want: []want{{200, ""}, {200, ""}}, stored: []string{"1", "2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := defaultConfig()
			if tt.cfg != nil {
				cfg = *tt.cfg
			}
			e := newEnv(t, cfg)
			w := e.serve(batchRequest(strings.Join(tt.lines, "\n"), tok, tt.query))
			if w.Code != http.StatusOK {
				t.Fatalf("batch POST = %d %q, want 200", w.Code, w.Body.String())
			}
			res := batchResults(t, w)
			if len(res) != len(tt.want) {
				t.Fatalf("batch POST: %d results %+v, want %d", len(res), res, len(tt.want))
			}
			ok := 0
			for i, r := range res {
				wt := tt.want[i]
				if r.Status != wt.status {
					t.Errorf("result %d = %+v, want status %d", i+1, r, wt.status)
					continue
				}
				if r.Status == http.StatusOK {
					ok++
					if r.ID == "" || (wt.text != "" && r.ID != wt.text) || r.Error != "" {
						t.Errorf("result %d = %+v, want id %q and no error", i+1, r, wt.text)
					}
				} else if !strings.Contains(r.Error, wt.text) {
					t.Errorf("result %d = %+v, want an error with %q", i+1, r, wt.text)
				}
			}
			if got := w.Header().Get("Herald-Batch-Stored"); got != fmt.Sprint(ok) {
				t.Errorf("Herald-Batch-Stored = %q, want %d", got, ok)
			}
			var data []string
			var ids []string
			for _, u := range e.updates(t) {
				data = append(data, u.Data)
				ids = append(ids, u.ID)
			}
			if strings.Join(data, "|") != strings.Join(tt.stored, "|") {
				t.Errorf("stored data = %q, want %q", data, tt.stored)
			}
			// The ids answered are those of the stored updates, in order.
			var answered []string
			for _, r := range res {
				if r.Status == http.StatusOK {
					answered = append(answered, r.ID)
				}
			}
			if strings.Join(answered, "|") != strings.Join(ids, "|") {
				t.Errorf("answered ids %q, stored ids %q", answered, ids)
			}
		})
	}
}

// TestBatchFields checks that every field of a batch update reaches the
// store as a form publish would put it.
func TestBatchFields(t *testing.T) {
	e := newEnv(t, defaultConfig())
	tok := sign(t, pubKey, []string{"*"}, nil)
	w := e.serve(batchRequest(`{"topic":["a","b"],"data":"d","id":"i","type":"t","retry":1500,"private":true}`, tok, ""))
	if w.Code != http.StatusOK {
		t.Fatalf("batch POST = %d %q", w.Code, w.Body.String())
	}
	ups := e.updates(t)
	if len(ups) != 1 {
		t.Fatalf("stored %+v, want one update", ups)
	}
	u := ups[0]
	if strings.Join(u.Topics, ",") != "a,b" || u.Data != "d" || u.ID != "i" || u.Type != "t" || u.Retry.Milliseconds() != 1500 || !u.Private {
		t.Errorf("stored %+v, want topics a,b data d id i type t retry 1.5s private", u)
	}
}

// TestBatchRejected checks the refusals of a batch as a whole: nothing is
// stored.
func TestBatchRejected(t *testing.T) {
	tok := sign(t, pubKey, []string{"*"}, nil)
	line := `{"topic":"a","data":"x"}` + "\n"
	tests := []struct {
		name      string
		cfg       *hub.Config
		body      string
		query     string
		token     string // "": tok, "-": none
		code      int
		reason    string
		challenge string
	}{
		{name: "empty", body: "\n \n", code: 400, reason: "empty batch: give one JSON update per line"},
		{name: "bad on-error", body: line, query: "?on-error=maybe", code: 400, reason: `on-error "maybe": want "stop" or "continue"`},
		{name: "too many", cfg: &hub.Config{PublisherKey: pubKey, MaxBatch: 2}, body: line + line + line, code: 413, reason: "batch of 3 updates, more than the limit of 2"},
		{name: "too many bytes", cfg: &hub.Config{PublisherKey: pubKey, MaxBatchBytes: int64(2 * len(line))}, body: line + line + "x", code: 413, reason: fmt.Sprintf("batch body larger than %d bytes", 2*len(line))},
		{name: "no token", body: line, token: "-", code: 401, challenge: "Bearer"},
		{name: "bad token", body: line, token: "x.y.z", code: 401, challenge: `Bearer error="invalid_token"`},
		{name: "token in query", body: line, query: "?authorization=" + tok, code: 400, challenge: `Bearer error="invalid_request"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := defaultConfig()
			if tt.cfg != nil {
				cfg = *tt.cfg
			}
			e := newEnv(t, cfg)
			token := tt.token
			switch token {
			case "":
				token = tok
			case "-":
				token = ""
			}
			w := e.serve(batchRequest(tt.body, token, tt.query))
			checkError(t, "batch POST "+tt.name, w, tt.code, tt.reason, tt.challenge)
			if ups := e.updates(t); len(ups) != 0 {
				t.Errorf("stored %+v after a refused batch, want nothing", ups)
			}
		})
	}
	t.Run("exact limits", func(t *testing.T) {
		e := newEnv(t, hub.Config{PublisherKey: pubKey, MaxBatch: 2, MaxBatchBytes: int64(2 * len(line))})
		w := e.serve(batchRequest(line+line, tok, ""))
		if res := batchResults(t, w); w.Code != 200 || len(res) != 2 || res[1].Status != 200 {
			t.Errorf("batch POST of exactly MaxBatch updates and MaxBatchBytes = %d %+v, want 200 with two stored", w.Code, res)
		}
	})
	t.Run("unsupported type names both", func(t *testing.T) {
		e := newEnv(t, defaultConfig())
		r := batchRequest(line, tok, "")
		r.Header.Set("Content-Type", "application/json")
		w := e.serve(r)
		if got := w.Header().Get("Accept-Post"); w.Code != 415 || !strings.Contains(got, hub.BatchType) {
			t.Errorf("POST application/json = %d Accept-Post %q, want 415 naming %s", w.Code, got, hub.BatchType)
		}
	})
}

// TestBatchStoreFailure checks that a batch result says what the store
// did, as a single publish's status does, and names the id to retry with.
func TestBatchStoreFailure(t *testing.T) {
	tests := []struct {
		name string
		err  error
		code int
		text string
	}{
		{"outcome unknown", fmt.Errorf("%w (i/o timeout)", store.ErrOutcomeUnknown), 504, "may or may not be stored; retry with the same id"},
		{"unavailable", fmt.Errorf("dial: connection refused"), 503, "store unavailable: the update was not stored"},
		{"closed", store.ErrClosed, 503, "shutting down"},
		{"invalid", fmt.Errorf("too big: %w", store.ErrInvalid), 400, "invalid update: too big"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := memstore.New(memstore.Config{})
			st := &failingStore{Store: mem, err: tt.err}
			e := newEnvOn(t, defaultConfig(), st, mem)
			tok := sign(t, pubKey, []string{"*"}, nil)
			w := e.serve(batchRequest(`{"topic":"a"}`+"\n"+`{"topic":"a","id":"mine"}`, tok, "?on-error=continue"))
			res := batchResults(t, w)
			if len(res) != 2 {
				t.Fatalf("batch POST = %d %+v, want 2 results", w.Code, res)
			}
			for i, r := range res {
				if r.Status != tt.code || !strings.Contains(r.Error, tt.text) || r.ID == "" {
					t.Errorf("result %d with Append error %v = %+v, want %d with %q and the id", i+1, tt.err, r, tt.code, tt.text)
				}
			}
			if res[1].ID != "mine" {
				t.Errorf("result 2 id = %q, want the given id \"mine\"", res[1].ID)
			}
		})
	}
}

// BenchmarkPublishBatch publishes batches of 100 updates; compare its
// ns/op divided by 100 with BenchmarkPublish.
func BenchmarkPublishBatch(b *testing.B) {
	st := memstore.New(memstore.Config{MaxLen: 1024})
	defer st.Close()
	br, err := broker.New(st, broker.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := br.Shutdown(context.Background()); err != nil {
			b.Error(err)
		}
	}()
	h, err := hub.New(br, hub.Config{PublisherKey: pubKey})
	if err != nil {
		b.Fatal(err)
	}
	tok, err := auth.Sign(pubKey, auth.Claims{Publish: []string{"https://example.com/books/{id}"}}, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	body := strings.Repeat(`{"topic":"https://example.com/books/1","data":"{\"title\":\"Dune\"}"}`+"\n", 100)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, batchRequest(body, tok, ""))
		if w.Code != http.StatusOK || w.Header().Get("Herald-Batch-Stored") != "100" {
			b.Fatalf("POST = %d %q", w.Code, w.Body.String())
		}
	}
}

// batchCounter counts the store calls of the hub.
type batchCounter struct {
	store.Store
	appends, batches, batched int
}

func (s *batchCounter) Append(ctx context.Context, u store.Update) (store.Update, error) {
	s.appends++
	return s.Store.Append(ctx, u)
}

func (s *batchCounter) AppendBatch(ctx context.Context, ups []store.Update, stop bool) ([]store.Update, []error) {
	s.batches++
	s.batched += len(ups)
	return store.AppendBatch(ctx, s.Store, ups, stop)
}

// TestBatchOneStoreCall checks that a batch reaches the store in one
// AppendBatch (one commit for the boltstore), with the updates that pass
// the checks, and that a stop at a refused line sends none after it.
func TestBatchOneStoreCall(t *testing.T) {
	mem := memstore.New(memstore.Config{})
	st := &batchCounter{Store: mem}
	e := newEnvOn(t, defaultConfig(), st, mem)
	tok := sign(t, pubKey, []string{"urn:topic:a"}, nil)
	var body strings.Builder
	for i := range 50 {
		fmt.Fprintf(&body, `{"topic":"urn:topic:a","data":"%d"}`+"\n", i)
	}
	body.WriteString(`{"topic":"urn:topic:b"}` + "\n" + `{"topic":"urn:topic:a"}` + "\n")
	for _, tt := range []struct {
		query           string
		batched, stored int
	}{{"", 50, 50}, {"?on-error=continue", 51, 51}} {
		st.appends, st.batches, st.batched = 0, 0, 0 // not the Store field: the tail reads it
		w := e.serve(batchRequest(body.String(), tok, tt.query))
		res := batchResults(t, w)
		if st.appends != 0 || st.batches != 1 || st.batched != tt.batched {
			t.Errorf("batch%s: %d Append, %d AppendBatch of %d updates; want one AppendBatch of %d", tt.query, st.appends, st.batches, st.batched, tt.batched)
		}
		if got := w.Header().Get("Herald-Batch-Stored"); got != strconv.Itoa(tt.stored) || len(res) != 52 {
			t.Errorf("batch%s: %d results, Herald-Batch-Stored %s; want 52 and %d", tt.query, len(res), got, tt.stored)
		}
	}
}

// TestBatchCounts checks that the refused updates of a batch are counted
// under the labels of the same refusals of single publishes.
func TestBatchCounts(t *testing.T) {
	e := newEnv(t, defaultConfig())
	tok := sign(t, pubKey, []string{"urn:topic:a"}, nil)
	body := `{"topic":"urn:topic:b"}` + "\n" + `{"topic":""}` + "\n" + `{"topic":"urn:topic:a","id":"x"}` + "\n" + `{"topic":"urn:topic:a","id":"x"}`
	if w := e.serve(batchRequest(body, tok, "?on-error=continue")); w.Code != http.StatusOK {
		t.Fatalf("batch POST = %d %q", w.Code, w.Body.String())
	}
	got := map[string]uint64{}
	for _, c := range append(e.hub.Refusals(), e.hub.AuthFailures()...) {
		got[c.Op+"/"+c.Reason] = c.N
	}
	want := map[string]uint64{"publish/insufficient_scope": 1, "publish/invalid_update": 1, "publish/duplicate_id": 1}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("count %s = %d, want %d (all: %v)", k, got[k], n, got)
		}
	}

	// Stopping at a duplicate: the refused line after it is not reached,
	// so it is not counted.
	body = `{"topic":"urn:topic:a","id":"y"}` + "\n" + `{"topic":"urn:topic:a","id":"y"}` + "\n" + `{"topic":"urn:topic:b"}`
	if w := e.serve(batchRequest(body, tok, "")); w.Code != http.StatusOK {
		t.Fatalf("batch POST = %d %q", w.Code, w.Body.String())
	}
	got = map[string]uint64{}
	for _, c := range append(e.hub.Refusals(), e.hub.AuthFailures()...) {
		got[c.Op+"/"+c.Reason] = c.N
	}
	if got["publish/duplicate_id"] != 2 || got["publish/insufficient_scope"] != 1 {
		t.Errorf("after a stopping batch: counts %v, want duplicate_id 2 and insufficient_scope still 1", got)
	}
}
