package auth

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// JWKSConfig configures [NewJWKS]. The zero value of each field means its
// documented default.
type JWKSConfig struct {
	// Client fetches the key set. Nil means a client with a 10 s timeout.
	Client *http.Client
	// RefreshInterval is how often the key set is fetched again. Zero means
	// one hour.
	RefreshInterval time.Duration
	// MinRefreshInterval bounds the extra fetches triggered by tokens whose
	// kid is not in the cached set (a rotated key): at most one per
	// interval, whatever the number of such tokens. Zero means one minute.
	MinRefreshInterval time.Duration
	// Logger receives refresh failures. Nil discards them.
	Logger *slog.Logger
}

// JWKS is a JSON Web Key Set fetched from a URL and kept fresh: it is
// fetched at [NewJWKS], again every [JWKSConfig.RefreshInterval], and again
// (at most once per [JWKSConfig.MinRefreshInterval]) when a token names a
// kid the cached set does not have. A token with an unknown kid never waits
// for the rate limit: it is refused at once. JWKS is safe for concurrent use;
// [JWKS.Close] stops its refresh goroutine.
type JWKS struct {
	kf     keyfunc.Keyfunc
	cancel context.CancelFunc
}

// NewJWKS fetches the key set at url and starts refreshing it. It fails if
// the first fetch fails, so that a misconfigured URL is seen at start. The
// caller must call Close.
func NewJWKS(ctx context.Context, url string, cfg JWKSConfig) (*JWKS, error) {
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.RefreshInterval <= 0 {
		cfg.RefreshInterval = time.Hour
	}
	if cfg.MinRefreshInterval <= 0 {
		cfg.MinRefreshInterval = time.Minute
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	st, err := jwkset.NewStorageFromHTTP(url, jwkset.HTTPClientStorageOptions{
		Client:          cfg.Client,
		Ctx:             ctx,
		HTTPTimeout:     cfg.Client.Timeout,
		RefreshInterval: cfg.RefreshInterval,
		RefreshErrorHandler: func(_ context.Context, err error) {
			log.Warn("auth: JWKS refresh failed", "url", url, "err", err)
		},
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("auth: JWKS %s: %w", url, err)
	}
	client, err := jwkset.NewHTTPClient(jwkset.HTTPClientOptions{
		HTTPURLs:          map[string]jwkset.Storage{url: st},
		RefreshUnknownKID: rate.NewLimiter(rate.Every(cfg.MinRefreshInterval), 1),
		// This bounds the wait for the limiter and the refresh that
		// follows it (jwkset uses one context for both). A token that
		// would wait longer than this is refused at once, without waiting
		// (rate.Limiter.Wait checks the deadline first), so a flood of
		// unknown kids costs one fetch per interval and immediate
		// refusals. It must not be shorter than a fetch: 1 ms failed the
		// rotation's refresh on a loaded machine.
		RateLimitWaitMax: refreshTimeout(cfg.Client),
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("auth: JWKS %s: %w", url, err)
	}
	kf, err := keyfunc.New(keyfunc.Options{Ctx: ctx, Storage: client})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("auth: JWKS %s: %w", url, err)
	}
	return &JWKS{kf: kf, cancel: cancel}, nil
}

// refreshTimeout is how long a refresh for an unknown kid may take: the
// client's timeout, or 10 s.
func refreshTimeout(c *http.Client) time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return 10 * time.Second
}

// Close stops refreshing. Verifiers that use the set keep the keys they
// had.
func (j *JWKS) Close() error {
	j.cancel()
	return nil
}

// keys returns the keys of the set that may verify t: the key named by its
// kid, or every key compatible with its alg when it has none.
func (j *JWKS) keys(t *jwt.Token) ([]any, error) {
	k, err := j.kf.Keyfunc(t)
	if err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	if set, ok := k.(jwt.VerificationKeySet); ok {
		out := make([]any, 0, len(set.Keys))
		for _, k := range set.Keys {
			out = append(out, k)
		}
		return out, nil
	}
	return []any{k}, nil
}
