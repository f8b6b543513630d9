package e2e_test

import (
	"fmt"
	"net/url"
	"reflect"
	"testing"
	"time"

	"github.com/herald-sse/herald/auth"
	"github.com/herald-sse/herald/hub"
	"github.com/herald-sse/herald/internal/browsertest"
)

// TestMercure1EventSource checks the Mercure 1.0 subscription in a real
// browser: an EventSource with match= and matchURLPattern= parameters, its
// at+jwt access token in the mercureAccessToken cookie, and a page that
// publishes with fetch and an at+jwt token. Private updates reach it only
// where its token's authorization_details grant subscribe; a 0.x
// EventSource on the same page keeps working beside it.
func TestMercure1EventSource(t *testing.T) {
	h := startHub(t, hub.Config{}, nil)
	sign := func(d ...auth.Detail) string {
		tok, err := auth.SignToken(testKey, auth.Claims{Subject: "browser", Details: d}, auth.SignOptions{Style: auth.StyleAccessToken, TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	subTok := sign(auth.Detail{Subscribe: true, Topics: []auth.TopicMatcher{{Match: "/books/:id", Type: auth.MatchURLPattern}}})
	pubTok := sign(auth.Detail{Publish: true, Topics: []auth.TopicMatcher{{Match: "*"}}})

	b := browsertest.New(t)
	p := openHarness(b, h.URL+hub.HealthPath)
	p.Eval(fmt.Sprintf(`document.cookie = "mercureAccessToken=%s; path=/"; true`, subTok), nil)
	q := url.Values{"match": {"/room/1"}, "matchURLPattern": {"/books/:id", "/secret/:id"}}
	p.Eval(fmt.Sprintf(`h.listen(%q)`, h.Endpoint()+"?"+q.Encode()), nil)
	p.Eval(fmt.Sprintf(`h.listen(%q)`, h.Endpoint()+"?topic=/room/1"), nil)
	p.WaitFor("h.opens[0] === 1 && h.opens[1] === 1", 10*time.Second, "h.errors")

	// The page publishes with fetch and an at+jwt token in the header.
	pagePublish := func(form url.Values) {
		t.Helper()
		var status int
		p.Eval(fmt.Sprintf(`fetch(%q, {method: "POST", headers: {Authorization: "Bearer %s"}, body: new URLSearchParams(%q)}).then(r => r.status)`,
			h.Endpoint(), pubTok, form.Encode()), &status)
		if status != 200 {
			t.Fatalf("page publish %v = %d, want 200", form, status)
		}
	}
	pagePublish(url.Values{"topic": {"/room/1"}, "id": {"r1"}, "data": {"room"}})
	pagePublish(url.Values{"topic": {"/secret/1"}, "id": {"s1"}, "data": {"secret"}, "private": {"on"}})
	pagePublish(url.Values{"topic": {"/books/1"}, "id": {"b1"}, "data": {"book"}, "private": {"on"}})
	pagePublish(url.Values{"topic": {"/books/2"}, "id": {"b2"}, "data": {"public book"}})
	pagePublish(url.Values{"topic": {"/room/1"}, "id": {"end"}, "data": {"end"}})

	want := []event{
		{Src: 0, Type: "message", Data: "room", ID: "r1"},
		{Src: 0, Type: "message", Data: "book", ID: "b1"},
		{Src: 0, Type: "message", Data: "public book", ID: "b2"},
		{Src: 0, Type: "message", Data: "end", ID: "end"},
	}
	p.WaitFor(`h.events.filter(e => e.src === 0 && e.id === "end").length === 1 && h.events.filter(e => e.src === 1 && e.id === "end").length === 1`, 10*time.Second, "h.events")
	var got0, got1 []event
	for _, e := range events(p) {
		if e.Src == 0 {
			got0 = append(got0, e)
		} else {
			got1 = append(got1, e)
		}
	}
	if !reflect.DeepEqual(got0, want) {
		t.Errorf("Mercure 1.0 EventSource received\n%+v\nwant\n%+v", got0, want)
	}
	if len(got1) != 2 || got1[0].Data != "room" || got1[1].Data != "end" {
		t.Errorf("0.x EventSource received %+v, want room then end", got1)
	}
}
