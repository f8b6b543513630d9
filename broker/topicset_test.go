package broker

import (
	"slices"
	"testing"
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
