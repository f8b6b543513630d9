package redisstore_test

import (
	"testing"
	"time"

	"github.com/herald-sse/herald/store"
	"github.com/herald-sse/herald/store/redisstore"
	"github.com/herald-sse/herald/store/storetest"
)

func TestPresence(t *testing.T) {
	storetest.RunPresence(t, func(t *testing.T, n int) []store.Presence {
		rdb := newClient(t)
		prefix := newPrefix(t, rdb)
		ps := make([]store.Presence, n)
		for i := range ps {
			p, err := redisstore.NewPresence(rdb, redisstore.PresenceConfig{Prefix: prefix, TTL: 300 * time.Millisecond})
			if err != nil {
				t.Fatalf("NewPresence: %v", err)
			}
			t.Cleanup(func() { p.Close() })
			ps[i] = p
		}
		return ps
	}, true)
}

func TestPresenceConfig(t *testing.T) {
	rdb := newClient(t)
	for _, cfg := range []redisstore.PresenceConfig{{Prefix: "a{b"}, {TTL: -1}, {TTL: time.Millisecond}} {
		if _, err := redisstore.NewPresence(rdb, cfg); err == nil {
			t.Errorf("NewPresence(%+v) = nil error, want one", cfg)
		}
	}
	if _, err := redisstore.NewPresence(nil, redisstore.PresenceConfig{}); err == nil {
		t.Error("NewPresence(nil) = nil error, want one")
	}
}
