package natsqueue_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/relay/natsqueue"
)

// Two relay instances share their API keys through a JetStream bucket: a
// key created on one authenticates on the other, and once revoked there
// fails on the first. The NATS server here is embedded, with its store in
// a temporary directory.
func ExampleKeys() {
	dir, err := os.MkdirTemp("", "nats")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	if err != nil {
		log.Fatal(err)
	}
	go srv.Start()
	defer srv.Shutdown()
	if !srv.ReadyForConnections(30 * time.Second) {
		log.Fatal("the NATS server did not start")
	}
	ctx := context.Background()
	// Each instance has its own connection, closed after its Keys.
	var cleanup []func()
	defer func() {
		for _, f := range cleanup {
			f()
		}
	}()
	instance := func() *natsqueue.Keys {
		nc, err := natsqueue.Connect(ctx, srv.ClientURL(), nil)
		if err != nil {
			log.Fatal(err)
		}
		js, err := jetstream.New(nc)
		if err != nil {
			log.Fatal(err)
		}
		keys, err := natsqueue.NewKeys(ctx, js, nil)
		if err != nil {
			log.Fatal(err)
		}
		cleanup = append(cleanup, func() { keys.Close(); nc.Close() })
		return keys
	}
	a, b := instance(), instance()

	key, err := a.Create(ctx, "shop", []string{relay.ScopeSend}, []string{"shop.example"})
	if err != nil {
		log.Fatal(err)
	}
	// The change reaches b through its watcher, a moment later.
	acct, err := b.Authenticate(ctx, relay.KeyUser, key)
	for err != nil {
		time.Sleep(5 * time.Millisecond)
		acct, err = b.Authenticate(ctx, relay.KeyUser, key)
	}
	fmt.Println("on b:", acct.Name, acct.Domains)

	if err := b.Revoke(ctx, "shop"); err != nil {
		log.Fatal(err)
	}
	_, err = a.Authenticate(ctx, relay.KeyUser, key)
	for err == nil {
		time.Sleep(5 * time.Millisecond)
		_, err = a.Authenticate(ctx, relay.KeyUser, key)
	}
	fmt.Println("on a, revoked:", err)
	// Output:
	// on b: shop [shop.example]
	// on a, revoked: relay: authentication failed
}
