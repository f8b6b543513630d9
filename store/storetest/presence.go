package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/herald-sse/herald/store"
)

// PresenceFactory opens n registries that share one set of entries, as
// the nodes of a cluster would (n is 1 for a registry of one process),
// and closes them when t ends.
type PresenceFactory func(t *testing.T, n int) []store.Presence

// RunPresence runs the conformance tests of a [store.Presence]. With
// shared true the factory is asked for two nodes, and the tests check that
// each sees the other's entries and changes, and that a node that stops
// renewing has its entries expire with an inactive change; the registry's
// TTL must then be short (a second or less).
func RunPresence(t *testing.T, open PresenceFactory, shared bool) {
	t.Run("AddListRemove", func(t *testing.T) { testPresenceAddListRemove(t, open(t, 1)[0]) })
	t.Run("InvalidKey", func(t *testing.T) {
		p := open(t, 1)[0]
		for _, k := range []string{"", "a\nb", string(make([]byte, store.MaxPresenceKeyLen+1))} {
			if err := p.Add(context.Background(), k, nil); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("Add(%.20q) = %v, want ErrInvalid", k, err)
			}
		}
	})
	t.Run("Leave", func(t *testing.T) { testPresenceLeave(t, open(t, 1)[0]) })
	if shared {
		t.Run("Shared", func(t *testing.T) { testPresenceShared(t, open(t, 2)) })
		t.Run("Expiry", func(t *testing.T) { testPresenceExpiry(t, open(t, 2)) })
	}
}

func watch(t *testing.T, p store.Presence) store.PresenceWatcher {
	t.Helper()
	w, err := p.Watch(context.Background())
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// next returns w's next change, failing after a generous deadline (a hang,
// not a speed check).
func next(t *testing.T, w store.PresenceWatcher) store.PresenceChange {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := w.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return c
}

func wantChange(t *testing.T, w store.PresenceWatcher, key, data string, active bool) {
	t.Helper()
	c := next(t, w)
	if c.Key != key || string(c.Data) != data || c.Active != active {
		t.Fatalf("Next() = {%q, %q, active %v}, want {%q, %q, active %v}", c.Key, c.Data, c.Active, key, data, active)
	}
}

func list(t *testing.T, p store.Presence) []string {
	t.Helper()
	es, err := p.List(context.Background())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var got []string
	for _, e := range es {
		got = append(got, e.Key+"="+string(e.Data))
	}
	slices.Sort(got)
	return got
}

func testPresenceAddListRemove(t *testing.T, p store.Presence) {
	ctx := context.Background()
	w := watch(t, p)
	if got := list(t, p); len(got) != 0 {
		t.Fatalf("List() on a new registry = %q, want none", got)
	}
	for _, k := range []string{"k1", "k2"} {
		if err := p.Add(ctx, k, []byte("d-"+k)); err != nil {
			t.Fatalf("Add(%q): %v", k, err)
		}
		wantChange(t, w, k, "d-"+k, true)
	}
	if got, want := list(t, p), []string{"k1=d-k1", "k2=d-k2"}; !slices.Equal(got, want) {
		t.Fatalf("List() = %q, want %q", got, want)
	}
	if err := p.Remove(ctx, "k1"); err != nil {
		t.Fatalf("Remove(k1): %v", err)
	}
	wantChange(t, w, "k1", "d-k1", false)
	if err := p.Remove(ctx, "k1"); err != nil { // absent: nothing
		t.Fatalf("Remove(k1) again: %v", err)
	}
	if err := p.Add(ctx, "k3", nil); err != nil {
		t.Fatalf("Add(k3): %v", err)
	}
	wantChange(t, w, "k3", "", true) // no change from the second Remove
	if got, want := list(t, p), []string{"k2=d-k2", "k3="}; !slices.Equal(got, want) {
		t.Fatalf("List() = %q, want %q", got, want)
	}
	if err := p.Renew(ctx); err != nil {
		t.Fatalf("Renew: %v", err)
	}
}

func testPresenceLeave(t *testing.T, p store.Presence) {
	ctx := context.Background()
	w := watch(t, p)
	for _, k := range []string{"k1", "k2"} {
		if err := p.Add(ctx, k, []byte(k)); err != nil {
			t.Fatalf("Add(%q): %v", k, err)
		}
		wantChange(t, w, k, k, true)
	}
	if err := p.Leave(ctx); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	var ended []string
	for range 2 {
		c := next(t, w)
		if c.Active {
			t.Fatalf("Next() after Leave = %+v, want inactive", c)
		}
		ended = append(ended, c.Key)
	}
	slices.Sort(ended)
	if !slices.Equal(ended, []string{"k1", "k2"}) {
		t.Errorf("Leave announced the end of %q, want k1 and k2", ended)
	}
	if got := list(t, p); len(got) != 0 {
		t.Errorf("List() after Leave = %q, want none", got)
	}
}

func testPresenceShared(t *testing.T, ps []store.Presence) {
	ctx := context.Background()
	a, b := ps[0], ps[1]
	wa, wb := watch(t, a), watch(t, b)
	if err := a.Add(ctx, "ka", []byte("A")); err != nil {
		t.Fatalf("a.Add: %v", err)
	}
	wantChange(t, wa, "ka", "A", true)
	wantChange(t, wb, "ka", "A", true)
	if err := b.Add(ctx, "kb", []byte("B")); err != nil {
		t.Fatalf("b.Add: %v", err)
	}
	wantChange(t, wa, "kb", "B", true)
	wantChange(t, wb, "kb", "B", true)
	for i, p := range ps {
		if got, want := list(t, p), []string{"ka=A", "kb=B"}; !slices.Equal(got, want) {
			t.Errorf("node %d: List() = %q, want %q", i, got, want)
		}
	}
	// Each node removes its own entries only.
	if err := b.Remove(ctx, "ka"); err != nil {
		t.Fatalf("b.Remove(ka): %v", err)
	}
	if err := a.Remove(ctx, "ka"); err != nil {
		t.Fatalf("a.Remove(ka): %v", err)
	}
	wantChange(t, wb, "ka", "A", false)
	if got, want := list(t, b), []string{"kb=B"}; !slices.Equal(got, want) {
		t.Errorf("List() = %q, want %q", got, want)
	}
}

// testPresenceExpiry checks that a node that stops renewing (it crashed)
// has its entries removed by a node that renews, announced inactive once,
// and that the crashed node learns it (ErrPresenceLost) if it comes back.
func testPresenceExpiry(t *testing.T, ps []store.Presence) {
	ctx := context.Background()
	a, b := ps[0], ps[1]
	if a.TTL() <= 0 || a.TTL() > 2*time.Second {
		t.Fatalf("TTL() = %v, want a short positive TTL for this test", a.TTL())
	}
	wb := watch(t, b)
	for _, k := range []string{"k1", "k2"} {
		if err := a.Add(ctx, k, []byte(k)); err != nil {
			t.Fatalf("Add(%q): %v", k, err)
		}
		wantChange(t, wb, k, k, true)
	}
	if err := b.Add(ctx, "kb", []byte("kb")); err != nil {
		t.Fatalf("b.Add: %v", err)
	}
	wantChange(t, wb, "kb", "kb", true)
	// a stops renewing, as if it crashed; b renews until it has removed
	// a's entries, which its watcher sees end.
	var ended []string
	deadline := time.Now().Add(20 * a.TTL())
	for len(ended) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("after %v without renewal, the end of %q only was announced, want k1 and k2", 20*a.TTL(), ended)
		}
		if err := b.Renew(ctx); err != nil {
			t.Fatalf("b.Renew: %v", err)
		}
		wctx, cancel := context.WithTimeout(ctx, a.TTL()/5)
		c, err := wb.Next(wctx)
		cancel()
		switch {
		case errors.Is(err, context.DeadlineExceeded):
		case err != nil:
			t.Fatalf("Next: %v", err)
		case c.Active:
			t.Fatalf("Next() after expiry = %+v, want inactive", c)
		default:
			ended = append(ended, c.Key+"="+string(c.Data))
		}
	}
	slices.Sort(ended)
	if !slices.Equal(ended, []string{"k1=k1", "k2=k2"}) {
		t.Errorf("expiry announced the end of %q, want k1 and k2", ended)
	}
	if got, want := list(t, b), []string{"kb=kb"}; !slices.Equal(got, want) {
		t.Errorf("b.List() = %q, want %q", got, want)
	}
	if got, want := list(t, a), []string{"kb=kb"}; !slices.Equal(got, want) {
		t.Errorf("a.List() = %q, want %q", got, want)
	}
	if err := a.Renew(ctx); !errors.Is(err, store.ErrPresenceLost) {
		t.Errorf("Renew of the expired node = %v, want ErrPresenceLost", err)
	}
	if err := a.Renew(ctx); err != nil {
		t.Errorf("Renew after ErrPresenceLost = %v, want nil", err)
	}
}
