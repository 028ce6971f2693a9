package natsqueue_test

import (
	"context"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/relay/natsqueue"
	"github.com/smarthost-go/smarthost/relay/smtptest"
)

// The Deliverer on the JetStream queue, against an SMTP sink: one
// recipient accepted, one deferred once (451) and then accepted on the
// retry, one refused (550) and bounced to the sender with a DSN.
func TestDeliverer(t *testing.T) {
	t.Parallel()
	s := runServer(t)
	_, js := connect(t, s.ClientURL())
	ctx := t.Context()
	q, err := natsqueue.New(ctx, js, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()

	sink, err := smtptest.NewServer(&smtptest.Options{TLS: smtptest.NoTLS})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	sink.Fail(smtptest.Fault{On: smtptest.RCPT, Rcpt: "later@example.org", Times: 1,
		Reply: relay.Reply{Code: 451, Enhanced: relay.EnhancedCode{4, 3, 0}, Message: "try later"}})
	sink.Fail(smtptest.Fault{On: smtptest.RCPT, Rcpt: "nobody@example.org",
		Reply: relay.Reply{Code: 550, Enhanced: relay.EnhancedCode{5, 1, 1}, Message: "no such user"}})
	client, err := relay.NewClient(sink.Addr, &relay.ClientOptions{TLS: relay.NoTLS, LocalName: "relay.example"})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	events := make(chan relay.Event, 20)
	d, err := relay.NewDeliverer(q, client, &relay.DelivererOptions{
		Hostname:     "relay.example",
		RetryBackoff: 100 * time.Millisecond,
		Events:       relay.EventsFunc(func(_ context.Context, e *relay.Event) { events <- *e }),
	})
	if err != nil {
		t.Fatal(err)
	}
	w, err := q.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const content = "From: alice@example.com\r\nTo: good@example.org\r\nSubject: hello\r\nMessage-ID: <m1@example.com>\r\n\r\nHello.\r\n"
	io.WriteString(w, content)
	e := &relay.Entry{
		Envelope:  relay.Envelope{From: "bounces@relay.example", To: relay.To("good@example.org", "later@example.org", "nobody@example.org")},
		Sender:    "alice@example.com",
		MessageID: "<m1@example.com>",
	}
	if err := w.Commit(ctx, e); err != nil {
		t.Fatal(err)
	}

	run, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- d.Run(run) }()
	got := map[string]relay.EventType{}
	for len(got) < 4 || got["later@example.org"] != relay.EventDelivered || got["alice@example.com"] != relay.EventDelivered {
		select {
		case ev := <-events:
			if ev.QueueID != e.ID && ev.Rcpt != "alice@example.com" {
				t.Errorf("event %+v for another message than %s", ev, e.ID)
			}
			got[ev.Rcpt] = ev.Type
		case <-time.After(time.Minute):
			t.Fatalf("events so far %v", got)
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got["good@example.org"] != relay.EventDelivered || got["nobody@example.org"] != relay.EventBounced {
		t.Errorf("events %v", got)
	}
	var to []string
	for _, m := range sink.Messages() {
		for _, r := range m.Envelope.To {
			to = append(to, m.Envelope.From+">"+r.Addr)
		}
		if m.Envelope.From == "" && !strings.Contains(string(m.Data), "nobody@example.org") {
			t.Errorf("the DSN does not name the bounced recipient:\n%s", m.Data)
		}
	}
	slices.Sort(to)
	want := []string{">alice@example.com", "bounces@relay.example>good@example.org", "bounces@relay.example>later@example.org"}
	if !slices.Equal(to, want) {
		t.Errorf("the sink got %q, want %q (each once)", to, want)
	}
	// The queue is empty: the message was done once every recipient had a
	// final state, and so was the DSN.
	poll, cancel := context.WithCancel(ctx)
	cancel()
	if l, err := q.Lease(poll); err == nil {
		t.Errorf("after delivery, leased %s", l.Entry().ID)
	}
}
