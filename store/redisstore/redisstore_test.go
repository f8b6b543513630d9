package redisstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/herald-sse/herald/store"
	"github.com/herald-sse/herald/store/redisstore"
	"github.com/herald-sse/herald/store/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// redisAddr returns the Redis the tests use: HERALD_TEST_REDIS, as
// host:port or a redis:// URL, or 127.0.0.1:6379.
func redisAddr() string {
	if a := os.Getenv("HERALD_TEST_REDIS"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

// newClient returns a client of the test Redis, closed when tb ends. It
// skips tb when Redis is not reachable, or fails it when CI=true.
func newClient(tb testing.TB) *redis.Client {
	tb.Helper()
	addr := redisAddr()
	opt := &redis.Options{Addr: addr}
	if strings.Contains(addr, "://") {
		var err error
		if opt, err = redis.ParseURL(addr); err != nil {
			tb.Fatalf("redis.ParseURL(%q) = %v", addr, err)
		}
	}
	opt.DialTimeout = time.Second
	rdb := redis.NewClient(opt)
	err := unreachable
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err = rdb.Ping(ctx).Err()
		cancel()
	}
	if err != nil {
		unreachable = err // skip the later tests at once
		rdb.Close()
		if os.Getenv("CI") == "true" {
			tb.Fatalf("redis not reachable at %s: %v", addr, err)
		}
		tb.Skipf("redis not reachable at %s: %v (set HERALD_TEST_REDIS)", addr, err)
	}
	tb.Cleanup(func() { rdb.Close() })
	return rdb
}

// unreachable is the error of the first failed Ping of the test Redis.
var unreachable error

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// newPrefix returns a key prefix that no other test uses, and deletes the
// keys under it when tb ends (after the stores are closed, since cleanups
// run last-registered first).
func newPrefix(tb testing.TB, rdb *redis.Client) string {
	tb.Helper()
	var b [6]byte
	rand.Read(b[:])
	prefix := "heraldtest-" + unsafeChars.ReplaceAllString(tb.Name(), "_") + "-" + hex.EncodeToString(b[:])
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		keys, err := rdb.Keys(ctx, "{"+prefix+"}:*").Result()
		if err == nil && len(keys) > 0 {
			err = rdb.Del(ctx, keys...).Err()
		}
		if err != nil {
			tb.Errorf("deleting the keys of %q: %v", prefix, err)
		}
	})
	return prefix
}

// open returns a store on rdb under prefix, closed when tb ends.
func open(tb testing.TB, rdb redis.UniversalClient, cfg redisstore.Config) *redisstore.Store {
	tb.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(tb.Output(), nil))
	}
	s, err := redisstore.New(rdb, cfg)
	if err != nil {
		tb.Fatalf("New(%+v) = %v, want nil", cfg, err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func mustAppend(t *testing.T, s *redisstore.Store, u store.Update) store.Update {
	t.Helper()
	got, err := s.Append(t.Context(), u)
	if err != nil {
		t.Fatalf("Append(%+v) = %v, want nil", u, err)
	}
	return got
}

func mustRead(t *testing.T, s *redisstore.Store, after uint64, limit int) []store.Update {
	t.Helper()
	got, err := s.Read(t.Context(), after, limit)
	if err != nil {
		t.Fatalf("Read(%d, %d) = %v, want nil", after, limit, err)
	}
	return got
}

func seqs(us []store.Update) []uint64 {
	out := make([]uint64, len(us))
	for i, u := range us {
		out[i] = u.Seq
	}
	return out
}

func TestConformance(t *testing.T) {
	rdb := newClient(t)
	storetest.Run(t, func(t *testing.T, lim storetest.Limits) store.Store {
		return open(t, rdb, redisstore.Config{Prefix: newPrefix(t, rdb), MaxLen: lim.MaxLen, MaxBytes: lim.MaxBytes})
	})
}

func TestConformanceShortBlock(t *testing.T) {
	// A follower whose XREAD times out all the time must not miss appends.
	rdb := newClient(t)
	storetest.Run(t, func(t *testing.T, lim storetest.Limits) store.Store {
		return open(t, rdb, redisstore.Config{Prefix: newPrefix(t, rdb), MaxLen: lim.MaxLen, MaxBytes: lim.MaxBytes, BlockTime: time.Millisecond})
	})
}

func TestTwoNodes(t *testing.T) {
	// Two nodes: two stores, each with its own client, on one log.
	rdbA, rdbB := newClient(t), newClient(t)
	prefix := newPrefix(t, rdbA)
	a := open(t, rdbA, redisstore.Config{Prefix: prefix})
	b := open(t, rdbB, redisstore.Config{Prefix: prefix})
	ctx := t.Context()

	// A Wait on B is woken by an Append on A.
	waited := make(chan error, 1)
	go func() { waited <- b.Wait(ctx, 0) }()
	select {
	case err := <-waited:
		t.Fatalf("B.Wait(0) on an empty log = %v, want it to block", err)
	case <-time.After(50 * time.Millisecond):
	}
	u1 := mustAppend(t, a, store.Update{Topics: []string{"https://example.com/a"}, Data: "from A", Type: "t", Private: true})
	select {
	case err := <-waited:
		if err != nil {
			t.Fatalf("B.Wait(0) after A.Append = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("B.Wait(0) not woken 5s after A.Append")
	}
	got := mustRead(t, b, 0, 10)
	if len(got) != 1 || got[0].Seq != u1.Seq || got[0].ID != u1.ID || got[0].Data != u1.Data ||
		!slices.Equal(got[0].Topics, u1.Topics) || !got[0].Time.Equal(u1.Time) || !got[0].Private || got[0].Type != "t" {
		t.Fatalf("B.Read(0, 10) = %+v, want [%+v]", got, u1)
	}
	if seq, err := b.Lookup(ctx, u1.ID); err != nil || seq != u1.Seq {
		t.Fatalf("B.Lookup(%q) = %d, %v, want %d, nil", u1.ID, seq, err, u1.Seq)
	}

	// Appends on both nodes share one sequence.
	u2 := mustAppend(t, b, store.Update{ID: "from-b", Topics: []string{"t"}})
	u3 := mustAppend(t, a, store.Update{Topics: []string{"t"}})
	if u2.Seq <= u1.Seq || u3.Seq <= u2.Seq {
		t.Fatalf("Seqs of appends on A, B, A = %d, %d, %d, want increasing", u1.Seq, u2.Seq, u3.Seq)
	}
	for name, s := range map[string]*redisstore.Store{"A": a, "B": b} {
		if got := mustRead(t, s, u1.Seq, 10); !slices.Equal(seqs(got), []uint64{u2.Seq, u3.Seq}) {
			t.Fatalf("%s.Read(%d, 10) = %v, want [%d %d]", name, u1.Seq, seqs(got), u2.Seq, u3.Seq)
		}
		if seq, id, err := s.Last(ctx); err != nil || seq != u3.Seq || id != u3.ID {
			t.Fatalf("%s.Last() = %d, %q, %v, want %d, %q, nil", name, seq, id, err, u3.Seq, u3.ID)
		}
	}
	// Ids are unique across nodes.
	if _, err := a.Append(ctx, store.Update{ID: "from-b", Topics: []string{"t"}}); !errors.Is(err, store.ErrDuplicateID) {
		t.Fatalf("A.Append(id %q appended on B) = %v, want %v", "from-b", err, store.ErrDuplicateID)
	}

	// A store opened on an existing log knows its newest update: its Wait
	// returns at once.
	c := open(t, newClient(t), redisstore.Config{Prefix: prefix})
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := c.Wait(wctx, u2.Seq); err != nil {
		t.Fatalf("C.Wait(%d) on a log with %d = %v, want nil", u2.Seq, u3.Seq, err)
	}
	// And it is woken by appends of the others.
	waited = make(chan error, 1)
	go func() { waited <- c.Wait(wctx, u3.Seq) }()
	u4 := mustAppend(t, b, store.Update{Topics: []string{"t"}})
	if err := <-waited; err != nil {
		t.Fatalf("C.Wait(%d) after B.Append(%d) = %v, want nil", u3.Seq, u4.Seq, err)
	}
}

func TestTrimAcrossNodes(t *testing.T) {
	rdb := newClient(t)
	prefix := newPrefix(t, rdb)
	a := open(t, rdb, redisstore.Config{Prefix: prefix, MaxLen: 50})
	b := open(t, rdb, redisstore.Config{Prefix: prefix, MaxLen: 10})
	ctx := t.Context()
	var us []store.Update
	for i := range 50 {
		us = append(us, mustAppend(t, a, store.Update{Topics: []string{"t"}, Data: fmt.Sprint(i)}))
	}
	if got := mustRead(t, b, 0, 100); len(got) != 50 {
		t.Fatalf("B.Read(0, 100) = %d updates, want 50", len(got))
	}
	// One append with the lower MaxLen trims 41 at once.
	us = append(us, mustAppend(t, b, store.Update{Topics: []string{"t"}, Data: "50"}))
	kept, trimmed := us[len(us)-10:], us[:len(us)-10]
	if got := mustRead(t, a, 0, 100); !slices.Equal(seqs(got), seqs(kept)) {
		t.Fatalf("A.Read(0, 100) = %v, want %v", seqs(got), seqs(kept))
	}
	for _, u := range trimmed {
		if _, err := a.Lookup(ctx, u.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("A.Lookup(%q) of a trimmed update = %v, want %v", u.ID, err, store.ErrNotFound)
		}
	}
	if _, err := a.Read(ctx, trimmed[0].Seq, 10); !errors.Is(err, store.ErrCursorGone) {
		t.Fatalf("A.Read(%d, 10) = %v, want %v", trimmed[0].Seq, err, store.ErrCursorGone)
	}
	if got := mustRead(t, a, trimmed[len(trimmed)-1].Seq, 100); len(got) != 10 {
		t.Fatalf("A.Read(%d, 100) = %v, want the 10 kept", trimmed[len(trimmed)-1].Seq, seqs(got))
	}
}

func TestTrimBudget(t *testing.T) {
	rdb := newClient(t)
	prefix := newPrefix(t, rdb)
	big := open(t, rdb, redisstore.Config{Prefix: prefix, MaxLen: 100})
	small := open(t, rdb, redisstore.Config{Prefix: prefix, MaxLen: 5})
	redisstore.SetTrimBudget(small, 4)
	for i := range 20 {
		mustAppend(t, big, store.Update{Topics: []string{"t"}, Data: fmt.Sprint(i)})
	}
	// 21 entries, 16 too many: each append trims at most 4 (after adding
	// one), so the excess drains by 3 per append.
	for i, want := range []int{12, 9, 6, 3, 0, 0} {
		mustAppend(t, small, store.Update{Topics: []string{"t"}})
		n, err := rdb.XLen(t.Context(), "{"+prefix+"}:log").Result()
		if err != nil || int(n) != 5+want {
			t.Fatalf("after %d appends with MaxLen 5: XLEN = %d, %v, want %d", i+1, n, err, 5+want)
		}
		if m, err := rdb.HLen(t.Context(), "{"+prefix+"}:ids").Result(); err != nil || m != n {
			t.Fatalf("after %d appends: HLEN ids = %d, %v, want %d (= XLEN)", i+1, m, err, n)
		}
	}
}

func TestRetryIsIdempotent(t *testing.T) {
	// The script run again for a generated id (a client retry after a lost
	// reply) returns the first append instead of appending twice.
	rdb := newClient(t)
	s := open(t, rdb, redisstore.Config{Prefix: newPrefix(t, rdb)})
	in := store.Update{ID: store.NewID(), Topics: []string{"t"}, Data: "once"}
	first, err := redisstore.AppendGenerated(s, t.Context(), in)
	if err != nil {
		t.Fatalf("AppendGenerated(%+v) = %v, want nil", in, err)
	}
	again, err := redisstore.AppendGenerated(s, t.Context(), in)
	if err != nil || again.Seq != first.Seq || again.ID != first.ID || !again.Time.Equal(first.Time) {
		t.Fatalf("AppendGenerated(%+v) again = %+v, %v, want %+v, nil", in, again, err, first)
	}
	if got := mustRead(t, s, 0, 10); len(got) != 1 || got[0].Seq != first.Seq {
		t.Fatalf("Read(0, 10) = %v, want [%d]: appended once", seqs(got), first.Seq)
	}
	// The same id from a caller is a duplicate.
	if _, err := s.Append(t.Context(), in); !errors.Is(err, store.ErrDuplicateID) {
		t.Fatalf("Append(%+v) with a retained id = %v, want %v", in, err, store.ErrDuplicateID)
	}
}

func TestMaxAge(t *testing.T) {
	rdb := newClient(t)
	s := open(t, rdb, redisstore.Config{Prefix: newPrefix(t, rdb), MaxAge: time.Hour})
	ctx := t.Context()
	now := time.Now()
	at := func(ago time.Duration, data string) store.Update {
		t.Helper()
		return mustAppend(t, s, store.Update{Topics: []string{"t"}, Data: data, Time: now.Add(-ago)})
	}
	old1 := at(3*time.Hour, "old1")
	// The newest update is kept, however old.
	if got := mustRead(t, s, 0, 10); !slices.Equal(seqs(got), []uint64{old1.Seq}) {
		t.Fatalf("Read(0, 10) = %v, want [%d]: the newest is never trimmed", seqs(got), old1.Seq)
	}
	old2 := at(2*time.Hour, "old2")
	young := at(time.Minute, "young")
	old3 := at(5*time.Hour, "old3") // behind a young one: kept for now
	fresh := mustAppend(t, s, store.Update{Topics: []string{"t"}, Data: "fresh"})

	if got := mustRead(t, s, 0, 10); !slices.Equal(seqs(got), []uint64{young.Seq, old3.Seq, fresh.Seq}) {
		t.Fatalf("Read(0, 10) = %v, want [%d %d %d]", seqs(got), young.Seq, old3.Seq, fresh.Seq)
	}
	for _, u := range []store.Update{old1, old2} {
		if _, err := s.Lookup(ctx, u.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Lookup(%q) of an expired update = %v, want %v", u.Data, err, store.ErrNotFound)
		}
	}
	if _, err := s.Read(ctx, old1.Seq, 10); !errors.Is(err, store.ErrCursorGone) {
		t.Fatalf("Read(%d, 10) from an expired position = %v, want %v", old1.Seq, err, store.ErrCursorGone)
	}
	if got := mustRead(t, s, old2.Seq, 10); len(got) != 3 {
		t.Fatalf("Read(%d, 10) after the newest expired = %v, want 3 updates", old2.Seq, seqs(got))
	}
	// The server's clock stamps updates without a Time.
	if d := time.Until(fresh.Time); d < -5*time.Second || d > 5*time.Second {
		t.Fatalf("Append().Time = %v, want about %v", fresh.Time, time.Now())
	}
}

func TestEntryFormat(t *testing.T) {
	// The stream entries are the format documented in the package doc, so
	// that other programs can read the log.
	rdb := newClient(t)
	prefix := newPrefix(t, rdb)
	s := open(t, rdb, redisstore.Config{Prefix: prefix})
	in := store.Update{ID: "x-1", Topics: []string{"https://example.com/a", `q"<>&`}, Type: "price",
		Data: "a\nb", Retry: 1500 * time.Millisecond, Private: true, Time: time.Unix(1700000000, 5)}
	u := mustAppend(t, s, in)
	msgs, err := rdb.XRange(t.Context(), "{"+prefix+"}:log", "-", "+").Result()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("XRANGE = %v, %v, want one entry", msgs, err)
	}
	want := map[string]any{
		"id": "x-1", "topics": `["https://example.com/a","q\"\u003c\u003e\u0026"]`, "type": "price", "data": "a\nb",
		"retry": "1500000000", "private": "1", "time": "1700000000.000000005",
	}
	if msgs[0].ID != fmt.Sprintf("0-%d", u.Seq) || fmt.Sprint(msgs[0].Values) != fmt.Sprint(want) {
		t.Fatalf("XRANGE = %s %v, want 0-%d %v", msgs[0].ID, msgs[0].Values, u.Seq, want)
	}
	for key, want := range map[string]string{"seq": fmt.Sprint(u.Seq)} {
		if got, err := rdb.Get(t.Context(), "{"+prefix+"}:"+key).Result(); err != nil || got != want {
			t.Fatalf("GET %s = %q, %v, want %q", key, got, err, want)
		}
	}
	if got, err := rdb.HGet(t.Context(), "{"+prefix+"}:ids", "x-1").Result(); err != nil || got != fmt.Sprint(u.Seq) {
		t.Fatalf("HGET ids x-1 = %q, %v, want %q", got, err, fmt.Sprint(u.Seq))
	}

	// A corrupt entry is an error, not a zero update.
	if err := rdb.XAdd(t.Context(), &redis.XAddArgs{Stream: "{" + prefix + "}:log", ID: fmt.Sprintf("0-%d", u.Seq+1),
		Values: []any{"id", "y", "topics", "not json", "time", "1.000000000"}}).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Read(t.Context(), u.Seq, 10); err == nil {
		t.Fatalf("Read(%d, 10) of a corrupt entry = %+v, nil, want an error", u.Seq, got)
	}
}

func TestNewInvalid(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	defer rdb.Close()
	tests := []struct {
		name string
		rdb  redis.UniversalClient
		cfg  redisstore.Config
	}{
		{"nil client", nil, redisstore.Config{}},
		{"negative MaxLen", rdb, redisstore.Config{MaxLen: -1}},
		{"negative MaxAge", rdb, redisstore.Config{MaxAge: -time.Second}},
		{"negative BlockTime", rdb, redisstore.Config{BlockTime: -time.Second}},
		{"tiny BlockTime", rdb, redisstore.Config{BlockTime: time.Microsecond}},
		{"prefix with {", rdb, redisstore.Config{Prefix: "a{b"}},
		{"prefix with }", rdb, redisstore.Config{Prefix: "a}b"}},
	}
	for _, tt := range tests {
		if s, err := redisstore.New(tt.rdb, tt.cfg); err == nil {
			s.Close()
			t.Errorf("New(%s) = nil error, want an error", tt.name)
		}
	}
}

func TestCloseIsPrompt(t *testing.T) {
	rdb := newClient(t)
	s := open(t, rdb, redisstore.Config{Prefix: newPrefix(t, rdb), BlockTime: time.Minute})
	waited := make(chan error, 1)
	go func() { waited <- s.Wait(context.Background(), 0) }()
	time.Sleep(100 * time.Millisecond) // let the follower block in XREAD
	start := time.Now()
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v, want nil", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Close() took %v with BlockTime 1m, want one round trip", d)
	}
	if err := <-waited; !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Wait(0) after Close = %v, want %v", err, store.ErrClosed)
	}
}

func TestRedisDown(t *testing.T) {
	// A port with nothing listening: connections are refused at once.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	rdb := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 200 * time.Millisecond, MaxRetries: -1, DialerRetries: 1})
	defer rdb.Close()
	s := open(t, rdb, redisstore.Config{BlockTime: 100 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	ctx := t.Context()
	if _, err := s.Append(ctx, store.Update{Topics: []string{"t"}}); err == nil || errors.Is(err, store.ErrClosed) {
		t.Fatalf("Append with Redis down = %v, want a connection error", err)
	}
	if _, err := s.Read(ctx, 0, 10); err == nil {
		t.Fatal("Read(0, 10) with Redis down = nil, want an error")
	}
	if _, err := s.Lookup(ctx, "x"); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Lookup(%q) with Redis down = %v, want a connection error", "x", err)
	}
	wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := s.Wait(wctx, 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait(0) with Redis down = %v, want %v", err, context.DeadlineExceeded)
	}
	start := time.Now()
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v, want nil", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Close() with Redis down took %v, want about BlockTime", d)
	}
}

// TestAppendBatchRedis checks what the conformance suite cannot see: a
// stopping batch leaves no stop key behind, and a batch finds its script
// after Redis's script cache was flushed (the pipeline loads it first).
func TestAppendBatchRedis(t *testing.T) {
	rdb := newClient(t)
	prefix := newPrefix(t, rdb)
	s := open(t, rdb, redisstore.Config{Prefix: prefix})
	ctx := t.Context()
	mustAppend(t, s, store.Update{ID: "taken", Topics: []string{"t"}})
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	ups := []store.Update{{ID: "a", Topics: []string{"t"}}, {ID: "taken", Topics: []string{"t"}}, {ID: "c", Topics: []string{"t"}}}
	stored, errs := s.AppendBatch(ctx, ups, true)
	if errs[0] != nil || !errors.Is(errs[1], store.ErrDuplicateID) || !errors.Is(errs[2], store.ErrNotAttempted) {
		t.Fatalf("AppendBatch after SCRIPT FLUSH = %v, want nil, %v, %v", errs, store.ErrDuplicateID, store.ErrNotAttempted)
	}
	if stored[0].ID != "a" || stored[0].Seq == 0 {
		t.Errorf("stored %+v, want update a with a Seq", stored[0])
	}
	keys, err := rdb.Keys(ctx, "{"+prefix+"}:batch:*").Result()
	if err != nil || len(keys) != 0 {
		t.Errorf("stop keys left after the batch: %v, %v; want none", keys, err)
	}
}
