package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/herald-sse/herald/internal/loadgen"
)

func TestStat(t *testing.T) {
	rs := func(v ...float64) []loadgen.Result {
		out := make([]loadgen.Result, len(v))
		for i, x := range v {
			out[i].ServerCPUUsPerDelivery = x
		}
		return out
	}
	f := func(r loadgen.Result) float64 { return r.ServerCPUUsPerDelivery }
	for _, c := range []struct {
		in   []loadgen.Result
		want string
	}{
		{rs(2.5), "2.50"},
		{rs(3, 1), "2.00 (1.00–3.00)"},
		{rs(5, 1, 3), "3.00 (1.00–5.00)"},
		{rs(4, 4), "4.00"},
	} {
		if got := stat(c.in, f, 2); got != c.want {
			t.Errorf("stat(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, r any) {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("herald-C-r1.json", loadgen.Result{ServerCPUUsPerDelivery: 2})
	write("herald-C-r2.json", loadgen.Result{ServerCPUUsPerDelivery: 3})
	write("node-D-r1.json", loadgen.Result{PublishesPerSec: 10})
	write("broken-A-r1.json", "not a result")
	write("noload.json", loadgen.Result{})
	runs, err := load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs["herald-C"]) != 2 || len(runs["node-D"]) != 1 || len(runs) != 2 {
		t.Errorf("load = %d keys (herald-C %d, node-D %d), want herald-C 2 and node-D 1 only",
			len(runs), len(runs["herald-C"]), len(runs["node-D"]))
	}
}
