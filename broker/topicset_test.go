package broker

import (
	"slices"
	"testing"

	"github.com/herald-sse/herald/store/memstore"
)

// TestTopicSet adds and removes subscribers across the slice-to-map
// switch and checks the members after every step.
func TestTopicSet(t *testing.T) {
	subs := make([]*subscriber, 3*topicSetSlice)
	for i := range subs {
		subs[i] = &subscriber{}
	}
	var ts topicSet
	want := map[*subscriber]bool{}
	check := func(step string) {
		t.Helper()
		got := map[*subscriber]bool{}
		for _, s := range ts.few {
			got[s] = true
		}
		for s := range ts.many {
			got[s] = true
		}
		if ts.len() != len(want) || len(got) != len(want) {
			t.Fatalf("%s: len() = %d, members %d, want %d", step, ts.len(), len(got), len(want))
		}
		for s := range want {
			if !got[s] {
				t.Fatalf("%s: a member is missing", step)
			}
		}
	}
	for i, s := range subs {
		ts.add(s)
		want[s] = true
		check("add " + string(rune('a'+i)))
		if i < topicSetSlice && ts.many != nil {
			t.Fatalf("map after %d subscribers, want the slice up to %d", i+1, topicSetSlice)
		}
	}
	if ts.many == nil {
		t.Fatalf("still a slice with %d subscribers", len(subs))
	}
	ts.remove(&subscriber{}) // not a member
	check("remove a stranger")
	for _, i := range []int{5, 0, len(subs) - 1, 7, 8} {
		ts.remove(subs[i])
		delete(want, subs[i])
		check("remove")
	}

	// In slice form, removal keeps the other members.
	var small topicSet
	for _, s := range subs[:4] {
		small.add(s)
	}
	small.remove(subs[1])
	if got := small.few; len(got) != 3 || slices.Contains(got, subs[1]) || !slices.Contains(got, subs[0]) || !slices.Contains(got, subs[3]) {
		t.Fatalf("after removing the second of 4: %d members, wrong ones", len(got))
	}
}

// TestSharedTopicMatcher checks that the streams of one exact topic share
// its matcher, that streams with other selectors keep their own, and that
// the index forgets the topic (and its matcher) when its last stream ends.
func TestSharedTopicMatcher(t *testing.T) {
	st := memstore.New(memstore.Config{})
	defer st.Close()
	b, err := New(st, Config{NoPark: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Shutdown(t.Context())
	sub := func(selectors ...string) *subscriber {
		t.Helper()
		m, err := NewMatcher(selectors)
		if err != nil {
			t.Fatal(err)
		}
		s := newSubscriber(b, m, nil)
		if _, err := b.register(s, 0); err != nil {
			t.Fatal(err)
		}
		b.subWG.Done() // no stream handler owns it
		return s
	}
	a1, a2 := sub("a"), sub("a")
	two, tmpl := sub("a", "b"), sub("a", "{x}")
	if a1.topics != a2.topics {
		t.Error("two streams of topic a hold two matchers, want one shared")
	}
	if two.topics == a1.topics || tmpl.topics == a1.topics {
		t.Error("a stream with other selectors got topic a's shared matcher")
	}
	for _, s := range []*subscriber{a1, a2, two, tmpl} {
		if !s.topics.Match("a") {
			t.Errorf("matcher %v does not match a", s.topics.exact)
		}
	}
	for _, s := range []*subscriber{a1, a2, two, tmpl} {
		b.unregister(s)
	}
	if _, ok := b.exact["a"]; ok || len(b.exact) != 0 {
		t.Errorf("index after every stream ended: %d topics, want none", len(b.exact))
	}
}
