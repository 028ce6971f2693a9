package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"

	"github.com/smarthost-go/smarthost/examples/internal/cli"
	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/relay/sasl"
)

const (
	appHost   = "app." + customerDomain // the application's host
	appSender = "orders@" + customerDomain
	firstRcpt = "bob@" + receiverDomain
)

// errPort25 is what the application's network does to a connection to
// port 25, as cloud providers do to new accounts.
var errPort25 = errors.New("outbound port 25 is blocked on this network")

// order is the application's message to rcpt.
func order(rcpt, msgID string) relay.Bytes {
	return relay.Bytes("From: Shop <" + appSender + ">\r\n" +
		"To: <" + rcpt + ">\r\n" +
		"Subject: Your order\r\n" +
		"Date: Thu, 03 Dec 2026 10:00:00 +0000\r\n" +
		"Message-ID: " + msgID + "\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"\r\n" +
		"Thank you for your order. It ships tomorrow.\r\n")
}

// app plays the application: it tries to deliver to the recipient's MX
// itself, which its network refuses, then submits through the relay, and
// the MX receives the message signed twice, with the return path, and
// authenticated.
func (s *story) app(ctx context.Context, o *output) error {
	// Directly, by MX, as a mail server would: the network drops port 25.
	var dials atomic.Int32
	direct, err := relay.NewMXSender(s.dns.resolver, &relay.MXOptions{
		AllowAddr:   netip.Addr.IsLoopback,
		MaxAttempts: 1,
		Client: &relay.ClientOptions{LocalName: appHost, Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			if _, port, _ := net.SplitHostPort(addr); port == "25" {
				return nil, &net.OpError{Op: "dial", Net: network, Err: errPort25}
			}
			return nil, fmt.Errorf("dial %s: the demo connects to port 25 only", addr)
		}},
	})
	if err != nil {
		return err
	}
	defer direct.Close()
	const msgID = "<order-1001@customer.example>"
	env := &relay.Envelope{From: appSender, To: relay.To(firstRcpt)}
	_, s.direct = direct.Send(ctx, env, order(firstRcpt, msgID))
	o.printf("  %s -> %s port 25, directly: %s\n", appHost, mxHost, cli.Msg(s.direct))
	o.queries(s.dns.srv.Zone)
	if err := o.check(errors.Is(s.direct, errPort25) && dials.Load() == 1,
		"refused: the application cannot deliver by itself"); err != nil {
		return err
	}

	// Through the smart host: STARTTLS, verified, then AUTH with the key.
	client, err := s.relay.client(appHost)
	if err != nil {
		return err
	}
	defer client.Close()
	receipt, err := client.Send(ctx, env, order(firstRcpt, msgID))
	if err != nil {
		return fmt.Errorf("submitting to the relay: %w", err)
	}
	reply := receipt.Rcpts[0].Reply
	o.printf("  %s -> %s port 587, STARTTLS (%s), AUTH PLAIN apikey: %d %s\n", appHost, submissionHost,
		tls.VersionName(receipt.TLS.Version), reply.Code, reply.Message)
	if err := o.check(receipt.Rcpts[0].Accepted() && len(receipt.TLS.VerifiedChains) > 0, "submitted, over verified TLS"); err != nil {
		return err
	}
	accepted, err := s.relay.events.wait(ctx, relay.EventAccepted, firstRcpt)
	if err != nil {
		return err
	}
	s.firstID = accepted.QueueID

	// At the MX.
	select {
	case s.first = <-s.mx.received:
	case <-ctx.Done():
		return fmt.Errorf("the MX received nothing: %w", ctx.Err())
	}
	o.queries(s.dns.srv.Zone)
	return s.first.show(o, s.firstID)
}

// client returns a smart-host client of the relay that authenticates with
// the customer's API key, over STARTTLS verified with the relay's
// certificate.
func (r *relayWorld) client(localName string) (*relay.Client, error) {
	return relay.NewClient(r.addr, &relay.ClientOptions{
		TLS:         relay.StartTLS,
		TLSConfig:   &tls.Config{ServerName: submissionHost},
		RootCAs:     r.roots,
		Credentials: &sasl.Credentials{Username: relay.KeyUser, Password: r.key},
		LocalName:   localName,
		Dial:        r.o.dialer(localName, submissionHost),
		Logger:      r.o.logger(),
	})
}
