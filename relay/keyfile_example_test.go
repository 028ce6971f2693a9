package relay_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"

	"github.com/smarthost-go/smarthost/relay"
)

// A key file made on first use: a key is created for a shop that may send
// from its domain and its subdomains, shown once, and used as the password
// of the user "apikey"; once revoked, it fails.
func ExampleKeyFile() {
	dir, err := os.MkdirTemp("", "keys")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()

	keys, err := relay.OpenKeyFile(ctx, filepath.Join(dir, "keys.json"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer keys.Close()
	key, err := keys.Create(ctx, "shop", []string{relay.ScopeSend}, []string{"shop.example", "*.shop.example"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("key:", strings.HasPrefix(key, relay.KeyPrefix), len(key), "characters")

	acct, err := keys.Authenticate(ctx, relay.KeyUser, key)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(acct.Name, acct.Scopes, acct.Domains, acct.MaySendFrom("news.shop.example"))

	list, _ := keys.List(ctx)
	fmt.Println(len(list), "key:", list[0].Name, list[0].ID == key[4:20])

	if err := keys.Revoke(ctx, "shop"); err != nil {
		log.Fatal(err)
	}
	_, err = keys.Authenticate(ctx, relay.KeyUser, key)
	fmt.Println(errors.Is(err, relay.ErrAuthFailed))
	// Output:
	// key: true 77 characters
	// shop [mail.send] [*.shop.example shop.example] true
	// 1 key: shop true
	// true
}

// Credentials in memory, for tests and for programs that keep their
// accounts elsewhere.
func ExampleStaticAuthenticator() {
	var auth relay.StaticAuthenticator
	auth.Set(relay.KeyUser, "key-of-the-shop", &relay.Account{Name: "shop", Scopes: []string{relay.ScopeSend}, Domains: []string{"shop.example"}})

	acct, err := auth.Authenticate(context.Background(), relay.KeyUser, "key-of-the-shop")
	fmt.Println(acct.Name, err)
	_, err = auth.Authenticate(context.Background(), relay.KeyUser, "another key")
	fmt.Println(err)
	// Output:
	// shop <nil>
	// relay: authentication failed
}
