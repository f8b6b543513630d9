package broker

import (
	"fmt"

	"github.com/herald-sse/herald/store"
)

// PublishLive fans u out to the matching open streams without storing it:
// it gets no Seq, is not replayed to a client that reconnects, and is not
// seen by other brokers sharing the store. It is meant for ephemeral
// notices such as Mercure's subscription events, which must not take the
// place of publishers' updates in a bounded history.
//
// u is validated as by [store.Validate]. Its ID, if any, is sent as the
// event's "id:" field; leave it empty so that a client's Last-Event-ID
// keeps naming its position in the log (an SSE event without an id leaves
// the client's last event id unchanged). A private update goes only to
// streams authorized for one of its topics, as in the log's fan-out. Like
// that fan-out it never blocks: a stream whose queue is full is
// disconnected as too slow.
//
// PublishLive is not ordered with the log's updates: a live update may
// reach a stream before or after log updates published around the same
// time. Streams still replaying queue it behind their replay. It returns
// how many streams it was queued to, and ErrShutdown once Shutdown has
// begun. Safe for concurrent use.
func (b *Broker) PublishLive(u store.Update) (int, error) {
	if err := store.Validate(u); err != nil {
		return 0, fmt.Errorf("broker: publish live: %w", err)
	}
	u.Seq = 0
	buf := b.encode(&u)
	if buf == nil {
		return 0, fmt.Errorf("broker: publish live: %w: cannot be encoded", store.ErrInvalid)
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return 0, ErrShutdown
	}
	// A stream that matches several of u's topics gets u once. The log's
	// fan-out uses subscriber.lastSeq for that, which belongs to the tail
	// goroutine and is not touched here; a set is needed only when u has
	// several topics.
	var seen map[*subscriber]struct{}
	if len(u.Topics) > 1 {
		seen = make(map[*subscriber]struct{})
	}
	n := 0
	deliver := func(s *subscriber) {
		if seen != nil {
			if _, ok := seen[s]; ok {
				return
			}
			seen[s] = struct{}{}
		}
		if u.Private && !s.private.MatchAny(u.Topics) {
			return
		}
		if s.enqueue(buf) {
			n++
		}
	}
	b.matching(u.Topics, nil, deliver) // not the tail: no shared memo
	b.delivered.Add(uint64(n))
	return n, nil
}
