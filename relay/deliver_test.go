package relay_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"

	"github.com/smarthost-go/smarthost/relay"
)

// The tests of the Deliverer run in synctest bubbles: the spool, the
// Deliverer and the fake Senders read the bubble's clock, which moves only
// when every goroutine is blocked, so that a test waits for a retry by
// sleeping until it is due, and sees the times of events exactly.

const testContent = "From: alice@example.com\r\nTo: bob@example.org\r\nSubject: hello\r\nMessage-ID: <m1@example.com>\r\n\r\nHello.\r\n"

// sendCall is one Send a scriptSender got.
type sendCall struct {
	env  relay.Envelope
	data string
	at   time.Time
}

// rcpts returns the addresses of the call's recipients.
func (c sendCall) rcpts() []string {
	var out []string
	for _, r := range c.env.To {
		out = append(out, r.Addr)
	}
	return out
}

// scriptSender answers each recipient with the replies scripted for it,
// one per attempt, the last one repeated (250 when none); it accepts
// every DSN (a message from the null reverse-path). It keeps every call.
type scriptSender struct {
	mu      sync.Mutex
	replies map[string][]*relay.Reply
	calls   []sendCall
	dsns    []sendCall
	// send, when set, answers instead, after the call is kept.
	send func(ctx context.Context, env *relay.Envelope) (*relay.Receipt, error)
}

var (
	ok250    = &relay.Reply{Code: 250, Enhanced: relay.EnhancedCode{2, 0, 0}, Message: "OK"}
	no550    = &relay.Reply{Code: 550, Enhanced: relay.EnhancedCode{5, 1, 1}, Message: "no such user"}
	later451 = &relay.Reply{Code: 451, Enhanced: relay.EnhancedCode{4, 3, 0}, Message: "try again later"}
)

func (s *scriptSender) script(addr string, replies ...*relay.Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.replies == nil {
		s.replies = map[string][]*relay.Reply{}
	}
	s.replies[addr] = replies
}

func (s *scriptSender) Send(ctx context.Context, env *relay.Envelope, msg relay.Message) (*relay.Receipt, error) {
	rc, err := msg.Open()
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return nil, err
	}
	call := sendCall{env: *env, data: string(data), at: time.Now()}
	call.env.To = slices.Clone(env.To)
	s.mu.Lock()
	defer s.mu.Unlock()
	if env.From == "" {
		s.dsns = append(s.dsns, call)
		return &relay.Receipt{Host: "mx.example.com:25", Rcpts: []relay.RcptResult{{Addr: env.To[0].Addr, Reply: ok250}}}, nil
	}
	s.calls = append(s.calls, call)
	if s.send != nil {
		s.mu.Unlock()
		defer s.mu.Lock()
		return s.send(ctx, env)
	}
	receipt := &relay.Receipt{Host: "mx.example.org:25"}
	for _, to := range env.To {
		reply := ok250
		if rs := s.replies[to.Addr]; len(rs) > 0 {
			reply = rs[0]
			if len(rs) > 1 {
				s.replies[to.Addr] = rs[1:]
			}
		}
		receipt.Rcpts = append(receipt.Rcpts, relay.RcptResult{Addr: to.Addr, Reply: reply})
	}
	return receipt, nil
}

func (s *scriptSender) sent() (calls, dsns []sendCall) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls), slices.Clone(s.dsns)
}

// eventLog keeps the events emitted.
type eventLog struct {
	mu     sync.Mutex
	events []relay.Event
}

func (l *eventLog) Emit(_ context.Context, e *relay.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, *e)
}

// list returns the events as "type rcpt attempt", with the offset of
// their time from start, in the order emitted.
func (l *eventLog) list(start time.Time) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	// Events come from several goroutines: a DSN's accepted event is
	// emitted after its commit, when another worker may already have
	// delivered it. Put each accepted event before the other events of
	// its message, as a consumer ordering by time would.
	events := slices.Clone(l.events)
	for i := range events {
		if events[i].Type != relay.EventAccepted {
			continue
		}
		for j := range i {
			if events[j].QueueID == events[i].QueueID {
				acc := events[i]
				copy(events[j+1:i+1], events[j:i])
				events[j] = acc
				break
			}
		}
	}
	var out []string
	for _, e := range events {
		s := fmt.Sprintf("%s %s %d +%v", e.Type, e.Rcpt, e.Attempt, e.Time.Sub(start))
		if e.Hard {
			s += " hard"
		}
		out = append(out, s)
	}
	return out
}

func (l *eventLog) all() []relay.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

// deliveryFixture is a spool, a Deliverer on it with a scriptSender and
// an eventLog, in a synctest bubble.
type deliveryFixture struct {
	dir    string
	spool  *relay.Spool
	sender *scriptSender
	events *eventLog
	opts   relay.DelivererOptions
	start  time.Time
	cancel context.CancelFunc
	done   chan error
}

func newDeliveryFixture(t *testing.T, opts *relay.DelivererOptions) *deliveryFixture {
	t.Helper()
	fx := &deliveryFixture{dir: t.TempDir(), sender: &scriptSender{}, events: &eventLog{}, start: time.Now()}
	if opts != nil {
		fx.opts = *opts
	}
	fx.opts.Events = fx.events
	if fx.opts.Hostname == "" {
		fx.opts.Hostname = "relay.example"
	}
	if fx.opts.Rand == nil {
		fx.opts.Rand = constReader(0) // no jitter taken off
	}
	fx.spool = newSpool(t, fx.dir, nil)
	return fx
}

// run starts the Deliverer on q (the spool when nil) with s (the
// scriptSender when nil).
func (fx *deliveryFixture) run(t *testing.T, q relay.Queue, s relay.Sender) {
	t.Helper()
	if q == nil {
		q = fx.spool
	}
	if s == nil {
		s = fx.sender
	}
	d, err := relay.NewDeliverer(q, s, &fx.opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	fx.cancel = cancel
	fx.done = make(chan error, 1)
	go func() { fx.done <- d.Run(ctx) }()
	t.Cleanup(func() { fx.stop(t) })
}

// stop ends Run and waits for it.
func (fx *deliveryFixture) stop(t *testing.T) {
	t.Helper()
	if fx.cancel == nil {
		return
	}
	fx.cancel()
	if err := <-fx.done; err != nil {
		t.Errorf("Run: %v", err)
	}
	fx.cancel = nil
}

// enqueue queues testContent from alice@example.com to the recipients.
func enqueue(t *testing.T, q relay.Queue, e *relay.Entry, rcpts ...relay.Recipient) *relay.Entry {
	t.Helper()
	if e == nil {
		e = &relay.Entry{Sender: "alice@example.com", MessageID: "<m1@example.com>"}
	}
	e.Envelope.From = "SRS0=x=y=example.com=alice@relay.example"
	e.Envelope.To = rcpts
	w, err := q.Create(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, testContent)
	if err := w.Commit(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	return e
}

func wantStrings(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got %q\nwant %q", what, got, want)
	}
}

// parsedDSN is a DSN read back with go-message.
type parsedDSN struct {
	header   message.Header
	types    []string // of the parts
	text     string
	message  textproto.Header   // the per-message fields
	rcpts    []textproto.Header // a group of fields per recipient
	original string
}

func readDSN(t *testing.T, data string) *parsedDSN {
	t.Helper()
	m, err := message.Read(strings.NewReader(data))
	if err != nil {
		t.Fatalf("reading the DSN: %v", err)
	}
	d := &parsedDSN{header: m.Header}
	if ct, p, _ := m.Header.ContentType(); ct != "multipart/report" || p["report-type"] != "delivery-status" {
		t.Fatalf("DSN of type %s %v, want multipart/report; report-type=delivery-status", ct, p)
	}
	mr := m.MultipartReader()
	var bodies [][]byte
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ct, _, _ := p.Header.ContentType()
		d.types = append(d.types, ct)
		b, err := io.ReadAll(p.Body)
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, b)
	}
	if len(bodies) != 3 {
		t.Fatalf("DSN of %d parts %v, want 3", len(bodies), d.types)
	}
	d.text, d.original = string(bodies[0]), string(bodies[2])
	br := bufio.NewReader(bytes.NewReader(bodies[1]))
	for {
		h, err := textproto.ReadHeader(br)
		if err != nil {
			t.Fatalf("reading the delivery-status: %v\n%s", err, bodies[1])
		}
		if d.message.Len() == 0 && d.rcpts == nil {
			d.message = h
			d.rcpts = []textproto.Header{}
		} else {
			d.rcpts = append(d.rcpts, h)
		}
		if _, err := br.Peek(1); err == io.EOF {
			break
		}
	}
	return d
}

// fields checks the fields of a group.
func wantFields(t *testing.T, what string, h textproto.Header, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s: %s %q, want %q", what, k, got, v)
		}
	}
}

// headerOf is the header of testContent, as a DSN returns it.
var headerOf = testContent[:strings.Index(testContent, "\r\n\r\n")+4]

func TestDelivererDelivers(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		fx := newDeliveryFixture(t, nil)
		e := enqueue(t, fx.spool, nil, relay.To("bob@example.org", "carol@example.org")...)
		fx.run(t, nil, nil)
		synctest.Wait()
		calls, dsns := fx.sender.sent()
		if len(calls) != 1 || len(dsns) != 0 {
			t.Fatalf("%d sends, %d DSNs; want 1, 0", len(calls), len(dsns))
		}
		wantStrings(t, "recipients sent to", calls[0].rcpts(), []string{"bob@example.org", "carol@example.org"})
		if calls[0].data != testContent || calls[0].env.From != e.Envelope.From {
			t.Errorf("sent %q from %q", calls[0].data, calls[0].env.From)
		}
		wantStrings(t, "events", fx.events.list(fx.start), []string{
			"delivered bob@example.org 1 +0s",
			"delivered carol@example.org 1 +0s",
		})
		ev := fx.events.all()[0]
		if ev.QueueID != e.ID || ev.MessageID != "<m1@example.com>" || ev.From != "alice@example.com" || ev.Host != "mx.example.org:25" || ev.Reply != ok250 {
			t.Errorf("event %+v", ev)
		}
		if fx.spool.Len() != 0 {
			t.Errorf("%d messages left in the spool", fx.spool.Len())
		}
	})
}

// A recipient refused for good bounces with a DSN to the sender, which the
// Deliverer queues and delivers like any message.
func TestDelivererBouncesWithDSN(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		fx := newDeliveryFixture(t, nil)
		fx.sender.script("carol@example.org", no550)
		e := enqueue(t, fx.spool, &relay.Entry{Sender: "alice@example.com", MessageID: "<m1@example.com>", Account: "app"},
			relay.Recipient{Addr: "bob@example.org"},
			relay.Recipient{Addr: "carol@example.org", ORcpt: "rfc822;carol@example.org"})
		fx.run(t, nil, nil)
		synctest.Wait()
		calls, dsns := fx.sender.sent()
		if len(calls) != 1 || len(dsns) != 1 {
			t.Fatalf("%d sends, %d DSNs; want 1, 1", len(calls), len(dsns))
		}
		got := dsns[0]
		if got.env.From != "" || len(got.env.To) != 1 || got.env.To[0].Addr != "alice@example.com" {
			t.Errorf("DSN envelope %+v, want from <> to alice@example.com", got.env)
		}
		d := readDSN(t, got.data)
		if to := d.header.Get("To"); to != "<alice@example.com>" {
			t.Errorf("DSN To %q", to)
		}
		if from := d.header.Get("From"); from != "Mail Delivery System <MAILER-DAEMON@relay.example>" {
			t.Errorf("DSN From %q", from)
		}
		if irt := d.header.Get("In-Reply-To"); irt != "<m1@example.com>" {
			t.Errorf("DSN In-Reply-To %q", irt)
		}
		wantStrings(t, "DSN parts", d.types, []string{"text/plain", "message/delivery-status", "text/rfc822-headers"})
		wantFields(t, "per-message fields", d.message, map[string]string{
			"Reporting-MTA": "dns; relay.example",
			"Arrival-Date":  fx.start.Format(time.RFC1123Z),
		})
		if len(d.rcpts) != 1 {
			t.Fatalf("%d recipients reported, want 1", len(d.rcpts))
		}
		wantFields(t, "carol", d.rcpts[0], map[string]string{
			"Original-Recipient": "rfc822;carol@example.org",
			"Final-Recipient":    "rfc822; carol@example.org",
			"Action":             "failed",
			"Status":             "5.1.1",
			"Remote-MTA":         "dns; mx.example.org",
			"Diagnostic-Code":    "smtp; 550 5.1.1 no such user",
		})
		if !strings.Contains(d.text, "<carol@example.org>:") || strings.Contains(d.text, "bob@") || !strings.Contains(d.text, "550 5.1.1 no such user") {
			t.Errorf("DSN text:\n%s", d.text)
		}
		if d.original != headerOf {
			t.Errorf("returned header %q, want %q", d.original, headerOf)
		}

		evs := fx.events.all()
		wantStrings(t, "events", fx.events.list(fx.start), []string{
			"delivered bob@example.org 1 +0s",
			"bounced carol@example.org 1 +0s hard",
			"accepted alice@example.com 0 +0s",
			"delivered alice@example.com 1 +0s",
		})
		if evs[2].QueueID == e.ID || evs[2].Account != "app" || evs[3].QueueID != evs[2].QueueID || evs[3].From != "" {
			t.Errorf("events of the DSN: %+v, %+v", evs[2], evs[3])
		}
		if evs[1].Reply != no550 {
			t.Errorf("bounce event reply %v", evs[1].Reply)
		}
		if fx.spool.Len() != 0 {
			t.Errorf("%d messages left in the spool", fx.spool.Len())
		}
	})
}

// A recipient deferred is tried again after the backoff, alone.
func TestDelivererRetries(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		fx := newDeliveryFixture(t, nil)
		fx.sender.script("carol@example.org", later451, ok250)
		enqueue(t, fx.spool, nil, relay.To("bob@example.org", "carol@example.org")...)
		fx.run(t, nil, nil)
		synctest.Wait()
		wantStrings(t, "events after the first attempt", fx.events.list(fx.start), []string{
			"delivered bob@example.org 1 +0s",
			"deferred carol@example.org 1 +0s",
		})
		time.Sleep(time.Minute - time.Nanosecond)
		if calls, _ := fx.sender.sent(); len(calls) != 1 {
			t.Fatalf("%d sends before the backoff of 1m passed", len(calls))
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		calls, dsns := fx.sender.sent()
		if len(calls) != 2 || len(dsns) != 0 {
			t.Fatalf("%d sends, %d DSNs; want 2, 0", len(calls), len(dsns))
		}
		wantStrings(t, "recipients of the retry", calls[1].rcpts(), []string{"carol@example.org"})
		wantStrings(t, "events", fx.events.list(fx.start), []string{
			"delivered bob@example.org 1 +0s",
			"deferred carol@example.org 1 +0s",
			"delivered carol@example.org 2 +1m0s",
		})
		if fx.spool.Len() != 0 {
			t.Errorf("%d messages left in the spool", fx.spool.Len())
		}
	})
}

// The delay between attempts doubles up to MaxRetry, less the jitter.
func TestDelivererBackoff(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		rand byte
		want []time.Duration // between attempts
	}{
		{"no jitter", 0, []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 16 * time.Minute, 30 * time.Minute, 30 * time.Minute}},
		// 0xff...: all of the jitter, 20%, taken off.
		{"most jitter", 0xff, []time.Duration{48 * time.Second, 96 * time.Second, 192 * time.Second, 384 * time.Second, 768 * time.Second, 24 * time.Minute, 24 * time.Minute}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				fx := newDeliveryFixture(t, &relay.DelivererOptions{MaxRetry: 30 * time.Minute, Rand: constReader(tt.rand)})
				fx.sender.script("carol@example.org", later451)
				enqueue(t, fx.spool, nil, relay.To("carol@example.org")...)
				fx.run(t, nil, nil)
				time.Sleep(2 * time.Hour)
				calls, _ := fx.sender.sent()
				if len(calls) < len(tt.want)+1 {
					t.Fatalf("%d attempts in 2h", len(calls))
				}
				for i, w := range tt.want {
					if got := calls[i+1].at.Sub(calls[i].at); got.Round(time.Millisecond) != w {
						t.Errorf("delay after attempt %d: %v, want %v", i+1, got, w)
					}
				}
			})
		})
	}
}

// Recipients still deferred when the message is MaxAge old bounce,
// expired, with a 4.4.7 DSN that gives their last reply.
func TestDelivererExpires(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		fx := newDeliveryFixture(t, nil)
		fx.sender.script("carol@example.org", later451)
		enqueue(t, fx.spool, nil, relay.To("bob@example.org", "carol@example.org")...)
		fx.run(t, nil, nil)
		time.Sleep(5*24*time.Hour - time.Nanosecond)
		if _, dsns := fx.sender.sent(); len(dsns) != 0 {
			t.Fatal("a DSN before the message is 5 days old")
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		calls, dsns := fx.sender.sent()
		if len(dsns) != 1 {
			t.Fatalf("%d DSNs at 5 days, want 1", len(dsns))
		}
		last := calls[len(calls)-1]
		if got := last.at.Sub(fx.start); got != 5*24*time.Hour {
			t.Errorf("last attempt at +%v, want at the maximum age, +120h", got)
		}
		// 1, 2, 4 ... 32 minutes, then every hour until the fifth day.
		if want := 6 + 1 + (5*24*60-63)/60 + 1; len(calls) != want {
			t.Errorf("%d attempts, want %d", len(calls), want)
		}
		d := readDSN(t, dsns[0].data)
		if len(d.rcpts) != 1 {
			t.Fatalf("%d recipients reported, want 1", len(d.rcpts))
		}
		wantFields(t, "carol", d.rcpts[0], map[string]string{
			"Final-Recipient": "rfc822; carol@example.org",
			"Action":          "failed",
			"Status":          "4.4.7",
			"Diagnostic-Code": "smtp; 451 4.3.0 try again later",
			"Remote-MTA":      "dns; mx.example.org",
		})
		if !strings.Contains(d.text, "delivery time expired") {
			t.Errorf("DSN text:\n%s", d.text)
		}
		evs := fx.events.all()
		var bounce *relay.Event
		for i := range evs {
			if evs[i].Type == relay.EventBounced {
				if bounce != nil {
					t.Fatalf("two bounce events: %+v, %+v", *bounce, evs[i])
				}
				bounce = &evs[i]
			}
		}
		if bounce == nil || bounce.Hard || bounce.Reason != "delivery time expired" || bounce.Rcpt != "carol@example.org" || bounce.Reply != nil && bounce.Reply.Code != 451 {
			t.Errorf("bounce event %+v", bounce)
		}
		if fx.spool.Len() != 0 {
			t.Errorf("%d messages left in the spool", fx.spool.Len())
		}
	})
}

// No DSN answers a message from the null sender, nor goes about a
// recipient that asked for none.
func TestDelivererNoDSN(t *testing.T) {
	t.Parallel()
	never := []relay.DSNNotify{relay.NotifyNever}
	success := []relay.DSNNotify{relay.NotifySuccess, relay.NotifyDelay}
	failure := []relay.DSNNotify{relay.NotifyFailure}
	for _, tt := range []struct {
		name   string
		sender string
		rcpts  []relay.Recipient
		want   []string // the recipients reported
	}{
		{"null sender", "", relay.To("carol@example.org"), nil},
		{"NOTIFY=NEVER", "alice@example.com", []relay.Recipient{{Addr: "carol@example.org", Notify: never}}, nil},
		{"NOTIFY without FAILURE", "alice@example.com", []relay.Recipient{{Addr: "carol@example.org", Notify: success}}, nil},
		{"mixed", "alice@example.com", []relay.Recipient{
			{Addr: "carol@example.org", Notify: never},
			{Addr: "dave@example.org", Notify: success},
			{Addr: "erin@example.org", Notify: failure},
			{Addr: "frank@example.org"},
		}, []string{"rfc822; erin@example.org", "rfc822; frank@example.org"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				fx := newDeliveryFixture(t, nil)
				for _, r := range tt.rcpts {
					fx.sender.script(r.Addr, no550)
				}
				enqueue(t, fx.spool, &relay.Entry{Sender: tt.sender}, tt.rcpts...)
				fx.run(t, nil, nil)
				synctest.Wait()
				_, dsns := fx.sender.sent()
				var got []string
				for _, d := range dsns {
					for _, r := range readDSN(t, d.data).rcpts {
						got = append(got, r.Get("Final-Recipient"))
					}
				}
				wantStrings(t, "recipients reported", got, tt.want)
				if len(dsns) > 1 {
					t.Errorf("%d DSNs, want one at most", len(dsns))
				}
				var bounced int
				for _, e := range fx.events.all() {
					if e.Type == relay.EventBounced {
						bounced++
					}
				}
				if bounced != len(tt.rcpts) {
					t.Errorf("%d bounce events, want %d", bounced, len(tt.rcpts))
				}
				if fx.spool.Len() != 0 {
					t.Errorf("%d messages left in the spool", fx.spool.Len())
				}
			})
		})
	}
}

// What a Send returns with an error: a 5xx for the transaction bounces
// every recipient; an error without a reply, or a 4xx, defers them; a
// Receipt that comes with the error keeps each recipient's reply.
func TestDelivererTransactionErrors(t *testing.T) {
	t.Parallel()
	refused := &relay.Reply{Code: 550, Enhanced: relay.EnhancedCode{5, 7, 1}, Message: "sender refused"}
	for _, tt := range []struct {
		name string
		send func(ctx context.Context, env *relay.Envelope) (*relay.Receipt, error)
		want []string
	}{
		{"no connection", func(context.Context, *relay.Envelope) (*relay.Receipt, error) {
			return nil, errors.New("dial tcp: connection refused")
		}, []string{"deferred bob@example.org 1 +0s", "deferred carol@example.org 1 +0s"}},
		{"MAIL refused for now", func(context.Context, *relay.Envelope) (*relay.Receipt, error) {
			return nil, fmt.Errorf("MAIL FROM: %w", later451)
		}, []string{"deferred bob@example.org 1 +0s", "deferred carol@example.org 1 +0s"}},
		{"MAIL refused", func(context.Context, *relay.Envelope) (*relay.Receipt, error) {
			return nil, fmt.Errorf("MAIL FROM: %w", refused)
		}, []string{"bounced bob@example.org 1 +0s hard", "bounced carol@example.org 1 +0s hard", "accepted alice@example.com 0 +0s", "delivered alice@example.com 1 +0s"}},
		{"DATA failed after RCPT", func(_ context.Context, env *relay.Envelope) (*relay.Receipt, error) {
			return &relay.Receipt{Host: "mx:25", Rcpts: []relay.RcptResult{{Addr: "bob@example.org"}, {Addr: "carol@example.org", Reply: no550}}}, errors.New("connection reset")
		}, []string{"deferred bob@example.org 1 +0s", "bounced carol@example.org 1 +0s hard", "accepted alice@example.com 0 +0s", "delivered alice@example.com 1 +0s"}},
		{"a 2xx with an error is not a delivery", func(_ context.Context, env *relay.Envelope) (*relay.Receipt, error) {
			return &relay.Receipt{Host: "mx:25", Rcpts: []relay.RcptResult{{Addr: "bob@example.org", Reply: ok250}, {Addr: "carol@example.org", Reply: ok250}}}, errors.New("connection reset")
		}, []string{"deferred bob@example.org 1 +0s", "deferred carol@example.org 1 +0s"}},
		{"a Receipt of the wrong length", func(_ context.Context, env *relay.Envelope) (*relay.Receipt, error) {
			return &relay.Receipt{Host: "mx:25", Rcpts: []relay.RcptResult{{Addr: "bob@example.org", Reply: ok250}}}, nil
		}, []string{"deferred bob@example.org 1 +0s", "deferred carol@example.org 1 +0s"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				fx := newDeliveryFixture(t, nil)
				fx.sender.send = tt.send
				enqueue(t, fx.spool, nil, relay.To("bob@example.org", "carol@example.org")...)
				fx.run(t, nil, nil)
				synctest.Wait()
				wantStrings(t, "events", fx.events.list(fx.start), tt.want)
				for _, e := range fx.events.all() {
					if e.Type == relay.EventDeferred && e.Reply == nil && e.Reason == "" {
						t.Errorf("deferred without a reply or a reason: %+v", e)
					}
				}
			})
		})
	}
}

// crashQueue is a queue whose leases end nothing: Retry and Done fail
// without reaching the queue, as if the process died right after the
// Save that follows a Send.
type crashQueue struct {
	relay.Queue
	crashed chan struct{}
}

func (q *crashQueue) Lease(ctx context.Context) (relay.Lease, error) {
	l, err := q.Queue.Lease(ctx)
	if err != nil {
		return nil, err
	}
	return crashLease{l, q.crashed}, nil
}

type crashLease struct {
	relay.Lease
	crashed chan struct{}
}

func (l crashLease) Retry(context.Context, time.Time) error { return l.crash() }
func (l crashLease) Done(context.Context) error             { return l.crash() }
func (l crashLease) crash() error {
	close(l.crashed)
	return errors.New("the process died")
}

// A recipient saved as delivered before a crash is not sent to again by
// the spool opened after it. A message delivered to every recipient is
// not saved before Done removes it (two syncs saved per message), so a
// crash just before Done sends it again: at least once, never lost.
func TestDelivererCrashAfterSave(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		carol   *relay.Reply
		wantTry []string // recipients sent to after the crash
	}{
		{"some pending", later451, []string{"carol@example.org"}},
		{"all delivered", ok250, []string{"bob@example.org", "carol@example.org"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				fx := newDeliveryFixture(t, &relay.DelivererOptions{Workers: 1})
				fx.sender.script("carol@example.org", tt.carol)
				enqueue(t, fx.spool, nil, relay.To("bob@example.org", "carol@example.org")...)
				crashed := make(chan struct{})
				fx.run(t, &crashQueue{fx.spool, crashed}, nil)
				<-crashed
				fx.stop(t)

				// The spool the dead process had is abandoned with its lease.
				spool := newSpool(t, fx.dir, nil)
				after := &scriptSender{}
				fx.run(t, spool, after)
				synctest.Wait()
				calls, _ := after.sent()
				var got []string
				for _, c := range calls {
					got = append(got, c.rcpts()...)
				}
				wantStrings(t, "recipients sent to after the crash", got, tt.wantTry)
				if spool.Len() != 0 {
					t.Errorf("%d messages left in the spool", spool.Len())
				}
			})
		})
	}
}

// On shutdown a delivery under way may finish within the grace period.
func TestDelivererShutdownFinishes(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		fx := newDeliveryFixture(t, &relay.DelivererOptions{ShutdownGrace: time.Minute})
		release := make(chan struct{})
		fx.sender.send = func(ctx context.Context, env *relay.Envelope) (*relay.Receipt, error) {
			<-release
			return &relay.Receipt{Rcpts: []relay.RcptResult{{Addr: env.To[0].Addr, Reply: ok250}}}, nil
		}
		enqueue(t, fx.spool, nil, relay.To("bob@example.org")...)
		fx.run(t, nil, nil)
		synctest.Wait()
		fx.cancel()
		time.Sleep(30 * time.Second)
		close(release)
		if err := <-fx.done; err != nil {
			t.Errorf("Run: %v", err)
		}
		fx.cancel = nil
		wantStrings(t, "events", fx.events.list(fx.start), []string{"delivered bob@example.org 1 +30s"})
		if fx.spool.Len() != 0 {
			t.Errorf("%d messages left in the spool", fx.spool.Len())
		}
	})
}

// On shutdown a delivery still under way when the grace period ends is
// cancelled, and its message released to be tried at once by the next
// process, with nothing deferred.
func TestDelivererShutdownReleases(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		fx := newDeliveryFixture(t, &relay.DelivererOptions{ShutdownGrace: time.Minute})
		fx.sender.send = func(ctx context.Context, env *relay.Envelope) (*relay.Receipt, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		e := enqueue(t, fx.spool, nil, relay.To("bob@example.org")...)
		fx.run(t, nil, nil)
		synctest.Wait()
		start := time.Now()
		fx.stop(t)
		if got := time.Since(start); got != time.Minute {
			t.Errorf("Run returned %v after its context ended, want the grace period, 1m", got)
		}
		if evs := fx.events.list(fx.start); len(evs) != 0 {
			t.Errorf("events %q, want none", evs)
		}
		l := pollSpool(t, fx.spool)
		if l == nil {
			t.Fatal("the message is not due at once after the shutdown")
		}
		if l.Entry().ID != e.ID || len(l.Entry().Pending()) != 1 || !l.Entry().NextAttempt.Equal(time.Now()) {
			t.Errorf("after shutdown: %+v", l.Entry())
		}
	})
}

// The lease of a long delivery is extended: no other worker takes the
// message over meanwhile.
func TestDelivererExtendsLease(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		fx := newDeliveryFixture(t, &relay.DelivererOptions{Workers: 4})
		fx.spool.Close()
		fx.spool = newSpool(t, fx.dir, &relay.SpoolOptions{LeaseTime: 3 * time.Minute})
		fx.sender.send = func(ctx context.Context, env *relay.Envelope) (*relay.Receipt, error) {
			time.Sleep(20 * time.Minute)
			return &relay.Receipt{Rcpts: []relay.RcptResult{{Addr: env.To[0].Addr, Reply: ok250}}}, nil
		}
		enqueue(t, fx.spool, nil, relay.To("bob@example.org")...)
		fx.run(t, nil, nil)
		time.Sleep(time.Hour)
		if calls, _ := fx.sender.sent(); len(calls) != 1 {
			t.Errorf("%d sends of a message whose one delivery lasted 20m with a lease of 3m, want 1", len(calls))
		}
		wantStrings(t, "events", fx.events.list(fx.start), []string{"delivered bob@example.org 1 +20m0s"})
	})
}

// A DSN about many of a message's recipients, with mixed outcomes, reports
// exactly those that bounced, in order, each with its own reply, and
// returns the whole message when asked.
func TestDelivererDSNOfManyRecipients(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		fx := newDeliveryFixture(t, nil)
		var rcpts []relay.Recipient
		var wantBounced []int
		for i := range 50 {
			r := relay.Recipient{Addr: fmt.Sprintf("rcpt%02d@example.org", i)}
			if i%5 == 0 {
				r.ORcpt = "rfc822;original" + fmt.Sprint(i) + "@example.net"
			}
			rcpts = append(rcpts, r)
			switch i % 3 {
			case 1:
				fx.sender.script(r.Addr, &relay.Reply{Code: 550, Enhanced: relay.EnhancedCode{5, 1, 1}, Message: fmt.Sprintf("user %d unknown", i)})
				wantBounced = append(wantBounced, i)
			case 2:
				fx.sender.script(r.Addr, later451, ok250)
			}
		}
		e := &relay.Entry{Sender: "alice@example.com"}
		e.Envelope.Return, e.Envelope.EnvID = relay.ReturnFull, "ENV-50"
		enqueue(t, fx.spool, e, rcpts...)
		fx.run(t, nil, nil)
		time.Sleep(time.Hour)
		calls, dsns := fx.sender.sent()
		if len(calls) != 2 || len(dsns) != 1 {
			t.Fatalf("%d sends, %d DSNs; want 2, 1", len(calls), len(dsns))
		}
		d := readDSN(t, dsns[0].data)
		wantStrings(t, "DSN parts", d.types, []string{"text/plain", "message/delivery-status", "message/rfc822"})
		if d.original != testContent {
			t.Errorf("returned message %q, want %q", d.original, testContent)
		}
		wantFields(t, "per-message fields", d.message, map[string]string{"Original-Envelope-Id": "ENV-50"})
		if len(d.rcpts) != len(wantBounced) {
			t.Fatalf("%d recipients reported, want %d", len(d.rcpts), len(wantBounced))
		}
		for k, i := range wantBounced {
			orcpt := ""
			if i%5 == 0 {
				orcpt = "rfc822;original" + fmt.Sprint(i) + "@example.net"
			}
			wantFields(t, rcpts[i].Addr, d.rcpts[k], map[string]string{
				"Original-Recipient": orcpt,
				"Final-Recipient":    "rfc822; " + rcpts[i].Addr,
				"Action":             "failed",
				"Status":             "5.1.1",
				"Diagnostic-Code":    fmt.Sprintf("smtp; 550 5.1.1 user %d unknown", i),
			})
		}
		count := map[relay.EventType]int{}
		for _, ev := range fx.events.all() {
			count[ev.Type]++
		}
		if count[relay.EventDelivered] != 17+16+1 || count[relay.EventBounced] != 17 || count[relay.EventDeferred] != 16 {
			t.Errorf("events by type %v, want 34 delivered (one the DSN), 17 bounced, 16 deferred", count)
		}
	})
}

func TestNewDelivererErrors(t *testing.T) {
	t.Parallel()
	spool := newSpool(t, t.TempDir(), nil)
	s := &scriptSender{}
	for _, tt := range []struct {
		name string
		q    relay.Queue
		s    relay.Sender
		opts *relay.DelivererOptions
	}{
		{"nil queue", nil, s, nil},
		{"nil sender", spool, nil, nil},
		{"negative workers", spool, s, &relay.DelivererOptions{Workers: -1}},
		{"factor below 1", spool, s, &relay.DelivererOptions{RetryFactor: 0.5}},
		{"jitter above 1", spool, s, &relay.DelivererOptions{RetryJitter: 1.5}},
		{"max below backoff", spool, s, &relay.DelivererOptions{RetryBackoff: time.Hour, MaxRetry: time.Minute}},
	} {
		if _, err := relay.NewDeliverer(tt.q, tt.s, tt.opts); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
}

// Run returns ErrQueueClosed when its queue is closed under it, once the
// delivery under way has ended; a shutdown through its context returns
// nil.
func TestDelivererQueueClosed(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		fx := newDeliveryFixture(t, &relay.DelivererOptions{Workers: 3})
		release := make(chan struct{})
		fx.sender.send = func(ctx context.Context, env *relay.Envelope) (*relay.Receipt, error) {
			<-release
			return &relay.Receipt{Rcpts: []relay.RcptResult{{Addr: env.To[0].Addr, Reply: ok250}}}, nil
		}
		enqueue(t, fx.spool, nil, relay.To("bob@example.org")...)
		fx.run(t, nil, nil)
		synctest.Wait()
		fx.spool.Close()
		synctest.Wait()
		select {
		case err := <-fx.done:
			t.Fatalf("Run returned %v with a delivery under way", err)
		default:
		}
		close(release)
		if err := <-fx.done; !errors.Is(err, relay.ErrQueueClosed) {
			t.Errorf("Run: %v, want ErrQueueClosed", err)
		}
		fx.cancel = nil
		// The lease ended with the queue: what the Send reported is for the
		// next process, which finds the message as it was.
		s := newSpool(t, fx.dir, nil)
		if l := pollSpool(t, s); l == nil || len(l.Entry().Pending()) != 1 || l.Entry().Attempts != 0 {
			t.Errorf("after the queue was closed, leased %+v", l)
		}
	})
}
