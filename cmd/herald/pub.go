// herald pub: publish updates to a Herald hub (or any Mercure hub).
//
//	herald pub --topic news --data 'hello'
//	echo '{"price": 42}' | herald pub --topic prices --type price
//	tail -f app.log | herald pub --topic logs --lines
//
// Each update gets a fresh id (a UUIDv7 URN) chosen by herald pub unless
// --id is given, so that a publish whose answer was lost (a 504 from the
// hub, a broken connection) can be retried without becoming a duplicate:
// herald pub retries such publishes (--retries), and a 409 for its own id
// on a retry means the first attempt was stored. Each accepted update's
// id, as the hub returned it, is printed on its own line (not with
// --quiet). Exit codes: 0 when every update was accepted; 1 when the hub
// refused one (HTTP 4xx or 5xx) or could not be reached; 2 for usage
// errors.

package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/herald-sse/herald/hub"
	"github.com/herald-sse/herald/store"
)

// stdin is what `herald pub` reads data from when --data is absent. Tests
// replace it.
var stdin io.Reader = os.Stdin

// defaultHub is the Mercure endpoint of a `herald serve` with its default
// address.
const defaultHub = "http://localhost:8080/.well-known/mercure"

// maxStdinData is the most `herald pub` reads from stdin for one update
// (all of stdin, or one line with --lines). The hub's own limit
// (--max-body of `herald serve`, 1 MiB by default) is usually lower.
const maxStdinData = 64 << 20

// pubUsage is the header of `herald pub -h`.
const pubUsage = `usage: herald pub --topic TOPIC... [--data DATA | --lines] [flags]

Publish an update to a Herald (Mercure) hub and print its id. The id is a
fresh UUIDv7 URN chosen here unless --id is given, so that publishes whose
answer was lost (HTTP 502/503/504, a broken connection) are retried safely
with the same id (--retries); a 409 on a retry means the update was stored.
Without --data, the data is read from stdin (one final newline is
removed). With --lines, every line of stdin is published as its own update
as soon as it is read, over one keep-alive connection, until EOF; the
lines read within 5ms go in one request (up to --batch lines, Herald's
batch publish), each with its own id and result.

Publishing needs a token: --token or HERALD_TOKEN. Mint one with
  herald token --key "$HERALD_PUBLISHER_KEY" --publish '*'

Environment: HERALD_HUB, HERALD_TOKEN, and HERALD_<FLAG> for every flag
(--foo-bar is HERALD_FOO_BAR). A flag on the command line wins.

Exit status: 0 every update accepted; 1 the hub refused an update (HTTP
4xx/5xx) or could not be reached; 2 usage error.

Examples:
  herald pub --topic news --data 'hello'
  herald pub --topic https://example.com/books/1 --type update --private < book.json
  tail -f app.log | herald pub --topic logs --lines

Flags:
`

// pubConfig is everything `herald pub` reads from flags and HERALD_*.
type pubConfig struct {
	hub, token     string
	topics         listFlag
	headers        listFlag
	data, id, typ  string
	dataSet        bool
	lines          bool
	quiet          bool
	retries        int
	batch          int
	private        bool
	anonymous      bool
	retry, timeout time.Duration
}

func (c *pubConfig) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.hub, "hub", defaultHub, "`URL` of the hub's Mercure endpoint (env HERALD_HUB)")
	fs.StringVar(&c.token, "token", "", "publisher `JWT`, sent as Authorization: Bearer (env HERALD_TOKEN)")
	fs.Var(&c.topics, "topic", "`topic` of the update (repeatable, at least one; the first is canonical)")
	fs.StringVar(&c.data, "data", "", "the update's data, `text` (default: read stdin)")
	fs.BoolVar(&c.lines, "lines", false, "publish one update per line of stdin, as lines arrive, until EOF")
	fs.StringVar(&c.id, "id", "", "update `id` (default: a fresh UUIDv7 URN per update; not with --lines)")
	fs.IntVar(&c.retries, "retries", 3, "times to retry a publish whose answer was lost or temporary (HTTP 502, 503, 504, connection errors), with the same id")
	fs.IntVar(&c.batch, "batch", 100, "with --lines, most lines sent in one request (Herald's batch publish); 1: one form publish per line, for other Mercure hubs")
	fs.BoolVar(&c.quiet, "quiet", false, "do not print the ids of published updates")
	fs.StringVar(&c.typ, "type", "", "event `type` (default: message)")
	fs.DurationVar(&c.retry, "retry", 0, "reconnection time sent to subscribers with the update, in whole milliseconds (0: none)")
	fs.BoolVar(&c.private, "private", false, "private update: only subscribers authorized for one of its topics receive it")
	fs.Var(&c.headers, "header", "extra request header `K: V` (repeatable)")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "time limit of each publish request")
	fs.BoolVar(&c.anonymous, "anonymous", false, "publish without a token (for a hub started with --allow-anonymous-publish)")
}

// runPub runs `herald pub` with args (the arguments after "pub").
func runPub(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c pubConfig
	fs := flag.NewFlagSet("herald pub", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.flags(fs)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), pubUsage)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &exitError{2, fmt.Errorf("unexpected argument %q (topics go in --topic, data in --data)", fs.Arg(0))}
	}
	fs.Visit(func(f *flag.Flag) { c.dataSet = c.dataSet || f.Name == "data" })
	p, err := c.publisher()
	if err != nil {
		return &exitError{2, err}
	}
	defer p.close()

	if c.lines && p.batch > 1 {
		return p.publishBatches(ctx, stdin, stdout) // batch.go
	}
	if c.lines {
		return p.publishLines(ctx, stdin, stdout)
	}
	data := c.data
	if !c.dataSet {
		if isTerminal(stdin) {
			return &exitError{2, errors.New("no data: give --data, or pipe the data to stdin (--lines: one update per line)")}
		}
		if data, err = readAll(stdin); err != nil {
			return err
		}
	}
	id, err := p.publish(ctx, data)
	if err != nil || c.quiet {
		return err
	}
	_, err = fmt.Fprintln(stdout, id)
	return err
}

// publisher checks c and returns the publisher it describes.
func (c *pubConfig) publisher() (*publisher, error) {
	u, err := parseHTTPURL("--hub", c.hub)
	if err != nil {
		return nil, err
	}
	switch {
	case len(c.topics) == 0:
		return nil, errors.New("no topic: give --topic (repeatable)")
	case c.token == "" && !c.anonymous:
		return nil, errors.New("no token: give --token or set HERALD_TOKEN; mint one with: herald token --key KEY --publish '*' " +
			"(KEY is the hub's --publisher-key); use --anonymous only with a hub started with --allow-anonymous-publish")
	case c.token != "" && c.anonymous:
		return nil, errors.New("--anonymous and --token exclude each other")
	case c.lines && c.dataSet:
		return nil, errors.New("--lines reads the data from stdin: --data cannot be used with it")
	case c.lines && c.id != "":
		return nil, errors.New("--id cannot be used with --lines: every update needs its own id (herald pub chooses one per line)")
	case c.retry < 0:
		return nil, fmt.Errorf("--retry must not be negative, got %v", c.retry)
	case c.timeout < 0:
		return nil, fmt.Errorf("--timeout must not be negative, got %v", c.timeout)
	case c.batch < 1:
		return nil, fmt.Errorf("--batch must be at least 1, got %d", c.batch)
	case c.retries < 0:
		return nil, fmt.Errorf("--retries must not be negative, got %d", c.retries)
	}
	hdr, err := parseHeaders(c.headers)
	if err != nil {
		return nil, err
	}
	hdr.Set("Content-Type", "application/x-www-form-urlencoded")
	if c.token != "" {
		hdr.Set("Authorization", "Bearer "+c.token)
	}
	form := url.Values{"topic": c.topics}
	if c.typ != "" {
		form.Set("type", c.typ)
	}
	if c.retry > 0 {
		form.Set("retry", strconv.FormatInt(int64((c.retry+time.Millisecond-1)/time.Millisecond), 10))
	}
	if c.private {
		form.Set("private", "on")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	return &publisher{
		url:       u.String(),
		display:   displayURL(u),
		header:    hdr,
		form:      form,
		transport: tr,
		client:    &http.Client{Transport: tr, Timeout: c.timeout},
		timeout:   c.timeout,
		id:        c.id,
		retries:   c.retries,
		quiet:     c.quiet,
		batch:     c.batch,
		batchUpdate: hub.BatchUpdate{
			Topic:   hub.BatchTopics(c.topics),
			Type:    c.typ,
			Retry:   int64((c.retry + time.Millisecond - 1) / time.Millisecond),
			Private: c.private,
		},
	}, nil
}

// publisher sends updates to one hub over one keep-alive HTTP client.
type publisher struct {
	url, display string
	header       http.Header
	form         url.Values // every field but data
	transport    *http.Transport
	client       *http.Client
	timeout      time.Duration
	id           string // --id, or "" for a fresh one per update
	retries      int
	quiet        bool
	batch        int             // --batch: most lines in one request with --lines
	batchUpdate  hub.BatchUpdate // every field but data and id, for batches
}

// retryBackoff is the wait before a publish's first retry; it doubles for
// each next one, up to 5s. Tests shorten it.
var retryBackoff = 200 * time.Millisecond

// close releases the idle keep-alive connections.
func (p *publisher) close() { p.transport.CloseIdleConnections() }

// publish posts one update with data, retrying with the same id while the
// outcome is unknown or the refusal temporary, and returns its id. Its
// errors are *exitError with code 1.
func (p *publisher) publish(ctx context.Context, data string) (string, error) {
	form := make(url.Values, len(p.form)+2)
	for k, v := range p.form {
		form[k] = v
	}
	form.Set("data", data)
	id := p.id
	if id == "" {
		id = store.NewID()
	}
	form.Set("id", id)
	body := form.Encode()
	backoff := retryBackoff
	for attempt := 0; ; attempt++ {
		got, retry, err := p.post(ctx, body)
		switch {
		case err == nil:
			return got, nil
		case attempt > 0 && errors.Is(err, errConflict):
			return id, nil // stored by an earlier attempt whose answer was lost
		case !retry || attempt >= p.retries || ctx.Err() != nil:
			if attempt > 0 {
				err = fmt.Errorf("%w (after %d attempts)", err, attempt+1)
			}
			return "", &exitError{1, err}
		}
		select {
		case <-ctx.Done():
			return "", &exitError{1, errors.New("interrupted")}
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// errConflict is the error of a 409 answer.
var errConflict = errors.New("conflict")

// post sends one publish request with the encoded form body. It returns
// the id the hub answered, or an error and whether retrying with the same
// id is safe and may help.
func (p *publisher) post(ctx context.Context, body string) (id string, retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, strings.NewReader(body))
	if err != nil {
		return "", false, fmt.Errorf("request: %w", err)
	}
	req.Header = p.header.Clone()
	resp, err := p.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return "", false, errors.New("interrupted")
		}
		return "", true, fmt.Errorf("cannot reach %s: %s", p.display, netReason(err, p.timeout))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", true, fmt.Errorf("%s: reading the answer: %s", p.display, netReason(err, p.timeout))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // so the connection can be reused
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		msg := resp.Status
		if r := oneLine(string(b)); r != "" {
			msg += ": " + r
		}
		msg += refusalHint(resp.StatusCode, p.url, req.Header.Get("Authorization") != "")
		switch resp.StatusCode {
		case http.StatusConflict:
			return "", false, fmt.Errorf("%w: %s", errConflict, msg)
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return "", true, errors.New(msg)
		}
		return "", false, errors.New(msg)
	}
	return strings.TrimSpace(string(b)), false, nil
}

// publishLines publishes every line of r (without its line ending) as its
// own update as soon as it is read, and prints each id. It stops at EOF, at
// the first refused update (an *exitError naming the line) or when ctx is
// done (returning nil: every line read so far was published).
//
// Lines are read by a goroutine so that a signal can stop a command
// blocked on a silent stdin. That goroutine ends at EOF, at a read error,
// or when it has a line to hand over and publishLines has returned; a Read
// of stdin that never returns cannot be interrupted, so after an
// interruption it may stay blocked there until the process exits, right
// after.
func (p *publisher) publishLines(ctx context.Context, r io.Reader, stdout io.Writer) error {
	lines, done := readLines(r)
	defer close(done)
	for n := 1; ; n++ {
		var l line
		select {
		case <-ctx.Done():
			return nil
		case l = <-lines:
		}
		switch {
		case errors.Is(l.err, io.EOF):
			return nil
		case l.err != nil:
			return &exitError{1, fmt.Errorf("line %d: reading stdin: %w", n, l.err)}
		}
		id, err := p.publish(ctx, strings.TrimSuffix(strings.TrimSuffix(l.s, "\n"), "\r"))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("line %d: %w", n, err)
		}
		if p.quiet {
			continue
		}
		if _, err := fmt.Fprintln(stdout, id); err != nil {
			return err
		}
	}
}

// errLineTooLong is returned by readLine for a line of more than
// maxStdinData bytes.
var errLineTooLong = fmt.Errorf("line longer than %d bytes", maxStdinData)

// readLine returns the next line of br with its "\n", or the final bytes
// without one together with io.EOF.
func readLine(br *bufio.Reader) (string, error) {
	var buf []byte
	for {
		frag, err := br.ReadSlice('\n')
		if len(buf)+len(frag) > maxStdinData {
			return "", errLineTooLong
		}
		buf = append(buf, frag...)
		if !errors.Is(err, bufio.ErrBufferFull) {
			return string(buf), err
		}
	}
}

// readAll reads r (stdin) for one update: all of it, without one final
// line ending.
func readAll(r io.Reader) (string, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxStdinData+1))
	if err != nil {
		return "", &exitError{1, fmt.Errorf("reading stdin: %w", err)}
	}
	if len(b) > maxStdinData {
		return "", &exitError{2, fmt.Errorf("stdin holds more than %d bytes", maxStdinData)}
	}
	s := strings.TrimSuffix(string(b), "\n")
	return strings.TrimSuffix(s, "\r"), nil
}

// isTerminal reports whether r is a terminal (a character device), from
// which `herald pub` does not wait for data.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// parseHTTPURL parses s, the value of flag name, as an absolute http or
// https URL.
func parseHTTPURL(name, s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%s %q is not an http:// or https:// URL", name, s)
	}
	return u, nil
}

// displayURL is u for messages: without credentials and query (which may
// hold a token).
func displayURL(u *url.URL) string {
	return u.Scheme + "://" + u.Host + u.EscapedPath()
}

// parseHeaders parses "Key: Value" flag values.
func parseHeaders(vals []string) (http.Header, error) {
	h := http.Header{}
	for _, s := range vals {
		k, v, ok := strings.Cut(s, ":")
		k = strings.TrimSpace(k)
		if !ok || k == "" || strings.ContainsAny(k, " \t\r\n") || strings.ContainsAny(v, "\r\n") {
			return nil, fmt.Errorf("--header %q: want \"Key: Value\"", s)
		}
		h.Add(k, strings.TrimSpace(v))
	}
	return h, nil
}

// netReason is the short reason of a failed request: "connection
// refused", "no such host", "no answer within 10s"...
func netReason(err error, timeout time.Duration) string {
	var errno syscall.Errno
	var dns *net.DNSError
	var ue *url.Error
	switch {
	case errors.As(err, &errno):
		return errno.Error()
	case errors.As(err, &dns):
		return dns.Error()
	case errors.As(err, &ue) && ue.Timeout() && timeout > 0:
		return fmt.Sprintf("no answer within %v", timeout)
	case errors.As(err, &ue):
		return ue.Err.Error()
	}
	return err.Error()
}

// oneLine returns the first non-empty line of s, trimmed, without control
// characters and cut to 200 bytes: the reason from an error response body.
func oneLine(s string) string {
	for l := range strings.Lines(s) {
		if l = strings.TrimSpace(l); l != "" {
			s = l
			break
		}
	}
	s = strings.TrimSpace(s)
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	if len(s) > 200 {
		cut := 200
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// line is one line of stdin for --lines, or the error that ended the input.
type line struct {
	s   string
	err error
}

// readLines reads r line by line on a goroutine of its own and hands the
// lines over on the returned channel, then the error that ended the input
// (io.EOF at the end). Closing done tells the goroutine to stop at its next
// hand-over; a Read of r that never returns cannot be interrupted, so the
// goroutine may stay blocked in it until the process exits (a signal that
// ends the command on a silent stdin).
func readLines(r io.Reader) (lines <-chan line, done chan<- struct{}) {
	ch, stop := make(chan line), make(chan struct{})
	go func() {
		br := bufio.NewReaderSize(r, 64<<10)
		for {
			s, err := readLine(br)
			if s != "" || err == nil {
				select {
				case ch <- line{s: s}:
				case <-stop:
					return
				}
			}
			if err != nil {
				select {
				case ch <- line{err: err}:
				case <-stop:
				}
				return
			}
		}
	}()
	return ch, stop
}
