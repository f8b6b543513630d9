package hub_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/herald-sse/herald/hub"
)

// FuzzSubscribeHead runs arbitrary query strings through the subscribe
// parser (HEAD, so no stream is opened): every input gets 200 or a 4xx with
// a reason, never a panic or a 5xx.
func FuzzSubscribeHead(f *testing.F) {
	for _, seed := range []string{
		"topic=a", "match=a", "matchURLPattern=https://example.com/:id", "match_urlpattern=/a/*",
		"matchURLPattern=https://example.com/(", "matchURLPattern=%5C", "matchURLPattern=((((((a)*)*)*)*)",
		"topic=a&match=b", "matchFoo=x", "match=%00", "topic={+a}", "matchURLPattern=:a:b:c",
		"matchURLPattern=https://[::1/:x", "matchURLPattern=*://*:*@*:*/*?*#*",
	} {
		f.Add(seed)
	}
	e := newEnv(f, defaultConfig())
	f.Fuzz(func(t *testing.T, query string) {
		r := httptest.NewRequest(http.MethodHead, hub.Path, nil)
		r.URL.RawQuery = query
		w := httptest.NewRecorder()
		e.hub.ServeHTTP(w, r)
		if w.Code != http.StatusOK && (w.Code < 400 || w.Code >= 500) {
			t.Errorf("HEAD ?%q = %d, want 200 or 4xx", query, w.Code)
		}
	})
}
