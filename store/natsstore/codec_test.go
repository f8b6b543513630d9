package natsstore_test

import (
	"strings"
	"testing"

	"github.com/herald-sse/herald/store"
	"github.com/herald-sse/herald/store/natsstore"
)

func TestIDToken(t *testing.T) {
	ids := []string{"", "a", "urn:uuid:01890a5d-ac96-774b-bcce-b302099a8057", "with space.and.dots*>", strings.Repeat("x", store.MaxIDLen)}
	seen := map[string]string{}
	for _, id := range ids {
		tok := natsstore.IDToken(id)
		if len(tok) != 22 || strings.ContainsAny(tok, " .*>\t") {
			t.Errorf("IDToken(%q) = %q, want 22 subject-safe characters", id, tok)
		}
		if other, ok := seen[tok]; ok {
			t.Errorf("IDToken(%q) = IDToken(%q) = %q, want distinct", id, other, tok)
		}
		seen[tok] = id
		if again := natsstore.IDToken(id); again != tok {
			t.Errorf("IDToken(%q) = %q then %q, want stable", id, tok, again)
		}
	}
}
