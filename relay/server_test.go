package relay_test

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	gosasl "github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/smarthost-go/smarthost/dkim"
	"github.com/smarthost-go/smarthost/relay"
)

// srvSend submits one message with go-smtp's client over STARTTLS and
// AUTH PLAIN (its EHLO name is "localhost"), and returns the text of the reply to its end.
func srvSend(t *testing.T, fx *srvFixture, key, from string, to []string, msg string) (string, error) {
	t.Helper()
	c, err := smtp.DialStartTLS(fx.addr, fx.client)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(gosasl.NewPlainClient("", "apikey", key)); err != nil {
		return "", err
	}
	if err := c.Mail(from, nil); err != nil {
		return "", err
	}
	for _, r := range to {
		if err := c.Rcpt(r, nil); err != nil {
			return "", err
		}
	}
	w, err := c.Data()
	if err != nil {
		return "", err
	}
	if _, err := io.WriteString(w, msg); err != nil {
		return "", err
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		return "", err
	}
	_ = c.Quit()
	return resp.StatusText, nil
}

// srvVerify verifies the DKIM signatures of a queued message and returns
// the domains whose signatures passed.
func srvVerify(t *testing.T, fx *srvFixture, msg []byte) []string {
	t.Helper()
	res, err := fx.verifier.Verify(context.Background(), bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	var pass []string
	for _, r := range res {
		if r.Status != dkim.Pass {
			t.Errorf("d=%s s=%s: %s (%v)", r.Domain, r.Selector, r.Status, r.Err)
			continue
		}
		pass = append(pass, r.Domain)
	}
	return pass
}

func TestServerSubmission(t *testing.T) {
	t.Parallel()
	fx := srvStart(t, nil)
	to := []string{"buyer@example.net", "second@example.org"}
	status, err := srvSend(t, fx, srvKey, "orders@customer.example", to, srvMessage)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(status, "queued as Q0001") {
		t.Errorf("reply %q does not give the queue ID", status)
	}
	entries, msgs := fx.q.stored()
	if len(entries) != 1 {
		t.Fatalf("%d messages queued, want 1", len(entries))
	}
	e, msg := entries[0], msgs[0]

	// The envelope: the return path of customer.example, the sender kept
	// for DSNs, the recipients pending.
	id, ok := relay.ReturnPathID(e.Envelope.From)
	if !ok || e.Envelope.From != "bounces+"+id+"@em1234.customer.example" {
		t.Errorf("Envelope.From %q, want bounces+ID@em1234.customer.example", e.Envelope.From)
	}
	if e.Sender != "orders@customer.example" || e.Account != "shop" {
		t.Errorf("Sender %q Account %q", e.Sender, e.Account)
	}
	var addrs []string
	for i, r := range e.Envelope.To {
		addrs = append(addrs, r.Addr)
		if e.Rcpts[i].Addr != r.Addr || e.Rcpts[i].Status != relay.RcptPending {
			t.Errorf("Rcpts[%d] = %+v", i, e.Rcpts[i])
		}
	}
	if !slices.Equal(addrs, to) || len(e.Rcpts) != 2 {
		t.Errorf("To %v (%d states), want %v", addrs, len(e.Rcpts), to)
	}

	// The content: Received first, with TLS and AUTH as Postfix writes
	// them and the ID of the return path; the message as sent; a
	// Message-ID and a Date added at the end of the header.
	content := string(msg[len(e.Header):])
	received := regexp.MustCompile(`^Received: from localhost \(\[127\.0\.0\.1\]\)\r\n` +
		`\t\(using TLSv1\.3 with cipher TLS_[A-Z0-9_]+ \(\d+/\d+ bits\)\r\n` +
		`\t key-exchange [A-Za-z0-9]+\)\r\n` +
		`\t\(No client certificate requested\)\r\n` +
		`\t\(Authenticated sender: shop\)\r\n` +
		`\tby relay\.test with ESMTPSA id ([a-z2-7]+);\r\n` +
		`\t[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [+-]\d{4}\r\n`)
	m := received.FindStringSubmatch(content)
	if m == nil {
		t.Fatalf("no Received field as expected at the top of:\n%s", content)
	}
	if m[1] != id {
		t.Errorf("Received id %s, return path ID %s", m[1], id)
	}
	rest := content[len(m[0]):]
	hdr, body, _ := strings.Cut(rest, "\r\n\r\n")
	origHdr, origBody, _ := strings.Cut(srvMessage, "\r\n\r\n")
	if !strings.HasPrefix(hdr, origHdr+"\r\n") {
		t.Errorf("header not kept:\n%s", hdr)
	}
	added := strings.TrimPrefix(hdr, origHdr+"\r\n")
	if !regexp.MustCompile(`^Message-ID: <[a-z2-7]{26}@relay\.test>\r\nDate: [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [+-]\d{4}$`).MatchString(added) {
		t.Errorf("added fields %q", added)
	}
	if body != origBody {
		t.Errorf("body %q, want %q", body, origBody)
	}
	if !strings.Contains(added, e.MessageID) || e.MessageID == "" {
		t.Errorf("Entry.MessageID %q not the one added", e.MessageID)
	}

	// Two signatures that verify over what was queued: the customer's
	// domain first, then the provider's.
	if got := srvVerify(t, fx, msg); !slices.Equal(got, []string{"customer.example", "relay.test"}) {
		t.Errorf("signatures that pass: %v", got)
	}

	// One accepted event per recipient.
	ev := fx.eventList()
	if len(ev) != 2 {
		t.Fatalf("%d events, want 2", len(ev))
	}
	for i, x := range ev {
		if x.Type != relay.EventAccepted || x.QueueID != e.ID || x.MessageID != e.MessageID ||
			x.Account != "shop" || x.From != "orders@customer.example" || x.Rcpt != to[i] || x.Time.IsZero() {
			t.Errorf("event %d: %+v", i, x)
		}
	}

	logs := fx.logText()
	if strings.Contains(logs, srvKey) || strings.Contains(logs, base64.StdEncoding.EncodeToString([]byte("\x00apikey\x00"+srvKey))) {
		t.Error("the log holds the API key")
	}
	if !strings.Contains(logs, "message accepted") {
		t.Errorf("no record of the message in the log:\n%s", logs)
	}
}

func TestServerSRS(t *testing.T) {
	t.Parallel()
	fx := srvStart(t, nil)
	msg := "From: news@other.example\r\nTo: reader@example.net\r\n" +
		"Message-ID: <m1@other.example>\r\nDate: Mon, 02 Jan 2006 15:04:05 -0700\r\nSubject: news\r\n\r\nnews\r\n"
	if _, err := srvSend(t, fx, srvKey, "news@other.example", []string{"reader@example.net"}, msg); err != nil {
		t.Fatal(err)
	}
	entries, msgs := fx.q.stored()
	if len(entries) != 1 {
		t.Fatalf("%d messages queued, want 1", len(entries))
	}
	e := entries[0]
	if !strings.HasPrefix(e.Envelope.From, "SRS0=") || !strings.HasSuffix(e.Envelope.From, "@srs.relay.test") {
		t.Errorf("Envelope.From %q, want an SRS0 address of srs.relay.test", e.Envelope.From)
	}
	orig, err := fx.srs.Reverse(context.Background(), e.Envelope.From)
	if err != nil || orig != "news@other.example" {
		t.Errorf("Reverse(%q) = %q, %v", e.Envelope.From, orig, err)
	}
	if e.Sender != "news@other.example" || e.MessageID != "<m1@other.example>" {
		t.Errorf("Sender %q MessageID %q", e.Sender, e.MessageID)
	}
	content := string(msgs[0][len(e.Header):])
	if strings.Count(content, "Message-ID:") != 1 || strings.Count(content, "Date:") != 1 {
		t.Errorf("Message-ID or Date added to a message that has them:\n%s", content)
	}
	// No customer key for other.example: the provider's signature alone.
	if got := srvVerify(t, fx, msgs[0]); !slices.Equal(got, []string{"relay.test"}) {
		t.Errorf("signatures that pass: %v", got)
	}
}

func TestServerNullSender(t *testing.T) {
	t.Parallel()
	fx := srvStart(t, nil)
	// From a domain with a return path, and from one rewritten with SRS:
	// neither applies to the null sender (RFC 5321 §4.5.5).
	for _, m := range []string{srvMessage, strings.Replace(srvMessage, "customer.example", "other.example", 1)} {
		if _, err := srvSend(t, fx, srvKey, "", []string{"buyer@example.net"}, m); err != nil {
			t.Fatal(err)
		}
	}
	entries, msgs := fx.q.stored()
	if len(entries) != 2 {
		t.Fatalf("%d messages queued, want 2", len(entries))
	}
	for i, e := range entries {
		if e.Envelope.From != "" || e.Sender != "" {
			t.Errorf("message %d: Envelope.From %q, Sender %q: the null sender must stay null", i, e.Envelope.From, e.Sender)
		}
		if got := srvVerify(t, fx, msgs[i]); len(got) != 2-i {
			t.Errorf("message %d: signatures that pass: %v", i, got)
		}
	}
}

func TestServerImplicitTLS(t *testing.T) {
	t.Parallel()
	fx := srvStart(t, nil)
	c, err := smtp.DialTLS(fx.tlsAddr, fx.client)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Error("STARTTLS offered on a TLS connection")
	}
	if !c.SupportsAuth("LOGIN") || !c.SupportsAuth("PLAIN") {
		t.Error("AUTH PLAIN and LOGIN not offered over TLS")
	}
	if err := c.Auth(gosasl.NewLoginClient("apikey", srvKey)); err != nil {
		t.Fatal(err)
	}
	if err := c.SendMail("orders@customer.example", []string{"buyer@example.net"}, strings.NewReader(srvMessage)); err != nil {
		t.Fatal(err)
	}
	entries, msgs := fx.q.stored()
	if len(entries) != 1 {
		t.Fatalf("%d messages queued, want 1", len(entries))
	}
	if !strings.Contains(string(msgs[0]), "(using TLSv1.3 with cipher") {
		t.Errorf("no TLS in the Received field:\n%s", msgs[0])
	}
	if got := srvVerify(t, fx, msgs[0]); len(got) != 2 {
		t.Errorf("signatures that pass: %v", got)
	}
}

func TestServerAuthNeedsTLS(t *testing.T) {
	t.Parallel()
	fx := srvStart(t, nil)
	c := srvDial(t, fx.addr, "", 220)
	ehlo := c.cmd(250, "EHLO client.test")
	if !strings.Contains(ehlo, "STARTTLS") || strings.Contains(ehlo, "AUTH") {
		t.Errorf("EHLO before TLS offers:\n%s", ehlo)
	}
	plain := base64.StdEncoding.EncodeToString([]byte("\x00apikey\x00" + srvKey))
	c.write("AUTH PLAIN " + plain + "\r\n")
	c.expectText("538 5.7.11")
	c.write("AUTH LOGIN\r\n")
	c.expectText("538 5.7.11")
	if fx.auth.count() != 0 {
		t.Errorf("the Authenticator was asked %d times before TLS", fx.auth.count())
	}
	// The refused AUTH left the client unauthenticated: no relay.
	c.cmd(250, "MAIL FROM:<orders@customer.example>")
	c.write("RCPT TO:<buyer@example.net>\r\n")
	c.expectText("530 5.7.0")
	c.cmd(250, "RSET")
	c.startTLS(fx.client)
	ehlo = c.cmd(250, "EHLO client.test")
	if strings.Contains(ehlo, "STARTTLS") || !strings.Contains(ehlo, "AUTH PLAIN LOGIN") {
		t.Errorf("EHLO after TLS offers:\n%s", ehlo)
	}
	c.cmd(235, "AUTH PLAIN "+plain)
	fx.nothingQueued()
	if creates, _, _ := fx.q.counts(); creates != 0 {
		t.Errorf("the queue was asked for %d messages", creates)
	}
}

func TestServerNoRelayWithoutAuth(t *testing.T) {
	t.Parallel()
	fx := srvStart(t, nil)
	for _, tls := range []bool{false, true} {
		c := srvDial(t, fx.addr, "", 220)
		c.cmd(250, "EHLO client.test")
		if tls {
			c.startTLS(fx.client)
			c.cmd(250, "EHLO client.test")
		}
		c.cmd(250, "MAIL FROM:<orders@customer.example>")
		c.write("RCPT TO:<victim@example.net>\r\n")
		c.expectText("530 5.7.0")
		c.write("DATA\r\n")
		c.expectText("502 5.5.1")
	}
	fx.nothingQueued()
}

func TestServerWrongKey(t *testing.T) {
	t.Parallel()
	fx := srvStart(t, nil)
	c := srvDial(t, fx.addr, "", 220)
	c.cmd(250, "EHLO client.test")
	c.startTLS(fx.client)
	c.cmd(250, "EHLO client.test")
	for _, resp := range []string{
		"\x00apikey\x00shk_not_a_key",    // unknown key
		"\x00mallory\x00" + srvKey,       // another user name
		"someone\x00apikey\x00" + srvKey, // acting for another
	} {
		c.write("AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte(resp)) + "\r\n")
		c.expectText("535 5.7.8")
	}
	c.write("AUTH LOGIN\r\n")
	c.expect(334)
	c.write(base64.StdEncoding.EncodeToString([]byte("apikey")) + "\r\n")
	c.expect(334)
	c.write(base64.StdEncoding.EncodeToString([]byte("wrong")) + "\r\n")
	c.expectText("535 5.7.8")
	c.cmd(250, "MAIL FROM:<orders@customer.example>")
	c.write("RCPT TO:<buyer@example.net>\r\n")
	c.expectText("530 5.7.0")
	fx.nothingQueued()
}

func TestServerForeignSenderDomain(t *testing.T) {
	t.Parallel()
	fx := srvStart(t, nil)
	c := srvDial(t, fx.addr, "", 220)
	c.login(fx.client, srvKey)
	for _, from := range []string{"ceo@bank.example", "a@sub.customer.example", "x@customer.example.evil"} {
		c.write("MAIL FROM:<" + from + ">\r\n")
		got := c.expectText("550 5.7.1")
		if !strings.Contains(got, "Sender address rejected") {
			t.Errorf("reply %q does not say why", got)
		}
	}
	// A MAIL FROM of the account's (or the null sender, which has no
	// domain to check), and a From field of another's, in DATA and in
	// BDAT.
	// A From field that cannot be read is refused as malformed (5.6.0),
	// never let through.
	fromFields := []struct{ field, reply string }{
		{"From: ceo@bank.example", "550 5.7.1 From header field rejected"},
		{"From: Shop <orders@customer.example>, ceo@bank.example", "550 5.7.1 From header field rejected"},
		{"From: =?utf-8?q?Bank?= <ceo@bank.example>", "550 5.7.1 From header field rejected"},
		{"From: \"orders@customer.example\"@bank.example", "550 5.7.1 From header field rejected"},
		{"From: Shop\r\n <ceo@bank.example>", "550 5.7.1 From header field rejected"},
		{"FROM: ceo@bank.example", "550 5.7.1 From header field rejected"},
		{"From : ceo@bank.example", "550 5.7.1 From header field rejected"}, // RFC 5322 §4.5.1, obsolete but read
		// '@' may not be in a Q encoded-word of a phrase (RFC 2047 §5).
		{"From: =?utf-8?q?orders@customer.example?= <ceo@bank.example>", "550 5.6.0"},
		{"From: ceo@bank.example.", "550 5.6.0"},
	}
	for _, mailFrom := range []string{"orders@customer.example", ""} {
		for _, f := range fromFields {
			msg := f.field + "\r\nSubject: pay\r\n\r\npay now\r\n"
			for _, bdat := range []bool{false, true} {
				c.cmd(250, "MAIL FROM:<"+mailFrom+">")
				c.cmd(250, "RCPT TO:<buyer@example.net>")
				if bdat {
					c.write("BDAT " + strconv.Itoa(len(msg)) + " LAST\r\n" + msg)
				} else {
					c.cmd(354, "DATA")
					c.write(msg + ".\r\n")
				}
				got := c.expectText(f.reply)
				if strings.HasPrefix(f.reply, "550 5.7.1") && !strings.Contains(got, "bank.example") {
					t.Errorf("%q (BDAT %v): reply %q does not name the domain", f.field, bdat, got)
				}
			}
		}
	}
	fx.nothingQueued()
	if creates, _, _ := fx.q.counts(); creates != 0 {
		t.Errorf("the queue was asked for %d messages", creates)
	}
}

func TestServerNoSendScope(t *testing.T) {
	t.Parallel()
	fx := srvStart(t, nil)
	c := srvDial(t, fx.addr, "", 220)
	c.login(fx.client, srvKeyNoScope)
	// The key authenticates, but sends nothing: not from its own domain,
	// not with the null sender.
	for _, from := range []string{"orders@customer.example", ""} {
		c.write("MAIL FROM:<" + from + ">\r\n")
		if got := c.expectText("550 5.7.1"); !strings.Contains(got, relay.ScopeSend) {
			t.Errorf("reply %q does not name the scope", got)
		}
		// No transaction was opened.
		c.write("RCPT TO:<buyer@example.net>\r\n")
		c.expectText("502 5.5.1")
		c.write("DATA\r\n")
		c.expectText("502 5.5.1")
	}
	fx.nothingQueued()
	if creates, _, _ := fx.q.counts(); creates != 0 {
		t.Errorf("the queue was asked for %d messages", creates)
	}
}

func TestServerBadHeader(t *testing.T) {
	t.Parallel()
	fx := srvStart(t, nil)
	c := srvDial(t, fx.addr, "", 220)
	c.login(fx.client, srvKey)
	for _, msg := range []string{
		"Subject: no From\r\n\r\nbody\r\n",
		"From: a@customer.example\r\nFrom: b@customer.example\r\n\r\nbody\r\n",
		"From: a@customer.example\r\nno colon, no empty line before the body\r\n",
		" continued\r\nFrom: a@customer.example\r\n\r\nbody\r\n",
		"From: not an address\r\n\r\nbody\r\n",
	} {
		c.cmd(250, "MAIL FROM:<orders@customer.example>")
		c.cmd(250, "RCPT TO:<buyer@example.net>")
		c.cmd(354, "DATA")
		c.write(msg + ".\r\n")
		c.expectText("550 5.6.0")
	}
	fx.nothingQueued()
}

func TestServerTrustedNetwork(t *testing.T) {
	t.Parallel()
	fx := srvStart(t, func(o *relay.ServerOptions) { o.Trusted = append(o.Trusted, srvTrusted) })
	// Plaintext, no AUTH, from the trusted 127.0.0.2.
	c := srvDial(t, fx.addr, "127.0.0.2", 220)
	c.cmd(250, "EHLO printer.lan")
	c.cmd(250, "MAIL FROM:<scanner@customer.example>")
	c.cmd(250, "RCPT TO:<office@example.net>")
	c.cmd(354, "DATA")
	c.write(srvMessage + ".\r\n")
	c.expectText("250 2.0.0 OK: queued as Q0001")
	// Not from 127.0.0.1.
	u := srvDial(t, fx.addr, "127.0.0.1", 220)
	u.cmd(250, "EHLO printer.lan")
	u.cmd(250, "MAIL FROM:<scanner@customer.example>")
	u.write("RCPT TO:<office@example.net>\r\n")
	u.expectText("530 5.7.0")

	entries, msgs := fx.q.stored()
	if len(entries) != 1 {
		t.Fatalf("%d messages queued, want 1", len(entries))
	}
	if entries[0].Account != "" {
		t.Errorf("Account %q for a trusted network", entries[0].Account)
	}
	if !strings.HasPrefix(string(msgs[0][len(entries[0].Header):]),
		"Received: from printer.lan ([127.0.0.2])\r\n\tby relay.test with ESMTP id ") {
		t.Errorf("Received field:\n%s", msgs[0])
	}
}

func TestServerStartTLSDropsPlaintextAfterIt(t *testing.T) {
	t.Parallel()
	fx := srvStart(t, func(o *relay.ServerOptions) { o.Trusted = append(o.Trusted, srvTrusted) })
	c := srvDial(t, fx.addr, "127.0.0.2", 220)
	c.cmd(250, "EHLO client.test")
	// Commands pipelined after STARTTLS in plaintext are not those of the
	// TLS session (RFC 3207 §6).
	c.write("STARTTLS\r\nMAIL FROM:<injected@customer.example>\r\n")
	c.expect(220)
	c.handshake(fx.client)
	// After TLS, EHLO must come first, and there is no transaction.
	c.write("RCPT TO:<a@example.net>\r\n")
	c.expectText("503 5.5.1")
	c.cmd(250, "EHLO client.test")
	c.write("RCPT TO:<a@example.net>\r\n")
	c.expectText("502 5.5.1") // no MAIL: the injected one was dropped
	c.cmd(250, "NOOP")
	c.write("STARTTLS\r\n")
	c.expectText("503 5.5.1")
}

func TestServerBDAT(t *testing.T) {
	t.Parallel()
	fx := srvStart(t, nil)
	c := srvDial(t, fx.addr, "", 220)
	c.login(fx.client, srvKey)
	c.cmd(250, "MAIL FROM:<orders@customer.example>")
	c.cmd(250, "RCPT TO:<buyer@example.net>")
	half := len(srvMessage) / 2
	c.write("BDAT " + strconv.Itoa(half) + "\r\n" + srvMessage[:half])
	c.expect(250)
	c.write("BDAT " + strconv.Itoa(len(srvMessage)-half) + " LAST\r\n" + srvMessage[half:])
	c.expectText("250 2.0.0 OK: queued as Q0001")
	entries, msgs := fx.q.stored()
	_, body, _ := strings.Cut(srvMessage, "\r\n\r\n")
	if len(entries) != 1 || !strings.HasSuffix(string(msgs[0]), "\r\n\r\n"+body) {
		t.Fatalf("queued %d: %q", len(entries), msgs)
	}
	if got := srvVerify(t, fx, msgs[0]); len(got) != 2 {
		t.Errorf("signatures that pass: %v", got)
	}
}

func TestServerShutdown(t *testing.T) {
	t.Parallel()
	fx := srvStart(t, nil)
	idle := srvDial(t, fx.addr, "", 220)
	idle.cmd(250, "EHLO client.test")
	if err := fx.srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	idle.expectText("421 4.3.2")
	if !idle.closed() {
		t.Error("the idle connection is still open")
	}
	for range 2 {
		if err := <-fx.served; !errors.Is(err, relay.ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	}
}

func TestReturnPathID(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]string{
		"bounces+abcdefgh23456723@em1.example.com": "abcdefgh23456723",
		"BOUNCES+ABCDEFGH23456723@em1.example.com": "abcdefgh23456723",
		"bounces+@em1.example.com":                 "",
		"bounces+not-base32!@em1.example.com":      "",
		"someone@example.com":                      "",
		"bounces+abc":                              "",
	} {
		id, ok := relay.ReturnPathID(addr)
		if id != want || ok != (want != "") {
			t.Errorf("ReturnPathID(%q) = %q, %v; want %q", addr, id, ok, want)
		}
	}
}

func TestServerEnvelopeOptions(t *testing.T) {
	t.Parallel()
	fx := srvStart(t, nil)
	c := srvDial(t, fx.addr, "", 220)
	c.login(fx.client, srvKey)
	c.cmd(250, "MAIL FROM:<orders@customer.example> BODY=8BITMIME RET=HDRS ENVID=order+2B42")
	c.cmd(250, "RCPT TO:<buyer@example.net> NOTIFY=FAILURE,DELAY ORCPT=rfc822;buyer@example.net")
	c.cmd(250, "RCPT TO:<other@example.net>")
	c.cmd(354, "DATA")
	c.write(srvMessage + ".\r\n")
	c.expect(250)
	entries, _ := fx.q.stored()
	if len(entries) != 1 {
		t.Fatalf("%d messages queued, want 1", len(entries))
	}
	env := entries[0].Envelope
	if env.Body != relay.BodyEightBit || env.Return != relay.ReturnHeaders || env.EnvID != "order+42" {
		t.Errorf("envelope options %+v", env)
	}
	want := []relay.Recipient{
		{Addr: "buyer@example.net", Notify: []relay.DSNNotify{relay.NotifyFailure, relay.NotifyDelay}, ORcpt: "RFC822;buyer@example.net"},
		{Addr: "other@example.net"},
	}
	if len(env.To) != 2 || !slices.Equal(env.To[0].Notify, want[0].Notify) || env.To[0].ORcpt != want[0].ORcpt ||
		env.To[1].Addr != want[1].Addr || env.To[1].Notify != nil || env.To[1].ORcpt != "" {
		t.Errorf("recipients %+v, want %+v", env.To, want)
	}
}

func TestServerSenderNotRewritable(t *testing.T) {
	t.Parallel()
	fx := srvStart(t, nil)
	// The SRS form of a 60-octet local part exceeds the 64 octets of RFC
	// 5321 §4.5.3.1.1, and the rewriter has no Store.
	long := strings.Repeat("a", 60) + "@other.example"
	c := srvDial(t, fx.addr, "", 220)
	c.login(fx.client, srvKey)
	c.cmd(250, "MAIL FROM:<"+long+">")
	c.cmd(250, "RCPT TO:<buyer@example.net>")
	c.cmd(354, "DATA")
	c.write("From: " + long + "\r\n\r\nbody\r\n.\r\n")
	c.expectText("550 5.1.7")
	fx.nothingQueued()
}

func TestNewServerErrors(t *testing.T) {
	t.Parallel()
	keys, err := srvKeys()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := dkim.NewSigner("customer.example", "s1", keys.customer, nil)
	if err != nil {
		t.Fatal(err)
	}
	q := &srvQueue{}
	if _, err := relay.NewServer(nil, nil); err == nil {
		t.Error("NewServer(nil queue) succeeded")
	}
	for name, o := range map[string]relay.ServerOptions{
		"hostname":         {Hostname: "relay test"},
		"TLS without cert": {TLSConfig: &tls.Config{}},
		"return path":      {ReturnPaths: map[string]string{"customer.example": "em 1"}},
		"return path key":  {ReturnPaths: map[string]string{"customer@example": "em1.customer.example"}},
		"signer twice":     {DomainSigners: map[string]*dkim.Signer{"customer.example": signer, "Customer.Example.": signer}},
		"nil signer":       {DomainSigners: map[string]*dkim.Signer{"customer.example": nil}},
		"short lines":      {MaxLineLength: 50},
		"header too large": {MaxHeaderBytes: dkim.DefaultMaxHeaderBytes},
		"negative window":  {AuthFailureWindow: -time.Second},
		"invalid trusted":  {Trusted: []netip.Prefix{{}}},
	} {
		o.Hostname = cmp.Or(o.Hostname, "relay.test")
		if _, err := relay.NewServer(q, &o); err == nil {
			t.Errorf("%s: NewServer succeeded", name)
		} else if !strings.HasPrefix(err.Error(), "relay: NewServer: ") {
			t.Errorf("%s: error %q", name, err)
		}
	}
	s, err := relay.NewServer(q, &relay.ServerOptions{Hostname: "relay.test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ServeTLS(nil); err == nil {
		t.Error("ServeTLS without TLSConfig succeeded")
	}
}
