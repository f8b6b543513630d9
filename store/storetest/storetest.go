// Package storetest is the conformance suite for [store.Store]
// implementations.
//
// Every store package runs the same suite from its own tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, lim storetest.Limits) store.Store {
//			return memstore.New(memstore.Config{MaxLen: lim.MaxLen, MaxBytes: lim.MaxBytes})
//		})
//	}
//
// The suite checks the whole contract of package store: sequence numbers,
// id assignment and duplicates, validation, Lookup, Read and its cursor
// errors after trimming by count and by bytes, Wait, Last, Close and
// concurrent use. Stores that talk to a server (Redis, NATS) skip the run
// in their own test when no server address is configured.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-sse/herald/store"
)

// Limits are the bounds of the history a Factory opens a store with.
type Limits struct {
	// MaxLen is the number of newest updates kept once more than MaxLen
	// have been appended.
	MaxLen int
	// MaxBytes bounds the size of the retained updates: the store trims
	// the oldest so that the store.Size of the retained updates add up to
	// at most MaxBytes, and refuses an update too big to be retained at
	// all with store.ErrInvalid. Zero means the store's default, which
	// the suite's other updates do not reach.
	MaxBytes int64
}

// Factory opens a new, empty store for one subtest with the given limits;
// retention by age, if any, must not trim updates younger than a minute.
// Factory puts any files under t.TempDir and may register its own cleanup;
// the suite also closes the store when the subtest ends (Close is
// idempotent).
type Factory func(t *testing.T, lim Limits) store.Store

// bigLen is the retention used by subtests that do not test trimming.
const bigLen = 100_000

// waitTimeout bounds every wait for something that must happen.
const waitTimeout = 10 * time.Second

// Run runs the conformance suite against the stores that open returns. Each
// subtest opens its own store.
func Run(t *testing.T, open Factory) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, open Factory)
	}{
		{"AppendAssignsSeq", testAppendAssignsSeq},
		{"AppendAssignsID", testAppendAssignsID},
		{"AppendSetsTime", testAppendSetsTime},
		{"AppendDuplicateID", testAppendDuplicateID},
		{"AppendInvalid", testAppendInvalid},
		{"AppendCopiesTopics", testAppendCopiesTopics},
		{"AppendBatch", testAppendBatch},
		{"RoundTrip", testRoundTrip},
		{"Lookup", testLookup},
		{"Read", testRead},
		{"ReadPaginates", testReadPaginates},
		{"Last", testLast},
		{"TrimByCount", testTrimByCount},
		{"TrimByBytes", testTrimByBytes},
		{"WaitReturnsAtOnce", testWaitReturnsAtOnce},
		{"WaitWakesOnAppend", testWaitWakesOnAppend},
		{"WaitContext", testWaitContext},
		{"WaitClose", testWaitClose},
		{"ConcurrentAppend", testConcurrentAppend},
		{"Close", testClose},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open) })
	}
}

// openStore opens a store with open and closes it when t ends.
func openStore(t *testing.T, open Factory, maxLen int) store.Store {
	t.Helper()
	s := open(t, Limits{MaxLen: maxLen})
	if s == nil {
		t.Fatalf("Factory(%d) = nil", maxLen)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close() = %v, want nil", err)
		}
	})
	return s
}

// update returns a valid update to append.
func update(topic, data string) store.Update {
	return store.Update{Topics: []string{topic}, Data: data}
}

// mustAppend appends u and fails the test on error.
func mustAppend(t *testing.T, s store.Store, u store.Update) store.Update {
	t.Helper()
	got, err := s.Append(t.Context(), u)
	if err != nil {
		t.Fatalf("Append(%+v) = %v, want nil", u, err)
	}
	return got
}

// appendN appends n updates with data "0", "1", ... and returns them.
func appendN(t *testing.T, s store.Store, n int) []store.Update {
	t.Helper()
	out := make([]store.Update, 0, n)
	for i := range n {
		out = append(out, mustAppend(t, s, update("https://example.com/t", fmt.Sprint(i))))
	}
	return out
}

// mustRead reads and fails the test on error.
func mustRead(t *testing.T, s store.Store, after uint64, limit int) []store.Update {
	t.Helper()
	got, err := s.Read(t.Context(), after, limit)
	if err != nil {
		t.Fatalf("Read(%d, %d) = %v, want nil", after, limit, err)
	}
	return got
}

// seqs returns the Seq of each update.
func seqs(us []store.Update) []uint64 {
	out := make([]uint64, len(us))
	for i, u := range us {
		out[i] = u.Seq
	}
	return out
}

// equal reports whether a and b are the same stored update.
func equal(a, b store.Update) bool {
	return a.Seq == b.Seq && a.ID == b.ID && slices.Equal(a.Topics, b.Topics) &&
		a.Type == b.Type && a.Data == b.Data && a.Retry == b.Retry &&
		a.Private == b.Private && a.Time.Equal(b.Time)
}

// checkSame fails the test unless got and want hold the same updates.
func checkSame(t *testing.T, call string, got, want []store.Update) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s returned seqs %v, want %v", call, seqs(got), seqs(want))
	}
	for i := range got {
		if !equal(got[i], want[i]) {
			t.Fatalf("%s[%d] = %+v, want %+v", call, i, got[i], want[i])
		}
	}
}

func testAppendAssignsSeq(t *testing.T, open Factory) {
	s := openStore(t, open, bigLen)
	var prev uint64
	for i := range 20 {
		in := store.Update{
			Topics:  []string{"https://example.com/a", "https://example.com/b"},
			Type:    "tick",
			Data:    fmt.Sprint(i),
			Retry:   3 * time.Second,
			Private: i%2 == 0,
		}
		got := mustAppend(t, s, in)
		if got.Seq == 0 || got.Seq <= prev {
			t.Fatalf("Append(%+v).Seq = %d, want > %d", in, got.Seq, prev)
		}
		prev = got.Seq
		if !slices.Equal(got.Topics, in.Topics) || got.Type != in.Type || got.Data != in.Data ||
			got.Retry != in.Retry || got.Private != in.Private {
			t.Fatalf("Append(%+v) = %+v, want the same fields back", in, got)
		}
	}
}

func testAppendAssignsID(t *testing.T, open Factory) {
	s := openStore(t, open, bigLen)
	ids := map[string]bool{}
	for range 10 {
		in := update("https://example.com/t", "x")
		got := mustAppend(t, s, in)
		if !strings.HasPrefix(got.ID, "urn:uuid:") || len(got.ID) != len("urn:uuid:")+36 {
			t.Fatalf("Append(%+v).ID = %q, want urn:uuid:<uuid>", in, got.ID)
		}
		if ids[got.ID] {
			t.Fatalf("Append(%+v).ID = %q, already assigned", in, got.ID)
		}
		ids[got.ID] = true
	}
	in := update("https://example.com/t", "x")
	in.ID = "my-id-42"
	got := mustAppend(t, s, in)
	if got.ID != in.ID {
		t.Fatalf("Append(%+v).ID = %q, want %q", in, got.ID, in.ID)
	}
	if seq, err := s.Lookup(t.Context(), in.ID); err != nil || seq != got.Seq {
		t.Fatalf("Lookup(%q) = %d, %v, want %d, nil", in.ID, seq, err, got.Seq)
	}
}

func testAppendSetsTime(t *testing.T, open Factory) {
	s := openStore(t, open, bigLen)
	before := time.Now()
	in := update("https://example.com/t", "now")
	got := mustAppend(t, s, in)
	after := time.Now()
	// Allow for a store that keeps coarser time than the local clock.
	if got.Time.Before(before.Add(-time.Second)) || got.Time.After(after.Add(time.Second)) {
		t.Fatalf("Append(%+v).Time = %v, want between %v and %v", in, got.Time, before, after)
	}

	explicit := update("https://example.com/t", "then")
	explicit.Time = time.Now().Add(-30 * time.Second).Truncate(time.Microsecond)
	got2 := mustAppend(t, s, explicit)
	if !got2.Time.Equal(explicit.Time) {
		t.Fatalf("Append(%+v).Time = %v, want %v", explicit, got2.Time, explicit.Time)
	}
	read := mustRead(t, s, 0, 10)
	checkSame(t, "Read(0, 10)", read, []store.Update{got, got2})
}

func testAppendDuplicateID(t *testing.T, open Factory) {
	s := openStore(t, open, bigLen)
	first := store.Update{ID: "dup", Topics: []string{"https://example.com/t"}, Data: "first"}
	want := mustAppend(t, s, first)
	auto := mustAppend(t, s, update("https://example.com/t", "auto"))

	for _, id := range []string{"dup", auto.ID} {
		in := store.Update{ID: id, Topics: []string{"https://example.com/t"}, Data: "second"}
		if got, err := s.Append(t.Context(), in); !errors.Is(err, store.ErrDuplicateID) {
			t.Fatalf("Append(%+v) = %+v, %v, want %v", in, got, err, store.ErrDuplicateID)
		}
	}
	checkSame(t, "Read(0, 10)", mustRead(t, s, 0, 10), []store.Update{want, auto})
	if seq, id, err := s.Last(t.Context()); err != nil || seq != auto.Seq || id != auto.ID {
		t.Fatalf("Last() = %d, %q, %v, want %d, %q, nil", seq, id, err, auto.Seq, auto.ID)
	}
	// The store keeps working after a rejected append.
	next := mustAppend(t, s, update("https://example.com/t", "next"))
	if next.Seq <= auto.Seq {
		t.Fatalf("Append after duplicate: Seq = %d, want > %d", next.Seq, auto.Seq)
	}
}

func testAppendInvalid(t *testing.T, open Factory) {
	s := openStore(t, open, bigLen)
	tests := []struct {
		name string
		u    store.Update
	}{
		{"no topics", store.Update{Data: "x"}},
		{"empty topics", store.Update{Topics: []string{}, Data: "x"}},
		{"empty topic", store.Update{Topics: []string{"https://example.com/t", ""}}},
		{"id with LF", store.Update{ID: "a\nb", Topics: []string{"t"}}},
		{"id with CR", store.Update{ID: "a\rb", Topics: []string{"t"}}},
		{"id with NUL", store.Update{ID: "a\x00b", Topics: []string{"t"}}},
		{"id starting with #", store.Update{ID: "#frag", Topics: []string{"t"}}},
		{"negative retry", store.Update{Topics: []string{"t"}, Retry: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := s.Append(t.Context(), tt.u); !errors.Is(err, store.ErrInvalid) {
				t.Fatalf("Append(%+v) = %+v, %v, want %v", tt.u, got, err, store.ErrInvalid)
			}
		})
	}
	if got := mustRead(t, s, 0, 100); len(got) != 0 {
		t.Fatalf("Read(0, 100) after invalid appends = %+v, want nothing stored", got)
	}
	if seq, id, err := s.Last(t.Context()); err != nil || seq != 0 || id != "" {
		t.Fatalf("Last() after invalid appends = %d, %q, %v, want 0, \"\", nil", seq, id, err)
	}
	if _, err := s.Lookup(t.Context(), "#frag"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Lookup(%q) = %v, want %v", "#frag", err, store.ErrNotFound)
	}
}

func testAppendCopiesTopics(t *testing.T, open Factory) {
	s := openStore(t, open, bigLen)
	topics := []string{"https://example.com/a", "https://example.com/b"}
	in := store.Update{Topics: topics, Data: "x"}
	got := mustAppend(t, s, in)
	topics[0] = "https://example.com/changed"
	read := mustRead(t, s, 0, 1)
	if len(read) != 1 || !slices.Equal(read[0].Topics, []string{"https://example.com/a", "https://example.com/b"}) {
		t.Fatalf("Read(0, 1) after changing the appended Topics = %+v, want the topics of %+v", read, got)
	}
}

func testRoundTrip(t *testing.T, open Factory) {
	s := openStore(t, open, bigLen)
	base := time.Now().Add(-10 * time.Second)
	ins := []store.Update{
		{Topics: []string{"https://example.com/books/1"}, Data: "plain"},
		{ID: "with-type", Topics: []string{"https://example.com/a", "https://example.com/b", "urn:c"},
			Type: "price", Data: "line 1\nline 2\r\nline 3\r", Retry: 1500 * time.Millisecond, Private: true},
		{Topics: []string{"t"}, Data: ""},
		{Topics: []string{"héraut/📣"}, Data: "ünïcødé 🚀 and \x00 byte", Time: base},
		{ID: "urn:uuid:01890a5d-ac96-774b-bcce-b302099a8057", Topics: []string{"big"},
			Data: strings.Repeat("0123456789abcdef", 4096)},
		{Topics: []string{"t"}, Data: "x", Time: base.Add(time.Nanosecond)},
	}
	var want []store.Update
	for _, in := range ins {
		want = append(want, mustAppend(t, s, in))
	}
	checkSame(t, "Read(0, 100)", mustRead(t, s, 0, 100), want)
}

func testLookup(t *testing.T, open Factory) {
	s := openStore(t, open, bigLen)
	if _, err := s.Lookup(t.Context(), "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Lookup(%q) on empty store = %v, want %v", "nope", err, store.ErrNotFound)
	}
	us := appendN(t, s, 10)
	us = append(us, mustAppend(t, s, store.Update{ID: "explicit", Topics: []string{"t"}}))
	for _, u := range us {
		if seq, err := s.Lookup(t.Context(), u.ID); err != nil || seq != u.Seq {
			t.Fatalf("Lookup(%q) = %d, %v, want %d, nil", u.ID, seq, err, u.Seq)
		}
	}
	for _, id := range []string{"nope", "", "EXPLICIT", "explicit ", strings.ToUpper(us[0].ID)} {
		if seq, err := s.Lookup(t.Context(), id); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Lookup(%q) = %d, %v, want %v", id, seq, err, store.ErrNotFound)
		}
	}
}

func testRead(t *testing.T, open Factory) {
	s := openStore(t, open, bigLen)
	if got := mustRead(t, s, 0, 10); len(got) != 0 {
		t.Fatalf("Read(0, 10) on empty store = %v, want empty", seqs(got))
	}
	us := appendN(t, s, 10)
	last := us[len(us)-1].Seq
	tests := []struct {
		after uint64
		limit int
		want  []store.Update
	}{
		{0, 100, us},
		{0, 10, us},
		{0, 3, us[:3]},
		{0, 1, us[:1]},
		{us[0].Seq, 100, us[1:]},
		{us[4].Seq, 2, us[5:7]},
		{us[8].Seq, 5, us[9:]},
		{last, 10, nil},
		{last + 1000, 10, nil},
	}
	for _, tt := range tests {
		got, err := s.Read(t.Context(), tt.after, tt.limit)
		if err != nil {
			t.Fatalf("Read(%d, %d) = %v, want nil", tt.after, tt.limit, err)
		}
		checkSame(t, fmt.Sprintf("Read(%d, %d)", tt.after, tt.limit), got, tt.want)
	}
	// Reading from the position Lookup returns resumes after that update.
	seq, err := s.Lookup(t.Context(), us[6].ID)
	if err != nil {
		t.Fatalf("Lookup(%q) = %v, want nil", us[6].ID, err)
	}
	checkSame(t, fmt.Sprintf("Read(Lookup(%q), 100)", us[6].ID), mustRead(t, s, seq, 100), us[7:])
}

func testReadPaginates(t *testing.T, open Factory) {
	s := openStore(t, open, bigLen)
	us := appendN(t, s, 23)
	var got []store.Update
	var after uint64
	for page := 0; ; page++ {
		if page > len(us) {
			t.Fatalf("Read pages never ended: got %v so far", seqs(got))
		}
		batch := mustRead(t, s, after, 5)
		if len(batch) > 5 {
			t.Fatalf("Read(%d, 5) returned %d updates, want at most 5", after, len(batch))
		}
		if len(batch) == 0 {
			break
		}
		got = append(got, batch...)
		after = batch[len(batch)-1].Seq
	}
	checkSame(t, "paginated Read(after, 5)", got, us)
}

func testLast(t *testing.T, open Factory) {
	s := openStore(t, open, bigLen)
	if seq, id, err := s.Last(t.Context()); err != nil || seq != 0 || id != "" {
		t.Fatalf("Last() on empty store = %d, %q, %v, want 0, \"\", nil", seq, id, err)
	}
	for i := range 3 {
		u := mustAppend(t, s, update("t", fmt.Sprint(i)))
		if seq, id, err := s.Last(t.Context()); err != nil || seq != u.Seq || id != u.ID {
			t.Fatalf("Last() = %d, %q, %v, want %d, %q, nil", seq, id, err, u.Seq, u.ID)
		}
	}
}

func testTrimByCount(t *testing.T, open Factory) {
	const maxLen = 5
	s := openStore(t, open, maxLen)
	us := appendN(t, s, 12)
	kept, trimmed := us[len(us)-maxLen:], us[:len(us)-maxLen]

	checkSame(t, "Read(0, 100) after trimming", mustRead(t, s, 0, 100), kept)
	for _, u := range trimmed {
		if seq, err := s.Lookup(t.Context(), u.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Lookup(%q) of a trimmed update = %d, %v, want %v", u.ID, seq, err, store.ErrNotFound)
		}
	}
	for _, u := range kept {
		if seq, err := s.Lookup(t.Context(), u.ID); err != nil || seq != u.Seq {
			t.Fatalf("Lookup(%q) of a retained update = %d, %v, want %d, nil", u.ID, seq, err, u.Seq)
		}
	}
	// Reading after the newest trimmed update loses nothing.
	newestTrimmed := trimmed[len(trimmed)-1].Seq
	checkSame(t, fmt.Sprintf("Read(%d, 100)", newestTrimmed), mustRead(t, s, newestTrimmed, 100), kept)
	// Reading after an older position would skip updates.
	for _, u := range trimmed[:len(trimmed)-1] {
		if got, err := s.Read(t.Context(), u.Seq, 100); !errors.Is(err, store.ErrCursorGone) {
			t.Fatalf("Read(%d, 100) from a trimmed position = %v, %v, want %v", u.Seq, seqs(got), err, store.ErrCursorGone)
		}
	}
	if seq, id, err := s.Last(t.Context()); err != nil || seq != us[len(us)-1].Seq || id != us[len(us)-1].ID {
		t.Fatalf("Last() = %d, %q, %v, want %d, %q, nil", seq, id, err, us[len(us)-1].Seq, us[len(us)-1].ID)
	}
	// Trimming goes on with later appends.
	more := appendN(t, s, 3)
	want := append(slices.Clone(kept[3:]), more...)
	checkSame(t, "Read(0, 100) after more appends", mustRead(t, s, 0, 100), want)
	if got, err := s.Read(t.Context(), kept[0].Seq, 100); !errors.Is(err, store.ErrCursorGone) {
		t.Fatalf("Read(%d, 100) from a trimmed position = %v, %v, want %v", kept[0].Seq, seqs(got), err, store.ErrCursorGone)
	}
}

func testTrimByBytes(t *testing.T, open Factory) {
	const maxBytes = 20 << 10
	s := open(t, Limits{MaxLen: bigLen, MaxBytes: maxBytes})
	if s == nil {
		t.Fatalf("Factory(MaxBytes %d) = nil", maxBytes)
	}
	t.Cleanup(func() { s.Close() })
	var us []store.Update
	for i := range 60 {
		us = append(us, mustAppend(t, s, update("https://example.com/t", fmt.Sprintf("%04d%s", i, strings.Repeat("x", 996)))))
	}
	got := mustRead(t, s, 0, 100)
	if len(got) == 0 || got[len(got)-1].Seq != us[len(us)-1].Seq {
		t.Fatalf("Read(0, 100) after 60 appends of 1 KB with MaxBytes %d = %v, want the newest (%d) last", maxBytes, seqs(got), us[len(us)-1].Seq)
	}
	var total int64
	for _, u := range got {
		total += store.Size(u)
	}
	size := store.Size(us[0])
	// Each store counts its own overhead per update, at most 512 bytes.
	if total > maxBytes || len(got) < int(maxBytes/(size+512)) {
		t.Fatalf("Read(0, 100) = %d updates of %d bytes (%d in all) with MaxBytes %d, want at most %d bytes and at least %d updates",
			len(got), size, total, maxBytes, maxBytes, maxBytes/(size+512))
	}
	checkSame(t, "Read(0, 100)", got, us[len(us)-len(got):])
	trimmed := us[len(us)-len(got)-1]
	if _, err := s.Lookup(t.Context(), trimmed.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Lookup(%q) of an update trimmed by size = %v, want %v", trimmed.ID, err, store.ErrNotFound)
	}
	if _, err := s.Read(t.Context(), us[0].Seq, 10); !errors.Is(err, store.ErrCursorGone) {
		t.Fatalf("Read(%d, 10) from a position trimmed by size = %v, want %v", us[0].Seq, err, store.ErrCursorGone)
	}
	// An update that could not be retained is refused, and the newest
	// stays.
	big := update("https://example.com/t", strings.Repeat("y", maxBytes))
	if _, err := s.Append(t.Context(), big); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("Append(%d bytes) with MaxBytes %d = %v, want %v", store.Size(big), maxBytes, err, store.ErrInvalid)
	}
	if seq, _, err := s.Last(t.Context()); err != nil || seq != us[len(us)-1].Seq {
		t.Fatalf("Last() after a refused big update = %d, %v, want %d", seq, err, us[len(us)-1].Seq)
	}
}

// waitResult runs s.Wait in a goroutine and returns a channel with its
// result.
func waitResult(ctx context.Context, s store.Store, after uint64) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- s.Wait(ctx, after) }()
	return ch
}

// recv returns the result from ch, failing the test after waitTimeout.
func recv(t *testing.T, call string, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(waitTimeout):
		t.Fatalf("%s did not return within %v", call, waitTimeout)
		return nil
	}
}

// checkBlocked fails the test if ch delivers within a short while.
func checkBlocked(t *testing.T, call string, ch <-chan error) {
	t.Helper()
	select {
	case err := <-ch:
		t.Fatalf("%s = %v, want it to block", call, err)
	case <-time.After(20 * time.Millisecond):
	}
}

func testWaitReturnsAtOnce(t *testing.T, open Factory) {
	s := openStore(t, open, bigLen)
	us := appendN(t, s, 3)
	for _, after := range []uint64{0, us[0].Seq, us[1].Seq} {
		ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
		err := s.Wait(ctx, after)
		cancel()
		if err != nil {
			t.Fatalf("Wait(%d) with newer updates = %v, want nil", after, err)
		}
	}
}

func testWaitWakesOnAppend(t *testing.T, open Factory) {
	s := openStore(t, open, bigLen)
	// On an empty store.
	ch := waitResult(t.Context(), s, 0)
	checkBlocked(t, "Wait(0) on empty store", ch)
	first := mustAppend(t, s, update("t", "first"))
	if err := recv(t, "Wait(0)", ch); err != nil {
		t.Fatalf("Wait(0) after Append = %v, want nil", err)
	}

	// Many waiters are woken by one append.
	var chans []<-chan error
	for range 5 {
		chans = append(chans, waitResult(t.Context(), s, first.Seq))
	}
	for _, ch := range chans {
		checkBlocked(t, fmt.Sprintf("Wait(%d) when caught up", first.Seq), ch)
	}
	second := mustAppend(t, s, update("t", "second"))
	for _, ch := range chans {
		if err := recv(t, fmt.Sprintf("Wait(%d)", first.Seq), ch); err != nil {
			t.Fatalf("Wait(%d) after Append = %v, want nil", first.Seq, err)
		}
	}
	if got := mustRead(t, s, first.Seq, 10); len(got) != 1 || got[0].Seq != second.Seq {
		t.Fatalf("Read(%d, 10) after Wait = %v, want [%d]", first.Seq, seqs(got), second.Seq)
	}
}

func testWaitContext(t *testing.T, open Factory) {
	s := openStore(t, open, bigLen)
	u := mustAppend(t, s, update("t", "x"))

	ctx, cancel := context.WithCancel(t.Context())
	ch := waitResult(ctx, s, u.Seq)
	checkBlocked(t, fmt.Sprintf("Wait(%d)", u.Seq), ch)
	cancel()
	if err := recv(t, fmt.Sprintf("Wait(%d)", u.Seq), ch); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait(%d) after cancel = %v, want %v", u.Seq, err, context.Canceled)
	}

	ctx, cancel = context.WithTimeout(t.Context(), 30*time.Millisecond)
	defer cancel()
	if err := recv(t, fmt.Sprintf("Wait(%d)", u.Seq), waitResult(ctx, s, u.Seq)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait(%d) past deadline = %v, want %v", u.Seq, err, context.DeadlineExceeded)
	}

	// A store that stays usable after waits ended by their context.
	ch = waitResult(t.Context(), s, u.Seq)
	mustAppend(t, s, update("t", "y"))
	if err := recv(t, fmt.Sprintf("Wait(%d)", u.Seq), ch); err != nil {
		t.Fatalf("Wait(%d) after Append = %v, want nil", u.Seq, err)
	}
}

func testWaitClose(t *testing.T, open Factory) {
	s := openStore(t, open, bigLen)
	var chans []<-chan error
	for range 3 {
		chans = append(chans, waitResult(t.Context(), s, 0))
	}
	for _, ch := range chans {
		checkBlocked(t, "Wait(0)", ch)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v, want nil", err)
	}
	for _, ch := range chans {
		if err := recv(t, "Wait(0)", ch); !errors.Is(err, store.ErrClosed) {
			t.Fatalf("Wait(0) after Close = %v, want %v", err, store.ErrClosed)
		}
	}
}

func testConcurrentAppend(t *testing.T, open Factory) {
	const writers, each = 8, 50
	s := openStore(t, open, bigLen)

	// A follower tails the log with Wait and Read while writers append.
	follower := make(chan []store.Update, 1)
	followErr := make(chan error, 1)
	ctx, cancel := context.WithTimeout(t.Context(), 2*waitTimeout)
	defer cancel()
	go func() {
		var got []store.Update
		var after uint64
		for len(got) < writers*each {
			if err := s.Wait(ctx, after); err != nil {
				followErr <- fmt.Errorf("Wait(%d) = %w", after, err)
				return
			}
			batch, err := s.Read(ctx, after, 7)
			if err != nil {
				followErr <- fmt.Errorf("Read(%d, 7) = %w", after, err)
				return
			}
			got = append(got, batch...)
			if len(batch) > 0 {
				after = batch[len(batch)-1].Seq
			}
		}
		follower <- got
	}()

	var wg sync.WaitGroup
	results := make([][]store.Update, writers)
	errs := make([]error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				in := update(fmt.Sprintf("t/%d", w), fmt.Sprintf("%d/%d", w, i))
				if i%5 == 0 {
					in.ID = fmt.Sprintf("w%d-%d", w, i)
				}
				u, err := s.Append(ctx, in)
				if err != nil {
					errs[w] = fmt.Errorf("Append(%+v) = %w", in, err)
					return
				}
				results[w] = append(results[w], u)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}

	bySeq := map[uint64]store.Update{}
	ids := map[string]bool{}
	for w, rs := range results {
		var prev uint64
		for _, u := range rs {
			if u.Seq <= prev {
				t.Fatalf("writer %d: Append Seq %d after %d, want increasing", w, u.Seq, prev)
			}
			prev = u.Seq
			if _, dup := bySeq[u.Seq]; dup {
				t.Fatalf("Seq %d assigned twice", u.Seq)
			}
			if ids[u.ID] {
				t.Fatalf("ID %q assigned twice", u.ID)
			}
			bySeq[u.Seq], ids[u.ID] = u, true
		}
	}
	all := slices.Sorted(func(yield func(uint64) bool) {
		for seq := range bySeq {
			if !yield(seq) {
				return
			}
		}
	})
	var want []store.Update
	for _, seq := range all {
		want = append(want, bySeq[seq])
	}
	checkSame(t, "Read(0, all) after concurrent appends", mustRead(t, s, 0, writers*each+10), want)

	select {
	case got := <-follower:
		checkSame(t, "follower Wait+Read", got, want)
	case err := <-followErr:
		t.Fatalf("follower: %v", err)
	case <-time.After(waitTimeout):
		t.Fatalf("follower did not see %d updates within %v", writers*each, waitTimeout)
	}
}

func testClose(t *testing.T, open Factory) {
	s := openStore(t, open, bigLen)
	u := mustAppend(t, s, update("t", "x"))
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v, want nil", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close() = %v, want nil", err)
	}
	ctx := t.Context()
	if got, err := s.Append(ctx, update("t", "y")); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Append after Close = %+v, %v, want %v", got, err, store.ErrClosed)
	}
	if got, err := s.Lookup(ctx, u.ID); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Lookup(%q) after Close = %d, %v, want %v", u.ID, got, err, store.ErrClosed)
	}
	if got, err := s.Read(ctx, 0, 10); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Read(0, 10) after Close = %v, %v, want %v", seqs(got), err, store.ErrClosed)
	}
	// Wait reports ErrClosed even when newer updates exist.
	if err := s.Wait(ctx, 0); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Wait(0) after Close = %v, want %v", err, store.ErrClosed)
	}
	if err := s.Wait(ctx, u.Seq); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Wait(%d) after Close = %v, want %v", u.Seq, err, store.ErrClosed)
	}
	if seq, id, err := s.Last(ctx); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Last() after Close = %d, %q, %v, want %v", seq, id, err, store.ErrClosed)
	}
}
