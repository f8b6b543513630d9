package broker

import "slices"

// topicSet holds the subscribers of one exact topic. Most topics have one
// subscriber or a few (a user's private topic, one page's resource), so
// they are kept in a short slice, which costs one small allocation instead
// of a map's two and about 100 bytes less per topic; past topicSetSlice
// the set becomes a map, so that removing one of many subscribers stays
// O(1). It does not shrink back: a topic that was that popular is likely
// to be again.
type topicSet struct {
	few  []*subscriber
	many map[*subscriber]struct{}
	// shared is the Matcher of the topic alone: the subscribers that select
	// only this topic hold it between them instead of one each.
	shared *Matcher
}

// topicSetSlice is the number of subscribers kept in the slice.
const topicSetSlice = 8

func (ts *topicSet) add(s *subscriber) {
	switch {
	case ts.many != nil:
		ts.many[s] = struct{}{}
	case len(ts.few) < topicSetSlice:
		ts.few = append(ts.few, s)
	default:
		ts.many = make(map[*subscriber]struct{}, 2*topicSetSlice)
		for _, x := range ts.few {
			ts.many[x] = struct{}{}
		}
		ts.many[s] = struct{}{}
		ts.few = nil
	}
}

func (ts *topicSet) remove(s *subscriber) {
	if ts.many != nil {
		delete(ts.many, s)
		return
	}
	if i := slices.Index(ts.few, s); i >= 0 {
		last := len(ts.few) - 1
		ts.few[i] = ts.few[last]
		ts.few[last] = nil
		ts.few = ts.few[:last]
	}
}

func (ts *topicSet) len() int { return len(ts.few) + len(ts.many) }
