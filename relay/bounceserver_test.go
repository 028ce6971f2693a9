package relay_test

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/srs"
)

// The tracked message of the bounce tests: sent by the account "shop" to
// two recipients, with the return path bounces+bncID@bncDomain.
const (
	bncID     = "abcdefghijklmnop"
	bncDomain = "em1234.customer.example"
	bncRP     = "bounces+" + bncID + "@" + bncDomain
	bncSecret = "a bounce test secret"
)

var bncRecord = relay.TrackRecord{
	ID: bncID, QueueID: "Q-ORIG-1", MessageID: "<order-17@customer.example>", Account: "shop",
	Sender: "orders@customer.example", Rcpts: []string{"gone@example.net", "buyer@Example.NET"},
	Created: time.Now().Add(-time.Hour),
}

type bncFixture struct {
	t    *testing.T
	srv  *relay.BounceServer
	addr string
	q    *srvQueue
	supp *relay.MemorySuppressions
	srs  *srs.Rewriter

	mu     sync.Mutex
	events []relay.Event
	logs   bytes.Buffer
}

func bncStart(t *testing.T, edit func(o *relay.BounceServerOptions)) *bncFixture {
	t.Helper()
	fx := &bncFixture{t: t, q: &srvQueue{}, supp: &relay.MemorySuppressions{}}
	tr := &relay.MemoryTracker{}
	if err := tr.Record(context.Background(), &bncRecord); err != nil {
		t.Fatal(err)
	}
	var err error
	if fx.srs, err = srs.NewRewriter("srs.relay.test", []string{bncSecret}, nil); err != nil {
		t.Fatal(err)
	}
	o := relay.BounceServerOptions{
		Hostname:          "mx.relay.test",
		ReturnPathDomains: []string{"EM1234.customer.example."},
		Tracker:           tr,
		SRS:               fx.srs,
		Suppressions:      fx.supp,
		Events: relay.EventsFunc(func(ctx context.Context, e *relay.Event) {
			fx.mu.Lock()
			fx.events = append(fx.events, *e)
			fx.mu.Unlock()
		}),
		Logger: slog.New(slog.NewTextHandler(lockedWriter{&fx.mu, &fx.logs}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if edit != nil {
		edit(&o)
	}
	if fx.srv, err = relay.NewBounceServer(fx.q, &o); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fx.addr = l.Addr().String()
	go func() { _ = fx.srv.Serve(l) }()
	t.Cleanup(func() { fx.srv.Close() })
	return fx
}

func (fx *bncFixture) eventList() []relay.Event {
	fx.mu.Lock()
	defer fx.mu.Unlock()
	return append([]relay.Event(nil), fx.events...)
}

func (fx *bncFixture) logText() string {
	fx.mu.Lock()
	defer fx.mu.Unlock()
	return fx.logs.String()
}

// send delivers msg from the null sender to rcpt and checks the reply to
// the end of DATA.
func (fx *bncFixture) send(rcpt, msg, want string) {
	fx.t.Helper()
	c := srvDial(fx.t, fx.addr, "", 220)
	c.cmd(250, "EHLO mx.example.net")
	c.cmd(250, "MAIL FROM:<>")
	c.cmd(250, "RCPT TO:<"+rcpt+">")
	c.cmd(354, "DATA")
	c.write(msg + ".\r\n")
	c.expectText(want)
	c.cmd(221, "QUIT")
}

// dsn is an RFC 3464 report of the tracked message, with the
// per-recipient blocks given.
func dsn(blocks ...string) string {
	return "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n" +
		"To: " + bncRP + "\r\n" +
		"Subject: Undelivered Mail Returned to Sender\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: multipart/report; report-type=delivery-status; boundary=\"BB\"\r\n" +
		"\r\n" +
		"--BB\r\n" +
		"Content-Type: text/plain\r\n" +
		"\r\n" +
		"I'm sorry to have to inform you that your message could not be delivered.\r\n" +
		"--BB\r\n" +
		"Content-Type: message/delivery-status\r\n" +
		"\r\n" +
		"Reporting-MTA: dns; mx.example.net\r\n" +
		"Arrival-Date: Thu, 3 Dec 2026 10:00:00 +0000\r\n" +
		"\r\n" +
		strings.Join(blocks, "\r\n") +
		"\r\n" +
		"--BB\r\n" +
		"Content-Type: text/rfc822-headers\r\n" +
		"\r\n" +
		"From: Shop <orders@customer.example>\r\n" +
		"To: gone@example.net, buyer@example.net\r\n" +
		"Message-ID: <order-17@customer.example>\r\n" +
		"Subject: Your order\r\n" +
		"\r\n" +
		"--BB--\r\n"
}

func dsnBlock(rcpt, status, diag string) string {
	return "Final-Recipient: rfc822; " + rcpt + "\r\n" +
		"Action: failed\r\n" +
		"Status: " + status + "\r\n" +
		"Remote-MTA: dns; mx.example.net\r\n" +
		"Diagnostic-Code: smtp; " + diag + "\r\n"
}

func TestBounceServerRefuses(t *testing.T) {
	t.Parallel()
	fx := bncStart(t, nil)
	ctx := context.Background()
	forged, err := fx.srs.Forward(ctx, "orders@customer.example")
	if err != nil {
		t.Fatal(err)
	}
	// Change one character of the hash: SRS0=HHHH=TT=...
	i := strings.IndexByte(forged, '=') + 1
	b := []byte(forged)
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	forged = string(b)
	// An SRS address made 60 days ago, beyond the default MaxAge of 21.
	old, err := srs.NewRewriter("srs.relay.test", []string{bncSecret},
		&srs.Options{Now: func() time.Time { return time.Now().Add(-60 * 24 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	expired, err := old.Forward(ctx, "orders@customer.example")
	if err != nil {
		t.Fatal(err)
	}
	// A valid SRS address of another forwarder's domain.
	other, err := srs.NewRewriter("srs.other.example", []string{bncSecret}, nil)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := other.Forward(ctx, "orders@customer.example")
	if err != nil {
		t.Fatal(err)
	}

	c := srvDial(t, fx.addr, "", 220)
	ehlo := c.cmd(250, "EHLO mx.example.net")
	if strings.Contains(ehlo, "AUTH") {
		t.Errorf("AUTH advertised:\n%s", ehlo)
	}
	if !strings.Contains(ehlo, "SIZE 10485760") {
		t.Errorf("SIZE 10485760 (10 MiB) not advertised:\n%s", ehlo)
	}
	c.cmd(250, "MAIL FROM:<>")
	for _, rcpt := range []string{
		"bounces+zzzzzzzzzzzzzzzz@" + bncDomain,      // unknown id
		"bounces+not-base32!@" + bncDomain,           // no id at all
		"postmaster@" + bncDomain,                    // not a return path
		"bounces+" + bncID + "@em9999.other.example", // a domain not served
		"victim@example.org",                         // open relay
		forged,                                       // hash does not verify
		expired,                                      // timestamp too old
		foreign,                                      // valid, but not our domain
	} {
		c.write("RCPT TO:<" + rcpt + ">\r\n")
		c.expectText("550 5.1.1")
	}
	c.write("DATA\r\n") // no valid recipients
	c.expectText("502 5.5.1")
	// No AUTH: go-smtp's reply when the session has none.
	c.write("AUTH PLAIN AGZvbwBiYXI=\r\n")
	c.expectText("504 5.7.4")
	c.cmd(221, "QUIT")
	if ev := fx.eventList(); len(ev) != 0 {
		t.Errorf("events: %+v", ev)
	}
	if e, _ := fx.q.stored(); len(e) != 0 {
		t.Errorf("%d messages queued, want none", len(e))
	}
}

func TestBounceServerDSN(t *testing.T) {
	t.Parallel()
	fx := bncStart(t, nil)
	fx.send("BOUNCES+"+strings.ToUpper(bncID)+"@"+bncDomain, dsn(
		dsnBlock("gone@example.net", "5.1.1", "550 5.1.1 <gone@example.net>: Recipient address rejected: User unknown in local recipient table"),
		dsnBlock("stranger@example.org", "5.1.1", "550 5.1.1 <stranger@example.org>: User unknown"),
	), "250 2.0.0")

	ev := fx.eventList()
	if len(ev) != 1 {
		t.Fatalf("events %+v, want one bounced", ev)
	}
	e := ev[0]
	want := relay.Event{Type: relay.EventBounced, QueueID: "Q-ORIG-1", MessageID: "<order-17@customer.example>",
		Account: "shop", From: "orders@customer.example", Rcpt: "gone@example.net", Host: "mx.example.net", Hard: true,
		Reason: "userunknown"}
	got := e
	got.Time, got.Reply = time.Time{}, nil
	if got != want {
		t.Errorf("event\n%+v\nwant\n%+v", got, want)
	}
	if e.Reply == nil || e.Reply.Code != 550 || e.Reply.Enhanced != (relay.EnhancedCode{5, 1, 1}) ||
		e.Reply.Message != "<gone@example.net>: Recipient address rejected: User unknown in local recipient table" {
		t.Errorf("reply %+v", e.Reply)
	}
	s, err := fx.supp.Suppressed(context.Background(), "shop", "gone@EXAMPLE.net")
	if err != nil || s == nil {
		t.Fatalf("gone@example.net not suppressed for shop: %v", err)
	}
	if s.Source != relay.SuppressedByBounce || s.QueueID != "Q-ORIG-1" || !strings.HasPrefix(s.Reason, "5.1.1 ") {
		t.Errorf("suppression %+v", s)
	}
	if l, _ := fx.supp.List(context.Background(), ""); len(l) != 1 {
		t.Errorf("suppressions %+v, want only gone@example.net", l)
	}
	if !strings.Contains(fx.logText(), "stranger@example.org") {
		t.Errorf("the recipient the message did not have is not logged")
	}
	// The bounce came from the null sender: nothing is sent back.
	if e, _ := fx.q.stored(); len(e) != 0 {
		t.Errorf("%d messages queued, want none", len(e))
	}
}

func TestBounceServerSoftBounce(t *testing.T) {
	t.Parallel()
	fx := bncStart(t, nil)
	// The report names the recipient with its local part in another
	// case: still the message's recipient.
	fx.send(bncRP, dsn(dsnBlock("BUYER@example.net", "5.7.1",
		"550 5.7.1 Message rejected due to content restrictions")), "250 2.0.0")
	ev := fx.eventList()
	if len(ev) != 1 || ev[0].Type != relay.EventBounced || ev[0].Rcpt != "buyer@Example.NET" || ev[0].Hard {
		t.Fatalf("events %+v, want one soft bounced for buyer@Example.NET", ev)
	}
	if ev[0].Reply == nil || ev[0].Reply.Enhanced != (relay.EnhancedCode{5, 7, 1}) {
		t.Errorf("reply %+v", ev[0].Reply)
	}
	if l, _ := fx.supp.List(context.Background(), ""); len(l) != 0 {
		t.Errorf("suppressions %+v, want none for a 5.7.1", l)
	}
}

func TestBounceServerARF(t *testing.T) {
	t.Parallel()
	fx := bncStart(t, nil)
	// RFC 5965 Appendix B.2, addressed to the tracked message.
	arf := "From: <abusedesk@example.net>\r\n" +
		"Date: Thu, 3 Dec 2026 10:00:00 +0000\r\n" +
		"Subject: FW: Your order\r\n" +
		"To: <" + bncRP + ">\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: multipart/report; report-type=feedback-report;\r\n" +
		"\tboundary=\"part1_13d.2e68ed54_boundary\"\r\n" +
		"\r\n" +
		"--part1_13d.2e68ed54_boundary\r\n" +
		"Content-Type: text/plain; charset=\"US-ASCII\"\r\n" +
		"\r\n" +
		"This is an email abuse report for an email message received from IP\r\n" +
		"192.0.2.1 on Thu, 3 Dec 2026 09:00:00 +0000.\r\n" +
		"\r\n" +
		"--part1_13d.2e68ed54_boundary\r\n" +
		"Content-Type: message/feedback-report\r\n" +
		"\r\n" +
		"Feedback-Type: abuse\r\n" +
		"User-Agent: SomeGenerator/1.0\r\n" +
		"Version: 1\r\n" +
		"Original-Mail-From: <" + bncRP + ">\r\n" +
		"Original-Rcpt-To: <buyer@example.net>\r\n" +
		"Arrival-Date: Thu, 3 Dec 2026 09:00:00 +0000\r\n" +
		"Source-IP: 192.0.2.1\r\n" +
		"\r\n" +
		"--part1_13d.2e68ed54_boundary\r\n" +
		"Content-Type: message/rfc822\r\n" +
		"\r\n" +
		"From: Shop <orders@customer.example>\r\n" +
		"To: buyer@example.net\r\n" +
		"Message-ID: <order-17@customer.example>\r\n" +
		"Subject: Your order\r\n" +
		"\r\n" +
		"Thank you for your order.\r\n" +
		"--part1_13d.2e68ed54_boundary--\r\n"
	fx.send(bncRP, arf, "250 2.0.0")
	ev := fx.eventList()
	if len(ev) != 1 || ev[0].Type != relay.EventSpamReport || ev[0].Rcpt != "buyer@Example.NET" ||
		ev[0].QueueID != "Q-ORIG-1" || ev[0].Account != "shop" || ev[0].Reason != "abuse" {
		t.Fatalf("events %+v, want one spamreport for buyer@Example.NET", ev)
	}
	s, err := fx.supp.Suppressed(context.Background(), "shop", "buyer@example.net")
	if err != nil || s == nil || s.Source != relay.SuppressedBySpamReport {
		t.Fatalf("suppression %+v, %v; want one by spamreport", s, err)
	}
}

func TestBounceServerAutoReply(t *testing.T) {
	t.Parallel()
	fx := bncStart(t, nil)
	fx.send(bncRP, "From: buyer@example.net\r\n"+
		"To: "+bncRP+"\r\n"+
		"Subject: Out of office\r\n"+
		"Auto-Submitted: auto-replied\r\n"+ // RFC 3834 §5
		"\r\n"+
		"I am away until Monday.\r\n", "250 2.0.0")
	if ev := fx.eventList(); len(ev) != 0 {
		t.Errorf("events %+v, want none for an auto-reply", ev)
	}
	if l, _ := fx.supp.List(context.Background(), ""); len(l) != 0 {
		t.Errorf("suppressions %+v, want none", l)
	}
	if !strings.Contains(fx.logText(), "kind=autoreply") {
		t.Errorf("the auto-reply is not logged:\n%s", fx.logText())
	}
}

func TestBounceServerMalformedReport(t *testing.T) {
	t.Parallel()
	// A per-recipient block of junk before the valid one.
	junk := "Final-Recipient rfc822 nobody\r\n" + // no colon
		"Action: \x01\x02exploded\r\n" +
		"Status: 9.99.999999999999999999999\r\n" +
		"Diagnostic-Code: \r\n" +
		strings.Repeat("X-Junk: "+strings.Repeat("z", 900)+"\r\n", 5)
	junkBlock := dsn(junk, dsnBlock("gone@example.net", "5.1.1", "550 5.1.1 User unknown"))
	// After the valid report part: a returned message whose base64 is
	// not base64, a second report part with broken quoted-printable, and
	// no closing delimiter (RFC 2046 §5.1.1).
	brokenParts := strings.Replace(dsn(dsnBlock("gone@example.net", "5.1.1", "550 5.1.1 User unknown")),
		"--BB\r\nContent-Type: text/rfc822-headers\r\n\r\n",
		"--BB\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64@@@\r\n"+
			"--BB\r\nContent-Type: message/delivery-status\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"+
			"Final-Recipient: =ZZ=\r\nAction: failed\r\n\r\n", 1)
	brokenParts = strings.TrimSuffix(brokenParts, "--BB--\r\n")
	for name, msg := range map[string]string{"junk block": junkBlock, "broken parts": brokenParts} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fx := bncStart(t, nil)
			fx.send(bncRP, msg, "250 2.0.0")
			ev := fx.eventList()
			if len(ev) != 1 || ev[0].Rcpt != "gone@example.net" || !ev[0].Hard {
				t.Fatalf("events %+v, want the valid block's hard bounce of gone@example.net", ev)
			}
			if s, _ := fx.supp.Suppressed(context.Background(), "shop", "gone@example.net"); s == nil {
				t.Errorf("gone@example.net not suppressed")
			}
		})
	}
}

func TestBounceServerSizeLimit(t *testing.T) {
	t.Parallel()
	fx := bncStart(t, nil)
	c := srvDial(t, fx.addr, "", 220)
	c.cmd(250, "EHLO mx.example.net")
	c.cmd(250, "MAIL FROM:<>")
	c.cmd(250, "RCPT TO:<"+bncRP+">")
	c.cmd(354, "DATA")
	// A valid DSN of 50 MiB: a hard bounce, padded in its text part.
	msg := dsn(dsnBlock("gone@example.net", "5.1.1", "550 5.1.1 User unknown"))
	pad := strings.Repeat(strings.Repeat("y", 1022)+"\r\n", 50<<10) // 50 MiB
	msg = strings.Replace(msg, "could not be delivered.\r\n", "could not be delivered.\r\n"+pad, 1)
	// In pieces, each with its own write deadline: under the race
	// detector on a busy machine the whole takes longer than one.
	msg += ".\r\n"
	for len(msg) > 0 {
		n := min(len(msg), 1<<20)
		c.write(msg[:n])
		msg = msg[n:]
	}
	c.expectText("552 5.3.4")
	c.cmd(250, "NOOP")
	if ev := fx.eventList(); len(ev) != 0 {
		t.Errorf("events %+v, want none for a message refused", ev)
	}
	if l, _ := fx.supp.List(context.Background(), ""); len(l) != 0 {
		t.Errorf("suppressions %+v, want none", l)
	}
}

func TestBounceServerSRS(t *testing.T) {
	t.Parallel()
	fx := bncStart(t, nil)
	addr, err := fx.srs.Forward(context.Background(), "orders@customer.example")
	if err != nil {
		t.Fatal(err)
	}
	msg := dsn(dsnBlock("gone@example.net", "5.1.1", "550 5.1.1 User unknown"))
	fx.send(addr, msg, "250 2.0.0 OK: queued as Q0001")
	entries, contents := fx.q.stored()
	if len(entries) != 1 {
		t.Fatalf("%d messages queued, want 1", len(entries))
	}
	e := entries[0]
	if e.Envelope.From != "" || e.Sender != "" {
		t.Errorf("envelope sender %q, sender %q; want the null sender", e.Envelope.From, e.Sender)
	}
	if len(e.Envelope.To) != 1 || e.Envelope.To[0].Addr != "orders@customer.example" {
		t.Errorf("recipients %+v, want orders@customer.example", e.Envelope.To)
	}
	got := string(contents[0])
	if !strings.HasPrefix(got, "Received: from mx.example.net ([127.0.0.1])\r\n\tby mx.relay.test with ESMTP id ") {
		t.Errorf("content does not begin with the Received field:\n%.200s", got)
	}
	if !strings.HasSuffix(got, msg) {
		t.Errorf("content is not the message as sent")
	}
	// Forwarded, not parsed: no event, no suppression.
	if ev := fx.eventList(); len(ev) != 0 {
		t.Errorf("events %+v, want none", ev)
	}
	// A bounce and an SRS address in one transaction are refused apart.
	c := srvDial(t, fx.addr, "", 220)
	c.cmd(250, "EHLO mx.example.net")
	c.cmd(250, "MAIL FROM:<>")
	c.cmd(250, "RCPT TO:<"+addr+">")
	c.write("RCPT TO:<" + bncRP + ">\r\n")
	c.expectText("452 4.5.3")
}

func TestBounceServerOptions(t *testing.T) {
	t.Parallel()
	if _, err := relay.NewBounceServer(&srvQueue{}, &relay.BounceServerOptions{Hostname: "mx.relay.test",
		ReturnPathDomains: []string{bncDomain}}); err == nil {
		t.Error("ReturnPathDomains without a Tracker accepted")
	}
	if _, err := relay.NewBounceServer(&srvQueue{}, &relay.BounceServerOptions{Hostname: "mx.relay.test",
		ReturnPathDomains: []string{"not a domain"}, Tracker: &relay.MemoryTracker{}}); err == nil {
		t.Error("a return-path domain that is no domain name accepted")
	}
}

// TestBounceServerRoundTrip sends a message through a Server that tracks
// it in a FileTracker, and its bounce to a BounceServer that reads the
// same file through a FileTracker of its own, as a second process would.
func TestBounceServerRoundTrip(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "tracking.jsonl")
	send, err := relay.NewFileTracker(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer send.Close()
	recv, err := relay.NewFileTracker(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	sfx := srvStart(t, func(o *relay.ServerOptions) { o.Tracker = send })
	if _, err := srvSend(t, sfx, srvKey, "orders@customer.example", []string{"gone@example.net", "buyer@example.net"}, srvMessage); err != nil {
		t.Fatal(err)
	}
	entries, _ := sfx.q.stored()
	if len(entries) != 1 {
		t.Fatalf("%d messages queued", len(entries))
	}
	orig := entries[0]
	fx := bncStart(t, func(o *relay.BounceServerOptions) { o.Tracker = recv })
	fx.send(orig.Envelope.From, dsn(dsnBlock("gone@example.net", "5.1.1", "550 5.1.1 User unknown")), "250 2.0.0")
	ev := fx.eventList()
	if len(ev) != 1 || ev[0].Type != relay.EventBounced || ev[0].QueueID != orig.ID || ev[0].MessageID != orig.MessageID ||
		ev[0].Account != "shop" || ev[0].Rcpt != "gone@example.net" || !ev[0].Hard {
		t.Fatalf("events %+v, want one hard bounced of gone@example.net for %s", ev, orig.ID)
	}
	if s, _ := fx.supp.Suppressed(context.Background(), "shop", "gone@example.net"); s == nil || s.QueueID != orig.ID {
		t.Errorf("suppression %+v", s)
	}
}

func TestBounceServerLimits(t *testing.T) {
	t.Parallel()
	fx := bncStart(t, func(o *relay.BounceServerOptions) { o.MaxConnectionsPerIP = 1 })
	c := srvDial(t, fx.addr, "", 220)
	c.cmd(250, "EHLO mx.example.net")
	// A second connection from the same address: 421 4.7.0.
	c2 := srvDial(t, fx.addr, "", 421)
	if !c2.closed() {
		t.Error("the connection over the limit stays open")
	}
	// Ten recipients by default; the eleventh gets 452 4.5.3.
	c.cmd(250, "MAIL FROM:<>")
	for range 10 {
		c.cmd(250, "RCPT TO:<"+bncRP+">")
	}
	c.write("RCPT TO:<" + bncRP + ">\r\n")
	c.expectText("452 4.5.3")
	// A bare LF in the content is refused (strict CRLF, as Server).
	c.cmd(354, "DATA")
	c.write("From: a@example.net\nSubject: x\r\n\r\nbody\r\n.\r\n")
	c.expectText("550 5.5.2")
	if ev := fx.eventList(); len(ev) != 0 {
		t.Errorf("events %+v, want none", ev)
	}
}

func TestBounceServerReadTimeout(t *testing.T) {
	t.Parallel()
	fx := bncStart(t, func(o *relay.BounceServerOptions) { o.ReadTimeout = time.Second })
	// A bounce stalled in the middle of its content reports nothing.
	c := srvDial(t, fx.addr, "", 220)
	c.cmd(250, "EHLO mx.example.net")
	c.cmd(250, "MAIL FROM:<>")
	c.cmd(250, "RCPT TO:<"+bncRP+">")
	c.cmd(354, "DATA")
	c.write(dsn(dsnBlock("gone@example.net", "5.1.1", "550 5.1.1 User unknown"))[:400])
	c.expectText("421 4.4.2")
	if !c.closed() {
		t.Error("the connection is still open after the timeout")
	}
	if ev := fx.eventList(); len(ev) != 0 {
		t.Errorf("events %+v, want none", ev)
	}
}

// A feedback report sent to an abuse address finds its message by the
// return path of the message it returns: a spamreport event and a
// suppression. A report about a message not tracked is accepted and only
// logged; anything but a report is refused; an abuse address and a
// return path are not mixed in one transaction.
func TestBounceServerAbuseAddress(t *testing.T) {
	t.Parallel()
	fx := bncStart(t, func(o *relay.BounceServerOptions) {
		o.AbuseAddresses = []string{"Abuse@Relay.test"}
	})
	arf := func(returnPath string) string {
		return "From: <fbl@mailbox.example>\r\n" +
			"To: <abuse@relay.test>\r\n" +
			"Subject: complaint\r\n" +
			"MIME-Version: 1.0\r\n" +
			"Content-Type: multipart/report; report-type=feedback-report; boundary=\"b1\"\r\n" +
			"\r\n" +
			"--b1\r\n" +
			"Content-Type: text/plain\r\n" +
			"\r\n" +
			"A complaint.\r\n" +
			"--b1\r\n" +
			"Content-Type: message/feedback-report\r\n" +
			"\r\n" +
			"Feedback-Type: abuse\r\n" +
			"User-Agent: SomeGenerator/1.0\r\n" +
			"Version: 1\r\n" +
			"Original-Rcpt-To: <buyer@example.net>\r\n" +
			"\r\n" +
			"--b1\r\n" +
			"Content-Type: message/rfc822\r\n" +
			"\r\n" +
			"Return-Path: <" + returnPath + ">\r\n" +
			"From: Shop <orders@customer.example>\r\n" +
			"To: buyer@example.net\r\n" +
			"Message-ID: <order-17@customer.example>\r\n" +
			"\r\n" +
			"Thank you for your order.\r\n" +
			"--b1--\r\n"
	}
	fx.send("abuse@relay.test", arf(bncRP), "250 2.0.0")
	ev := fx.eventList()
	if len(ev) != 1 || ev[0].Type != relay.EventSpamReport || ev[0].QueueID != "Q-ORIG-1" || ev[0].Account != "shop" {
		t.Fatalf("events %+v, want one spamreport for Q-ORIG-1", ev)
	}
	if s, err := fx.supp.Suppressed(context.Background(), "shop", "buyer@example.net"); err != nil || s == nil || s.Source != relay.SuppressedBySpamReport {
		t.Errorf("suppression %+v, %v; want one from the spam report", s, err)
	}

	fx.send("abuse@relay.test", arf("bounces+UNKNOWN@em1234.customer.example"), "250 2.0.0")
	if n := len(fx.eventList()); n != 1 {
		t.Errorf("%d events after a report about a message not tracked, want still 1", n)
	}
	if !strings.Contains(fx.logText(), "feedback report about a message not tracked") {
		t.Error("the report about a message not tracked is not logged")
	}

	fx.send("abuse@relay.test", "From: <someone@example.org>\r\nSubject: you spam me\r\n\r\nStop it.\r\n", "550 5.7.1 ")

	c := srvDial(t, fx.addr, "", 220)
	c.cmd(250, "EHLO mx.example.net")
	c.cmd(250, "MAIL FROM:<>")
	c.cmd(250, "RCPT TO:<abuse@relay.test>")
	c.expectTextAfter("RCPT TO:<"+bncRP+">", "452 ")
	c.cmd(221, "QUIT")
	fx.q.mu.Lock()
	queued := fx.q.creates
	fx.q.mu.Unlock()
	if queued != 0 {
		t.Errorf("%d messages queued, want none", queued)
	}
}
