package main

import (
	"context"
	"testing"
	"time"

	"github.com/herald-sse/herald/store"
	"github.com/herald-sse/herald/store/memstore"
)

// callCounter counts the calls that reach a store, and the deadlines of
// the appends.
type callCounter struct {
	store.Store
	appends, batches int
	deadlines        []time.Time
}

func (s *callCounter) Append(ctx context.Context, u store.Update) (store.Update, error) {
	s.appends++
	d, _ := ctx.Deadline()
	s.deadlines = append(s.deadlines, d)
	return s.Store.Append(ctx, u)
}

// batchingCounter is a callCounter whose store appends batches at once.
type batchingCounter struct{ *callCounter }

func (s batchingCounter) AppendBatch(ctx context.Context, ups []store.Update, stop bool) ([]store.Update, []error) {
	s.batches++
	return store.AppendBatch(ctx, s.Store, ups, stop)
}

// TestStoreWrappersPassBatches checks that the serve command's store
// wrappers (metrics, time limit) keep a batch one call to a store that
// appends batches at once, and bound each update by the time limit when
// the store appends one at a time.
func TestStoreWrappersPassBatches(t *testing.T) {
	ups := []store.Update{{Topics: []string{"a"}}, {Topics: []string{"a"}}, {Topics: []string{"a"}}}
	m := newMetrics()

	mem := memstore.New(memstore.Config{})
	defer mem.Close()
	c := &callCounter{Store: mem}
	var st store.Store = timedStore{timeoutStore{batchingCounter{c}, time.Minute}, m}
	_, errs := store.AppendBatch(t.Context(), st, ups, true)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("update %d: %v", i, err)
		}
	}
	if c.batches != 1 || c.appends != 0 {
		t.Errorf("batching store behind the wrappers: %d AppendBatch, %d Append; want 1 and 0", c.batches, c.appends)
	}

	c = &callCounter{Store: mem}
	st = timedStore{timeoutStore{c, time.Minute}, m}
	store.AppendBatch(t.Context(), st, ups, true)
	if c.appends != len(ups) {
		t.Fatalf("store without AppendBatch: %d Append, want %d", c.appends, len(ups))
	}
	for i, d := range c.deadlines {
		if d.IsZero() || time.Until(d) < 50*time.Second {
			t.Errorf("append %d: deadline %v, want the time limit of a minute", i, d)
		}
		if i > 0 && !d.After(c.deadlines[i-1]) {
			t.Errorf("append %d: deadline %v, the same as the one before: want one time limit per update", i, d)
		}
	}
}
