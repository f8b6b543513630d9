package seqwait_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/herald-sse/herald/internal/seqwait"
	"github.com/herald-sse/herald/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var w seqwait.Waiter
		w.Advance(3)
		if err := w.Wait(t.Context(), 2); err != nil {
			t.Fatalf("Wait(2) at 3 = %v, want nil", err)
		}
		results := make(chan error, 3)
		for range 3 {
			go func() { results <- w.Wait(t.Context(), 3) }()
		}
		synctest.Wait()
		w.Advance(3) // not past 3: nobody wakes
		synctest.Wait()
		if len(results) != 0 {
			t.Fatalf("Wait(3) returned after Advance(3)")
		}
		w.Advance(4)
		for range 3 {
			if err := <-results; err != nil {
				t.Errorf("Wait(3) after Advance(4) = %v, want nil", err)
			}
		}
		if got := w.Last(); got != 4 {
			t.Errorf("Last() = %d, want 4", got)
		}

		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if err := w.Wait(ctx, 4); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Wait(4) with a 1s timeout = %v, want DeadlineExceeded", err)
		}

		go func() { results <- w.Wait(t.Context(), 10) }()
		synctest.Wait()
		w.Close()
		w.Close()
		if err := <-results; !errors.Is(err, store.ErrClosed) {
			t.Errorf("Wait after Close = %v, want ErrClosed", err)
		}
		if err := w.Wait(t.Context(), 0); !errors.Is(err, store.ErrClosed) {
			t.Errorf("Wait on a closed waiter = %v, want ErrClosed", err)
		}
	})
}

func TestReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var w seqwait.Waiter
		w.Advance(10)
		results := make(chan error, 2)
		go func() { results <- w.Wait(t.Context(), 10) }() // at the end
		synctest.Wait()
		if floor := w.Reset(); floor != 10 {
			t.Fatalf("Reset() = %d, want 10 (the former Last)", floor)
		}
		if err := <-results; !errors.Is(err, store.ErrLogReset) {
			t.Fatalf("Wait(10) pending at Reset = %v, want %v", err, store.ErrLogReset)
		}
		go func() { results <- w.Wait(t.Context(), 0) }() // from the new log's start
		synctest.Wait()
		if len(results) != 0 {
			t.Fatal("Wait(0) returned after Reset of an empty new log, want it to block")
		}
		for _, after := range []uint64{1, 5, 10} {
			if err := w.Wait(t.Context(), after); !errors.Is(err, store.ErrLogReset) {
				t.Errorf("Wait(%d) after Reset at 10 = %v, want %v", after, err, store.ErrLogReset)
			}
		}
		w.Advance(11) // the new log's first update
		if err := <-results; err != nil {
			t.Fatalf("Wait(0) after the new log's first update = %v, want nil", err)
		}
		if err := w.Wait(t.Context(), 0); err != nil {
			t.Fatalf("Wait(0) = %v, want nil", err)
		}
		if got := w.Floor(); got != 10 {
			t.Fatalf("Floor() = %d, want 10", got)
		}
	})
}
