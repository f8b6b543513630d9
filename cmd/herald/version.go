package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/herald-sse/herald/hub"
)

// version is set at build time: go build -ldflags "-X main.version=v1.2.3".
// Empty, it is taken from the module version or the VCS revision the
// binary was built from.
var version string

// versionString returns the version of this binary.
func versionString() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	v := "devel"
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if len(s.Value) > 12 {
				s.Value = s.Value[:12]
			}
			v += "+" + s.Value
		case "vcs.modified":
			if s.Value == "true" {
				v += "-dirty"
			}
		}
	}
	return v
}

// versionHeader is the response header of /healthz that names the
// version of the hub.
const versionHeader = "Herald-Version"

// withVersion adds the version header to the responses of h.
func withVersion(h http.Handler) http.Handler {
	v := versionString()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(versionHeader, v)
		h.ServeHTTP(w, r)
	})
}

func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("herald version", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "herald %s (%s, %s/%s)\n", versionString(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}

// runHealth checks a running hub's /healthz: the container HEALTHCHECK of
// an image without curl.
func runHealth(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("herald health", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "http://127.0.0.1:8080"+hub.HealthPath, "health endpoint of the hub")
	insecure := fs.Bool("insecure", false, "do not verify the HTTPS certificate (a hub on 127.0.0.1 with a public certificate)")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: herald health [flags]\n\nExits 0 when the hub's /healthz answers 200, 1 otherwise.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		return configError("--url %q: %w", *url, err)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: *insecure}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", *url, resp.Status)
	}
	fmt.Fprintf(stdout, "ok %s\n", resp.Header.Get(versionHeader))
	return nil
}
