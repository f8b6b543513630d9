package store

import (
	"context"
	"errors"
)

// ErrNotAttempted is the error of the updates of a stopping [AppendBatch]
// that follow the first update that failed: they were not appended.
var ErrNotAttempted = errors.New("store: not attempted: an earlier update of the batch failed")

// BatchAppender is implemented by stores that append several updates at
// a lower cost than one [Store.Append] each: the boltstore commits a whole
// batch in one transaction, with one fsync, instead of waiting for a
// commit per update. Call it through [AppendBatch], which falls back to
// Append for other stores. A wrapper that changes Append must change
// AppendBatch alike, or embed the [Store] interface rather than a store
// type, so that a promoted AppendBatch does not bypass it.
type BatchAppender interface {
	// AppendBatch appends ups in order, each as Append would (same
	// validation, ids, errors), and returns one result and one error per
	// update: errs[i] is nil when stored[i] was appended. With stop set,
	// the updates after the first one that fails are not appended and
	// their error is ErrNotAttempted. Like Append, an update is not
	// abandoned once submitted: a canceled ctx does not make a stored
	// update look failed.
	AppendBatch(ctx context.Context, ups []Update, stop bool) (stored []Update, errs []error)
}

// AppendBatch appends ups to s in order with s's AppendBatch, or with one
// Append each when s is not a [BatchAppender], and returns one result and
// one error per update (see [BatchAppender]).
func AppendBatch(ctx context.Context, s Store, ups []Update, stop bool) ([]Update, []error) {
	if ba, ok := s.(BatchAppender); ok {
		return ba.AppendBatch(ctx, ups, stop)
	}
	stored, errs := make([]Update, len(ups)), make([]error, len(ups))
	failed := false
	for i, u := range ups {
		if failed {
			errs[i] = ErrNotAttempted
			continue
		}
		stored[i], errs[i] = s.Append(ctx, u)
		failed = stop && errs[i] != nil
	}
	return stored, errs
}
