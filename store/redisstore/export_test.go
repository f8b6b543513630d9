package redisstore

import (
	"context"

	"github.com/herald-sse/herald/store"
)

// SetTrimBudget sets the most entries one Append of s trims, so tests can
// reach the limit with a few appends.
func SetTrimBudget(s *Store, n int) { s.budget = n }

// AppendGenerated appends u as if Append had generated its ID, as a client
// retry of a lost reply does.
func AppendGenerated(s *Store, ctx context.Context, u store.Update) (store.Update, error) {
	return s.append(ctx, u, false)
}
