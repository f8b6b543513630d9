package auth_test

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/herald-sse/herald/auth"
)

func ExampleSign() {
	key := []byte("an example secret of at least 32 bytes")
	token, err := auth.Sign(key, auth.Claims{
		Publish:   []string{"https://example.com/books/{id}"},
		Subscribe: []string{"https://example.com/users/alice/{+rest}"},
	}, time.Hour)
	if err != nil {
		fmt.Println(err)
		return
	}

	v, err := auth.NewVerifier(auth.Config{Key: key})
	if err != nil {
		fmt.Println(err)
		return
	}
	c, err := v.Verify(token)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.Publish, c.Subscribe)

	_, err = v.Verify(token + "x")
	fmt.Println(err != nil)
	// Output:
	// [https://example.com/books/{id}] [https://example.com/users/alice/{+rest}]
	// true
}

func ExampleSignToken() {
	// A Mercure 1.0 access token signed with an Ed25519 key, verified with
	// the public half, an audience and an issuer.
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		fmt.Println(err)
		return
	}
	const hubURL = "https://hub.example/.well-known/mercure"
	token, err := auth.SignToken(priv, auth.Claims{
		Subject: "alice",
		Details: []auth.Detail{{
			Subscribe: true,
			Topics:    []auth.TopicMatcher{{Match: "https://example.com/users/alice/*", Type: auth.MatchURLPattern}},
		}},
	}, auth.SignOptions{Style: auth.StyleAccessToken, TTL: time.Hour, Issuer: "https://as.example", Audience: []string{hubURL}})
	if err != nil {
		fmt.Println(err)
		return
	}
	v, err := auth.NewVerifier(auth.Config{PublicKeys: []crypto.PublicKey{pub}, Issuer: "https://as.example", Audience: hubURL})
	if err != nil {
		fmt.Println(err)
		return
	}
	c, err := v.Verify(token)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.Style, c.Subject, c.Matchers("subscribe"), c.Matchers("publish"))

	// An HMAC-signed token is refused: this verifier has no HMAC secret,
	// and a public key never serves as one.
	_, err = v.Verify(func() string { t, _ := auth.Sign(make([]byte, 32), auth.Claims{}, time.Hour); return t }())
	fmt.Println(errors.Is(err, auth.ErrInvalidToken))
	// Output:
	// at+jwt alice [{https://example.com/users/alice/* URLPattern}] []
	// true
}
