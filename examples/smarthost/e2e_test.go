package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/smarthost-go/smarthost/dnsauth"
	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/relay/smtptest"
)

// The end-to-end tests of bounces: the relay as a process, with a return
// path, the return-path receiver, a webhook and metrics; a customer's
// account that authenticates with its API key; an smtptest server as the
// upstream MX.

const (
	e2eSecret = "the e2e webhook secret"
	e2eSender = "orders@customer.example"
	e2eRP     = "em1234.customer.example"
)

// hookReceiver is a webhook receiver on 127.0.0.1 that keeps the events
// of the requests whose signature relay.VerifyWebhook accepts, and counts
// the others.
type hookReceiver struct {
	srv *httptest.Server

	mu       sync.Mutex
	events   []relay.Event
	unsigned int
}

func newHookReceiver(t *testing.T, secret string) *hookReceiver {
	t.Helper()
	h := &hookReceiver{}
	h.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var evs []relay.Event
		err := relay.VerifyWebhook([]byte(secret), r.Header, body, time.Now(), time.Minute)
		if err == nil {
			err = json.Unmarshal(body, &evs)
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if err != nil {
			h.unsigned++
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		h.events = append(h.events, evs...)
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.srv.Listener.Close()
	h.srv.Listener = ln
	h.srv.Start()
	t.Cleanup(h.srv.Close)
	return h
}

// find returns the first event of type typ for rcpt, if any.
func (h *hookReceiver) find(typ relay.EventType, rcpt string) (relay.Event, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range h.events {
		if e.Type == typ && e.Rcpt == rcpt {
			return e, true
		}
	}
	return relay.Event{}, false
}

// e2eRelay is the relay under test with what surrounds it.
type e2eRelay struct {
	t           *testing.T
	d           *daemon
	dir         string
	sink        *smtptest.Server
	hook        *hookReceiver
	key         string
	cert        string // the relay's self-signed certificate, PEM
	bounceAddr  string
	metricsBase string
}

func startE2E(t *testing.T) *e2eRelay {
	t.Helper()
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "webhook-secret")
	if err := os.WriteFile(secretFile, []byte(e2eSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := &e2eRelay{t: t, dir: dir, hook: newHookReceiver(t, e2eSecret)}
	r.sink = newSink(t, &smtptest.Options{TLS: smtptest.NoTLS})
	r.d = startDaemon(t, dir, nil, "-listen", "127.0.0.1:0", "-bounce-listen", "127.0.0.1:0", "-hostname", "relay.test",
		"-upstream", r.sink.Addr, "-upstream-tls", "none",
		"-return-path", "customer.example:"+e2eRP, "-key-domains", "customer.example",
		"-metrics", "127.0.0.1:0", "-webhook", r.hook.srv.URL+"/events", "-webhook-secret-file", secretFile)
	r.key = r.d.firstKey()
	r.cert = filepath.Join(dir, "smarthost-data", "tls-cert.pem")
	m := bounceAddr.FindStringSubmatch(r.d.stderr.String())
	if m == nil {
		t.Fatalf("no bounce_addr in the log:\n%s", r.d.stderr)
	}
	r.bounceAddr = m[1]
	m = regexp.MustCompile(`metrics_addr=(\S+)`).FindStringSubmatch(r.d.stderr.String())
	if m == nil {
		t.Fatalf("no metrics_addr in the log:\n%s", r.d.stderr)
	}
	r.metricsBase = "http://" + m[1]
	return r
}

// dial opens an authenticated session as the account of the first key,
// after STARTTLS verified with the relay's certificate.
func (r *e2eRelay) dial() *smtp.Client {
	r.t.Helper()
	c, err := dialKey(r.t, r.d.addr, r.cert, r.key)
	if err != nil {
		r.t.Fatal(err)
	}
	return c
}

// send submits a message from e2eSender to rcpt with the Message-ID msgID.
func (r *e2eRelay) send(rcpt, msgID string) {
	r.t.Helper()
	c := r.dial()
	defer c.Close()
	msg := "From: Shop <" + e2eSender + ">\r\nTo: " + rcpt + "\r\nMessage-ID: " + msgID +
		"\r\nSubject: Your order\r\nDate: Thu, 03 Dec 2026 10:00:00 +0000\r\n\r\nThank you for your order.\r\n"
	if err := c.SendMail(e2eSender, []string{rcpt}, strings.NewReader(msg)); err != nil {
		r.t.Fatalf("sending to %s: %v", rcpt, err)
	}
	c.Quit()
}

// checkSuppressed checks that a new message of the account to rcpt is
// refused at RCPT with 550 5.1.1, as suppressed.
func (r *e2eRelay) checkSuppressed(rcpt string) {
	r.t.Helper()
	c := r.dial()
	defer c.Close()
	if err := c.Mail(e2eSender, nil); err != nil {
		r.t.Fatal(err)
	}
	var se *smtp.SMTPError
	err := c.Rcpt(rcpt, nil)
	if !errors.As(err, &se) || se.Code != 550 || se.EnhancedCode != (smtp.EnhancedCode{5, 1, 1}) || !strings.Contains(se.Message, "suppressed") {
		r.t.Errorf("RCPT TO:<%s> after its bounce: %v, want 550 5.1.1 suppressed", rcpt, err)
	}
	c.Quit()
}

// waitEvent waits for the event of type typ for rcpt at the webhook
// receiver.
func (r *e2eRelay) waitEvent(typ relay.EventType, rcpt string) relay.Event {
	r.t.Helper()
	var e relay.Event
	waitFor(r.t, 2*time.Minute, "the "+string(typ)+" event of "+rcpt+" at the webhook", func() bool {
		var ok bool
		e, ok = r.hook.find(typ, rcpt)
		return ok
	})
	return e
}

// waitMetrics waits until /metrics has every line of want.
func (r *e2eRelay) waitMetrics(want ...string) {
	r.t.Helper()
	var body string
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for {
		resp, err := http.Get(r.metricsBase + "/metrics")
		if err != nil {
			r.t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		missing := ""
		for _, w := range want {
			if !hasLine(body, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return
		}
		select {
		case <-ctx.Done():
			r.t.Fatalf("/metrics has no line %q:\n%s", missing, body)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop stops the relay and checks that every webhook request verified.
func (r *e2eRelay) stop() {
	r.t.Helper()
	if code := r.d.stop(syscall.SIGTERM); code != 0 {
		r.t.Errorf("exit %d after SIGTERM\n%s", code, r.d.stderr)
	}
	r.hook.mu.Lock()
	defer r.hook.mu.Unlock()
	if r.hook.unsigned != 0 {
		r.t.Errorf("%d webhook requests failed VerifyWebhook", r.hook.unsigned)
	}
}

// checkDSN checks that the upstream received a delivery status
// notification (RFC 3464, in a multipart/report of RFC 6522) from the
// null sender to the original sender, reporting rcpt failed with 5.1.1.
func (r *e2eRelay) checkDSN(rcpt string) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	got, err := r.sink.WaitMessages(ctx, 1)
	for err == nil && !hasDSNTo(got) {
		got, err = r.sink.WaitMessages(ctx, len(got)+1)
	}
	if err != nil {
		r.t.Fatalf("no DSN to %s at the upstream: %v", e2eSender, err)
	}
	var dsn *smtptest.Message
	for _, m := range got {
		if len(m.Envelope.To) == 1 && m.Envelope.To[0].Addr == e2eSender {
			dsn = m
		}
	}
	if dsn.Envelope.From != "" {
		r.t.Errorf("the DSN's envelope sender %q, want the null sender (RFC 5321 §4.5.5)", dsn.Envelope.From)
	}
	ct := headerFields(r.t, dsn.Data, "Content-Type")
	if len(ct) != 1 {
		r.t.Fatalf("Content-Type fields %q", ct)
	}
	mt, params, err := mime.ParseMediaType(ct[0])
	if err != nil || mt != "multipart/report" || params["report-type"] != "delivery-status" {
		r.t.Errorf("the DSN's Content-Type %q, want multipart/report; report-type=delivery-status", ct[0])
	}
	// RFC 3464 §2.3: the per-recipient fields, unfolded.
	body := strings.ReplaceAll(string(dsn.Data), "\r\n ", " ")
	for _, want := range []string{
		"Content-Type: message/delivery-status",
		"Final-Recipient: rfc822; " + rcpt,
		"Action: failed",
		"Status: 5.1.1",
	} {
		if !strings.Contains(body, want) {
			r.t.Errorf("the DSN has no %q:\n%s", want, dsn.Data)
		}
	}
	if !regexp.MustCompile(`(?i)Diagnostic-Code: smtp; 550 5\.1\.1`).MatchString(body) {
		r.t.Errorf("the DSN has no Diagnostic-Code of the 550 5.1.1 reply:\n%s", dsn.Data)
	}
}

func hasDSNTo(msgs []*smtptest.Message) bool {
	for _, m := range msgs {
		if len(m.Envelope.To) == 1 && m.Envelope.To[0].Addr == e2eSender {
			return true
		}
	}
	return false
}

// checkBounced checks a bounced event against the accepted event of the
// same recipient: the same message, a hard 550 5.1.1.
func checkBounced(t *testing.T, bounced, accepted relay.Event, msgID string) {
	t.Helper()
	if bounced.QueueID == "" || bounced.QueueID != accepted.QueueID || bounced.MessageID != msgID || accepted.MessageID != msgID {
		t.Errorf("bounced event of queue ID %q, Message-ID %q; the accepted one %q, %q; want %q",
			bounced.QueueID, bounced.MessageID, accepted.QueueID, accepted.MessageID, msgID)
	}
	if !bounced.Hard || bounced.Reply == nil || bounced.Reply.Code != 550 || bounced.Reply.Enhanced != (relay.EnhancedCode{5, 1, 1}) {
		t.Errorf("bounced event %+v (reply %+v), want hard, 550 5.1.1", bounced, bounced.Reply)
	}
	if bounced.Account != firstKeyName || bounced.From != e2eSender {
		t.Errorf("bounced event of account %q, sender %q; want %q, %q", bounced.Account, bounced.From, firstKeyName, e2eSender)
	}
}

// TestE2ERefused: the MX refuses a recipient with 550 5.1.1, at RCPT, or
// after DATA for a message of that one recipient. The relay reports a
// bounced event to the webhook, signed; sends a DSN to the original
// sender; suppresses the recipient for the account, so that the next
// message to it is refused at RCPT; and counts it all.
func TestE2ERefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, rcpt, msgID string
		fault             smtptest.Fault
	}{
		{"at RCPT", "gone@example.net", "<order-1@customer.example>", smtptest.Fault{On: smtptest.RCPT, Rcpt: "gone@example.net",
			Reply: relay.Reply{Code: 550, Enhanced: relay.EnhancedCode{5, 1, 1}, Message: "<gone@example.net>: Recipient address rejected: User unknown"}}},
		// The first end of data is the message's; the DSN's, after it,
		// is taken.
		{"after DATA", "left@example.net", "<order-2@customer.example>", smtptest.Fault{On: smtptest.EndOfData, Times: 1,
			Reply: relay.Reply{Code: 550, Enhanced: relay.EnhancedCode{5, 1, 1}, Message: "<left@example.net>: mailbox unavailable"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := startE2E(t)
			if err := r.sink.Fail(tc.fault); err != nil {
				t.Fatal(err)
			}
			r.send(tc.rcpt, tc.msgID)
			accepted := r.waitEvent(relay.EventAccepted, tc.rcpt)
			bounced := r.waitEvent(relay.EventBounced, tc.rcpt)
			checkBounced(t, bounced, accepted, tc.msgID)
			r.checkDSN(tc.rcpt)
			r.checkSuppressed(tc.rcpt)
			r.waitMetrics(
				"smarthost_messages_accepted_total 1",
				`smarthost_recipients_total{outcome="bounced",reason="5.1.1"} 1`,
				// The DSN to the sender.
				`smarthost_recipients_total{outcome="delivered",reason=""} 1`,
				`smarthost_messages_refused_total{reason="5.1.1"} 1`,
				"smarthost_queue_messages 0",
			)
			r.stop()
		})
	}
}

// TestE2ELateBounce: the MX accepts the message and later bounces it, as
// remote MTAs do: a DSN (RFC 3464) to the message's envelope sender,
// bounces+ID@em1234.customer.example, sent by SMTP to the host that the
// MX record of the return-path domain names (a dnstest zone served over
// UDP; the port is the receiver's, as an MX record has none). It becomes
// a bounced event for the message and recipient at the webhook, signed;
// the recipient is suppressed, so that the next message to it is refused
// at RCPT; and the metrics count it.
func TestE2ELateBounce(t *testing.T) {
	t.Parallel()
	r := startE2E(t)
	const rcpt, msgID = "moved@example.net", "<order-3@customer.example>"
	r.send(rcpt, msgID)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	got, err := r.sink.WaitMessages(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	rp := got[0].Envelope.From
	id, ok := relay.ReturnPathID(rp)
	if !ok || rp != "bounces+"+id+"@"+e2eRP {
		t.Fatalf("envelope sender %q is no return path of %s", rp, e2eRP)
	}
	accepted := r.waitEvent(relay.EventAccepted, rcpt)
	r.waitEvent(relay.EventDelivered, rcpt)

	// The return-path domain's MX, as the remote MTA finds it.
	_, port, err := net.SplitHostPort(r.bounceAddr)
	if err != nil {
		t.Fatal(err)
	}
	dns, err := dnstest.NewServer(dnstest.MustParseZone(`
$ORIGIN customer.example.
em1234   300 IN MX 10 mx.customer.example.
mx       300 IN A  127.0.0.1
`))
	if err != nil {
		t.Fatal(err)
	}
	defer dns.Close()
	res, err := dnsauth.NewResolver(&dnsauth.ResolverOptions{Servers: []string{dns.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	domain := rp[strings.LastIndexByte(rp, '@')+1:]
	mxs, err := res.LookupMX(ctx, domain)
	if err != nil || len(mxs) != 1 {
		t.Fatalf("MX of %s: %v %v", domain, mxs, err)
	}
	ips, err := res.LookupNetIP(ctx, "ip4", mxs[0].Host)
	if err != nil || len(ips) != 1 {
		t.Fatalf("A of %s: %v %v", mxs[0].Host, ips, err)
	}

	// The DSN, as Postfix writes one (RFC 3464 §2), with the headers of
	// the message returned.
	var dsn bytes.Buffer
	dsn.WriteString("From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n" +
		"To: " + rp + "\r\n" +
		"Subject: Undelivered Mail Returned to Sender\r\n" +
		"Date: Thu, 03 Dec 2026 10:05:00 +0000\r\n" +
		"Message-ID: <20261203100500.AB12C3@mx.example.net>\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: multipart/report; report-type=delivery-status; boundary=\"AB12C3.1764756300/mx.example.net\"\r\n" +
		"\r\n" +
		"--AB12C3.1764756300/mx.example.net\r\n" +
		"Content-Description: Notification\r\n" +
		"Content-Type: text/plain; charset=us-ascii\r\n" +
		"\r\n" +
		"I'm sorry to have to inform you that your message could not\r\n" +
		"be delivered to one or more recipients.\r\n" +
		"\r\n" +
		"<" + rcpt + ">: host mailstore.example.net[192.0.2.25] said: 550 5.1.1\r\n" +
		"    <" + rcpt + ">: Recipient address rejected: User unknown\r\n" +
		"\r\n" +
		"--AB12C3.1764756300/mx.example.net\r\n" +
		"Content-Description: Delivery report\r\n" +
		"Content-Type: message/delivery-status\r\n" +
		"\r\n" +
		"Reporting-MTA: dns; mx.example.net\r\n" +
		"X-Postfix-Queue-ID: AB12C3\r\n" +
		"X-Postfix-Sender: rfc822; " + rp + "\r\n" +
		"Arrival-Date: Thu,  3 Dec 2026 10:00:01 +0000 (UTC)\r\n" +
		"\r\n" +
		"Final-Recipient: rfc822; " + rcpt + "\r\n" +
		"Original-Recipient: rfc822;" + rcpt + "\r\n" +
		"Action: failed\r\n" +
		"Status: 5.1.1\r\n" +
		"Remote-MTA: dns; mailstore.example.net\r\n" +
		"Diagnostic-Code: smtp; 550 5.1.1 <" + rcpt + ">: Recipient address rejected:\r\n" +
		"    User unknown\r\n" +
		"\r\n" +
		"--AB12C3.1764756300/mx.example.net\r\n" +
		"Content-Description: Undelivered Message Headers\r\n" +
		"Content-Type: text/rfc822-headers\r\n" +
		"\r\n" +
		"From: Shop <" + e2eSender + ">\r\n" +
		"To: " + rcpt + "\r\n" +
		"Message-ID: " + msgID + "\r\n" +
		"Subject: Your order\r\n" +
		"\r\n" +
		"--AB12C3.1764756300/mx.example.net--\r\n")
	c, err := smtp.Dial(net.JoinHostPort(ips[0].String(), port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("mx.example.net"); err != nil {
		t.Fatal(err)
	}
	if err := c.SendMail("", []string{rp}, &dsn); err != nil {
		t.Fatalf("the DSN to %s: %v", rp, err)
	}
	c.Quit()

	bounced := r.waitEvent(relay.EventBounced, rcpt)
	checkBounced(t, bounced, accepted, msgID)
	if bounced.Host != "mailstore.example.net" || bounced.Reply.Message != "<"+rcpt+">: Recipient address rejected: User unknown" {
		t.Errorf("bounced event of host %q, reply %q; want the Remote-MTA and the Diagnostic-Code's text", bounced.Host, bounced.Reply.Message)
	}
	r.checkSuppressed(rcpt)
	r.waitMetrics(
		"smarthost_messages_accepted_total 1",
		`smarthost_recipients_total{outcome="delivered",reason=""} 1`,
		`smarthost_recipients_total{outcome="bounced",reason="5.1.1"} 1`,
		`smarthost_messages_refused_total{reason="5.1.1"} 1`,
		"smarthost_queue_messages 0",
	)
	// The return-path receiver sent nothing back: the upstream has the
	// message only.
	if n := len(r.sink.Messages()); n != 1 {
		t.Errorf("%d messages at the upstream, want the message only", n)
	}
	r.stop()
}
