// Command herald is a Server-Sent Events hub that speaks the Mercure
// protocol, and the tools around it.
//
//	herald serve   run the hub
//	herald pub     publish an update
//	herald sub     subscribe and print events
//	herald token   mint a JWT for publishers and subscribers
//	herald bench   load-test Herald or another SSE hub
//	herald version print the version
//	herald health  check a running hub's /healthz
//
// Every flag of every subcommand can also be set with an environment
// variable: --foo-bar is HERALD_FOO_BAR. A flag on the command line wins
// over the environment.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// command is one subcommand: run parses args and does the work.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{
	"serve":   {"run the hub", runServe},
	"pub":     {"publish an update", runPub},
	"sub":     {"subscribe and print events", runSub},
	"token":   {"mint a JWT for publishers and subscribers", runToken},
	"bench":   {"load-test Herald or another SSE hub", runBench},
	"version": {"print the version", runVersion},
	"health":  {"check a running hub's /healthz (for container health checks)", runHealth},
}

// exitError carries a process exit code up to main.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "herald: unknown command %q\n", args[0])
		usage(stderr)
		return 2
	}
	err := cmd.run(ctx, args[1:], stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	}
	fmt.Fprintf(stderr, "herald %s: %v\n", args[0], err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: herald <command> [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-7s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'herald <command> -h' for the flags of a command.")
	fmt.Fprintln(w, "Every flag --foo-bar can also be set as HERALD_FOO_BAR in the environment.")
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, " ") }
func (l *listFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// csvFlag is a repeatable flag whose values may also be comma-separated
// (convenient in environment variables).
type csvFlag []string

func (l *csvFlag) String() string { return strings.Join(*l, ",") }
func (l *csvFlag) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}
