package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/smarthost-go/smarthost/relay"
)

// dsnOutcome is how the MX's bounce went.
type dsnOutcome struct {
	to      string
	receipt *relay.Receipt
	err     error
}

// routeBounces sets up the MX's own delivery, by MX through the demo's
// DNS, where the return paths' MX listens on port instead of 25.
func (m *mx) routeBounces(d *dnsWorld, port int) error {
	var err error
	m.dsn, err = relay.NewMXSender(d.resolver, &relay.MXOptions{
		Port:      port,
		AllowAddr: netip.Addr.IsLoopback,
		Client:    &relay.ClientOptions{LocalName: mxHost, Dial: m.o.dialer(mxHost, bounceHost)},
	})
	return err
}

// sendDSN bounces rcpt, a mailbox that no longer exists, to the message's
// return path: a delivery status notification (RFC 3464) in a
// multipart/report (RFC 6522), from the null sender, as Postfix writes
// one, with the header of the message returned.
func (m *mx) sendDSN(got *received, rcpt string) {
	head, _, _ := bytes.Cut(got.data, []byte("\r\n\r\n"))
	const boundary = "AB12C3.1764756300/" + mxHost
	now := time.Now().UTC().Format(time.RFC1123Z)
	dsn := "From: Mail Delivery System <MAILER-DAEMON@" + mxHost + ">\r\n" +
		"To: " + got.mailFrom + "\r\n" +
		"Subject: Undelivered Mail Returned to Sender\r\n" +
		"Date: " + now + "\r\n" +
		"Message-ID: <dsn.AB12C3@" + mxHost + ">\r\n" +
		"Auto-Submitted: auto-replied\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: multipart/report; report-type=delivery-status; boundary=\"" + boundary + "\"\r\n" +
		"\r\n" +
		"--" + boundary + "\r\n" +
		"Content-Type: text/plain; charset=us-ascii\r\n" +
		"\r\n" +
		"Your message could not be delivered to <" + rcpt + ">: no such mailbox.\r\n" +
		"\r\n" +
		"--" + boundary + "\r\n" +
		"Content-Type: message/delivery-status\r\n" +
		"\r\n" +
		"Reporting-MTA: dns; " + mxHost + "\r\n" +
		"Arrival-Date: " + now + "\r\n" +
		"\r\n" +
		"Final-Recipient: rfc822; " + rcpt + "\r\n" +
		"Action: failed\r\n" +
		"Status: 5.1.1\r\n" +
		"Remote-MTA: dns; store." + receiverDomain + "\r\n" +
		"Diagnostic-Code: smtp; 550 5.1.1 <" + rcpt + ">: Recipient address rejected: User unknown\r\n" +
		"\r\n" +
		"--" + boundary + "\r\n" +
		"Content-Type: text/rfc822-headers\r\n" +
		"\r\n" +
		string(head) + "\r\n" +
		"\r\n" +
		"--" + boundary + "--\r\n"
	receipt, err := m.dsn.Send(m.ctx, &relay.Envelope{From: "", To: relay.To(got.mailFrom)}, relay.Bytes(dsn))
	m.dsns <- dsnOutcome{to: got.mailFrom, receipt: receipt, err: err}
}

// bounce plays a message to a mailbox that no longer exists: the MX takes
// it, then bounces it to its return path, where the relay's BounceServer
// turns the DSN into a bounced event and a suppression; the next message
// to that recipient is refused at once.
func (s *story) bounce(ctx context.Context, o *output) error {
	client, err := s.relay.client(appHost)
	if err != nil {
		return err
	}
	defer client.Close()
	const msgID = "<order-1002@customer.example>"
	env := &relay.Envelope{From: appSender, To: relay.To(goneRcpt)}
	receipt, err := client.Send(ctx, env, order(goneRcpt, msgID))
	if err != nil {
		return fmt.Errorf("submitting to %s: %w", goneRcpt, err)
	}
	reply := receipt.Rcpts[0].Reply
	o.printf("  %s -> %s: to %s: %d %s\n", appHost, submissionHost, goneRcpt, reply.Code, reply.Message)
	accepted, err := s.relay.events.wait(ctx, relay.EventAccepted, goneRcpt)
	if err != nil {
		return err
	}
	s.secondIDs = ids{accepted.QueueID, accepted.MessageID}
	delivered, err := s.relay.events.wait(ctx, relay.EventDelivered, goneRcpt)
	if err != nil {
		return err
	}
	o.printf("  %s -> %s (%s): %d %s\n", relayHost, mxHost, delivered.Host, delivered.Reply.Code, delivered.Reply.Message)
	select {
	case <-s.mx.received:
	case <-ctx.Done():
		return fmt.Errorf("the MX received nothing: %w", ctx.Err())
	}

	// The MX finds the mailbox gone and bounces to the return path.
	var sent dsnOutcome
	select {
	case sent = <-s.mx.dsns:
	case <-ctx.Done():
		return fmt.Errorf("the MX sent no bounce: %w", ctx.Err())
	}
	if sent.err != nil {
		return fmt.Errorf("the MX's bounce to %s: %w", sent.to, sent.err)
	}
	o.queries(s.dns.srv.Zone)
	o.printf("  %s bounced it: a DSN to <%s>, by MX (%s via the CNAME to %s) to %s: %d\n",
		mxHost, sent.to, returnPathDomain, target, bounceHost, sent.receipt.Rcpts[0].Reply.Code)

	bounced, err := s.relay.events.wait(ctx, relay.EventBounced, goneRcpt)
	if err != nil {
		return err
	}
	s.bounced = &bounceOutcome{event: bounced}
	o.printf("  event: %s queue_id=%s message_id=%s rcpt=%s hard=%t reply=%q\n", bounced.Type, bounced.QueueID,
		bounced.MessageID, bounced.Rcpt, bounced.Hard, bounced.Reply.Error())
	if err := o.check(bounced.QueueID == accepted.QueueID && bounced.MessageID == msgID && bounced.Hard,
		"the bounce is matched to the message (queue ID %s) and its recipient", accepted.QueueID); err != nil {
		return err
	}
	if s.bounced.suppression, err = s.relay.supp.Suppressed(ctx, accountName, goneRcpt); err != nil {
		return err
	}
	sup := s.bounced.suppression
	if err := o.check(sup != nil && sup.Source == relay.SuppressedByBounce,
		"%s is suppressed for the account %q", goneRcpt, accountName); err != nil {
		return err
	}

	// The next message to it is refused by the relay itself.
	receipt, s.refusal = client.Send(ctx, env, order(goneRcpt, "<order-1003@customer.example>"))
	var r *relay.Reply
	if receipt != nil && len(receipt.Rcpts) == 1 && receipt.Rcpts[0].Reply != nil {
		r = receipt.Rcpts[0].Reply
	} else if !errors.As(s.refusal, &r) {
		return fmt.Errorf("the third message: %v, want a refusal", s.refusal)
	}
	s.third = r
	o.printf("  %s -> %s: to %s again: %d %d.%d.%d %s\n", appHost, submissionHost, goneRcpt, r.Code,
		r.Enhanced[0], r.Enhanced[1], r.Enhanced[2], r.Message)
	return o.check(r.Code == 550 && r.Enhanced == relay.EnhancedCode{5, 1, 1}, "refused at RCPT, without a delivery attempt")
}

// bounceOutcome is what the relay made of the bounce.
type bounceOutcome struct {
	event       relay.Event
	suppression *relay.Suppression
}
