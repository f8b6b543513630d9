package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/herald-sse/herald/auth"
	"github.com/herald-sse/herald/broker"
	"github.com/herald-sse/herald/store"
)

// BatchType is the Content-Type of a batch publish: a POST to [Path] whose
// body holds one JSON [BatchUpdate] per line (newline-delimited JSON). The
// answer, 200 with the same type, holds one [BatchResult] per update, in
// order. Batches are a Herald extension of Mercure; see the package
// documentation.
const BatchType = "application/x-ndjson"

// DefaultMaxBatch is the limit of updates in one batch publish when
// [Config.MaxBatch] is zero.
const DefaultMaxBatch = 1000

// DefaultMaxBatchBytes is the batch publish body limit when
// [Config.MaxBatchBytes] is zero.
const DefaultMaxBatchBytes = 8 << 20

// StatusNotAttempted is the status of the updates of a batch that follow
// a refused one: they were not stored, nor even checked (424 Failed
// Dependency). Only batches sent without on-error=continue have them.
const StatusNotAttempted = http.StatusFailedDependency

// BatchUpdate is one update of a batch publish, one JSON object per line:
//
//	{"topic":["https://example.com/books/1"],"data":"…","id":"urn:uuid:…","type":"update","retry":5000,"private":true}
//
// Topic is required and may also be a single JSON string; every other
// field may be left out. The fields mean what the fields of a form publish
// mean, and the same rules and authorization apply to each update. An
// unknown field refuses the update (400), so that a misspelt field is not
// silently ignored.
type BatchUpdate struct {
	Topic   BatchTopics `json:"topic"`
	Data    string      `json:"data,omitempty"`
	ID      string      `json:"id,omitempty"`
	Type    string      `json:"type,omitempty"`
	Retry   int64       `json:"retry,omitempty"` // milliseconds, 0: none
	Private bool        `json:"private,omitempty"`
}

// BatchTopics are the topics of a [BatchUpdate]. They decode from a JSON
// array of strings or from a single string, and encode as an array.
type BatchTopics []string

// UnmarshalJSON decodes a JSON string or array of strings.
func (t *BatchTopics) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*t = BatchTopics{s}
		return nil
	}
	var ss []string
	if err := json.Unmarshal(b, &ss); err != nil {
		return errors.New(`"topic" must be a string or an array of strings`)
	}
	*t = ss
	return nil
}

// BatchResult is the outcome of one update of a batch publish, one JSON
// object per line of the answer, in the order of the request.
//
// Status is what a single publish of the update would have answered: 200
// stored (ID is its id), 409 its id is already taken, 504 the outcome is
// unknown (retry with the same ID), another 4xx or 5xx not stored, with
// Error saying why. [StatusNotAttempted] (424) marks the updates after the
// first refused one, which were not stored. ID is the update's id when it
// is known: the stored one, or the one the request gave.
type BatchResult struct {
	Status int    `json:"status"`
	ID     string `json:"id,omitempty"`
	Error  string `json:"error,omitempty"`
}

// publishBatch handles a POST with Content-Type [BatchType], after the
// cross-origin check and the authentication of the token (claims is nil
// for an anonymous publisher). Malformed requests as a whole (body too
// large, too many updates, none, a bad on-error) are refused before any
// update is stored; otherwise every update gets its own result, and the
// ones that pass the checks are appended together, in order
// (publishTogether), or one by one with AllowReusedIDs (publishEach).
func (h *Hub) publishBatch(w http.ResponseWriter, r *http.Request, claims *auth.Claims) {
	stop := true
	switch mode := r.URL.Query().Get("on-error"); mode {
	case "", "stop":
	case "continue":
		stop = false
	default:
		h.refuse(w, "publish", "batch_mode", http.StatusBadRequest, fmt.Sprintf(`on-error %q: want "stop" or "continue"`, mode))
		return
	}
	buf := bodyBufs.Get().(*bytes.Buffer)
	defer putBodyBuf(buf)
	buf.Reset()
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, h.maxBatchBytes)); err != nil {
		if mbe, ok := errors.AsType[*http.MaxBytesError](err); ok {
			h.refuse(w, "publish", "body_too_large", http.StatusRequestEntityTooLarge, fmt.Sprintf("batch body larger than %d bytes", mbe.Limit))
			return
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			h.refuse(w, "publish", "body_timeout", http.StatusRequestTimeout, "request body not received in time")
			return
		}
		h.refuse(w, "publish", "body_read", http.StatusBadRequest, fmt.Sprintf("reading request body: %v", err))
		return
	}
	lines := batchLines(buf.Bytes())
	switch {
	case len(lines) == 0:
		h.refuse(w, "publish", "empty_batch", http.StatusBadRequest, "empty batch: give one JSON update per line")
		return
	case len(lines) > h.maxBatch:
		h.refuse(w, "publish", "batch_too_large", http.StatusRequestEntityTooLarge, fmt.Sprintf("batch of %d updates, more than the limit of %d", len(lines), h.maxBatch))
		return
	}
	var m *broker.Matcher
	if claims != nil {
		var err error
		if m, err = h.publishMatcher(claims); err != nil {
			h.authFails.add("publish", "bad_selector")
			challenge(w, http.StatusUnauthorized, "invalid_token", "invalid access token: bad publish selector: %s", strings.TrimPrefix(err.Error(), "broker: "))
			return
		}
	}

	var results []BatchResult
	var stored int
	if h.reuseIDs {
		results, stored = h.publishEach(r, lines, claims, m, stop)
	} else {
		results, stored = h.publishTogether(r, lines, claims, m, stop)
	}
	out := bytes.NewBuffer(make([]byte, 0, 64*len(results)))
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	for _, res := range results {
		_ = enc.Encode(res) // cannot fail: strings and ints
	}
	hdr := w.Header()
	hdr.Set("Content-Type", BatchType)
	hdr["X-Content-Type-Options"] = noSniff
	hdr.Set("Herald-Batch-Stored", strconv.Itoa(stored))
	_, _ = out.WriteTo(w)
}

// batchLines splits a batch body at its line feeds and drops blank lines.
func batchLines(body []byte) [][]byte {
	var lines [][]byte
	for len(body) > 0 {
		line := body
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		if len(bytes.TrimSpace(line)) > 0 {
			lines = append(lines, line)
		}
	}
	return lines
}

// publishTogether checks every line, then appends the updates that pass
// in one [broker.Broker.PublishBatch], so that a store that commits
// batches (the boltstore: one fsync) does so once for the request. The
// results are those of publishing the lines one by one in order: with
// stop, the first refusal, by the checks or by the store, ends the batch
// and the updates after it are not attempted (and not counted).
func (h *Hub) publishTogether(r *http.Request, lines [][]byte, claims *auth.Claims, m *broker.Matcher, stop bool) ([]BatchResult, int) {
	results := make([]BatchResult, len(lines))
	ups := make([]store.Update, 0, len(lines))
	at := make([]int, 0, len(lines)) // at[k]: the line of ups[k]
	checkRefused, checkRes, checkLabel := -1, BatchResult{}, ""
	for i, line := range lines {
		u, res, label := h.checkLine(r, line, claims, m)
		if res.Status != 0 {
			if stop {
				// Answered and counted below, unless the store refuses
				// an earlier update first: then this line was never
				// reached.
				checkRefused, checkRes, checkLabel = i, res, label
				break
			}
			results[i] = res
			h.countRefusal(label)
			continue
		}
		ups = append(ups, u)
		at = append(at, i)
	}
	refused, stored := -1, 0
	if len(ups) > 0 {
		out, errs := h.b.PublishBatch(r.Context(), ups, stop)
		for k, i := range at {
			switch {
			case errs[k] == nil:
				results[i] = BatchResult{Status: http.StatusOK, ID: out[k].ID}
				stored++
			case errors.Is(errs[k], store.ErrNotAttempted):
				// Filled in below, after the refused update.
			default:
				code, reason := h.publishFailure(r.Context(), errs[k], ups[k].ID)
				results[i] = BatchResult{Status: code, ID: ups[k].ID, Error: reason}
				h.countRefusal(storeFailureLabel(code))
				if stop && refused < 0 {
					refused = i
				}
			}
		}
	}
	if refused < 0 && checkRefused >= 0 {
		refused = checkRefused
		results[refused] = checkRes
		h.countRefusal(checkLabel)
	}
	if refused >= 0 {
		for i := refused + 1; i < len(results); i++ {
			// A store that could not stop (an engine error in a Redis
			// pipeline) may have stored later updates: their results stand.
			if results[i].Status == 0 {
				results[i] = notAttempted(refused)
			}
		}
	}
	return results, stored
}

// publishEach publishes the lines one by one, in order. It is the path of
// [Config.AllowReusedIDs], whose retry of a taken id with a new one is a
// second append of that update alone.
func (h *Hub) publishEach(r *http.Request, lines [][]byte, claims *auth.Claims, m *broker.Matcher, stop bool) ([]BatchResult, int) {
	results := make([]BatchResult, len(lines))
	refused, stored := -1, 0
	for i, line := range lines {
		if refused >= 0 {
			results[i] = notAttempted(refused)
			continue
		}
		results[i] = h.publishLine(r, line, claims, m)
		switch {
		case results[i].Status == http.StatusOK:
			stored++
		case stop:
			refused = i
		}
	}
	return results, stored
}

// notAttempted is the result of an update after the refused update of
// line refused (0-based) in a batch that stops at the first refusal.
func notAttempted(refused int) BatchResult {
	return BatchResult{Status: StatusNotAttempted, Error: fmt.Sprintf("not attempted: update %d of the batch was refused", refused+1)}
}

// countRefusal counts a refused update of a batch under label, as a
// single publish refused for the same reason counts; "" counts nothing.
func (h *Hub) countRefusal(label string) {
	switch label {
	case "":
	case "insufficient_scope":
		h.authFails.add("publish", label)
	default:
		h.refusals.add("publish", label)
	}
}

// publishLine checks, authorizes and publishes the update of one batch
// line, as publish does for a form, and returns its result. m is nil for
// an anonymous publisher.
func (h *Hub) publishLine(r *http.Request, line []byte, claims *auth.Claims, m *broker.Matcher) BatchResult {
	res, label := h.checkAndPublishLine(r, line, claims, m)
	h.countRefusal(label)
	return res
}

// checkAndPublishLine is publishLine without the counting: it also
// returns the label under which a single publish counts the same refusal
// ([Hub.Refusals], [Hub.AuthFailures]), or "" (stored, or a store failure).
func (h *Hub) checkAndPublishLine(r *http.Request, line []byte, claims *auth.Claims, m *broker.Matcher) (BatchResult, string) {
	u, res, label := h.checkLine(r, line, claims, m)
	if res.Status != 0 {
		return res, label
	}
	stored, err := h.b.Publish(r.Context(), u)
	if h.reuseIDs && errors.Is(err, store.ErrDuplicateID) {
		u.ID = ""
		stored, err = h.b.Publish(r.Context(), u)
	}
	if err == nil {
		return BatchResult{Status: http.StatusOK, ID: stored.ID}, ""
	}
	code, reason := h.publishFailure(r.Context(), err, u.ID)
	return BatchResult{Status: code, ID: u.ID, Error: reason}, storeFailureLabel(code)
}

// storeFailureLabel is the refusal label of a store's answer code: a
// duplicate id or an update the store found invalid; "" for the failures
// that are not the publisher's (unavailable, unknown outcome).
func storeFailureLabel(code int) string {
	switch code {
	case http.StatusConflict:
		return "duplicate_id"
	case http.StatusBadRequest:
		return "invalid_update"
	}
	return ""
}

// checkLine parses, validates and authorizes the update of one batch line
// and returns it, with an id, ready to append; or its refusal (a result
// with a non-zero Status) and the label the refusal counts under.
func (h *Hub) checkLine(r *http.Request, line []byte, claims *auth.Claims, m *broker.Matcher) (store.Update, BatchResult, string) {
	refuse := func(res BatchResult, label string) (store.Update, BatchResult, string) {
		return store.Update{}, res, label
	}
	if int64(len(line)) > h.maxBody {
		return refuse(BatchResult{Status: http.StatusRequestEntityTooLarge, Error: fmt.Sprintf("update of %d bytes larger than %d bytes", len(line), h.maxBody)}, "body_too_large")
	}
	if !utf8.Valid(line) {
		return refuse(BatchResult{Status: http.StatusBadRequest, Error: "update is not valid UTF-8"}, "malformed_form")
	}
	var bu BatchUpdate
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&bu); err != nil {
		return refuse(BatchResult{Status: http.StatusBadRequest, Error: "malformed update: " + strings.TrimPrefix(err.Error(), "json: ")}, "malformed_form")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return refuse(BatchResult{Status: http.StatusBadRequest, ID: bu.ID, Error: "malformed update: more than one JSON value on the line"}, "malformed_form")
	}
	bad := func(format string, args ...any) (store.Update, BatchResult, string) {
		return refuse(BatchResult{Status: http.StatusBadRequest, ID: bu.ID, Error: fmt.Sprintf(format, args...)}, "invalid_update")
	}
	if bu.Retry < 0 {
		return bad(`"retry" must not be negative`)
	}
	// The form's rules, word for word: the same update is refused for the
	// same reason either way.
	f := make(url.Values, 6)
	if len(bu.Topic) > 0 {
		f["topic"] = bu.Topic
	}
	f["data"] = []string{bu.Data}
	if bu.ID != "" {
		f["id"] = []string{bu.ID}
	}
	if bu.Type != "" {
		f["type"] = []string{bu.Type}
	}
	if bu.Retry > 0 {
		f["retry"] = []string{strconv.FormatInt(bu.Retry, 10)}
	}
	if bu.Private {
		f["private"] = []string{"on"}
	}
	u, code, reason := parseUpdate(f, r.Host)
	if code != 0 {
		return refuse(BatchResult{Status: code, ID: bu.ID, Error: reason}, "invalid_update")
	}
	if claims != nil && claims.Style == auth.StyleAccessToken && len(u.Topics) > 1 {
		return bad(`a Mercure 1.0 update has exactly one "topic" field, got %d`, len(u.Topics))
	}
	if m != nil {
		if t, ok := allowed(m, u.Topics); !ok {
			return refuse(BatchResult{Status: http.StatusForbidden, ID: bu.ID, Error: fmt.Sprintf("not authorized to publish to topic %q", t)}, "insufficient_scope")
		}
	}
	if u.ID == "" {
		u.ID = store.NewID()
	}
	return u, BatchResult{}, ""
}

// publishFailure maps an error of broker.Publish to the status and reason
// of the answer, for a single publish and for each update of a batch.
func (h *Hub) publishFailure(ctx context.Context, err error, id string) (int, string) {
	switch {
	case errors.Is(err, store.ErrDuplicateID):
		return http.StatusConflict, fmt.Sprintf("update id %q already exists", id)
	case errors.Is(err, store.ErrInvalid):
		h.log.Warn("hub: publish: update passed validation but the store refused it", "err", err)
		return http.StatusBadRequest, "invalid update: " + storeReason(err)
	case errors.Is(err, broker.ErrShutdown), errors.Is(err, store.ErrClosed):
		return http.StatusServiceUnavailable, "hub is shutting down"
	case errors.Is(err, store.ErrOutcomeUnknown), errors.Is(err, context.DeadlineExceeded):
		h.log.Warn("hub: publish: outcome unknown", "id", id, "err", err)
		return http.StatusGatewayTimeout, fmt.Sprintf("the store did not answer in time: update %q may or may not be stored; retry with the same id (a 409 then means it was)", id)
	case ctx.Err() != nil:
		return http.StatusServiceUnavailable, "request canceled"
	default:
		h.log.Error("hub: publish: store unavailable", "err", err)
		return http.StatusServiceUnavailable, "store unavailable: the update was not stored"
	}
}
