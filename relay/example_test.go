package relay_test

import (
	"context"
	"fmt"

	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/relay/sasl"
	"github.com/smarthost-go/smarthost/relay/smtptest"
)

// A program submits to its provider's smart host over STARTTLS, with the
// API key as the password of the user "apikey". Here the smart host is a
// test server that trusts that key; a refused recipient is reported, and
// the others get the message.
func ExampleClient() {
	const key = "SG.example-api-key"
	srv, err := smtptest.NewServer(&smtptest.Options{Users: map[string]string{"apikey": key}})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	srv.Fail(smtptest.Fault{On: smtptest.RCPT, Rcpt: "gone@example.org",
		Reply: relay.Reply{Code: 550, Enhanced: relay.EnhancedCode{5, 1, 1}, Message: "No such user"}})

	c, err := relay.NewClient(srv.Addr, &relay.ClientOptions{
		TLS:         relay.StartTLS,
		RootCAs:     srv.CertPool(), // a real smart host: nil, the system's roots
		Credentials: &sasl.Credentials{Username: "apikey", Password: key},
	})
	if err != nil {
		panic(err)
	}
	defer c.Close()

	env := &relay.Envelope{From: "bounces@example.com", To: relay.To("bob@example.org", "gone@example.org")}
	msg := relay.Bytes("From: alice@example.com\nTo: bob@example.org\nSubject: Hello\n\nHi Bob.\n")
	rec, err := c.Send(context.Background(), env, msg)
	if err != nil {
		panic(err)
	}
	for _, r := range rec.Rcpts {
		fmt.Println(r.Addr, r.Accepted(), r.Reply.Code, r.Reply.Enhanced, r.Reply.Message)
	}
	m := srv.Messages()[0]
	fmt.Println(m.Auth.Username, m.Auth.Mechanism, m.TLS != nil)
	fmt.Printf("%q\n", m.Data)
	// Output:
	// bob@example.org true 250 2.0.0 OK: queued
	// gone@example.org false 550 5.1.1 No such user
	// apikey SCRAM-SHA-256 true
	// "From: alice@example.com\r\nTo: bob@example.org\r\nSubject: Hello\r\n\r\nHi Bob.\r\n"
}

// Delivery to an MX on port 25: opportunistic TLS, which uses TLS when
// the server offers it and says so in the Receipt.
func ExampleClient_opportunistic() {
	srv, err := smtptest.NewServer(&smtptest.Options{TLS: smtptest.NoTLS})
	if err != nil {
		panic(err)
	}
	defer srv.Close()

	c, err := relay.NewClient(srv.Addr, &relay.ClientOptions{TLS: relay.OpportunisticTLS, LocalName: "mail.example.com"})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	rec, err := c.Send(context.Background(), &relay.Envelope{From: "a@example.com", To: relay.To("b@example.org")}, relay.Bytes("Subject: hi\r\n\r\nHi.\r\n"))
	if err != nil {
		panic(err)
	}
	fmt.Println(rec.Accepted(), "TLS:", rec.TLS != nil, "EHLO", srv.Messages()[0].Helo)
	// Output:
	// [b@example.org] TLS: false EHLO mail.example.com
}
