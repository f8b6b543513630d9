package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-sse/herald/hub"
)

// TestPubLinesBatches checks that herald pub --lines sends the lines it
// has read together, in order, and that the hub stores each as its own
// update.
func TestPubLinesBatches(t *testing.T) {
	th := newTestHub(t, hub.Config{})
	tok := mintToken(t, "--publish", "*")
	var in strings.Builder
	for i := range 250 {
		fmt.Fprintf(&in, "line %d\n", i+1)
	}
	setStdin(t, strings.NewReader(in.String()))
	defer func(d time.Duration) { batchWindow = d }(batchWindow)
	batchWindow = time.Hour // a batch ends at --batch lines or at EOF, never by time
	res := runCmd(t, "pub", "--hub", th.url, "--token", tok, "--topic", "logs", "--lines", "--batch", "100")
	ids := strings.Split(strings.TrimSuffix(res.stdout, "\n"), "\n")
	if res.code != 0 || len(ids) != 250 || res.stderr != "" {
		t.Fatalf("herald pub --lines --batch 100 of 250 lines = exit %d, %d ids, stderr %q; want 0 and 250 ids", res.code, len(ids), res.stderr)
	}
	if n := th.lastSeq(t); n != 250 {
		t.Fatalf("hub holds %d updates, want 250", n)
	}
	if n := th.publishConnections(); n != 1 {
		t.Errorf("herald pub --lines used %d connections, want 1 (keep-alive)", n)
	}
}

// scriptedBatchHub answers batch publishes with a scripted sequence of
// answers; each answer gives the status of every update in order, or drop
// for a dropped connection. It records the ids of every request.
type scriptedBatchHub struct {
	mu       sync.Mutex
	answers  [][]int
	requests [][]string // ids of each batch request
	forms    []string   // data of form publishes
}

const drop = -1

func (s *scriptedBatchHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Header.Get("Content-Type") != hub.BatchType {
		r.ParseForm()
		s.forms = append(s.forms, r.PostForm.Get("data"))
		io.WriteString(w, r.PostForm.Get("id"))
		return
	}
	var ids []string
	sc := bufio.NewScanner(r.Body)
	for sc.Scan() {
		var u hub.BatchUpdate
		if err := json.Unmarshal(sc.Bytes(), &u); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		ids = append(ids, u.ID)
	}
	n := len(s.requests)
	s.requests = append(s.requests, ids)
	var answer []int
	if n < len(s.answers) {
		answer = s.answers[n]
	}
	switch {
	case len(answer) == 1 && answer[0] == drop:
		conn, _, _ := http.NewResponseController(w).Hijack()
		conn.Close()
		return
	case len(answer) == 1 && answer[0] >= 400 && len(ids) > 1:
		http.Error(w, "scripted", answer[0]) // the request as a whole
		return
	}
	w.Header().Set("Content-Type", hub.BatchType)
	enc := json.NewEncoder(w)
	for i, id := range ids {
		st := 200
		if i < len(answer) {
			st = answer[i]
		}
		res := hub.BatchResult{Status: st, ID: id}
		if st != 200 {
			res.Error = "scripted"
		}
		enc.Encode(res)
	}
}

func TestPubBatchRetries(t *testing.T) {
	tests := []struct {
		name     string
		answers  [][]int
		code     int
		sent     [][]int // indexes (0-based lines) of each request
		stdout   int     // ids printed
		stderr   string
		forms    int
		retryArg string
	}{
		{name: "all stored", answers: nil, sent: [][]int{{0, 1, 2}}, stdout: 3},
		{name: "dropped then 409 for all: stored by the first", answers: [][]int{{drop}, {409, 409, 409}}, sent: [][]int{{0, 1, 2}, {0, 1, 2}}, stdout: 3},
		{name: "504 for the second: retried from it", answers: [][]int{{200, 504, 424}, {409, 200}}, sent: [][]int{{0, 1, 2}, {1, 2}}, stdout: 3},
		{name: "503 for the second: retried, 409 is a real duplicate", answers: [][]int{{200, 503, 424}, {409}}, sent: [][]int{{0, 1, 2}, {1, 2}}, code: 1, stdout: 1, stderr: "herald pub: line 2: 409 Conflict: scripted (after 2 attempts)\n"},
		{name: "refused in the middle", answers: [][]int{{200, 403, 424}}, sent: [][]int{{0, 1, 2}}, code: 1, stdout: 1, stderr: "herald pub: line 2: 403 Forbidden: scripted\n"},
		{name: "whole batch 503 then stored", answers: [][]int{{503}, {200, 200, 200}}, sent: [][]int{{0, 1, 2}, {0, 1, 2}}, stdout: 3},
		{name: "whole batch 400", answers: [][]int{{400}}, sent: [][]int{{0, 1, 2}}, code: 1, stderr: "herald pub: line 1: 400 Bad Request: scripted\n"},
		{name: "504 until the retries are spent", answers: [][]int{{504}, {504}, {504}}, sent: [][]int{{0, 1, 2}, {0, 1, 2}, {0, 1, 2}}, retryArg: "2", code: 1, stderr: "(after 3 attempts)"},
		{name: "415: one form publish per line", answers: [][]int{{415}}, sent: [][]int{{0, 1, 2}}, forms: 3, stdout: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sh := &scriptedBatchHub{answers: tt.answers}
			srv := httptest.NewServer(sh)
			defer srv.Close()
			defer func(d, w time.Duration) { retryBackoff, batchWindow = d, w }(retryBackoff, batchWindow)
			retryBackoff, batchWindow = time.Millisecond, time.Hour
			setStdin(t, strings.NewReader("a\nb\nc\n"))
			args := []string{"pub", "--hub", srv.URL, "--anonymous", "--topic", "t", "--lines"}
			if tt.retryArg != "" {
				args = append(args, "--retries", tt.retryArg)
			}
			res := runCmd(t, args...)
			sh.mu.Lock()
			defer sh.mu.Unlock()
			if res.code != tt.code || strings.Count(res.stdout, "\n") != tt.stdout || !strings.Contains(res.stderr, tt.stderr) || (tt.stderr == "" && res.stderr != "") {
				t.Fatalf("herald pub --lines against %v = exit %d, stdout %q, stderr %q; want exit %d, %d ids, stderr %q",
					tt.answers, res.code, res.stdout, res.stderr, tt.code, tt.stdout, tt.stderr)
			}
			if len(sh.requests) != len(tt.sent) {
				t.Fatalf("batch requests = %q, want %d", sh.requests, len(tt.sent))
			}
			first := sh.requests[0]
			for i, req := range sh.requests {
				var want []string
				for _, j := range tt.sent[i] {
					want = append(want, first[j])
				}
				if strings.Join(req, ",") != strings.Join(want, ",") {
					t.Errorf("request %d ids = %q, want %q (same ids as the first request)", i+1, req, want)
				}
			}
			if len(sh.forms) != tt.forms || (tt.forms > 0 && strings.Join(sh.forms, ",") != "a,b,c") {
				t.Errorf("form publishes = %q, want %d", sh.forms, tt.forms)
			}
			if tt.stdout == 3 && tt.forms == 0 && res.stdout != strings.Join(first, "\n")+"\n" {
				t.Errorf("stdout = %q, want the ids %q in order", res.stdout, first)
			}
		})
	}
}

// TestBenchPubBatch runs herald bench with batch publishes against a hub:
// every event of every batch is stored once and delivered to every
// subscriber.
func TestBenchPubBatch(t *testing.T) {
	th := newTestHub(t, hub.Config{PublishAnonymous: true})
	res := runCmd(t, "bench", "--sub-url", th.url+"?topic=bench", "--pub-url", th.url, "--pub-batch", "10",
		"--pub-body", `{"topic":"bench","data":"{{payload}}"}`, "--events", "50", "--rate", "0",
		"--subscribers", "3", "--warmup", "0", "--json", "--quiet")
	var out struct {
		Published, Received, Lost, Duplicates uint64
		PublishErrors                         uint64 `json:"publish_errors"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &out); err != nil || res.code != 0 {
		t.Fatalf("herald bench --pub-batch 10 = exit %d, stdout %q (%v), stderr %q", res.code, res.stdout, err, res.stderr)
	}
	if out.Published != 50 || out.Received != 150 || out.Lost != 0 || out.Duplicates != 0 || out.PublishErrors != 0 {
		t.Errorf("herald bench --pub-batch 10 --events 50 --subscribers 3 = %+v, want 50 published, 150 received", out)
	}
	if n := th.lastSeq(t); n != 50 {
		t.Errorf("hub holds %d updates, want 50", n)
	}
}

// TestPubLinesInvalidUTF8 checks that a line that is not UTF-8 is refused
// by the hub as with form publishes, not silently altered by the JSON of
// a batch, and that the lines before it are stored.
func TestPubLinesInvalidUTF8(t *testing.T) {
	th := newTestHub(t, hub.Config{})
	tok := mintToken(t, "--publish", "*")
	setStdin(t, strings.NewReader("ok\nbad \xff\nnever sent\n"))
	res := runCmd(t, "pub", "--hub", th.url, "--token", tok, "--topic", "logs", "--lines")
	wantErr := "herald pub: line 2: 400 Bad Request: \"data\" is not valid UTF-8\n"
	if res.code != 1 || res.stderr != wantErr || strings.Count(res.stdout, "\n") != 1 {
		t.Errorf("herald pub --lines = exit %d, stdout %q, stderr %q; want exit 1, one id, stderr %q", res.code, res.stdout, res.stderr, wantErr)
	}
	if n := th.lastSeq(t); n != 1 {
		t.Errorf("hub holds %d updates, want 1", n)
	}
}
