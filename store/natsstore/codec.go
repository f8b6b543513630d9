package natsstore

import (
	"crypto/sha256"
	"encoding/base64"
)

// idToken returns the subject token of an update id: the first 128 bits of
// its SHA-256, in unpadded base64url, so that any id (up to store.MaxIDLen
// bytes of any characters) maps to a short, valid subject token.
func idToken(id string) string {
	sum := sha256.Sum256([]byte(id))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}
