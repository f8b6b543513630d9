package hub

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

// Discovery is what a publisher's resource tells clients about its hub, in
// the Link header Mercure defines: <hub>; rel="mercure". The zero value
// has no hub URL and adds nothing.
type Discovery struct {
	// HubURL is the hub's URL, usually "https://host/.well-known/mercure".
	HubURL string
	// LastEventID, if not empty, is the id of the last update published
	// when the resource was generated: the client passes it back as the
	// lastEventID query parameter so that it misses no update in between.
	LastEventID string
	// ContentType, if not empty, is the media type of the updates (for
	// example application/merge-patch+json) when it differs from the
	// resource's.
	ContentType string
}

// Link returns the Link header value for d: `<HubURL>; rel="mercure"` and
// its optional attributes, or "" when HubURL is empty. Characters that
// would end the URI reference or a quoted attribute are percent-encoded or
// escaped.
func (d Discovery) Link() string {
	if d.HubURL == "" {
		return ""
	}
	var b strings.Builder
	b.WriteString("<")
	b.WriteString(strings.NewReplacer(">", "%3E", "<", "%3C", " ", "%20", "\r", "", "\n", "").Replace(d.HubURL))
	b.WriteString(`>; rel="mercure"`)
	if d.LastEventID != "" {
		b.WriteString(`; last-event-id=`)
		b.WriteString(quoteLinkParam(d.LastEventID))
	}
	if d.ContentType != "" {
		b.WriteString(`; content-type=`)
		b.WriteString(quoteLinkParam(d.ContentType))
	}
	return b.String()
}

// SetLink adds d's Link header to h (beside any other Link headers, such as
// rel="self"). It does nothing when HubURL is empty.
func (d Discovery) SetLink(h http.Header) {
	if l := d.Link(); l != "" {
		h.Add("Link", l)
	}
}

// quoteLinkParam is s as an RFC 8288 quoted-string, without control
// characters.
func quoteLinkParam(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r < 0x20 || r == 0x7f:
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// ResourceMetadataPath is where the hub serves its OAuth 2.0 protected
// resource metadata (RFC 9728), as Mercure 1.0 recommends: the well-known
// prefix followed by the hub's path.
const ResourceMetadataPath = "/.well-known/oauth-protected-resource" + Path

// resourceMetadata is the RFC 9728 document of the hub.
type resourceMetadata struct {
	Resource             string   `json:"resource,omitempty"`
	AuthorizationServers []string `json:"authorization_servers,omitempty"`
	BearerMethods        []string `json:"bearer_methods_supported"`
	MercureCookie        bool     `json:"mercure_cookie"`
	MercureVersion       int      `json:"mercure_version"`
}

// serveResourceMetadata answers GET ResourceMetadataPath.
func (h *Hub) serveResourceMetadata(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		fail(w, http.StatusMethodNotAllowed, "method %s not allowed", r.Method)
		return
	}
	doc := resourceMetadata{
		Resource:             h.resource,
		AuthorizationServers: h.authServers,
		// Publishers must use the header (query tokens are refused for
		// POST); subscribers may use the query too.
		BearerMethods:  []string{"header", "query"},
		MercureCookie:  true,
		MercureVersion: 8,
	}
	body, _ := json.Marshal(doc) // plain strings: cannot fail
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Cache-Control", "max-age=300")
	if r.Method == http.MethodGet {
		_, _ = w.Write(body)
	}
}

// metadataURL is the absolute URL of the protected resource metadata of
// the hub whose resource identifier is resource (RFC 9728 section 3.1: the
// well-known prefix inserted before the path), or "" when resource is not
// an absolute http(s) URL.
func metadataURL(resource string) string {
	u, err := url.Parse(resource)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host + "/.well-known/oauth-protected-resource" + strings.TrimSuffix(u.EscapedPath(), "/")
}

// missingToken answers 401 to a request that needs a token and has none:
// an RFC 6750 challenge without an error code, with the RFC 9728
// resource_metadata parameter when [Config.Resource] is a URL, so that a
// client can discover the audience and the authorization servers.
func (h *Hub) missingToken(w http.ResponseWriter) {
	v := "Bearer"
	if h.metadata != "" {
		v += ` resource_metadata="` + h.metadata + `"`
	}
	w.Header().Set("WWW-Authenticate", v)
	fail(w, http.StatusUnauthorized, "missing access token")
}
