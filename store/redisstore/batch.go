package redisstore

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/herald-sse/herald/store"
)

// AppendBatch appends ups in order in one round trip: one pipeline of
// appendScript calls, each atomic on its own, preceded by the script's
// SCRIPT LOAD so that every call finds it. It implements
// [store.BatchAppender]; each update gets Append's result.
//
// With stop set the calls share a stop key: the first that refuses its id
// sets it and the later ones append nothing ([store.ErrNotAttempted]).
// Redis runs the calls of a pipeline one by one, so an engine error on one
// call (not a refusal: out of memory, a script cache flushed in between)
// does not stop the next ones; their results say whether they were stored.
// A connection lost during the pipeline makes the outcome of every call
// not yet answered unknown ([store.ErrOutcomeUnknown]), as for Append.
func (s *Store) AppendBatch(ctx context.Context, ups []store.Update, stop bool) ([]store.Update, []error) {
	stored, errs := make([]store.Update, len(ups)), make([]error, len(ups))
	fail := func(from int, err error) {
		for i := from; i < len(ups); i++ {
			if errs[i] == nil {
				errs[i] = err
			}
		}
	}
	if s.closed.Load() {
		fail(0, fmt.Errorf("redisstore: append: %w", store.ErrClosed))
		return stored, errs
	}
	// Prepared in order; with stop, an update refused here ends the batch.
	type call struct {
		i        int
		u        store.Update
		explicit bool
		args     []any
	}
	calls := make([]call, 0, len(ups))
	for i, u := range ups {
		if err := store.Validate(u); err != nil {
			errs[i] = fmt.Errorf("redisstore: append: %w", err)
		} else {
			c := call{i: i, u: u, explicit: u.ID != ""}
			if !c.explicit {
				c.u.ID = store.NewID()
			}
			if c.args, errs[i] = s.appendArgs(c.u, c.explicit); errs[i] == nil {
				calls = append(calls, c)
				continue
			}
		}
		if stop {
			fail(i+1, store.ErrNotAttempted)
			break
		}
	}
	if len(calls) == 0 {
		return stored, errs
	}

	keys := s.keys
	var stopKey string
	if stop {
		stopKey = s.keys[0][:len(s.keys[0])-len("seq")] + "batch:" + uuid.NewString()
		keys = append(keys[:len(keys):len(keys)], stopKey)
	}
	g := s.generation()
	pipe := s.rdb.Pipeline()
	pipe.ScriptLoad(ctx, appendSource)
	cmds := make([]*redis.Cmd, len(calls))
	for k, c := range calls {
		cmds[k] = appendScript.EvalSha(ctx, pipe, keys, c.args...)
	}
	if stop {
		pipe.Del(ctx, stopKey)
	}
	_, _ = pipe.Exec(ctx) // each command's error is read below
	for k, c := range calls {
		res, err := cmds[k].Result()
		if err != nil {
			if sent(err) {
				errs[c.i] = fmt.Errorf("redisstore: append: %w (%w)", store.ErrOutcomeUnknown, err)
			} else {
				errs[c.i] = fmt.Errorf("redisstore: append: %w", err)
			}
			continue
		}
		seq, ts, epoch, err := parseAppendReply(res)
		switch {
		case err != nil:
			errs[c.i] = err
		case seq < 0:
			s.resolve(epoch, g, 0)
			errs[c.i] = store.ErrNotAttempted
		case seq == 0:
			s.resolve(epoch, g, 0)
			if c.explicit {
				errs[c.i] = fmt.Errorf("redisstore: append %q: %w", c.u.ID, store.ErrDuplicateID)
			} else {
				// A generated id already in the index without its entry
				// (a hand edit of the keys): not stored.
				errs[c.i] = fmt.Errorf("redisstore: append: generated id %q already in the index", c.u.ID)
			}
		default:
			stored[c.i], errs[c.i] = s.appended(c.u, g, seq, ts, epoch)
		}
	}
	return stored, errs
}
