package storetest

import (
	"errors"
	"testing"

	"github.com/herald-sse/herald/store"
)

// testAppendBatch checks store.AppendBatch on the store, whether it
// implements store.BatchAppender or gets the fallback: order, per-update
// errors, and stop.
func testAppendBatch(t *testing.T, open Factory) {
	s := openStore(t, open, bigLen)
	const topic = "https://example.com/batch"
	taken := mustAppend(t, s, store.Update{ID: "taken", Topics: []string{topic}, Data: "before"})
	u := func(id, data string) store.Update {
		return store.Update{ID: id, Topics: []string{topic}, Data: data}
	}
	invalid := store.Update{Data: "no topic"}

	tests := []struct {
		name string
		ups  []store.Update
		stop bool
		want []error // nil: stored
	}{
		{"all stored", []store.Update{u("", "a1"), u("a2", "a2"), u("", "a3")}, true, []error{nil, nil, nil}},
		{"continue past a duplicate", []store.Update{u("b1", "b1"), u("taken", "b2"), u("", "b3")}, false,
			[]error{nil, store.ErrDuplicateID, nil}},
		{"stop at a duplicate", []store.Update{u("c1", "c1"), u("taken", "c2"), u("c3", "c3")}, true,
			[]error{nil, store.ErrDuplicateID, store.ErrNotAttempted}},
		{"stop at an invalid update", []store.Update{u("d1", "d1"), invalid, u("d3", "d3")}, true,
			[]error{nil, store.ErrInvalid, store.ErrNotAttempted}},
		{"continue past an invalid update", []store.Update{invalid, u("e2", "e2")}, false,
			[]error{store.ErrInvalid, nil}},
		{"duplicate inside the batch", []store.Update{u("f1", "f1"), u("f1", "f2"), u("f3", "f3")}, true,
			[]error{nil, store.ErrDuplicateID, store.ErrNotAttempted}},
	}
	last := taken.Seq
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stored, errs := store.AppendBatch(t.Context(), s, tt.ups, tt.stop)
			if len(stored) != len(tt.ups) || len(errs) != len(tt.ups) {
				t.Fatalf("AppendBatch of %d updates: %d results, %d errors", len(tt.ups), len(stored), len(errs))
			}
			var want []store.Update
			for i, w := range tt.want {
				switch {
				case w == nil && errs[i] != nil:
					t.Fatalf("update %d: error %v, want stored", i, errs[i])
				case w != nil && !errors.Is(errs[i], w):
					t.Fatalf("update %d: error %v, want %v", i, errs[i], w)
				case w != nil:
					if tt.ups[i].ID != "" && tt.ups[i].ID != "taken" && tt.ups[i].ID != "f1" {
						if _, err := s.Lookup(t.Context(), tt.ups[i].ID); !errors.Is(err, store.ErrNotFound) {
							t.Errorf("update %d (%q) failed but Lookup = %v, want %v", i, tt.ups[i].ID, err, store.ErrNotFound)
						}
					}
					continue
				}
				got := stored[i]
				if got.Seq <= last {
					t.Errorf("update %d: Seq %d, want > %d (batch order)", i, got.Seq, last)
				}
				last = got.Seq
				if got.ID == "" || (tt.ups[i].ID != "" && got.ID != tt.ups[i].ID) || got.Data != tt.ups[i].Data {
					t.Errorf("update %d: stored %+v for %+v", i, got, tt.ups[i])
				}
				want = append(want, got)
			}
			// What was stored is in the log, in order, and nothing else.
			if len(want) > 0 {
				checkSame(t, "Read after the batch", mustRead(t, s, want[0].Seq-1, 100), want)
			}
		})
	}
}
