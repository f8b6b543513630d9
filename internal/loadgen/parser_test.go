package loadgen_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/herald-sse/herald/internal/loadgen"
)

type M = loadgen.Mark

// chunk encodes parts as an HTTP/1.1 chunked body, ending it if last.
func chunk(last bool, parts ...string) string {
	var b strings.Builder
	for _, p := range parts {
		fmt.Fprintf(&b, "%x\r\n%s\r\n", len(p), p)
	}
	if last {
		b.WriteString("0\r\n\r\n")
	}
	return b.String()
}

var streamCases = []struct {
	name    string
	chunked bool
	in      string
	want    []M
	wantErr error // nil, ErrStreamEnd, or errAny
}{
	{"lf", false, "data: ~1~100~xx\n\ndata: ~2~200~\n\n", []M{{1, 100}, {2, 200}}, nil},
	{"crlf", false, "data: ~1~100~xx\r\n\r\ndata:~2~200~\r\n\r\n", []M{{1, 100}, {2, 200}}, nil},
	{"cr", false, "data: ~1~100~\r\rdata: ~2~200~\r\r", []M{{1, 100}, {2, 200}}, nil},
	{"other fields ignored", false, "id: ~9~9~\nevent: ~8~8~\n: ~7~7~\nretry: 10\ndata: ~3~300~\n\n", []M{{3, 300}}, nil},
	{"field must start the line", false, " data: ~1~1~\nxdata: ~2~2~\ndat: ~3~3~\n", nil, nil},
	{"wrapped in json", false, `data: {"id":5,"data":"~42~4200~xxxx"}` + "\n\n", []M{{42, 4200}}, nil},
	{"heartbeats and comments", false, ":\n\n: ping\n\ndata: ~1~10~\n\n:\n\n", []M{{1, 10}}, nil},
	{"tilde noise before marker", false, "data: a~b~~~5~6~\n\n", []M{{5, 6}}, nil},
	{"broken markers", false, "data: ~12x~3~\ndata: ~1~\ndata: ~~\ndata: ~1~2\n\n", nil, nil},
	{"one marker per line", false, "data: ~1~1~ ~2~2~\ndata: ~3~3~\n", []M{{1, 1}, {3, 3}}, nil},
	{"too many digits", false, "data: ~12345678901234567890~1~\n", nil, nil},
	{"multi-line data", false, "data: ~1~1~\ndata: ~2~2~\n\n", []M{{1, 1}, {2, 2}}, nil},
	{"chunked", true, chunk(false, "data: ~1~100~xx\n\n", "data: ~2~", "200~\n\n"), []M{{1, 100}, {2, 200}}, nil},
	{"chunked split across lines", true, chunk(false, "da", "ta: ~7", "~7", "00~\n", "\n"), []M{{7, 700}}, nil},
	{"chunked uppercase hex and extension", true, "1A;foo=bar\r\ndata: ~1~100~xxxxxxxxxxxxx\r\n" + "0\r\n\r\n", []M{{1, 100}}, loadgen.ErrStreamEnd},
	{"chunked bare LF", true, "e\ndata: ~1~100~\n\n0\n\n", []M{{1, 100}}, loadgen.ErrStreamEnd},
	{"chunked end", true, chunk(true, "data: ~1~1~\n\n"), []M{{1, 1}}, loadgen.ErrStreamEnd},
	{"chunked trailer", true, chunk(false, "data: ~1~1~\n\n") + "0\r\nX-T: 1\r\n\r\n", []M{{1, 1}}, loadgen.ErrStreamEnd},
	{"chunked framing not data", true, "11\r\ndata: ~1~1~xxxxx\n\r\n", []M{{1, 1}}, nil},
	{"chunked bad size", true, "zz\r\n", nil, errAny},
	{"chunked empty size", true, "\r\n", nil, errAny},
	{"chunked missing CRLF", true, "3\r\nabcX", nil, errAny},
	{"chunked huge size", true, "ffffffffffffff\r\n", nil, errAny},
}

var errAny = errors.New("any error")

func checkErr(t *testing.T, call string, err, want error) {
	t.Helper()
	switch {
	case want == errAny && err == nil:
		t.Errorf("%s: error = nil, want an error", call)
	case want == errAny:
	case !errors.Is(err, want) && !(want == nil && err == nil):
		t.Errorf("%s: error = %v, want %v", call, err, want)
	}
}

func TestStreamWhole(t *testing.T) {
	for _, tc := range streamCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := loadgen.ParseStream(tc.chunked, [][]byte{[]byte(tc.in)})
			checkErr(t, fmt.Sprintf("ParseStream(%q)", tc.in), err, tc.wantErr)
			if tc.wantErr != errAny && !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseStream(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

// TestStreamSplit feeds every input split at every pair of points, and
// byte by byte: the parser must not depend on how reads cut the stream.
func TestStreamSplit(t *testing.T) {
	for _, tc := range streamCases {
		if tc.wantErr == errAny {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.in)
			for i := 0; i <= len(in); i++ {
				for j := i; j <= len(in); j++ {
					parts := [][]byte{in[:i], in[i:j], in[j:]}
					got, err := loadgen.ParseStream(tc.chunked, parts)
					checkErr(t, fmt.Sprintf("ParseStream(%q split at %d,%d)", tc.in, i, j), err, tc.wantErr)
					if !reflect.DeepEqual(got, tc.want) {
						t.Fatalf("ParseStream(%q split at %d,%d) = %v, want %v", tc.in, i, j, got, tc.want)
					}
				}
			}
			var bytes [][]byte
			for i := range in {
				bytes = append(bytes, in[i:i+1])
			}
			got, err := loadgen.ParseStream(tc.chunked, bytes)
			checkErr(t, fmt.Sprintf("ParseStream(%q byte by byte)", tc.in), err, tc.wantErr)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseStream(%q byte by byte) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

// TestStreamRandomChunks builds a long stream of events in random chunk
// sizes and reads it back in random pieces.
func TestStreamRandomChunks(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var body strings.Builder
	var want []M
	for i := 1; i <= 500; i++ {
		p := loadgen.AppendPayload(nil, uint64(i), int64(i)*1000, 10+rng.IntN(200))
		fmt.Fprintf(&body, "id: %d\nevent: x\ndata: %s\n\n", i, p)
		if i%7 == 0 {
			body.WriteString(":\n\n")
		}
		want = append(want, M{uint64(i), int64(i) * 1000})
	}
	plain := body.String()
	var wire strings.Builder
	for rest := plain; rest != ""; {
		n := min(len(rest), 1+rng.IntN(300))
		wire.WriteString(chunk(false, rest[:n]))
		rest = rest[n:]
	}
	wire.WriteString(chunk(true))
	for _, tc := range []struct {
		chunked bool
		in      string
		wantErr error
	}{{false, plain, nil}, {true, wire.String(), loadgen.ErrStreamEnd}} {
		for range 20 {
			in := []byte(tc.in)
			var parts [][]byte
			for len(in) > 0 {
				n := min(len(in), 1+rng.IntN(700))
				parts = append(parts, in[:n])
				in = in[n:]
			}
			got, err := loadgen.ParseStream(tc.chunked, parts)
			checkErr(t, fmt.Sprintf("ParseStream(chunked=%v, %d parts)", tc.chunked, len(parts)), err, tc.wantErr)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("ParseStream(chunked=%v, %d parts) found %d markers, want %d", tc.chunked, len(parts), len(got), len(want))
			}
		}
	}
}

func TestObserve(t *testing.T) {
	for _, tc := range []struct {
		seqs            []uint64
		wantDup, wantLt int
	}{
		{[]uint64{1, 2, 3, 4}, 0, 0},
		{[]uint64{1, 3, 5}, 0, 0}, // gaps are loss, not disorder
		{[]uint64{1, 2, 2, 3, 3, 3}, 3, 0},
		{[]uint64{1, 3, 2, 4}, 0, 1},
		{[]uint64{1, 3, 2, 2, 3}, 2, 1},
		{[]uint64{100, 1}, 0, 1},         // more than 64 back: late
		{[]uint64{1, 70, 6, 7, 7}, 1, 2}, // inside the window after a jump
		{[]uint64{5, 200, 5}, 0, 1},      // window cleared by a long jump
	} {
		dup, late := loadgen.Observe(tc.seqs)
		if dup != tc.wantDup || late != tc.wantLt {
			t.Errorf("Observe(%v) = %d dups, %d late, want %d, %d", tc.seqs, dup, late, tc.wantDup, tc.wantLt)
		}
	}
}

func TestAppendPayload(t *testing.T) {
	for _, tc := range []struct {
		seq  uint64
		ns   int64
		size int
		want string
	}{
		{1, 2, 10, "~1~2~xxxxx"},
		{12, 345, 4, "~12~345~"},
		{7, 1764070000000000000, 30, "~7~1764070000000000000~xxxxxxx"},
	} {
		got := string(loadgen.AppendPayload([]byte("pre"), tc.seq, tc.ns, tc.size))
		if got != "pre"+tc.want {
			t.Errorf("AppendPayload(pre, %d, %d, %d) = %q, want %q", tc.seq, tc.ns, tc.size, got, "pre"+tc.want)
		}
		if esc := url.QueryEscape(tc.want); esc != tc.want {
			t.Errorf("QueryEscape(%q) = %q: payload needs escaping", tc.want, esc)
		}
		marks, _ := loadgen.ParseStream(false, [][]byte{[]byte("data: " + tc.want + "\n")})
		if want := []M{{tc.seq, tc.ns}}; !reflect.DeepEqual(marks, want) {
			t.Errorf("ParseStream(data: %s) = %v, want %v", tc.want, marks, want)
		}
	}
}

func TestParseSourceIPs(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{"3", []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}, false},
		{"127.0.0.1-127.0.0.3", []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}, false},
		{"127.0.0.9", []string{"127.0.0.9"}, false},
		{"127.0.0.250-127.0.1.1", []string{"127.0.0.250", "127.0.0.251", "127.0.0.252", "127.0.0.253", "127.0.0.254", "127.0.0.255", "127.0.1.0", "127.0.1.1"}, false},
		{"127.0.0.1, 10.0.0.1-10.0.0.2", []string{"127.0.0.1", "10.0.0.1", "10.0.0.2"}, false},
		{"0", nil, true},
		{"300", nil, true},
		{"", nil, true},
		{"127.0.0.5-127.0.0.1", nil, true},
		{"::1-::2", nil, true},
		{"localhost", nil, true},
		{"10.0.0.0-10.2.0.0", nil, true},
	} {
		got, err := loadgen.ParseSourceIPs(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("ParseSourceIPs(%q) error = %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		var gs []string
		for _, a := range got {
			gs = append(gs, a.String())
		}
		if !reflect.DeepEqual(gs, tc.want) {
			t.Errorf("ParseSourceIPs(%q) = %v, want %v", tc.in, gs, tc.want)
		}
	}
}

func BenchmarkStreamFeed(b *testing.B) {
	for _, chunked := range []bool{false, true} {
		b.Run(fmt.Sprintf("chunked=%v", chunked), func(b *testing.B) {
			var in strings.Builder
			for i := range 100 {
				ev := fmt.Sprintf("id: %d\ndata: %s\n\n", i, loadgen.AppendPayload(nil, uint64(i), 1764070000000000000, 100))
				if chunked {
					ev = chunk(false, ev)
				}
				in.WriteString(ev)
			}
			p := []byte(in.String())
			feed, count := loadgen.Feeder(chunked)
			b.ReportAllocs()
			b.SetBytes(int64(len(p)))
			for b.Loop() {
				if err := feed(p); err != nil {
					b.Fatal(err)
				}
			}
			if count() == 0 {
				b.Fatal("no markers found")
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(count()), "ns/event")
		})
	}
}
