package auth

import (
	"net/http"
	"strings"
)

// CookieName is the name of the cookie that carries a token, as in the
// classic Mercure protocol.
const CookieName = "mercureAuthorization"

// AccessTokenCookieNames are the cookie names of Mercure 1.0, looked for
// before [CookieName]: the name the 1.0 draft recommends, then the name of
// earlier 1.0 drafts (whose __Secure- prefix makes browsers accept it only
// from HTTPS with the Secure attribute).
var AccessTokenCookieNames = [...]string{"mercureAccessToken", "__Secure-mercure_access_token"}

// Source tells where a request's token came from. The zero value,
// [SourceNone], means the request carries no token.
type Source int

// The places a token is looked for, in [TokenFromRequest]'s order of
// precedence.
const (
	// SourceNone means no token was found.
	SourceNone Source = iota
	// SourceHeader is the "Authorization: Bearer" request header.
	SourceHeader
	// SourceQuery is the "authorization" (classic Mercure) or
	// "access_token" (RFC 6750, newer Mercure drafts) query parameter.
	SourceQuery
	// SourceCookie is one of the [AccessTokenCookieNames] or [CookieName]
	// cookies.
	SourceCookie
)

// String returns a short name for s, for messages and logs.
func (s Source) String() string {
	switch s {
	case SourceNone:
		return "no token"
	case SourceHeader:
		return "Authorization header"
	case SourceQuery:
		return "query parameter"
	case SourceCookie:
		return "cookie"
	}
	return "unknown source"
}

// TokenFromRequest returns the token of r and where it was found. Exactly
// one mechanism is used, the first present in this order:
//
//  1. the Authorization header: "Bearer <token>" (scheme case-insensitive);
//  2. the "authorization" query parameter, then "access_token";
//  3. a cookie: the first of [AccessTokenCookieNames] present, else
//     [CookieName].
//
// A mechanism that is present hides the later ones even if its token is
// unusable: an Authorization header with another scheme, or several
// Authorization headers, yield an empty token with [SourceHeader], which
// [Verifier.Authenticate] reports as an invalid token rather than falling
// back to a cookie.
func TokenFromRequest(r *http.Request) (string, Source) {
	if vals := r.Header.Values("Authorization"); len(vals) > 0 {
		if len(vals) > 1 {
			return "", SourceHeader
		}
		scheme, token, ok := strings.Cut(strings.TrimSpace(vals[0]), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return "", SourceHeader
		}
		return strings.TrimSpace(token), SourceHeader
	}
	if r.URL != nil && r.URL.RawQuery != "" {
		q := r.URL.Query()
		for _, name := range [...]string{"authorization", "access_token"} {
			if q.Has(name) {
				return q.Get(name), SourceQuery
			}
		}
	}
	for _, name := range AccessTokenCookieNames {
		if c, err := r.Cookie(name); err == nil {
			return c.Value, SourceCookie
		}
	}
	if c, err := r.Cookie(CookieName); err == nil {
		return c.Value, SourceCookie
	}
	return "", SourceNone
}
