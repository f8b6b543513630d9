package memstore_test

import (
	"testing"

	"github.com/herald-sse/herald/store"
	"github.com/herald-sse/herald/store/memstore"
	"github.com/herald-sse/herald/store/storetest"
)

func TestPresence(t *testing.T) {
	storetest.RunPresence(t, func(t *testing.T, n int) []store.Presence {
		p := memstore.NewPresence()
		t.Cleanup(func() { p.Close() })
		return []store.Presence{p}
	}, false)
}
