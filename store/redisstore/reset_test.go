package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/herald-sse/herald/internal/servertest"
	"github.com/herald-sse/herald/store"
	"github.com/herald-sse/herald/store/redisstore"
)

// TestLogReset loses the log under two running stores in each way an
// operator can, on a private redis-server: a Wait pending at the newest
// position and a Read from an old one must report store.ErrLogReset, and
// the stores must then follow the new log.
func TestLogReset(t *testing.T) {
	tests := []struct {
		name string
		// lose loses the log of the server behind proxy; appendMore
		// appends updates that the lost log had.
		lose func(t *testing.T, primary *servertest.Server, proxy *servertest.Proxy, appendMore func())
	}{
		{"FLUSHALL", func(t *testing.T, primary *servertest.Server, _ *servertest.Proxy, _ func()) {
			admin := redis.NewClient(&redis.Options{Addr: primary.Addr})
			defer admin.Close()
			if err := admin.FlushAll(t.Context()).Err(); err != nil {
				t.Fatal(err)
			}
		}},
		{"restart without persistence", func(t *testing.T, primary *servertest.Server, _ *servertest.Proxy, _ func()) {
			primary.Kill()
			primary.Start()
		}},
		{"failover to a lagging replica", func(t *testing.T, primary *servertest.Server, proxy *servertest.Proxy, appendMore func()) {
			replica := servertest.StartRedis(t)
			admin := redis.NewClient(&redis.Options{Addr: replica.Addr})
			defer admin.Close()
			ctx := t.Context()
			host, port, _ := strings.Cut(primary.Addr, ":")
			if err := admin.ReplicaOf(ctx, host, port).Err(); err != nil {
				t.Fatal(err)
			}
			if !servertest.WaitFor(ctx, 10*time.Second, func() bool {
				info, _ := admin.Info(ctx, "replication").Result()
				return strings.Contains(info, "master_link_status:up")
			}) {
				t.Fatal("replica not in sync after 10s")
			}
			// The replica stops following, the primary goes on, then the
			// replica takes over: the updates after the cut are lost.
			pri := redis.NewClient(&redis.Options{Addr: primary.Addr})
			defer pri.Close()
			if err := pri.Do(ctx, "WAIT", 1, 5000).Err(); err != nil {
				t.Fatal(err)
			}
			if err := admin.ReplicaOf(ctx, "NO", "ONE").Err(); err != nil {
				t.Fatal(err)
			}
			appendMore()
			proxy.Switch(replica.Addr)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			primary := servertest.StartRedis(t)
			proxy := servertest.NewProxy(t, primary.Addr)
			client := func() *redis.Client {
				rdb := redis.NewClient(&redis.Options{Addr: proxy.Addr(), DialTimeout: time.Second, MaxRetries: -1})
				t.Cleanup(func() { rdb.Close() })
				return rdb
			}
			cfg := redisstore.Config{BlockTime: 50 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))}
			a, b := open(t, client(), cfg), open(t, client(), cfg)
			ctx := t.Context()
			var last store.Update
			for i := range 5 {
				last = mustAppend(t, a, store.Update{Topics: []string{"t"}, Data: fmt.Sprint(i)})
			}
			if err := b.Wait(ctx, last.Seq-1); err != nil {
				t.Fatalf("B.Wait(%d) = %v, want nil", last.Seq-1, err)
			}
			if _, _, err := b.Last(ctx); err != nil {
				t.Fatal(err)
			}
			appendMore := func() {
				for i := range 3 {
					last = mustAppend(t, a, store.Update{Topics: []string{"t"}, Data: fmt.Sprint("more", i)})
				}
				if err := b.Wait(ctx, last.Seq-1); err != nil {
					t.Fatalf("B.Wait(%d) = %v, want nil", last.Seq-1, err)
				}
			}
			waited := make(chan error, 1)
			pendingAt := last.Seq
			startWait := func() {
				pendingAt = last.Seq
				go func() { waited <- b.Wait(ctx, pendingAt) }()
			}
			startWait()
			more := func() {
				// Appends that the lost log has, with the pending Wait at
				// the newest of them.
				appendMore()
				if err := <-waited; err != nil {
					t.Fatalf("B.Wait(%d) = %v, want nil", pendingAt, err)
				}
				startWait()
			}

			tt.lose(t, primary, proxy, more)

			select {
			case err := <-waited:
				if !errors.Is(err, store.ErrLogReset) {
					t.Fatalf("B.Wait(%d) pending while the log was lost = %v, want %v", pendingAt, err, store.ErrLogReset)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("B.Wait(%d) still blocked 10s after the log was lost, want %v", pendingAt, store.ErrLogReset)
			}
			// A reads from an old position: told, whether or not its
			// follower noticed first.
			var err error
			servertest.WaitFor(ctx, 10*time.Second, func() bool {
				_, err = a.Read(ctx, 2, 10)
				return errors.Is(err, store.ErrLogReset)
			})
			if !errors.Is(err, store.ErrLogReset) {
				t.Fatalf("A.Read(2, 10) after the log was lost = %v, want %v", err, store.ErrLogReset)
			}
			if _, err := b.Read(ctx, last.Seq, 10); !errors.Is(err, store.ErrLogReset) {
				t.Fatalf("B.Read(%d, 10) after the log was lost = %v, want %v", last.Seq, err, store.ErrLogReset)
			}

			// Both follow the new log: Last, then Wait and Read from it.
			seq, _, err := b.Last(ctx)
			if err != nil {
				t.Fatalf("B.Last() = %v", err)
			}
			waited = make(chan error, 1)
			go func() { waited <- b.Wait(ctx, seq) }()
			u := mustAppend(t, a, store.Update{Topics: []string{"t"}, Data: "new log"})
			if u.Seq <= last.Seq {
				t.Fatalf("A.Append() after the reset = Seq %d, want above the lost log's %d", u.Seq, last.Seq)
			}
			if err := <-waited; err != nil {
				t.Fatalf("B.Wait(%d) in the new log = %v, want nil", seq, err)
			}
			got, err := b.Read(ctx, seq, 10)
			if err != nil || len(got) == 0 || got[len(got)-1].Data != "new log" {
				t.Fatalf("B.Read(%d, 10) = %+v, %v, want the new update last", seq, got, err)
			}
			if n, err := b.Lookup(ctx, u.ID); err != nil || n != got[len(got)-1].Seq {
				t.Fatalf("B.Lookup(%q) = %d, %v, want %d", u.ID, n, err, got[len(got)-1].Seq)
			}
		})
	}
}

// TestStalledAppend stalls the connection to Redis mid-command: an Append
// bounded by its context returns store.ErrOutcomeUnknown in time (the
// script may have run), and one refused before sending is a plain error.
func TestStalledAppend(t *testing.T) {
	srv := servertest.StartRedis(t)
	proxy := servertest.NewProxy(t, srv.Addr)
	rdb := redis.NewClient(&redis.Options{Addr: proxy.Addr(), ContextTimeoutEnabled: true, MaxRetries: -1})
	defer rdb.Close()
	s := open(t, rdb, redisstore.Config{Logger: slog.New(slog.DiscardHandler)})
	ctx := t.Context()
	mustAppend(t, s, store.Update{Topics: []string{"t"}})
	proxy.Stall()
	actx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := s.Append(actx, store.Update{ID: "stalled", Topics: []string{"t"}})
	if !errors.Is(err, store.ErrOutcomeUnknown) {
		t.Fatalf("Append with Redis stalled = %v, want %v", err, store.ErrOutcomeUnknown)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Append with a 200ms deadline and Redis stalled took %v", d)
	}
	// A batch: every update's outcome is unknown, none is reported
	// stored or refused.
	bctx, bcancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer bcancel()
	_, errs := s.AppendBatch(bctx, []store.Update{{ID: "b1", Topics: []string{"t"}}, {ID: "b2", Topics: []string{"t"}}}, true)
	for i, err := range errs {
		if !errors.Is(err, store.ErrOutcomeUnknown) {
			t.Errorf("AppendBatch with Redis stalled: update %d: %v, want %v", i, err, store.ErrOutcomeUnknown)
		}
	}
	proxy.Resume()
	// The retry with the same id: stored once, whatever the first did.
	if _, err := s.Append(ctx, store.Update{ID: "stalled", Topics: []string{"t"}}); err != nil && !errors.Is(err, store.ErrDuplicateID) {
		t.Fatalf("Append retry after the stall = %v, want nil or %v", err, store.ErrDuplicateID)
	}
	// A refused connection: nothing was sent.
	srv.Kill()
	direct := redis.NewClient(&redis.Options{Addr: srv.Addr, ContextTimeoutEnabled: true, MaxRetries: -1})
	defer direct.Close()
	down := open(t, direct, redisstore.Config{Logger: slog.New(slog.DiscardHandler)})
	if _, err := down.Append(ctx, store.Update{Topics: []string{"t"}}); err == nil || errors.Is(err, store.ErrOutcomeUnknown) {
		t.Fatalf("Append with Redis down = %v, want a plain error (nothing was sent)", err)
	}
}
