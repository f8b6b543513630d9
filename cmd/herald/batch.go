// herald pub --lines in batches: the lines read within a short window go
// to the hub in one request (Herald's batch publish, Content-Type
// application/x-ndjson), each with its own id and its own result.

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/herald-sse/herald/hub"
	"github.com/herald-sse/herald/store"
)

// batchWindow is how long `herald pub --lines` waits, after a line, for
// more lines to send in the same request. It bounds the delay a batch adds
// to a line. Tests change it.
var batchWindow = 5 * time.Millisecond

// maxBatchBody is the most bytes of lines one batch request carries; a
// line alone larger than it is sent as a form publish. Far below the
// hub's default MaxBatchBytes (8 MiB).
const maxBatchBody = 1 << 20

// errBatchUnsupported is returned by postBatch when the hub does not know
// batch publishes (415 Unsupported Media Type).
var errBatchUnsupported = errors.New("batch publish not supported by the hub")

// batchItem is one line of a batch being published.
type batchItem struct {
	line int    // line number in stdin, from 1
	data string // the line without its ending
	id   string // chosen here, kept across retries
	sent bool   // an earlier request may have stored it: a 409 means it did
}

// publishBatches is publishLines with batches of up to p.batch lines: it
// publishes every line of r as its own update, in order, and prints each
// id. A batch holds the lines read until p.batch lines, maxBatchBody bytes
// or batchWindow after its first line. It stops at EOF, at the first
// refused update (an *exitError naming the line) or when ctx is done
// (returning nil). The hub stops each batch at its first refused update,
// so nothing after a refused line is stored. Against a hub that answers
// 415 to a batch, it falls back to one form publish per line.
//
// The reading goroutine is publishLines': see there how it ends.
func (p *publisher) publishBatches(ctx context.Context, r io.Reader, stdout io.Writer) error {
	lines, done := readLines(r)
	defer close(done)
	trim := func(s string) string { return strings.TrimSuffix(strings.TrimSuffix(s, "\n"), "\r") }
	timer := time.NewTimer(0)
	defer timer.Stop()
	n := 0 // lines read
	for {
		var batch []batchItem
		var size int
		var end error // EOF or the read error that ends the input
		select {
		case <-ctx.Done():
			return nil
		case l := <-lines:
			if l.err != nil {
				end = l.err
				break
			}
			n++
			batch = append(batch, batchItem{line: n, data: trim(l.s)})
			size = len(l.s)
		}
		if end == nil {
			timer.Reset(batchWindow)
		collect:
			for len(batch) < p.batch && size < maxBatchBody {
				select {
				case <-ctx.Done():
					break collect
				case <-timer.C:
					break collect
				case l := <-lines:
					if l.err != nil {
						end = l.err
						break collect
					}
					n++
					batch = append(batch, batchItem{line: n, data: trim(l.s)})
					size += len(l.s)
				}
			}
			timer.Stop()
		}
		if len(batch) > 0 {
			ids, err := p.publishBatch(ctx, batch)
			if !p.quiet {
				for _, id := range ids {
					if _, err := fmt.Fprintln(stdout, id); err != nil {
						return err
					}
				}
			}
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		}
		switch {
		case errors.Is(end, io.EOF):
			return nil
		case end != nil:
			return &exitError{1, fmt.Errorf("line %d: reading stdin: %w", n+1, end)}
		}
	}
}

// publishBatch publishes the lines of batch in order and returns the ids
// of those stored, up to the first refused one, whose error (an
// *exitError, naming its line) it returns too. A line that is not valid
// UTF-8 (JSON would silently replace its bytes, where the hub refuses such
// data) or of maxBatchBody bytes or more goes alone as a form publish;
// the others go in batches.
func (p *publisher) publishBatch(ctx context.Context, batch []batchItem) ([]string, error) {
	var ids []string
	for len(batch) > 0 {
		j := 0
		for j < len(batch) && utf8.ValidString(batch[j].data) && len(batch[j].data) < maxBatchBody {
			j++
		}
		if j == 0 {
			id, err := p.publish(ctx, batch[0].data)
			if err != nil {
				return ids, fmt.Errorf("line %d: %w", batch[0].line, err)
			}
			ids, batch = append(ids, id), batch[1:]
			continue
		}
		got, err := p.postItems(ctx, batch[:j])
		ids = append(ids, got...)
		if err != nil {
			return ids, err
		}
		batch = batch[j:]
	}
	return ids, nil
}

// postItems publishes batch in one request (or, after a 415, one form
// publish per line) and returns the ids of the updates stored, up to the
// first refused one, whose error it returns too. Requests whose outcome is
// unknown, and updates whose result is 502, 503 or 504, are retried from
// the first update not known to be stored, with the same ids, up to
// p.retries times in a row without progress.
func (p *publisher) postItems(ctx context.Context, batch []batchItem) ([]string, error) {
	ids := make([]string, 0, len(batch))
	single := func(items []batchItem) ([]string, error) {
		for _, it := range items {
			id, err := p.publish(ctx, it.data)
			if err != nil {
				return ids, fmt.Errorf("line %d: %w", it.line, err)
			}
			ids = append(ids, id)
		}
		return ids, nil
	}
	if p.batch <= 1 {
		return single(batch)
	}
	for i := range batch {
		batch[i].id = store.NewID()
	}
	backoff := retryBackoff
	attempts := 0 // in a row without progress
	for len(batch) > 0 {
		results, retry, err := p.postBatch(ctx, batch)
		if errors.Is(err, errBatchUnsupported) && !batch[0].sent {
			p.batch = 1 // a hub without the extension: one form publish per line from now on
			return single(batch)
		}
		progress := false
		if err == nil {
			for j, res := range results {
				it := batch[j]
				if res.Status == http.StatusOK || (res.Status == http.StatusConflict && it.sent) {
					id := res.ID
					if id == "" || res.Status == http.StatusConflict {
						id = it.id // a 409 on a retry: stored by an earlier attempt whose answer was lost
					}
					ids = append(ids, id)
					progress = true
					continue
				}
				batch = batch[j:]
				switch res.Status {
				case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
					batch[0].sent = batch[0].sent || res.Status == http.StatusGatewayTimeout
					retry, err = true, fmt.Errorf("%d %s: %s", res.Status, http.StatusText(res.Status), res.Error)
				default:
					retry, err = false, fmt.Errorf("%d %s: %s", res.Status, http.StatusText(res.Status), res.Error)
				}
				break
			}
			if err == nil {
				return ids, nil
			}
		} else if retry {
			for i := range batch {
				batch[i].sent = true // the hub may have stored any of them
			}
		}
		if progress {
			attempts, backoff = 0, retryBackoff
		}
		if !retry || attempts >= p.retries || ctx.Err() != nil {
			if attempts > 0 {
				err = fmt.Errorf("%w (after %d attempts)", err, attempts+1)
			}
			return ids, &exitError{1, fmt.Errorf("line %d: %w", batch[0].line, err)}
		}
		select {
		case <-ctx.Done():
			return ids, &exitError{1, fmt.Errorf("line %d: interrupted", batch[0].line)}
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
		attempts++
	}
	return ids, nil
}

// postBatch sends the updates of batch in one request and returns one
// result per update, or an error and whether resending the same updates
// is safe and may help.
func (p *publisher) postBatch(ctx context.Context, batch []batchItem) (results []hub.BatchResult, retry bool, err error) {
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	enc.SetEscapeHTML(false)
	for _, it := range batch {
		u := p.batchUpdate
		u.Data, u.ID = it.data, it.id
		if err := enc.Encode(u); err != nil {
			return nil, false, fmt.Errorf("encoding line %d: %w", it.line, err)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, &body)
	if err != nil {
		return nil, false, fmt.Errorf("request: %w", err)
	}
	req.Header = p.header.Clone()
	req.Header.Set("Content-Type", hub.BatchType)
	resp, err := p.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, false, errors.New("interrupted")
		}
		return nil, true, fmt.Errorf("cannot reach %s: %s", p.display, netReason(err, p.timeout))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		msg := resp.Status
		if r := oneLine(string(b)); r != "" {
			msg += ": " + r
		}
		switch resp.StatusCode {
		case http.StatusUnsupportedMediaType:
			return nil, false, fmt.Errorf("%w: %s", errBatchUnsupported, msg)
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return nil, true, errors.New(msg)
		}
		return nil, false, errors.New(msg)
	}
	dec := json.NewDecoder(io.LimitReader(resp.Body, int64(len(batch))*(64<<10)))
	for dec.More() {
		var r hub.BatchResult
		if err := dec.Decode(&r); err != nil {
			return nil, true, fmt.Errorf("%s: reading the answer: %s", p.display, netReason(err, p.timeout))
		}
		results = append(results, r)
	}
	if len(results) != len(batch) {
		return nil, true, fmt.Errorf("%s: %d results for a batch of %d updates", p.display, len(results), len(batch))
	}
	return results, false, nil
}
