package main

import (
	"flag"
	"net/http"
	"net/url"
	"strings"

	"github.com/herald-sse/herald/hub"
)

// refusalHint returns advice to append to a hub's refusal of a request to
// rawURL, or "": where the Mercure endpoint is after a 404 from another
// path, why a token is refused after a 401 (when one was sent).
func refusalHint(status int, rawURL string, sentToken bool) string {
	switch status {
	case http.StatusNotFound:
		u, err := url.Parse(rawURL)
		if err != nil || u.Path == hub.Path {
			return ""
		}
		return " (hint: the Mercure endpoint is at the path " + hub.Path + ": " +
			u.Scheme + "://" + u.Host + hub.Path + ")"
	case http.StatusUnauthorized:
		if !sentToken {
			return ""
		}
		return " (hint: the token is not signed with the hub's key. A hub started without" +
			" --publisher-key generates a new key on every run, so a token from an earlier run" +
			" is refused: use the token it printed this time, or start it with --publisher-key" +
			" and mint tokens with herald token)"
	}
	return ""
}

// joinBoolArgs rewrites "--flag true" and "--flag false" of a boolean flag
// of fs into "--flag=true" and "--flag=false". The flag package only
// accepts the second form, and would otherwise take "false" for a
// positional argument and the flag for true.
func joinBoolArgs(fs *flag.FlagSet, args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" || !strings.HasPrefix(a, "-") {
			return append(out, args[i:]...) // flags end here
		}
		name := strings.TrimLeft(a, "-")
		if !strings.Contains(name, "=") && i+1 < len(args) {
			if f := fs.Lookup(name); f != nil && isBoolFlag(f) {
				if v := args[i+1]; v == "true" || v == "false" {
					out = append(out, a+"="+v)
					i++
					continue
				}
			}
		}
		out = append(out, a)
	}
	return out
}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}
