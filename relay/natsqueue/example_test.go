package natsqueue_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/relay/natsqueue"
)

// A queue on an embedded JetStream server: a message committed (durable
// once Commit returns), leased by a worker that delivers one recipient
// and defers the other, leased again when due, and done.
func Example() {
	dir, err := os.MkdirTemp("", "jetstream")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true, JetStream: true, StoreDir: dir})
	if err != nil {
		log.Fatal(err)
	}
	ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(10 * time.Second) {
		log.Fatal("server not ready")
	}
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		log.Fatal(err)
	}

	ctx := context.Background()
	q, err := natsqueue.New(ctx, js, &natsqueue.Options{Prefix: "EXAMPLE"})
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()

	w, err := q.Create(ctx)
	if err != nil {
		log.Fatal(err)
	}
	io.WriteString(w, "Subject: hello\r\n\r\nHello.\r\n")
	err = w.Commit(ctx, &relay.Entry{
		Envelope: relay.Envelope{From: "bounces@relay.example", To: relay.To("bob@example.org", "carol@example.net")},
		Sender:   "alice@example.com",
	})
	if err != nil {
		log.Fatal(err)
	}

	l, err := q.Lease(ctx)
	if err != nil {
		log.Fatal(err)
	}
	e := l.Entry()
	e.Attempts++
	e.Rcpts[0].Status = relay.RcptDelivered
	if err := l.Retry(ctx, time.Now()); err != nil { // carol: try again at once
		log.Fatal(err)
	}

	l, err = q.Lease(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range l.Entry().Rcpts {
		fmt.Println(r.Addr, r.Status)
	}
	fmt.Println("attempts:", l.Entry().Attempts)
	if err := l.Done(ctx); err != nil {
		log.Fatal(err)
	}

	poll, cancel := context.WithCancel(ctx)
	cancel()
	_, err = q.Lease(poll)
	fmt.Println("then:", errors.Is(err, context.Canceled))
	// Output:
	// bob@example.org delivered
	// carol@example.net pending
	// attempts: 1
	// then: true
}
