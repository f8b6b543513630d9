package natsstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-sse/herald/store"
	"github.com/herald-sse/herald/store/natsstore"
	"github.com/herald-sse/herald/store/storetest"
)

func TestPresence(t *testing.T) {
	storetest.RunPresence(t, func(t *testing.T, n int) []store.Presence {
		nc := connect(t)
		bucket, subject := uniqueNames(t)
		t.Cleanup(func() { // after the registries are closed
			js, err := jetstream.New(nc)
			if err != nil {
				t.Errorf("jetstream.New: %v", err)
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := js.DeleteKeyValue(ctx, bucket); err != nil && !errorsIsNotFound(err) {
				t.Errorf("DeleteKeyValue(%s): %v", bucket, err)
			}
		})
		ps := make([]store.Presence, n)
		for i := range ps {
			p, err := natsstore.NewPresence(nc, natsstore.PresenceConfig{Bucket: bucket, Subject: subject, TTL: 500 * time.Millisecond})
			if err != nil {
				t.Fatalf("NewPresence: %v", err)
			}
			t.Cleanup(func() { p.Close() })
			ps[i] = p
		}
		return ps
	}, true)
}

func errorsIsNotFound(err error) bool {
	return errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrStreamNotFound)
}

func TestPresenceConfig(t *testing.T) {
	nc := connect(t)
	for _, cfg := range []natsstore.PresenceConfig{{Node: "a.b"}, {Node: "a*"}, {TTL: -1}, {TTL: time.Millisecond}} {
		if _, err := natsstore.NewPresence(nc, cfg); err == nil {
			t.Errorf("NewPresence(%+v) = nil error, want one", cfg)
		}
	}
	if _, err := natsstore.NewPresence(nil, natsstore.PresenceConfig{}); err == nil {
		t.Error("NewPresence(nil) = nil error, want one")
	}
}
