package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/relay/smtptest"
)

var bounceAddr = regexp.MustCompile(`msg=listening .*bounce_addr=(\S+)`)

// TestBounceListen: with -bounce-listen, a message sent with a return path
// is tracked, and the DSN a remote MTA sends back to that return path
// becomes a bounced event for the message and recipient; a recipient that
// is no tracked return path is refused.
func TestBounceListen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sink := newSink(t, &smtptest.Options{TLS: smtptest.NoTLS})
	events := filepath.Join(dir, "events.jsonl")
	d := startDaemon(t, dir, nil, "-listen", "127.0.0.1:0", "-bounce-listen", "127.0.0.1:0", "-hostname", "relay.test",
		"-trusted", "127.0.0.0/8", "-upstream", sink.Addr, "-upstream-tls", "none", "-events", events,
		"-return-path", "customer.example:em1234.customer.example", "-key-domains", "customer.example")
	m := bounceAddr.FindStringSubmatch(d.stderr.String())
	if m == nil {
		t.Fatalf("no bounce_addr in the log:\n%s", d.stderr)
	}
	baddr := m[1]

	msg := "From: orders@customer.example\r\nTo: gone@example.net\r\nMessage-ID: <order-1@customer.example>\r\nSubject: x\r\n\r\nHello.\r\n"
	if err := sendText(d.addr, "orders@customer.example", "gone@example.net", msg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	got, err := sink.WaitMessages(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	rp := got[0].Envelope.From
	if _, ok := relay.ReturnPathID(rp); !ok || !strings.HasSuffix(rp, "@em1234.customer.example") {
		t.Fatalf("envelope sender %q is no return path", rp)
	}

	// A forged return path is refused at RCPT.
	c, err := smtp.Dial(baddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Mail("", nil); err != nil {
		t.Fatal(err)
	}
	var se *smtp.SMTPError
	if err := c.Rcpt("bounces+aaaaaaaaaaaaaaaa@em1234.customer.example", nil); !errors.As(err, &se) || se.Code != 550 || se.EnhancedCode != (smtp.EnhancedCode{5, 1, 1}) {
		t.Errorf("unknown return path: %v, want 550 5.1.1", err)
	}
	c.Quit()

	dsn := "From: MAILER-DAEMON@mx.example.net\r\nTo: " + rp + "\r\nSubject: Undelivered Mail\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n" +
		"--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n" +
		"--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n" +
		"Final-Recipient: rfc822; gone@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n" +
		"Remote-MTA: dns; mx.example.net\r\nDiagnostic-Code: smtp; 550 5.1.1 User unknown\r\n" +
		"--B--\r\n"
	if err := sendText(baddr, "", rp, dsn); err != nil {
		t.Fatalf("the DSN: %v", err)
	}
	waitFor(t, time.Minute, "the bounced event", func() bool {
		b, _ := os.ReadFile(events)
		return strings.Contains(string(b), `"event":"bounced"`)
	})
	b, _ := os.ReadFile(events)
	var ev relay.Event
	for l := range strings.SplitSeq(string(b), "\n") {
		if strings.Contains(l, `"event":"bounced"`) {
			if err := json.Unmarshal([]byte(l), &ev); err != nil {
				t.Fatal(err)
			}
		}
	}
	if ev.Rcpt != "gone@example.net" || ev.MessageID != "<order-1@customer.example>" || !ev.Hard || ev.Host != "mx.example.net" ||
		ev.Reply == nil || ev.Reply.Code != 550 || ev.Reply.Enhanced != (relay.EnhancedCode{5, 1, 1}) {
		t.Errorf("bounced event %+v", ev)
	}
	if _, err := os.Stat(filepath.Join(dir, "smarthost-data", "tracking.jsonl")); err != nil {
		t.Errorf("no tracking file: %v", err)
	}
	if code := d.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("exit %d after SIGTERM\n%s", code, d.stderr)
	}
}

// sendText sends msg in plaintext, without STARTTLS (the relay's
// certificate is self-signed).
func sendText(addr, from, to, msg string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		return err
	}
	if err := c.Mail(from, nil); err != nil {
		return err
	}
	if err := c.Rcpt(to, nil); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(msg)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}
