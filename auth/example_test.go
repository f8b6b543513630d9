package auth_test

import (
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
