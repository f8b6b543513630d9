package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrPresenceLost reports, from [Presence.Renew], that this node's entries
// were removed by another node because it had not renewed them within the
// TTL (it was presumed crashed). The caller adds its entries again.
var ErrPresenceLost = errors.New("store: presence entries expired; add them again")

// Presence is a registry of the subscriptions open on every node that
// shares it, kept apart from the history: entries cost no log positions,
// and their changes are announced live to every node's watchers, never
// stored for replay.
//
// Each node owns its entries. A node that stops renewing them (it crashed,
// or lost the engine for longer than the TTL) has them removed by the
// other nodes' Renew, and each removed entry is announced exactly once,
// inactive, as if the node had removed it. Implementations are safe for
// concurrent use; the caller that opened one closes it.
//
// Changes are delivered at most once: a watcher that is disconnected from
// the engine, or too slow, misses them (List is the source of truth).
type Presence interface {
	// Add records that this node holds the entry key (at most 1 KiB, no
	// newline) with data, and announces it active to every watcher. Adding
	// a key this node already holds replaces its data and announces it
	// again.
	Add(ctx context.Context, key string, data []byte) error

	// Remove deletes this node's entry key and announces it inactive,
	// with its last data. Removing a key this node does not hold does
	// nothing.
	Remove(ctx context.Context, key string) error

	// List returns the entries of every node whose entries have not
	// expired, in no particular order. A key held by several nodes is
	// listed once per node.
	List(ctx context.Context) ([]PresenceEntry, error)

	// Renew keeps this node's entries alive for another TTL, and removes
	// (announcing them inactive) the entries of nodes that did not renew
	// theirs in time. Call it every TTL/3 or so. It returns
	// ErrPresenceLost when this node's own entries had expired.
	Renew(ctx context.Context) error

	// TTL is how long a node's entries outlive its last Renew; zero means
	// they never expire (a registry of one process).
	TTL() time.Duration

	// Leave removes every entry of this node, announcing each inactive:
	// the node is shutting down cleanly.
	Leave(ctx context.Context) error

	// Watch returns a watcher of every node's changes from now on. It
	// returns once the watcher is subscribed: changes made after Watch
	// returns are delivered to it. The caller closes the watcher.
	Watch(ctx context.Context) (PresenceWatcher, error)

	// Close releases the registry's resources; it does not remove this
	// node's entries (call Leave first). Calls after Close return
	// ErrClosed. Close is idempotent.
	Close() error
}

// PresenceWatcher receives the changes of a [Presence] registry.
type PresenceWatcher interface {
	// Next returns the next change, waiting for it until ctx is done
	// (ctx.Err()) or the watcher or its registry is closed (ErrClosed).
	Next(ctx context.Context) (PresenceChange, error)
	// Close ends the watcher; a pending Next returns ErrClosed.
	Close() error
}

// PresenceEntry is one entry of a [Presence] registry.
type PresenceEntry struct {
	// Key identifies the entry on its node, as given to Add.
	Key string
	// Data is what was given to Add; the registry does not interpret it.
	Data []byte
}

// PresenceChange is an entry that was added (Active) or removed.
type PresenceChange struct {
	PresenceEntry
	// Active is true for an added entry, false for a removed or expired
	// one.
	Active bool
}

// MaxPresenceKeyLen is the longest key a [Presence] registry accepts.
const MaxPresenceKeyLen = 1024

// ValidatePresenceKey reports whether key can be a presence entry's key:
// non-empty, at most MaxPresenceKeyLen bytes, without a newline. Its errors
// wrap ErrInvalid.
func ValidatePresenceKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty presence key", ErrInvalid)
	case len(key) > MaxPresenceKeyLen:
		return fmt.Errorf("%w: presence key longer than %d bytes", ErrInvalid, MaxPresenceKeyLen)
	}
	for i := 0; i < len(key); i++ {
		if key[i] == '\n' {
			return fmt.Errorf("%w: presence key contains a newline", ErrInvalid)
		}
	}
	return nil
}
