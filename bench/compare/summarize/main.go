// Command summarize prints the Markdown tables of BENCHMARKS.md's
// comparison from the JSON results that bench/compare/run.sh keeps: for
// every server and load, the median of its runs and, when there are
// several, their range.
//
//	go run ./bench/compare/summarize [RESULTS_DIR]
//
// RESULTS_DIR defaults to bench/compare/out/results. Result files are named
// SERVER-LOAD-TAG.json; runs that failed (no JSON) are skipped.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/herald-sse/herald/internal/loadgen"
)

// servers in the order of the tables, with their names there.
var servers = []struct{ key, name string }{
	{"herald", "**Herald**"},
	{"heraldbolt", "Herald, durable (bolt, fsync per publish)"},
	{"heraldnouring", "Herald `--io-uring=false` (sendmsg)"},
	{"heraldnopark", "Herald `--no-park` (a goroutine per stream)"},
	{"gosse", "Go tutorial broker"},
	{"r3sse", "r3labs/sse"},
	{"gossesrv", "tmaxmax/go-sse"},
	{"mercure", "Mercure"},
	{"mercurebolt", "Mercure, durable (bolt)"},
	{"node", "Node 20 http"},
}

func main() {
	dir := "bench/compare/out/results"
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	runs, err := load(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "summarize:", err)
		os.Exit(1)
	}
	if len(runs) == 0 {
		fmt.Fprintf(os.Stderr, "summarize: no results in %s\n", dir)
		os.Exit(1)
	}
	const mib = 1 << 20
	tables := []struct {
		load, title, head string
		row               func(rs []loadgen.Result) string
	}{
		{"A", "A. Server memory per idle subscriber (RSS growth / subscribers)", "| server | runs | RSS / subscriber KiB | RSS connected MiB |",
			func(rs []loadgen.Result) string {
				return cells(
					stat(rs, func(r loadgen.Result) float64 { return r.ServerRSSPerSubscriberBytes / 1024 }, 2),
					stat(rs, func(r loadgen.Result) float64 { return float64(r.ServerRSSConnectedBytes) / mib }, 0))
			}},
		{"S", "S. Server memory per idle subscriber, settled: A held 170 s, past the Go runtime's periodic GC (RSS growth / subscribers)", "| server | runs | RSS / subscriber KiB | RSS at the end MiB |",
			func(rs []loadgen.Result) string {
				return cells(
					stat(rs, func(r loadgen.Result) float64 {
						return float64(r.ServerRSSAfterBytes-r.ServerRSSBeforeBytes) / float64(max(r.Connected, 1)) / 1024
					}, 2),
					stat(rs, func(r loadgen.Result) float64 { return float64(r.ServerRSSAfterBytes) / mib }, 0))
			}},
		{"B", "B. Fan-out: 10,000 subscribers, 5 events/s, 20 s", "| server | runs | p50 ms | p99 ms | max ms | lost | server CPU µs / delivery | RSS after MiB |",
			func(rs []loadgen.Result) string {
				return cells(
					stat(rs, func(r loadgen.Result) float64 { return float64(r.LatencyUs.P50) / 1000 }, 1),
					stat(rs, func(r loadgen.Result) float64 { return float64(r.LatencyUs.P99) / 1000 }, 1),
					stat(rs, func(r loadgen.Result) float64 { return float64(r.LatencyUs.Max) / 1000 }, 1),
					stat(rs, func(r loadgen.Result) float64 { return float64(r.Lost) }, 0),
					stat(rs, func(r loadgen.Result) float64 { return r.ServerCPUUsPerDelivery }, 2),
					stat(rs, func(r loadgen.Result) float64 { return float64(r.ServerRSSAfterBytes) / mib }, 0))
			}},
		{"C", "C. CPU per delivery: 1,000 subscribers × 50 events/s, 20 s", "| server | runs | server CPU µs / delivery | p50 ms | p99 ms | lost | RSS after MiB |",
			func(rs []loadgen.Result) string {
				return cells(
					stat(rs, func(r loadgen.Result) float64 { return r.ServerCPUUsPerDelivery }, 2),
					stat(rs, func(r loadgen.Result) float64 { return float64(r.LatencyUs.P50) / 1000 }, 2),
					stat(rs, func(r loadgen.Result) float64 { return float64(r.LatencyUs.P99) / 1000 }, 2),
					stat(rs, func(r loadgen.Result) float64 { return float64(r.Lost) }, 0),
					stat(rs, func(r loadgen.Result) float64 { return float64(r.ServerRSSAfterBytes) / mib }, 0))
			}},
		{"D", "D. Publish throughput: 16 publishers flat out, 1 subscriber, 10 s", "| server | runs | publishes/s | publish p50 ms | publish p99 ms | lost | server CPU µs / publish | generator CPU µs / publish |",
			publishRow(func(r loadgen.Result) float64 { return float64(r.PublishUs.P50) / 1000 })},
		{"E", "E. Batched publish throughput: 16 publishers flat out, 100 updates per request, 1 subscriber, 10 s", "| server | runs | updates/s | request p50 ms | request p99 ms | lost | server CPU µs / publish | generator CPU µs / publish |",
			publishRow(func(r loadgen.Result) float64 { return float64(r.PublishUs.P50) / 1000 })},
		{"R", "R. Batched publish at a fixed 150,000 updates/s: 16 publishers, 100 updates per request, 1 subscriber, 10 s", "| server | runs | updates/s | publish→receipt p99 ms | request p99 ms | lost | server CPU µs / update | generator CPU µs / update |",
			publishRow(func(r loadgen.Result) float64 { return float64(r.LatencyUs.P99) / 1000 })},
	}
	for _, t := range tables {
		var rows []string
		for _, s := range servers {
			if rs := runs[s.key+"-"+t.load]; len(rs) > 0 {
				rows = append(rows, fmt.Sprintf("| %s | %d | %s |", s.name, len(rs), t.row(rs)))
			}
		}
		if len(rows) == 0 {
			continue
		}
		fmt.Printf("**%s** (median, min–max)\n\n%s\n%s\n%s\n\n", t.title, t.head,
			strings.Repeat("|---", strings.Count(t.head, "|")-1)+"|", strings.Join(rows, "\n"))
	}
}

// load reads every SERVER-LOAD-TAG.json in dir, keyed by "SERVER-LOAD".
func load(dir string) (map[string][]loadgen.Result, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	runs := map[string][]loadgen.Result{}
	for _, f := range files {
		parts := strings.Split(strings.TrimSuffix(filepath.Base(f), ".json"), "-")
		if len(parts) < 3 {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var r loadgen.Result
		if err := json.Unmarshal(b, &r); err != nil {
			fmt.Fprintf(os.Stderr, "summarize: skipping %s: %v\n", f, err)
			continue
		}
		key := parts[0] + "-" + parts[1]
		runs[key] = append(runs[key], r)
	}
	return runs, nil
}

// stat formats the median of f over rs, and the range when rs has several
// runs, with prec decimals.
func stat(rs []loadgen.Result, f func(loadgen.Result) float64, prec int) string {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	slices.Sort(v)
	med := v[len(v)/2]
	if len(v)%2 == 0 {
		med = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	s := fmt.Sprintf("%.*f", prec, med)
	if v[0] != v[len(v)-1] {
		s += fmt.Sprintf(" (%.*f–%.*f)", prec, v[0], prec, v[len(v)-1])
	}
	return s
}

func cells(c ...string) string { return strings.Join(c, " | ") }

// publishRow is the row of a publish load (D, E, R): throughput, the
// second column's latency, the publish p99, loss, and the server's and the
// generator's CPU per update published.
func publishRow(second func(loadgen.Result) float64) func([]loadgen.Result) string {
	perPub := func(cpu func(loadgen.Result) float64) func(loadgen.Result) float64 {
		return func(r loadgen.Result) float64 {
			if r.Published == 0 {
				return 0
			}
			return cpu(r) / float64(r.Published) * 1e6
		}
	}
	return func(rs []loadgen.Result) string {
		return cells(
			stat(rs, func(r loadgen.Result) float64 { return r.PublishesPerSec }, 0),
			stat(rs, second, 2),
			stat(rs, func(r loadgen.Result) float64 { return float64(r.PublishUs.P99) / 1000 }, 2),
			stat(rs, func(r loadgen.Result) float64 { return float64(r.Lost) }, 0),
			stat(rs, perPub(func(r loadgen.Result) float64 { return r.ServerCPUSeconds }), 1),
			stat(rs, perPub(func(r loadgen.Result) float64 { return r.GeneratorCPUSeconds }), 1))
	}
}
