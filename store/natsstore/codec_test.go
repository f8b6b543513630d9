package natsstore_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/herald-sse/herald/store"
	"github.com/herald-sse/herald/store/natsstore"
)

func TestIDToken(t *testing.T) {
	ids := []string{"", "a", "urn:uuid:01890a5d-ac96-774b-bcce-b302099a8057", "with space.and.dots*>", strings.Repeat("x", store.MaxIDLen)}
	seen := map[string]string{}
	for _, id := range ids {
		tok := natsstore.IDToken(id)
		if len(tok) != 22 || strings.ContainsAny(tok, " .*>\t") {
			t.Errorf("IDToken(%q) = %q, want 22 subject-safe characters", id, tok)
		}
		if other, ok := seen[tok]; ok {
			t.Errorf("IDToken(%q) = IDToken(%q) = %q, want distinct", id, other, tok)
		}
		seen[tok] = id
		if again := natsstore.IDToken(id); again != tok {
			t.Errorf("IDToken(%q) = %q then %q, want stable", id, tok, again)
		}
	}
}

func TestRecordRoundTrip(t *testing.T) {
	tests := []store.Update{
		{ID: "a", Topics: []string{"t"}, Time: time.Unix(0, 0)},
		{ID: "urn:x", Topics: []string{"a", "b", "héraut/📣"}, Type: "price", Data: "l1\nl2\r\n\x00",
			Retry: 1500 * time.Millisecond, Private: true, Time: time.Unix(1_700_000_000, 123456789)},
		{ID: "old", Topics: []string{"t"}, Time: time.Unix(-100, 5)},
	}
	for _, in := range tests {
		got, err := natsstore.DecodeRecord(natsstore.AppendRecord(nil, in), 7)
		if err != nil || got.Seq != 7 || got.ID != in.ID || !slices.Equal(got.Topics, in.Topics) || got.Type != in.Type ||
			got.Data != in.Data || got.Retry != in.Retry || got.Private != in.Private || !got.Time.Equal(in.Time) {
			t.Errorf("DecodeRecord(AppendRecord(%+v)) = %+v, %v, want the same update with Seq 7", in, got, err)
		}
	}
}

func TestDecodeRecordCorrupt(t *testing.T) {
	good := natsstore.AppendRecord(nil, store.Update{ID: "id", Topics: []string{"t1", "t2"}, Type: "x", Time: time.Now()})
	tests := map[string][]byte{
		"empty":         nil,
		"bad version":   append([]byte{9}, good[1:]...),
		"truncated":     good[:len(good)-4],
		"huge topics":   {1, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"nanos too big": {1, 0, 0, 0x80, 0x94, 0xeb, 0xdc, 0x03, 0, 0, 0, 0},
	}
	for name, b := range tests {
		if got, err := natsstore.DecodeRecord(b, 1); err == nil {
			t.Errorf("DecodeRecord(%s %x) = %+v, nil, want an error", name, b, got)
		}
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(natsstore.AppendRecord(nil, store.Update{ID: "id", Topics: []string{"t"}, Data: "d", Time: time.Now()}))
	f.Add([]byte{1, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := natsstore.DecodeRecord(b, 1)
		if err != nil {
			return
		}
		// What decodes must survive an encode and decode unchanged.
		again, err := natsstore.DecodeRecord(natsstore.AppendRecord(nil, u), 1)
		if err != nil || again.ID != u.ID || !slices.Equal(again.Topics, u.Topics) || again.Type != u.Type ||
			again.Data != u.Data || again.Retry != u.Retry || again.Private != u.Private || !again.Time.Equal(u.Time) {
			t.Fatalf("DecodeRecord(AppendRecord(%+v)) = %+v, %v, want the same update", u, again, err)
		}
	})
}
