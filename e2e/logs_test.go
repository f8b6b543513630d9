package e2e_test

import (
	"fmt"
	"io"
	"os/exec"
	"reflect"
	"testing"
	"time"

	"github.com/herald-sse/herald/hub"
	"github.com/herald-sse/herald/internal/browsertest"
)

// TestLogTailWithHeraldPub runs the pipeline of examples/logs with the
// real binaries: lines written to `herald pub --topic logs --lines` reach a
// browser subscribed to `herald serve` one update per line, as they are
// written, not at EOF.
func TestLogTailWithHeraldPub(t *testing.T) {
	addr := freeAddr(t)
	startHerald(t, addr, "--store", "memory")
	endpoint := "http://" + addr + hub.Path

	b := browsertest.New(t)
	p := openHarness(b, "http://"+addr+hub.HealthPath)
	p.Eval(fmt.Sprintf(`h.listen(%q)`, endpoint+"?topic=logs"), nil)
	p.WaitFor("h.opens[0] === 1", 10*time.Second, "h.errors")

	stdin, w := io.Pipe()
	pub := exec.Command(heraldBinary(t), "pub", "--hub", endpoint, "--topic", "logs", "--lines")
	pub.Env = append(pub.Environ(), "HERALD_TOKEN="+token(t))
	pub.Stdin = stdin
	out := &syncBuffer{}
	pub.Stdout, pub.Stderr = out, out
	if err := pub.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- pub.Wait() }()
	t.Cleanup(func() {
		_ = pub.Process.Kill()
		<-exited
	})

	// Like `tail -f`: the first lines must arrive while stdin is still open.
	if _, err := io.WriteString(w, "12:00:00 INFO started\n  indented  \n"); err != nil {
		t.Fatal(err)
	}
	p.WaitFor("h.events.length === 2", 10*time.Second, "h.events")
	if _, err := io.WriteString(w, "\n12:00:01 ERROR crlf line\r\nno final newline ✓"); err != nil {
		t.Fatal(err)
	}
	w.Close()
	select {
	case err := <-exited:
		exited <- err // for the cleanup
		if err != nil {
			t.Fatalf("herald pub --lines: %v\n%s", err, out.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("herald pub --lines did not exit at EOF:\n%s", out.String())
	}
	p.WaitFor("h.events.length >= 5", 10*time.Second, "h.events")
	var got []string
	p.Eval("h.events.map(e => e.data)", &got)
	want := []string{"12:00:00 INFO started", "  indented  ", "", "12:00:01 ERROR crlf line", "no final newline ✓"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("browser received lines %q, want %q", got, want)
	}
}
