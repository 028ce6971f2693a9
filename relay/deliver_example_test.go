package relay_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"

	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/relay/smtptest"
)

// A spool and its Deliverer: a message committed to the spool (durable
// once Commit returns) is delivered through a Client to a smart host,
// here an smtptest server, and tracked by its events. One recipient is
// refused for good, so its sender gets a DSN, from the null reverse-path.
func ExampleDeliverer() {
	dir, err := os.MkdirTemp("", "spool")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()

	upstream, err := smtptest.NewServer(&smtptest.Options{TLS: smtptest.NoTLS})
	if err != nil {
		log.Fatal(err)
	}
	defer upstream.Close()
	upstream.Fail(smtptest.Fault{On: smtptest.RCPT, Rcpt: "nobody@example.org", Reply: relay.Reply{Code: 550, Enhanced: relay.EnhancedCode{5, 1, 1}, Message: "no such user"}})
	client, err := relay.NewClient(upstream.Addr, &relay.ClientOptions{TLS: relay.NoTLS, LocalName: "relay.example"})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	spool, err := relay.NewSpool(dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	events := make(chan relay.Event, 10)
	d, err := relay.NewDeliverer(spool, client, &relay.DelivererOptions{
		Workers:  1, // one delivery at a time, for the order of the output
		Hostname: "relay.example",
		Events:   relay.EventsFunc(func(_ context.Context, e *relay.Event) { events <- *e }),
	})
	if err != nil {
		log.Fatal(err)
	}

	w, err := spool.Create(ctx)
	if err != nil {
		log.Fatal(err)
	}
	io.WriteString(w, "From: alice@example.com\r\nTo: bob@example.org\r\nSubject: hello\r\nMessage-ID: <m1@example.com>\r\n\r\nHello.\r\n")
	err = w.Commit(ctx, &relay.Entry{
		Envelope:  relay.Envelope{From: "bounces@relay.example", To: relay.To("bob@example.org", "nobody@example.org")},
		Sender:    "alice@example.com",
		MessageID: "<m1@example.com>",
	})
	if err != nil {
		log.Fatal(err)
	}

	run, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- d.Run(run) }()
	// bob delivered, nobody bounced, the DSN accepted and delivered.
	for range 4 {
		e := <-events
		code := 0 // none: no server replied
		if e.Reply != nil {
			code = e.Reply.Code
		}
		fmt.Println(e.Type, e.Rcpt, code)
	}
	stop()
	if err := <-done; err != nil {
		log.Fatal(err)
	}
	spool.Close()

	for _, m := range upstream.Messages() {
		fmt.Printf("from <%s> to %s\n", m.Envelope.From, m.Envelope.To[0].Addr)
	}
	// Output:
	// delivered bob@example.org 250
	// bounced nobody@example.org 550
	// accepted alice@example.com 0
	// delivered alice@example.com 250
	// from <bounces@relay.example> to bob@example.org
	// from <> to alice@example.com
}
