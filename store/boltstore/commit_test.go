package boltstore

import (
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/herald-sse/herald/store"
)

// TestAppendBatchOneCommit checks that AppendBatch commits a whole batch
// in one bbolt transaction (one fsync), not one per update.
func TestAppendBatchOneCommit(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "herald.db"), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	txid := func() (id int) {
		if err := s.db.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil }); err != nil {
			t.Fatal(err)
		}
		return id
	}
	ups := make([]store.Update, 50)
	for i := range ups {
		ups[i] = store.Update{Topics: []string{"t"}, Data: "x"}
	}
	before := txid()
	_, errs := s.AppendBatch(t.Context(), ups, true)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("update %d: %v", i, err)
		}
	}
	if n := txid() - before; n != 1 {
		t.Errorf("AppendBatch of %d updates took %d commits, want 1", len(ups), n)
	}
}
