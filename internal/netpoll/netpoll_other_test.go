//go:build !linux

package netpoll_test

import (
	"errors"
	"testing"

	"github.com/herald-sse/herald/internal/netpoll"
)

func TestNewUnsupported(t *testing.T) {
	if _, err := netpoll.New(netpoll.Config{}); !errors.Is(err, netpoll.ErrUnsupported) {
		t.Errorf("New(Config{}) = %v, want ErrUnsupported", err)
	}
}
