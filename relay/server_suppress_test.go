package relay_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/smarthost-go/smarthost/relay"
)

// srvSuppressions is the list of the suppression tests: bob is suppressed
// for shop (the account of srvKey) after a bounce, carol for another
// account only.
func srvSuppressions(t *testing.T) *relay.MemorySuppressions {
	t.Helper()
	s := &relay.MemorySuppressions{}
	ctx := context.Background()
	for _, v := range []relay.Suppression{
		{Account: "shop", Recipient: "bob@example.net", Source: relay.SuppressedByBounce, Reason: "550 5.1.1 user unknown", Created: time.Now()},
		{Account: "news", Recipient: "carol@example.net", Source: relay.SuppressedByHand, Created: time.Now()},
	} {
		if err := s.Add(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// TestServerSuppressedRefuse: RCPT of a recipient suppressed for the
// account is answered 550 5.1.1 (RFC 3463 §3.2, bad destination mailbox)
// with a text that says it is suppressed for this account and why; the
// local part keeps its case (BOB is another mailbox) and the domain does
// not; a recipient suppressed only for another account, and every
// recipient of a trusted-network client (which has no account), goes
// through.
func TestServerSuppressedRefuse(t *testing.T) {
	t.Parallel()
	sup := srvSuppressions(t)
	fx := srvStart(t, func(o *relay.ServerOptions) {
		o.Suppressions = sup
		o.Trusted = append(o.Trusted, srvTrusted)
	})
	c := srvDial(t, fx.addr, "", 220)
	c.login(fx.client, srvKey)
	c.cmd(250, "MAIL FROM:<orders@customer.example>")
	got := c.expectTextAfter("RCPT TO:<bob@EXAMPLE.net>", "550 5.1.1 ")
	for _, want := range []string{"<bob@EXAMPLE.net>", "suppressed for this account", "a hard bounce: 550 5.1.1 user unknown"} {
		if !strings.Contains(got, want) {
			t.Errorf("reply %q lacks %q", got, want)
		}
	}
	c.cmd(250, "RCPT TO:<BOB@example.net>")   // another local part
	c.cmd(250, "RCPT TO:<carol@example.net>") // suppressed for news, not shop
	c.cmd(354, "DATA")
	c.write(srvMessage + ".\r\n")
	c.expectText("250 2.0.0 OK: queued as")
	entries, _ := fx.q.stored()
	if len(entries) != 1 || len(entries[0].Envelope.To) != 2 || entries[0].Envelope.To[0].Addr != "BOB@example.net" ||
		entries[0].Envelope.To[1].Addr != "carol@example.net" || entries[0].Account != "shop" {
		t.Fatalf("queued %+v", entries)
	}
	for _, e := range fx.eventList() {
		if e.Type == relay.EventDropped {
			t.Errorf("a dropped event in refuse mode: %+v", e)
		}
	}

	// A trusted-network client has no account: no list applies.
	tc := srvDial(t, fx.addr, "127.0.0.2", 220)
	tc.cmd(250, "EHLO legacy.test")
	tc.cmd(250, "MAIL FROM:<orders@customer.example>")
	tc.cmd(250, "RCPT TO:<bob@example.net>")
}

// expectTextAfter sends a command and checks that the reply
// begins with prefix.
func (c *srvRaw) expectTextAfter(line, prefix string) string {
	c.t.Helper()
	c.write(line + "\r\n")
	return c.expectText(prefix)
}

// TestServerSuppressedDrop: with SuppressedDrop, RCPT of a suppressed
// recipient gets 250, the message is queued without it, and a dropped
// event names it with the account, the sender, the queue ID and Message-ID
// and the reason; a message whose every recipient is dropped gets 250 and
// queues nothing, and its dropped event has no queue ID.
func TestServerSuppressedDrop(t *testing.T) {
	t.Parallel()
	sup := srvSuppressions(t)
	fx := srvStart(t, func(o *relay.ServerOptions) {
		o.Suppressions = sup
		o.SuppressedAction = relay.SuppressedDrop
	})
	c := srvDial(t, fx.addr, "", 220)
	c.login(fx.client, srvKey)
	c.cmd(250, "MAIL FROM:<orders@customer.example>")
	c.cmd(250, "RCPT TO:<bob@example.net>")
	c.cmd(250, "RCPT TO:<buyer@example.net>")
	c.cmd(354, "DATA")
	c.write("Message-ID: <m1@customer.example>\r\n" + srvMessage + ".\r\n")
	reply := c.expectText("250 2.0.0 OK: queued as ")
	qid := strings.TrimPrefix(reply, "250 2.0.0 OK: queued as ")
	entries, _ := fx.q.stored()
	if len(entries) != 1 || len(entries[0].Envelope.To) != 1 || entries[0].Envelope.To[0].Addr != "buyer@example.net" ||
		len(entries[0].Rcpts) != 1 || entries[0].Rcpts[0].Addr != "buyer@example.net" {
		t.Fatalf("queued %+v, want buyer only", entries)
	}
	var dropped, accepted []relay.Event
	for _, e := range fx.eventList() {
		switch e.Type {
		case relay.EventDropped:
			dropped = append(dropped, e)
		case relay.EventAccepted:
			accepted = append(accepted, e)
		}
	}
	if len(accepted) != 1 || accepted[0].Rcpt != "buyer@example.net" {
		t.Errorf("accepted events %+v, want buyer only", accepted)
	}
	want := relay.Event{Type: relay.EventDropped, QueueID: qid, MessageID: "<m1@customer.example>", Account: "shop",
		From: "orders@customer.example", Rcpt: "bob@example.net",
		Reason: "suppressed for this account: a hard bounce: 550 5.1.1 user unknown"}
	if len(dropped) != 1 {
		t.Fatalf("dropped events %+v, want one", dropped)
	}
	got := dropped[0]
	if got.Time.IsZero() {
		t.Error("dropped event without a time")
	}
	got.Time = time.Time{}
	if got != want {
		t.Errorf("dropped event\n got %+v\nwant %+v", got, want)
	}

	// Every recipient dropped: 250, nothing more queued.
	c.cmd(250, "MAIL FROM:<orders@customer.example>")
	c.cmd(250, "RCPT TO:<bob@example.net>")
	c.cmd(354, "DATA")
	c.write(srvMessage + ".\r\n")
	c.expectText("250 2.0.0 OK: every recipient is suppressed, nothing queued")
	if entries, _ := fx.q.stored(); len(entries) != 1 {
		t.Errorf("%d messages queued, want still 1", len(entries))
	}
	if _, commits, _ := fx.q.counts(); commits != 1 {
		t.Errorf("Commit called %d times, want 1", commits)
	}
	n := 0
	for _, e := range fx.eventList() {
		if e.Type == relay.EventDropped && e.QueueID == "" && e.Rcpt == "bob@example.net" && e.Account == "shop" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d dropped events without a queue ID, want 1: %+v", n, fx.eventList())
	}
	// The session goes on.
	c.cmd(250, "MAIL FROM:<orders@customer.example>")
	c.cmd(250, "RCPT TO:<buyer@example.net>")
}

// failingSuppressions is a Suppressions whose list cannot be read.
type failingSuppressions struct{ relay.MemorySuppressions }

func (*failingSuppressions) Suppressed(ctx context.Context, account, rcpt string) (*relay.Suppression, error) {
	return nil, errors.New("disk on fire")
}

// TestServerSuppressionsError: when the list cannot be read, RCPT gets
// 451 4.3.0 (RFC 3463 §3.4, a mail system error, temporary), in both
// modes: never accepted unchecked.
func TestServerSuppressionsError(t *testing.T) {
	t.Parallel()
	for _, action := range []relay.SuppressedAction{relay.SuppressedRefuse, relay.SuppressedDrop} {
		fx := srvStart(t, func(o *relay.ServerOptions) {
			o.Suppressions = &failingSuppressions{}
			o.SuppressedAction = action
		})
		c := srvDial(t, fx.addr, "", 220)
		c.login(fx.client, srvKey)
		c.cmd(250, "MAIL FROM:<orders@customer.example>")
		got := c.expectTextAfter("RCPT TO:<buyer@example.net>", "451 4.3.0 ")
		if strings.Contains(got, "disk on fire") {
			t.Errorf("%s: the reply shows the error: %q", action, got)
		}
		c.write("DATA\r\n")
		if code, _, _ := c.reply(); code/100 != 5 {
			t.Errorf("%s: DATA without a recipient got %d", action, code)
		}
		fx.nothingQueued()
	}
	if _, err := relay.NewServer(&srvQueue{}, &relay.ServerOptions{Hostname: "relay.test", SuppressedAction: "bounce"}); err == nil {
		t.Error("NewServer took SuppressedAction \"bounce\"")
	}
}
