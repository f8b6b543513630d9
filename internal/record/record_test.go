package record_test

import (
	"slices"
	"testing"
	"time"

	"github.com/herald-sse/herald/internal/record"
	"github.com/herald-sse/herald/store"
)

func TestRecordRoundTrip(t *testing.T) {
	tests := []store.Update{
		{ID: "a", Topics: []string{"t"}, Time: time.Unix(0, 0)},
		{ID: "urn:x", Topics: []string{"a", "b", "héraut/📣"}, Type: "price", Data: "l1\nl2\r\n\x00",
			Retry: 1500 * time.Millisecond, Private: true, Time: time.Unix(1_700_000_000, 123456789)},
		{ID: "old", Topics: []string{"t"}, Time: time.Unix(-100, 5)},
	}
	for _, in := range tests {
		got, err := record.Decode(7, record.Append(nil, in))
		if err != nil || got.Seq != 7 || got.ID != in.ID || !slices.Equal(got.Topics, in.Topics) || got.Type != in.Type ||
			got.Data != in.Data || got.Retry != in.Retry || got.Private != in.Private || !got.Time.Equal(in.Time) {
			t.Errorf("Decode(Append(%+v)) = %+v, %v, want the same update with Seq 7", in, got, err)
		}
	}
}

func TestDecodeCorrupt(t *testing.T) {
	good := record.Append(nil, store.Update{ID: "id", Topics: []string{"t1", "t2"}, Type: "x", Time: time.Now()})
	tests := map[string][]byte{
		"empty":         nil,
		"bad version":   append([]byte{9}, good[1:]...),
		"truncated":     good[:len(good)-4],
		"huge topics":   {1, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"nanos too big": {1, 0, 0, 0x80, 0x94, 0xeb, 0xdc, 0x03, 0, 0, 0, 0},
	}
	for name, b := range tests {
		if got, err := record.Decode(1, b); err == nil {
			t.Errorf("Decode(%s %x) = %+v, nil, want an error", name, b, got)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(record.Append(nil, store.Update{ID: "id", Topics: []string{"t"}, Data: "d", Time: time.Now()}))
	f.Add([]byte{1, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := record.Decode(1, b)
		if err != nil {
			return
		}
		// What decodes must survive an encode and decode unchanged.
		again, err := record.Decode(1, record.Append(nil, u))
		if err != nil || again.ID != u.ID || !slices.Equal(again.Topics, u.Topics) || again.Type != u.Type ||
			again.Data != u.Data || again.Retry != u.Retry || again.Private != u.Private || !again.Time.Equal(u.Time) {
			t.Fatalf("Decode(Append(%+v)) = %+v, %v, want the same update", u, again, err)
		}
	})
}
