package main

// HTTPS, HTTP/2 and automatic certificates for `herald serve`.

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// tlsConfig is the HTTPS part of serveConfig.
type tlsConfig struct {
	certFile      string
	keyFile       string
	h2c           bool
	h2MaxStreams  int
	acmeDomains   listFlag
	acmeEmail     string
	acmeDirectory string
	acmeHTTPAddr  string
}

func (c *tlsConfig) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.certFile, "tls-cert", "", "PEM certificate (chain) file: serve HTTPS with HTTP/2 and HTTP/1.1; reloaded when it changes or on SIGHUP")
	fs.StringVar(&c.keyFile, "tls-key", "", "PEM private key file of --tls-cert")
	fs.BoolVar(&c.h2c, "h2c", false, "also accept cleartext HTTP/2 (h2c), for a proxy that speaks HTTP/2 to the hub; without TLS only")
	fs.IntVar(&c.h2MaxStreams, "http2-max-streams", 1000, "concurrent HTTP/2 streams (event streams and requests) allowed on one connection")
	fs.Var(&c.acmeDomains, "acme-domain", "obtain and renew a certificate for this domain with ACME (repeatable); serves HTTPS on --addr and redirects HTTP on --acme-http-addr")
	fs.StringVar(&c.acmeEmail, "acme-email", "", "contact address given to the ACME certificate authority (optional)")
	fs.StringVar(&c.acmeDirectory, "acme-directory", autocert.DefaultACMEDirectory, "ACME directory URL (Let's Encrypt by default; its staging directory or a private CA for tests)")
	fs.StringVar(&c.acmeHTTPAddr, "acme-http-addr", ":80", "with --acme-domain: address of the HTTP listener that answers ACME http-01 challenges and redirects everything else to HTTPS (empty: none)")
}

// enabled reports whether the hub serves HTTPS.
func (c *tlsConfig) enabled() bool { return c.certFile != "" || len(c.acmeDomains) > 0 }

// validate checks the combination of TLS flags and loads the certificate
// files once, so that a bad file is a configuration error.
func (c *tlsConfig) validate() error {
	switch {
	case (c.certFile == "") != (c.keyFile == ""):
		return errors.New("--tls-cert and --tls-key go together")
	case c.certFile != "" && len(c.acmeDomains) > 0:
		return errors.New("--tls-cert and --acme-domain exclude each other: one source of certificates")
	case c.h2c && c.enabled():
		return errors.New("--h2c is cleartext HTTP/2: it excludes --tls-cert and --acme-domain (HTTPS speaks HTTP/2 by itself)")
	case c.h2MaxStreams < 1:
		return fmt.Errorf("--http2-max-streams must be positive, got %d", c.h2MaxStreams)
	}
	if c.certFile != "" {
		if _, err := tls.LoadX509KeyPair(c.certFile, c.keyFile); err != nil {
			return fmt.Errorf("--tls-cert %s / --tls-key %s: %w", c.certFile, c.keyFile, err)
		}
	}
	for _, d := range c.acmeDomains {
		if d == "" || net.ParseIP(d) != nil || len(d) > 253 {
			return fmt.Errorf("--acme-domain %q: want a DNS name", d)
		}
	}
	if len(c.acmeDomains) > 0 && c.acmeDirectory == "" {
		return errors.New("--acme-directory must not be empty with --acme-domain")
	}
	return nil
}

// protocols returns the protocols the server speaks.
func (c *tlsConfig) protocols() *http.Protocols {
	var p http.Protocols
	p.SetHTTP1(true)
	if c.enabled() {
		p.SetHTTP2(true)
	}
	if c.h2c {
		p.SetUnencryptedHTTP2(true)
	}
	return &p
}

// certReloader serves a certificate loaded from files and loads it again
// when the files change or on SIGHUP. Established connections keep the
// certificate they were handshaked with: a reload never drops a stream.
// It is safe for concurrent use.
type certReloader struct {
	certFile, keyFile string
	logger            *slog.Logger
	hup               chan os.Signal // SIGHUP, registered from the start so none is missed

	mu    sync.RWMutex
	cert  *tls.Certificate
	stamp string // modification times and sizes of the loaded files
}

func newCertReloader(certFile, keyFile string, logger *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, logger: logger, hup: make(chan os.Signal, 1)}
	if err := r.load(); err != nil {
		return nil, err
	}
	signal.Notify(r.hup, syscall.SIGHUP)
	return r, nil
}

// fileStamp identifies the current version of the files.
func (r *certReloader) fileStamp() string {
	s := ""
	for _, f := range []string{r.certFile, r.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return "missing"
		}
		s += fmt.Sprintf("%d/%d;", fi.ModTime().UnixNano(), fi.Size())
	}
	return s
}

func (r *certReloader) load() error {
	stamp := r.fileStamp()
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("load --tls-cert %s / --tls-key %s: %w", r.certFile, r.keyFile, err)
	}
	r.mu.Lock()
	r.cert, r.stamp = &cert, stamp
	r.mu.Unlock()
	return nil
}

// reload loads the files again; on failure it logs and keeps serving the
// certificate it has.
func (r *certReloader) reload(why string) {
	if err := r.load(); err != nil {
		r.logger.Error("herald: certificate reload failed, keeping the current one", "why", why, "err", err)
		return
	}
	r.logger.Info("herald: certificate reloaded", "why", why, "cert", r.certFile)
}

// GetCertificate is the tls.Config hook.
func (r *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.cert, nil
}

// watch reloads the certificate on SIGHUP and when the files' stamps
// change (checked every poll), until ctx is done. It must be called
// once: it stops the SIGHUP notification when it returns.
func (r *certReloader) watch(ctx context.Context, poll time.Duration) error {
	hup := r.hup
	defer signal.Stop(hup)
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			r.reload("SIGHUP")
		case <-t.C:
			r.mu.RLock()
			old := r.stamp
			r.mu.RUnlock()
			if s := r.fileStamp(); s != old && s != "missing" {
				r.reload("files changed")
			}
		}
	}
}

// certPoll is how often the certificate files are checked for changes.
const certPoll = 2 * time.Second

// tlsSetup is the running TLS machinery of a server: its tls.Config and
// what must run beside the server.
type tlsSetup struct {
	config *tls.Config
	// run, if set, runs until ctx is done (certificate reloads, the ACME
	// HTTP listener). The serve errgroup owns it.
	run []func(ctx context.Context) error
	// cleanup releases what setup took (a listener, the SIGHUP
	// notification) when the server does not get to run.
	cleanup []func()
}

// stop releases what setup took, for a server that will not run. A nil
// tlsSetup does nothing.
func (s *tlsSetup) stop() {
	if s == nil {
		return
	}
	for _, f := range s.cleanup {
		f()
	}
}

// setupTLS returns the TLS configuration of the server, or nil when it
// serves cleartext. dataDir holds the ACME cache.
func (c *tlsConfig) setup(dataDir string, logger *slog.Logger) (*tlsSetup, error) {
	switch {
	case c.certFile != "":
		r, err := newCertReloader(c.certFile, c.keyFile, logger)
		if err != nil {
			return nil, err
		}
		cfg := &tls.Config{GetCertificate: r.GetCertificate, MinVersion: tls.VersionTLS12}
		return &tlsSetup{
			config:  cfg,
			run:     []func(context.Context) error{func(ctx context.Context) error { return r.watch(ctx, certPoll) }},
			cleanup: []func(){func() { signal.Stop(r.hup) }},
		}, nil
	case len(c.acmeDomains) > 0:
		return c.setupACME(dataDir, logger)
	}
	return nil, nil
}

func (c *tlsConfig) setupACME(dataDir string, logger *slog.Logger) (*tlsSetup, error) {
	cache := filepath.Join(dataDir, "acme")
	if err := os.MkdirAll(cache, 0o700); err != nil {
		return nil, fmt.Errorf("acme cache: %w", err)
	}
	m := &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		Cache:      autocert.DirCache(cache),
		HostPolicy: autocert.HostWhitelist(c.acmeDomains...),
		Email:      c.acmeEmail,
		Client:     &acme.Client{DirectoryURL: c.acmeDirectory, UserAgent: "herald"},
	}
	s := &tlsSetup{config: m.TLSConfig()}
	s.config.MinVersion = tls.VersionTLS12
	if c.acmeHTTPAddr != "" {
		ln, err := net.Listen("tcp", c.acmeHTTPAddr)
		if err != nil {
			return nil, fmt.Errorf("--acme-http-addr: %w", err)
		}
		srv := &http.Server{
			Handler:           m.HTTPHandler(nil), // challenges, and a redirect to https for the rest
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
		}
		s.cleanup = append(s.cleanup, func() { ln.Close() })
		logger.Info("herald: ACME http-01 and redirect listening", "addr", ln.Addr().String())
		s.run = append(s.run, func(ctx context.Context) error {
			errc := make(chan error, 1)
			go func() { errc <- srv.Serve(ln) }()
			select {
			case err := <-errc:
				return fmt.Errorf("--acme-http-addr: %w", err)
			case <-ctx.Done():
				err := srv.Close()
				<-errc
				return err
			}
		})
	}
	logger.Info("herald: ACME certificates", "domains", c.acmeDomains, "directory", c.acmeDirectory, "cache", cache)
	return s, nil
}
