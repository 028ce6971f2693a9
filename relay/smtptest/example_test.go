package smtptest_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/relay/sasl"
	"github.com/smarthost-go/smarthost/relay/smtptest"
)

// A client submits a message over STARTTLS with AUTH; the server keeps it
// with its envelope and who sent it.
func Example() {
	srv, err := smtptest.NewServer(&smtptest.Options{Users: map[string]string{"alice": "wonderland"}})
	if err != nil {
		panic(err)
	}
	defer srv.Close()

	c, err := smtp.DialStartTLS(srv.Addr, srv.TLSConfig())
	if err != nil {
		panic(err)
	}
	_, offered := c.Extension("AUTH")
	auth, err := sasl.Choose(strings.Fields(offered), sasl.Credentials{Username: "alice", Password: "wonderland"})
	if err != nil {
		panic(err)
	}
	if err := c.Auth(auth); err != nil {
		panic(err)
	}
	err = c.SendMail("bounces@example.com", []string{"bob@example.org"}, strings.NewReader("Subject: hi\r\n\r\nHello.\r\n"))
	if err != nil {
		panic(err)
	}
	c.Quit()

	m := srv.Messages()[0]
	fmt.Println(m.Auth.Mechanism, m.Auth.Username, m.TLS.Version >= 0x0303)
	fmt.Println(m.Envelope.From, m.Envelope.To[0].Addr, m.Envelope.Body)
	fmt.Printf("%q\n", m.Data)
	// Output:
	// SCRAM-SHA-256 alice true
	// bounces@example.com bob@example.org 8BITMIME
	// "Subject: hi\r\n\r\nHello.\r\n"
}

// A fault refuses one recipient; the others are accepted.
func ExampleServer_Fail() {
	srv, err := smtptest.NewServer(&smtptest.Options{TLS: smtptest.NoTLS})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	srv.Fail(smtptest.Fault{
		On:    smtptest.RCPT,
		Rcpt:  "gone@example.org",
		Reply: relay.Reply{Code: 550, Enhanced: relay.EnhancedCode{5, 1, 1}, Message: "No such user"},
	})

	c, err := smtp.Dial(srv.Addr)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	c.Mail("alice@example.com", nil)
	fmt.Println(c.Rcpt("gone@example.org", nil))
	fmt.Println(c.Rcpt("bob@example.org", nil))
	// Output:
	// SMTP error 550: No such user
	// <nil>
}

// Stats show that a client sent two messages on one connection, and how
// many commands (round trips, for a client that does not pipeline) it
// took. A Proxy between them makes each round trip cost its delay.
func ExampleServer_Stats() {
	srv, err := smtptest.NewServer(&smtptest.Options{TLS: smtptest.NoTLS})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	proxy, err := smtptest.NewProxy(srv.Addr, time.Millisecond)
	if err != nil {
		panic(err)
	}
	defer proxy.Close()

	c, err := smtp.Dial(proxy.Addr)
	if err != nil {
		panic(err)
	}
	for range 2 {
		if err := c.SendMail("alice@example.com", []string{"bob@example.org"}, strings.NewReader("Hi.\r\n")); err != nil {
			panic(err)
		}
	}
	c.Quit()

	st := srv.Stats()
	fmt.Println(st.Connections, st.Transactions, st.Messages)
	fmt.Println(st.Commands)
	// Output:
	// 1 2 2
	// map[DATA:2 EHLO:1 MAIL:2 QUIT:1 RCPT:2]
}
