package e2e_test

import (
	"fmt"
	"net/url"
	"reflect"
	"testing"
	"time"

	"github.com/herald-sse/herald/hub"
	"github.com/herald-sse/herald/internal/browsertest"
)

// TestEventSourceReceivesUpdates checks that a browser's EventSource gets
// published updates in order, with their types (addEventListener for typed
// events, onmessage for the others), their ids as lastEventId and their
// data intact, multi-line data included.
func TestEventSourceReceivesUpdates(t *testing.T) {
	h := startHub(t, hub.Config{}, nil)
	tok := token(t)
	b := browsertest.New(t)
	p := openHarness(b, h.URL+hub.HealthPath)

	p.Eval(fmt.Sprintf(`h.listen(%q, ["greeting", "farewell"])`, h.Endpoint()+"?topic=/room/1"), nil)
	p.WaitFor("h.opens[0] === 1", 10*time.Second, "h.errors")

	updates := []struct {
		id, typ, data string
		want          string // the data the browser sees, if not data
	}{
		{id: "e1", data: "plain"},
		{id: "e2", typ: "greeting", data: "hello"},
		{id: "e3", data: "line 1\nline 2\n\nline 4"},
		{id: "e4", typ: "farewell", data: "a\r\nb\rc"},
		{id: "e5", data: " leading space and trailing \n"},
		{id: "", typ: "greeting", data: "généré, 中文, 🎉"},
		{id: "e7", data: "data: not a field\nid: nor this\n: nor a comment"},
		{id: "e8", data: ""},
	}
	var want []event
	for _, u := range updates {
		form := url.Values{"topic": {"/room/1"}, "data": {u.data}}
		if u.id != "" {
			form.Set("id", u.id)
		}
		if u.typ != "" {
			form.Set("type", u.typ)
		}
		id := publish(t, h.Endpoint(), tok, form)
		if u.id != "" && id != u.id {
			t.Fatalf("publish(id=%q) answered id %q", u.id, id)
		}
		typ := u.typ
		if typ == "" {
			typ = "message"
		}
		data := u.data
		if u.want != "" {
			data = u.want
		}
		want = append(want, event{Type: typ, Data: data, ID: id})
	}
	// An update on another topic must not arrive.
	publish(t, h.Endpoint(), tok, url.Values{"topic": {"/room/2"}, "data": {"elsewhere"}})
	// EventSource normalizes CRLF and CR in data to LF.
	want[3].Data = "a\nb\nc"

	p.WaitFor(fmt.Sprintf("h.events.length >= %d", len(want)), 10*time.Second, "h.events")
	// Publish a marker after everything else, so that an extra event
	// would show up before it.
	last := publish(t, h.Endpoint(), tok, url.Values{"topic": {"/room/1"}, "data": {"end"}})
	want = append(want, event{Type: "message", Data: "end", ID: last})
	p.WaitFor(fmt.Sprintf("h.events.length >= %d", len(want)), 10*time.Second, "h.events")

	got := events(p)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("browser received\n%+v\nwant\n%+v", got, want)
	}
}

// TestEventSourceResumesFromLastEventID checks the lastEventID query
// parameter, which a page uses to resume from an id it stored (after a
// reload, say): the page gets exactly the later updates.
func TestEventSourceResumesFromLastEventID(t *testing.T) {
	h := startHub(t, hub.Config{}, nil)
	tok := token(t)
	for i := 1; i <= 5; i++ {
		publish(t, h.Endpoint(), tok, url.Values{"topic": {"/t"}, "id": {fmt.Sprintf("id-%d", i)}, "data": {fmt.Sprint(i)}})
	}
	b := browsertest.New(t)
	p := openHarness(b, h.URL+hub.HealthPath)
	p.Eval(fmt.Sprintf(`h.listen(%q)`, h.Endpoint()+"?topic=/t&lastEventID=id-3"), nil)
	p.WaitFor("h.events.length >= 2", 10*time.Second, "h.events")
	publish(t, h.Endpoint(), tok, url.Values{"topic": {"/t"}, "id": {"id-6"}, "data": {"6"}})
	p.WaitFor("h.events.length >= 3", 10*time.Second, "h.events")
	want := []event{
		{Type: "message", Data: "4", ID: "id-4"},
		{Type: "message", Data: "5", ID: "id-5"},
		{Type: "message", Data: "6", ID: "id-6"},
	}
	if got := events(p); !reflect.DeepEqual(got, want) {
		t.Errorf("after lastEventID=id-3 the browser received\n%+v\nwant\n%+v", got, want)
	}
}
