package hub_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/herald-sse/herald/store"
	"github.com/herald-sse/herald/store/memstore"
)

// failingStore is a memstore whose Append returns err instead, when set.
type failingStore struct {
	store.Store // the interface, so that AppendBatch falls back to Append
	err         error
}

func (s *failingStore) Append(ctx context.Context, u store.Update) (store.Update, error) {
	if s.err != nil {
		return store.Update{}, fmt.Errorf("fakestore: append: %w", s.err)
	}
	return s.Store.Append(ctx, u)
}

// TestPublishAcknowledgements checks that a publish's status says what
// happened to the update: 200 stored, 504 unknown (retry with the same
// id), any other 5xx not stored.
func TestPublishAcknowledgements(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		code   int
		reason string // a substring of the body
	}{
		{"stored", nil, http.StatusOK, ""},
		{"invalid", fmt.Errorf("update of 9 bytes larger than the history's MaxBytes 8: %w", store.ErrInvalid), http.StatusBadRequest,
			"invalid update: update of 9 bytes larger than the history's MaxBytes 8"},
		{"duplicate", store.ErrDuplicateID, http.StatusConflict, "already exists"},
		{"outcome unknown", fmt.Errorf("%w (i/o timeout)", store.ErrOutcomeUnknown), http.StatusGatewayTimeout,
			"may or may not be stored; retry with the same id"},
		{"deadline", context.DeadlineExceeded, http.StatusGatewayTimeout, "may or may not be stored; retry with the same id"},
		{"engine down", errors.New("dial tcp 127.0.0.1:6379: connect: connection refused"), http.StatusServiceUnavailable,
			"store unavailable: the update was not stored"},
		{"closed", store.ErrClosed, http.StatusServiceUnavailable, "shutting down"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := memstore.New(memstore.Config{})
			st := &failingStore{Store: mem, err: tt.err}
			e := newEnvOn(t, defaultConfig(), st, mem)
			tok := sign(t, pubKey, []string{"*"}, nil)
			w := e.serve(publishRequest("topic=a&data=x", tok))
			if w.Code != tt.code || !strings.Contains(w.Body.String(), tt.reason) {
				t.Fatalf("POST with Append error %v = %d %q, want %d with %q", tt.err, w.Code, w.Body.String(), tt.code, tt.reason)
			}
			if tt.code == http.StatusGatewayTimeout && !strings.Contains(w.Body.String(), `"urn:uuid:`) {
				t.Errorf("504 body %q does not name the id to retry with", w.Body.String())
			}
		})
	}
}
