package smtptest_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/relay/sasl"
	"github.com/smarthost-go/smarthost/relay/smtptest"
)

func fail(t *testing.T, s *smtptest.Server, f smtptest.Fault) {
	t.Helper()
	if err := s.Fail(f); err != nil {
		t.Fatal(err)
	}
}

func reply(code int, enh relay.EnhancedCode, msg string) relay.Reply {
	return relay.Reply{Code: code, Enhanced: enh, Message: msg}
}

// Each fault is what a client sees, on the command it names; the server
// then goes on as it would have.
func TestFaultsSeenByClient(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		on   smtptest.Command
		run  func(c *smtp.Client) error // the step the fault answers
		kept int                        // messages kept after run and a send on a new connection
	}{
		{smtptest.EHLO, func(c *smtp.Client) error { return c.Hello("x") }, 1},
		{smtptest.MAIL, func(c *smtp.Client) error { return c.Mail("a@example.com", nil) }, 1},
		{smtptest.RCPT, func(c *smtp.Client) error {
			c.Mail("a@example.com", nil)
			return c.Rcpt("b@example.org", nil)
		}, 1},
		{smtptest.DATA, func(c *smtp.Client) error {
			c.Mail("a@example.com", nil)
			c.Rcpt("b@example.org", nil)
			_, err := c.Data()
			return err
		}, 1},
		{smtptest.EndOfData, func(c *smtp.Client) error { return send(c, "a@example.com", []string{"b@example.org"}, body) }, 1},
		{smtptest.RSET, func(c *smtp.Client) error { return c.Reset() }, 1},
	} {
		t.Run(string(tc.on), func(t *testing.T) {
			t.Parallel()
			s := newServer(t, &smtptest.Options{TLS: smtptest.NoTLS})
			fail(t, s, smtptest.Fault{On: tc.on, Reply: reply(451, relay.EnhancedCode{4, 3, 0}, "Try again\nlater"), Times: 1})
			c := dial(t, s)
			var e *smtp.SMTPError
			if err := tc.run(c); !errors.As(err, &e) || e.Code != 451 || e.EnhancedCode != (smtp.EnhancedCode{4, 3, 0}) || e.Message != "Try again\nlater" {
				t.Fatalf("error %#v, want 451 4.3.0 Try again\\nlater", err)
			}
			if err := send(dial(t, s), "a@example.com", []string{"b@example.org"}, body); err != nil {
				t.Fatalf("after the fault: %v", err)
			}
			if got := len(wait(t, s, tc.kept)); got != tc.kept {
				t.Errorf("%d messages kept, want %d", got, tc.kept)
			}
		})
	}
}

// A RCPT fault for one recipient leaves the others alone; the message
// goes to them.
func TestFaultOneRecipient(t *testing.T) {
	t.Parallel()
	s := newServer(t, &smtptest.Options{TLS: smtptest.NoTLS})
	fail(t, s, smtptest.Fault{On: smtptest.RCPT, Rcpt: "Bad@Example.org", Reply: reply(550, relay.EnhancedCode{5, 1, 1}, "No such user")})
	c := dial(t, s)
	c.Mail("a@example.com", nil)
	checkReply(t, c.Rcpt("bad@example.org", nil), 550, relay.EnhancedCode{5, 1, 1})
	if err := c.Rcpt("good@example.org", nil); err != nil {
		t.Fatal(err)
	}
	checkReply(t, c.Rcpt("bad@example.org", nil), 550, relay.EnhancedCode{5, 1, 1}) // always
	w, _ := c.Data()
	w.Write([]byte(body))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if m := wait(t, s, 1)[0]; len(m.Envelope.To) != 1 || m.Envelope.To[0].Addr != "good@example.org" {
		t.Errorf("recipients %+v", m.Envelope.To)
	}
}

// A refused end of DATA keeps no message.
func TestFaultEndOfData(t *testing.T) {
	t.Parallel()
	s := newServer(t, &smtptest.Options{TLS: smtptest.NoTLS})
	fail(t, s, smtptest.Fault{On: smtptest.EndOfData, Reply: reply(554, relay.EnhancedCode{5, 6, 0}, "Content refused"), Times: 1})
	c := dial(t, s)
	checkReply(t, send(c, "a@example.com", []string{"b@example.org"}, body), 554, relay.EnhancedCode{5, 6, 0})
	if err := send(c, "a@example.com", []string{"b@example.org"}, "second\r\n"); err != nil {
		t.Fatal(err)
	}
	if msgs := wait(t, s, 1); len(msgs) != 1 || string(msgs[0].Data) != "second\r\n" || s.Stats().Messages != 1 {
		t.Errorf("kept %d messages, the first %q", len(msgs), msgs[0].Data)
	}
}

// A refused greeting: 554 and then 503 to all but QUIT (RFC 5321 §3.1);
// 421 closes; a hang-up says nothing.
func TestFaultGreeting(t *testing.T) {
	t.Parallel()
	s := newServer(t, &smtptest.Options{TLS: smtptest.NoTLS})
	fail(t, s, smtptest.Fault{On: smtptest.Greeting, Reply: reply(554, relay.EnhancedCode{5, 3, 2}, "No service"), Times: 1})
	fail(t, s, smtptest.Fault{On: smtptest.Greeting, Reply: reply(421, relay.EnhancedCode{4, 3, 2}, "Busy"), Times: 1})
	fail(t, s, smtptest.Fault{On: smtptest.Greeting, Hangup: true, Times: 1})

	c := dial(t, s)
	checkReply(t, c.Hello("x"), 554, relay.EnhancedCode{5, 3, 2})
	r := rawNoGreeting(t, s)
	if msg := r.read(421); msg != "4.3.2 Busy" {
		t.Errorf("421 text %q", msg)
	}
	r.closed()
	r = rawNoGreeting(t, s)
	r.closed()
	// Spent: the next client is greeted.
	r = dialRaw(t, s)
	r.expect("QUIT", 221)

	s = newServer(t, &smtptest.Options{TLS: smtptest.NoTLS})
	fail(t, s, smtptest.Fault{On: smtptest.Greeting, Reply: reply(554, relay.EnhancedCode{}, "Go away")})
	r = rawNoGreeting(t, s)
	if msg := r.read(554); msg != "Go away" {
		t.Errorf("554 text %q", msg)
	}
	r.expect("EHLO x", 503)
	r.expect("MAIL FROM:<a@example.com>", 503)
	r.expect("QUIT", 221)
}

// AUTH and BDAT faults, and hang-ups.
func TestFaultAuthBDATHangup(t *testing.T) {
	t.Parallel()
	s := newServer(t, &smtptest.Options{TLS: smtptest.NoTLS, AllowInsecureAuth: true, Users: map[string]string{"u": "p"}})
	fail(t, s, smtptest.Fault{On: smtptest.AUTH, Reply: reply(454, relay.EnhancedCode{4, 7, 0}, "Temporary failure"), Times: 1})
	c := dial(t, s)
	a, _ := sasl.NewClient(sasl.Plain, sasl.Credentials{Username: "u", Password: "p"})
	checkReply(t, c.Auth(a), 454, relay.EnhancedCode{4, 7, 0})
	login(t, c, sasl.Plain, "u", "p")

	// A refused BDAT ends the transaction: its chunk and the ones before
	// are dropped, and the next transaction is whole.
	fail(t, s, smtptest.Fault{On: smtptest.BDAT, Reply: reply(552, relay.EnhancedCode{5, 3, 4}, "Too big"), Times: 1})
	r := dialRaw(t, s)
	r.expect("EHLO x", 250)
	r.expect("AUTH PLAIN AHUAcA==", 235)
	r.expect("MAIL FROM:<a@example.com>", 250)
	r.expect("RCPT TO:<b@example.org>", 250)
	r.write("BDAT 4\r\nEHLO")
	r.read(552)
	r.write("BDAT 4 LAST\r\nabcd")
	r.read(502) // go-smtp: no transaction
	r.expect("MAIL FROM:<a@example.com>", 250)
	r.expect("RCPT TO:<b@example.org>", 250)
	r.write("BDAT 3\r\nabc")
	r.read(250)
	r.write("BDAT 2 LAST\r\nde")
	r.read(250)
	if m := wait(t, s, 1)[0]; string(m.Data) != "abcde" {
		t.Errorf("message %q, want abcde", m.Data)
	}

	// A hang-up on MAIL, and a 421 that closes.
	fail(t, s, smtptest.Fault{On: smtptest.MAIL, Hangup: true, Times: 1})
	fail(t, s, smtptest.Fault{On: smtptest.MAIL, Reply: reply(421, relay.EnhancedCode{4, 4, 2}, "Closing"), Times: 1})
	r.write("MAIL FROM:<a@example.com>\r\n")
	r.closed()
	r = dialRaw(t, s)
	r.expect("EHLO x", 250)
	r.expect("AUTH PLAIN AHUAcA==", 235)
	r.expect("MAIL FROM:<a@example.com>", 421)
	r.closed()
}

// A Content fault hangs up in the middle of the message: the server keeps
// nothing, and had passed on exactly After octets.
func TestFaultContentHangup(t *testing.T) {
	t.Parallel()
	s := newServer(t, &smtptest.Options{TLS: smtptest.NoTLS})
	fail(t, s, smtptest.Fault{On: smtptest.Content, Hangup: true, After: 10, Times: 1})
	c := dial(t, s)
	if err := send(c, "a@example.com", []string{"b@example.org"}, strings.Repeat("x", 100)+"\r\n"); err == nil {
		t.Fatal("the message went through a hang-up")
	}
	c = dial(t, s)
	if err := send(c, "a@example.com", []string{"b@example.org"}, body); err != nil {
		t.Fatal(err)
	}
	if msgs := wait(t, s, 1); len(msgs) != 1 || string(msgs[0].Data) != body {
		t.Errorf("kept %d messages", len(msgs))
	}
	// Within a BDAT chunk too.
	fail(t, s, smtptest.Fault{On: smtptest.Content, Hangup: true, After: 2, Times: 1})
	r := dialRaw(t, s)
	r.expect("EHLO x", 250)
	r.expect("MAIL FROM:<a@example.com>", 250)
	r.expect("RCPT TO:<b@example.org>", 250)
	r.write("BDAT 5 LAST\r\nabcde")
	r.closed()
	if n := len(s.Messages()); n != 1 {
		t.Errorf("%d messages after the BDAT hang-up", n)
	}
}

// Faults run out, and ClearFaults removes them.
func TestFaultTimesAndClear(t *testing.T) {
	t.Parallel()
	s := newServer(t, &smtptest.Options{TLS: smtptest.NoTLS})
	fail(t, s, smtptest.Fault{On: smtptest.MAIL, Reply: reply(451, relay.EnhancedCode{4, 3, 0}, "Later"), Times: 2})
	c := dial(t, s)
	for i := range 2 {
		if err := c.Mail("a@example.com", nil); err == nil {
			t.Fatalf("MAIL %d succeeded", i+1)
		}
	}
	if err := c.Mail("a@example.com", nil); err != nil {
		t.Fatalf("MAIL after the fault ran out: %v", err)
	}
	fail(t, s, smtptest.Fault{On: smtptest.RSET, Reply: reply(500, relay.EnhancedCode{5, 5, 1}, "No")})
	for range 2 {
		checkReply(t, c.Reset(), 500, relay.EnhancedCode{5, 5, 1})
	}
	s.ClearFaults()
	if err := c.Reset(); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Commands["MAIL"] != 3 || st.Commands["RSET"] != 3 || st.Transactions != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestFaultValidation(t *testing.T) {
	t.Parallel()
	s := newServer(t, &smtptest.Options{TLS: smtptest.NoTLS})
	for _, f := range []smtptest.Fault{
		{On: "NOOP", Reply: reply(500, relay.EnhancedCode{}, "")},
		{On: smtptest.MAIL, Reply: reply(250, relay.EnhancedCode{}, "OK")},
		{On: smtptest.MAIL, Rcpt: "a@example.com", Reply: reply(550, relay.EnhancedCode{}, "")},
		{On: smtptest.Content, Reply: reply(554, relay.EnhancedCode{}, "")},
		{On: smtptest.MAIL, Hangup: true, After: 3},
		{On: smtptest.Content, Hangup: true, After: -1},
		{On: smtptest.MAIL, Reply: reply(451, relay.EnhancedCode{}, ""), Times: -1},
	} {
		if err := s.Fail(f); err == nil {
			t.Errorf("Fail(%+v) accepted", f)
		}
	}
}

// Faults apply on TLS sessions too: the fixture reads the commands after
// STARTTLS.
func TestFaultAfterSTARTTLS(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	fail(t, s, smtptest.Fault{On: smtptest.RCPT, Reply: reply(452, relay.EnhancedCode{4, 5, 3}, "Too many recipients")})
	c := dialStartTLS(t, s)
	c.Mail("a@example.com", nil)
	checkReply(t, c.Rcpt("b@example.org", nil), 452, relay.EnhancedCode{4, 5, 3})
	if st := s.Stats(); st.Commands["STARTTLS"] != 1 || st.Commands["EHLO"] != 2 || st.Commands["RCPT"] != 1 {
		t.Errorf("commands %v", st.Commands)
	}
}

// SetDelay delays replies without changing them (no timing is asserted).
func TestDelay(t *testing.T) {
	t.Parallel()
	s := newServer(t, &smtptest.Options{TLS: smtptest.NoTLS, Delay: 1})
	c := dial(t, s)
	if err := send(c, "a@example.com", []string{"b@example.org"}, body); err != nil {
		t.Fatal(err)
	}
	s.SetDelay(0)
	if err := send(c, "a@example.com", []string{"b@example.org"}, body); err != nil {
		t.Fatal(err)
	}
	wait(t, s, 2)
}

// A STARTTLS fault answers in place of the 220, and the session goes on in
// plaintext: the server still takes a message, without TLS.
func TestFaultSTARTTLS(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	fail(t, s, smtptest.Fault{On: smtptest.STARTTLS, Reply: reply(454, relay.EnhancedCode{4, 7, 0}, "TLS not available due to temporary reason"), Times: 1})
	r := dialRaw(t, s)
	if ehlo := r.expect("EHLO client.example", 250); !strings.Contains(ehlo, "STARTTLS") {
		t.Fatalf("EHLO reply %q does not offer STARTTLS", ehlo)
	}
	if text := r.expect("STARTTLS", 454); text != "4.7.0 TLS not available due to temporary reason" {
		t.Errorf("STARTTLS reply %q", text)
	}
	r.expect("MAIL FROM:<a@example.com>", 250)
	r.expect("RCPT TO:<b@example.org>", 250)
	r.expect("DATA", 354)
	r.write("Subject: x\r\n\r\nplain\r\n.\r\n")
	r.read(250)
	if m := wait(t, s, 1)[0]; m.TLS != nil || string(m.Data) != "Subject: x\r\n\r\nplain\r\n" {
		t.Errorf("kept %q, TLS %v", m.Data, m.TLS != nil)
	}
	// The fault is spent: the next STARTTLS goes ahead.
	r2 := dialRaw(t, s)
	r2.expect("EHLO client.example", 250)
	r2.expect("STARTTLS", 220)
	if n := s.Stats().Commands["STARTTLS"]; n != 2 {
		t.Errorf("%d STARTTLS counted", n)
	}
}
