package relay_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/relay/smtptest"
)

// TestDelivererSuppressesHardBounces runs the whole path: a Server and a
// Deliverer share a SuppressionFile; the upstream (smtptest) refuses one
// recipient at RCPT with 550 5.1.1 (RFC 3463 §3.2, no such mailbox) and
// another with 550 5.7.1 (a policy refusal). Both bounce, but only the
// first is suppressed, for the sending account, with the reply and the
// message's queue ID; the next message to it is refused at RCPT with
// 550 5.1.1, and the other goes through. A 550 5.1.1 to the end of the
// content of a message of one recipient suppresses it too.
func TestDelivererSuppressesHardBounces(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sink, err := smtptest.NewServer(&smtptest.Options{TLS: smtptest.NoTLS})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	for _, f := range []smtptest.Fault{
		{On: smtptest.RCPT, Rcpt: "dead@receiver.example", Reply: relay.Reply{Code: 550, Enhanced: relay.EnhancedCode{5, 1, 1}, Message: "no such user"}},
		{On: smtptest.RCPT, Rcpt: "picky@receiver.example", Reply: relay.Reply{Code: 550, Enhanced: relay.EnhancedCode{5, 7, 1}, Message: "Delivery not authorized, message refused"}},
	} {
		if err := sink.Fail(f); err != nil {
			t.Fatal(err)
		}
	}
	sup, err := relay.OpenSuppressionFile(ctx, filepath.Join(t.TempDir(), "suppressions.json"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sup.Close() })
	spool, err := relay.NewSpool(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	fx := srvStartQueue(t, spool, func(o *relay.ServerOptions) { o.Suppressions = sup }, nil)
	up, err := relay.NewClient(sink.Addr, &relay.ClientOptions{TLS: relay.NoTLS, LocalName: "relay.test"})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	bounced := map[string]relay.Event{}
	got := make(chan struct{}, 10)
	d, err := relay.NewDeliverer(spool, up, &relay.DelivererOptions{
		Suppressions: sup,
		Hostname:     "relay.test",
		Events: relay.EventsFunc(func(ctx context.Context, e *relay.Event) {
			if e.Type == relay.EventBounced {
				mu.Lock()
				bounced[e.Rcpt] = *e
				mu.Unlock()
				got <- struct{}{}
			}
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- d.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		<-ran
		up.Close()
		spool.Close()
	})

	c := srvDial(t, fx.addr, "", 220)
	c.login(fx.client, srvKey)
	c.cmd(250, "MAIL FROM:<orders@customer.example>")
	for _, r := range []string{"dead@receiver.example", "picky@receiver.example", "live@receiver.example"} {
		c.cmd(250, "RCPT TO:<"+r+">")
	}
	c.cmd(354, "DATA")
	c.write(srvMessage + ".\r\n")
	qid := strings.TrimPrefix(c.expectText("250 2.0.0 OK: queued as "), "250 2.0.0 OK: queued as ")

	deadline := time.After(2 * time.Minute)
	for n := 0; n < 2; n++ {
		select {
		case <-got:
		case <-deadline:
			t.Fatalf("bounced events: %d of 2 after a minute", n)
		}
	}
	mu.Lock()
	for _, r := range []string{"dead@receiver.example", "picky@receiver.example"} {
		if e := bounced[r]; !e.Hard || e.Account != "shop" || e.QueueID != qid {
			t.Errorf("bounced event of %s: %+v", r, e)
		}
	}
	mu.Unlock()

	s, err := sup.Suppressed(ctx, "shop", "dead@receiver.example")
	if err != nil || s == nil {
		t.Fatalf("dead@receiver.example not suppressed: %v, %v", s, err)
	}
	if s.Source != relay.SuppressedByBounce || s.QueueID != qid || s.Reason != "550 5.1.1 no such user" || s.Created.IsZero() {
		t.Errorf("suppression %+v", s)
	}
	if s, err := sup.Suppressed(ctx, "shop", "picky@receiver.example"); err != nil || s != nil {
		t.Errorf("picky@receiver.example (550 5.7.1) suppressed: %+v, %v", s, err)
	}
	if l, err := sup.List(ctx, ""); err != nil || len(l) != 1 {
		t.Errorf("List = %+v, %v; want the one suppression", l, err)
	}

	// The next message: the suppressed recipient is refused at RCPT.
	c.cmd(250, "MAIL FROM:<orders@customer.example>")
	if r := c.expectTextAfter("RCPT TO:<dead@receiver.example>", "550 5.1.1 "); !strings.Contains(r, "suppressed for this account: a hard bounce: 550 5.1.1 no such user") {
		t.Errorf("RCPT of the suppressed recipient: %q", r)
	}
	c.cmd(250, "RCPT TO:<picky@receiver.example>")
	c.cmd(250, "RSET")

	// A 550 5.1.1 after DATA, in a transaction of one recipient, is about
	// that recipient: suppressed too. First the sink gets the message to
	// live@ and the DSN, so that the fault meets only the next message.
	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	defer wcancel()
	if _, err := sink.WaitMessages(wctx, 2); err != nil {
		t.Fatalf("the sink has %d messages: %v", len(sink.Messages()), err)
	}
	if err := sink.Fail(smtptest.Fault{On: smtptest.EndOfData, Times: 1,
		Reply: relay.Reply{Code: 550, Enhanced: relay.EnhancedCode{5, 1, 1}, Message: "mailbox gone"}}); err != nil {
		t.Fatal(err)
	}
	c.cmd(250, "MAIL FROM:<orders@customer.example>")
	c.cmd(250, "RCPT TO:<gone@receiver.example>")
	c.cmd(354, "DATA")
	c.write(srvMessage + ".\r\n")
	c.expectText("250 2.0.0 OK: queued as ")
	select {
	case <-got:
	case <-deadline:
		t.Fatal("no bounced event for gone@ after a minute")
	}
	if s, err := sup.Suppressed(ctx, "shop", "gone@receiver.example"); err != nil || s == nil || s.Reason != "550 5.1.1 mailbox gone" {
		t.Errorf("gone@receiver.example after a 550 5.1.1 at the end of data: %+v, %v", s, err)
	}
}

// TestDelivererSuppressionCases: what a Send reports decides what is
// suppressed. A 5.1.1 of each recipient's own (RCPT) suppresses it; a
// 5.1.1 to the whole transaction of two recipients (after DATA) says
// nothing of which, and suppresses neither; a message without an account
// (a trusted network) suppresses nothing.
func TestDelivererSuppressionCases(t *testing.T) {
	t.Parallel()
	gone := &relay.Reply{Code: 550, Enhanced: relay.EnhancedCode{5, 1, 1}, Message: "gone"}
	for _, tt := range []struct {
		name    string
		account string
		send    func(ctx context.Context, env *relay.Envelope) (*relay.Receipt, error)
		want    []string
	}{
		{"each at RCPT", "shop", func(context.Context, *relay.Envelope) (*relay.Receipt, error) {
			return &relay.Receipt{Host: "mx:25", Rcpts: []relay.RcptResult{{Addr: "bob@example.org", Reply: gone}, {Addr: "carol@example.org", Reply: gone}}}, nil
		}, []string{"bob@example.org", "carol@example.org"}},
		{"the whole transaction", "shop", func(context.Context, *relay.Envelope) (*relay.Receipt, error) {
			cp1, cp2 := *gone, *gone
			return &relay.Receipt{Host: "mx:25", Rcpts: []relay.RcptResult{{Addr: "bob@example.org", Reply: &cp1}, {Addr: "carol@example.org", Reply: &cp2}}},
				fmt.Errorf("end of data: %w", gone)
		}, nil},
		{"no account", "", func(context.Context, *relay.Envelope) (*relay.Receipt, error) {
			return &relay.Receipt{Host: "mx:25", Rcpts: []relay.RcptResult{{Addr: "bob@example.org", Reply: gone}, {Addr: "carol@example.org", Reply: gone}}}, nil
		}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sup := &relay.MemorySuppressions{}
			fx := newDeliveryFixture(t, &relay.DelivererOptions{Suppressions: sup})
			fx.sender.send = tt.send
			enqueue(t, fx.spool, &relay.Entry{Sender: "alice@example.com", Account: tt.account}, relay.To("bob@example.org", "carol@example.org")...)
			fx.run(t, nil, nil)
			deadline := time.Now().Add(time.Minute)
			for len(fx.events.all()) < 2 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			fx.stop(t)
			l, _ := sup.List(context.Background(), "")
			var got []string
			for _, s := range l {
				got = append(got, s.Recipient)
			}
			slices.Sort(got)
			wantStrings(t, "suppressed", got, tt.want)
		})
	}
}
