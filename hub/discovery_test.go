package hub_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/herald-sse/herald/hub"
)

func TestDiscoveryLink(t *testing.T) {
	tests := []struct {
		d    hub.Discovery
		want string
	}{
		{hub.Discovery{}, ""},
		{hub.Discovery{HubURL: "https://h/.well-known/mercure"}, `<https://h/.well-known/mercure>; rel="mercure"`},
		{hub.Discovery{HubURL: "https://h/x>y", LastEventID: "a\"b\\c\r\n", ContentType: "application/merge-patch+json"},
			`<https://h/x%3Ey>; rel="mercure"; last-event-id="a\"b\\c"; content-type="application/merge-patch+json"`},
	}
	for _, tt := range tests {
		if got := tt.d.Link(); got != tt.want {
			t.Errorf("%+v.Link() = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestResourceMetadata(t *testing.T) {
	cfg := defaultConfig()
	cfg.Resource = "https://hub.example/.well-known/mercure"
	cfg.AuthorizationServers = []string{"https://as.example"}
	e := newEnv(t, cfg)
	w := e.serve(httptest.NewRequest(http.MethodGet, hub.ResourceMetadataPath, nil))
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s = %d %q", hub.ResourceMetadataPath, w.Code, w.Header().Get("Content-Type"))
	}
	var doc map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc["resource"] != cfg.Resource || doc["mercure_version"] != 8.0 || doc["mercure_cookie"] != true ||
		doc["authorization_servers"].([]any)[0] != "https://as.example" {
		t.Errorf("GET %s = %s", hub.ResourceMetadataPath, w.Body.String())
	}
	if w := e.serve(httptest.NewRequest(http.MethodPost, hub.ResourceMetadataPath, nil)); w.Code != 405 {
		t.Errorf("POST %s = %d, want 405", hub.ResourceMetadataPath, w.Code)
	}
}

func TestMissingTokenChallenge(t *testing.T) {
	cfg := defaultConfig()
	cfg.RequireSubscriberToken = true
	for _, tc := range []struct{ resource, want string }{
		{"", "Bearer"},
		{"https://hub.example/.well-known/mercure", `Bearer resource_metadata="https://hub.example/.well-known/oauth-protected-resource/.well-known/mercure"`},
		{"urn:not-a-url", "Bearer"},
	} {
		cfg.Resource = tc.resource
		e := newEnv(t, cfg)
		for _, r := range []*http.Request{
			httptest.NewRequest(http.MethodGet, hub.Path+"?match=a", nil),
			publishRequest("topic=a", ""),
		} {
			w := e.serve(r)
			if got := w.Header().Get("WWW-Authenticate"); w.Code != 401 || got != tc.want {
				t.Errorf("Resource %q: %s without token = %d, WWW-Authenticate %q; want 401, %q", tc.resource, r.Method, w.Code, got, tc.want)
			}
		}
	}
}
