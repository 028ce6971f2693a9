package relay_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/smarthost-go/smarthost/relay"
)

// metricsLog is a Metrics that writes down each call.
type metricsLog struct {
	mu    sync.Mutex
	calls []string
}

func (m *metricsLog) add(s string) {
	m.mu.Lock()
	m.calls = append(m.calls, s)
	m.mu.Unlock()
}

func (m *metricsLog) MessageAccepted(account string, rcpts int) {
	m.add(fmt.Sprintf("accepted %s %d", account, rcpts))
}
func (m *metricsLog) MessageRefused(reason string) { m.add("refused " + reason) }
func (m *metricsLog) AuthFailed()                  { m.add("auth failed") }
func (m *metricsLog) Recipient(outcome relay.EventType, reason string, latency time.Duration) {
	m.add(fmt.Sprintf("%s %q %v", outcome, reason, latency))
}

func (m *metricsLog) list() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.calls...)
}

// The Server counts a message accepted with its account and recipients,
// each refusal with its enhanced status code, and each failed AUTH.
func TestServerMetrics(t *testing.T) {
	t.Parallel()
	m := &metricsLog{}
	fx := srvStart(t, func(o *relay.ServerOptions) { o.Metrics = m })

	if _, err := srvSend(t, fx, srvKey, "orders@customer.example", []string{"a@example.net", "b@example.net"},
		"From: orders@customer.example\r\nSubject: hi\r\n\r\nbody\r\n"); err != nil {
		t.Fatal(err)
	}
	// Refused at DATA: the header has no From field.
	if _, err := srvSend(t, fx, srvKey, "orders@customer.example", []string{"a@example.net"},
		"Subject: no From\r\n\r\nbody\r\n"); err == nil {
		t.Fatal("a message without From was accepted")
	}
	// Refused at MAIL: a domain that is not the account's.
	if _, err := srvSend(t, fx, srvKey, "someone@elsewhere.example", []string{"a@example.net"}, ""); err == nil {
		t.Fatal("MAIL FROM a foreign domain was accepted")
	}
	// A wrong key.
	if _, err := srvSend(t, fx, "wrong key", "orders@customer.example", nil, ""); err == nil {
		t.Fatal("a wrong key authenticated")
	}
	// Refused at RCPT: no AUTH.
	c := srvDial(t, fx.addr, "", 220)
	c.cmd(250, "EHLO client.test")
	c.cmd(250, "MAIL FROM:<orders@customer.example>")
	c.write("RCPT TO:<buyer@example.net>\r\n")
	c.expectText("530 5.7.0")

	wantStrings(t, "metrics", m.list(), []string{
		"accepted shop 2",
		"refused 5.6.0",
		"refused 5.7.1",
		"auth failed",
		"refused 5.7.0",
	})
}

// The Deliverer counts each recipient's outcome with the enhanced status
// code of the reply and the time since the message was accepted.
func TestDelivererMetrics(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		m := &metricsLog{}
		fx := newDeliveryFixture(t, &relay.DelivererOptions{Metrics: m})
		fx.sender.script("carol@example.org", later451, ok250)
		fx.sender.script("dave@example.org", no550)
		enqueue(t, fx.spool, nil, relay.To("bob@example.org", "carol@example.org", "dave@example.org")...)
		fx.run(t, nil, nil)
		synctest.Wait()
		time.Sleep(time.Minute)
		synctest.Wait()
		wantStrings(t, "metrics", m.list(), []string{
			`delivered "" 0s`,
			`deferred "4.3.0" 0s`,
			`bounced "5.1.1" 0s`,
			`delivered "" 0s`, // the DSN to alice
			`delivered "" 1m0s`,
		})
	})
}

// A message past MaxAge counts its pending recipients bounced, expired.
func TestDelivererMetricsExpired(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		m := &metricsLog{}
		fx := newDeliveryFixture(t, &relay.DelivererOptions{Metrics: m, MaxAge: 90 * time.Second})
		fx.sender.script("carol@example.org", later451, later451, later451)
		enqueue(t, fx.spool, nil, relay.To("carol@example.org")...)
		fx.run(t, nil, nil)
		synctest.Wait()
		time.Sleep(time.Hour)
		synctest.Wait()
		wantStrings(t, "metrics", m.list(), []string{
			`deferred "4.3.0" 0s`,
			`deferred "4.3.0" 1m0s`,
			`deferred "4.3.0" 1m30s`, // the last attempt, at MaxAge
			`bounced "expired" 1m30s`,
			`delivered "" 0s`, // the DSN to alice
		})
	})
}

// Spool.Stats gives the number of messages and when the oldest was
// accepted.
func TestSpoolStats(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		s := newSpool(t, dir, nil)
		if n, oldest := s.Stats(); n != 0 || !oldest.IsZero() {
			t.Errorf("empty spool: Stats = %d, %v", n, oldest)
		}
		start := time.Now()
		enqueue(t, s, nil, relay.To("bob@example.org")...)
		time.Sleep(time.Minute)
		enqueue(t, s, &relay.Entry{Sender: "alice@example.com"}, relay.To("carol@example.org")...)
		if n, oldest := s.Stats(); n != 2 || !oldest.Equal(start) {
			t.Errorf("Stats = %d, %v; want 2, %v", n, oldest, start)
		}
		// Opened again, the spool reads the times from its entries.
		s.Close()
		time.Sleep(time.Minute)
		if n, oldest := newSpool(t, dir, nil).Stats(); n != 2 || !oldest.Equal(start) {
			t.Errorf("reopened: Stats = %d, %v; want 2, %v", n, oldest, start)
		}
	})
}

// The BounceServer counts each failed recipient of a DSN that the message
// had as a bounced recipient, with the report's status and the time since
// the message was accepted; a recipient the message did not have and a
// delayed one are not counted.
func TestBounceServerMetrics(t *testing.T) {
	t.Parallel()
	m := &metricsLog{}
	fx := bncStart(t, func(o *relay.BounceServerOptions) {
		o.Metrics = m
		o.Now = func() time.Time { return bncRecord.Created.Add(90 * time.Minute) }
	})
	fx.send(bncRP, dsn(
		dsnBlock("gone@example.net", "5.1.1", "550 5.1.1 User unknown"),
		dsnBlock("buyer@example.net", "5.7.1", "550 5.7.1 Message rejected"),
		dsnBlock("stranger@example.org", "5.1.1", "550 5.1.1 User unknown"),
	), "250 2.0.0")
	want := []string{`bounced "5.1.1" 1h30m0s`, `bounced "5.7.1" 1h30m0s`}
	if got := m.list(); !slices.Equal(got, want) {
		t.Errorf("metrics %q, want %q", got, want)
	}
}

// The Server counts RCPT of a suppressed recipient, refused with 550
// 5.1.1, as a refusal of reason 5.1.1; a recipient that is not suppressed
// is no refusal.
func TestServerMetricsSuppressed(t *testing.T) {
	t.Parallel()
	m := &metricsLog{}
	sup := srvSuppressions(t)
	fx := srvStart(t, func(o *relay.ServerOptions) {
		o.Metrics = m
		o.Suppressions = sup
	})
	c := srvDial(t, fx.addr, "", 220)
	c.login(fx.client, srvKey)
	c.cmd(250, "MAIL FROM:<orders@customer.example>")
	c.expectTextAfter("RCPT TO:<bob@example.net>", "550 5.1.1 ")
	c.cmd(250, "RCPT TO:<carol@example.net>")
	c.cmd(221, "QUIT")
	wantStrings(t, "metrics", m.list(), []string{"refused 5.1.1"})
}

// In drop mode, each suppressed recipient left out counts as dropped, with
// the reason "suppressed", beside the message accepted for the others.
func TestServerMetricsDropped(t *testing.T) {
	t.Parallel()
	m := &metricsLog{}
	sup := srvSuppressions(t)
	fx := srvStart(t, func(o *relay.ServerOptions) {
		o.Metrics = m
		o.Suppressions = sup
		o.SuppressedAction = relay.SuppressedDrop
	})
	c := srvDial(t, fx.addr, "", 220)
	c.login(fx.client, srvKey)
	c.cmd(250, "MAIL FROM:<orders@customer.example>")
	c.cmd(250, "RCPT TO:<bob@example.net>")
	c.cmd(250, "RCPT TO:<carol@example.net>")
	c.cmd(354, "DATA")
	c.write(srvMessage + ".\r\n")
	c.expectText("250 2.0.0 OK: queued as ")
	c.cmd(221, "QUIT")
	wantStrings(t, "metrics", m.list(), []string{"accepted shop 1", `dropped "suppressed" 0s`})
}
