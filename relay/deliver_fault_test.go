package relay_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/relay/smtptest"
)

// replyDropper is a TCP proxy in front of an SMTP server that loses the
// server's 2xx reply to the end of a message's data, closing both
// connections instead, as a network that fails at that moment does: the
// server has taken the message, and the client cannot know it. It does so
// for the first max messages the server takes, by Message-ID, each once:
// the first copy the server keeps of such a message is the one whose reply
// was lost. It expects a client that does not pipeline, nor send BDAT.
type replyDropper struct {
	ln       net.Listener
	upstream string
	max      int

	mu      sync.Mutex
	seen    map[string]bool
	dropped []string // Message-IDs
}

func newReplyDropper(t *testing.T, upstream string, max int) *replyDropper {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &replyDropper{ln: ln, upstream: upstream, max: max, seen: map[string]bool{}}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { p.handle(c) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return p
}

func (p *replyDropper) addr() string { return p.ln.Addr().String() }

func (p *replyDropper) drops() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.dropped)
}

var messageIDField = regexp.MustCompile(`(?im)^Message-ID:[ \t]*(<[^>\r\n]+>)`)

func (p *replyDropper) handle(client net.Conn) {
	defer client.Close()
	server, err := net.Dial("tcp", p.upstream)
	if err != nil {
		return
	}
	defer server.Close()
	// armed holds the transaction whose next reply is to be lost.
	var armed atomic.Pointer[string]
	go func() {
		defer server.Close()
		var sent []byte // what the client sent in this transaction
		buf := make([]byte, 32<<10)
		for {
			n, err := client.Read(buf)
			if n > 0 {
				sent = append(sent, buf[:n]...)
				// The end of the data: the client now waits for the reply.
				const data = "\r\nDATA\r\n"
				if i := bytes.Index(sent, []byte(data)); i >= 0 && bytes.HasSuffix(sent, []byte("\r\n.\r\n")) {
					p.arm(&armed, sent[i+len(data):])
					sent = sent[len(sent)-2:] // the next transaction, after a CRLF
				}
				if _, err := server.Write(buf[:n]); err != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := server.Read(buf)
		if n > 0 {
			if d := armed.Swap(nil); d != nil {
				if buf[0] == '2' {
					p.mu.Lock()
					p.dropped = append(p.dropped, *d)
					p.mu.Unlock()
					return
				}
				p.disarm(d) // refused: nothing to lose
			}
			if _, err := client.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			if d := armed.Swap(nil); d != nil {
				p.disarm(d) // the server hung up: nothing to lose
			}
			return
		}
	}
}

// disarm forgets a transaction chosen to lose its reply that got none to
// lose, so that its message may be chosen again.
func (p *replyDropper) disarm(id *string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.seen, *id)
}

// arm chooses whether to lose the reply to the data just sent.
func (p *replyDropper) arm(armed *atomic.Pointer[string], data []byte) {
	m := messageIDField.FindSubmatch(data)
	if m == nil {
		return
	}
	id := string(m[1])
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seen[id] || len(p.seen) >= p.max {
		return
	}
	p.seen[id] = true
	armed.Store(&id)
}

// Every message the queue accepted ends delivered to each recipient once
// the upstream recovers, or bounced with a DSN to its sender, through the
// relay's own Client (its pool of connections) and the faults of smtptest: the upstream down, 421 to MAIL, 451 to a RCPT, 451
// to the end of data, the connection dropped in the middle of DATA, slow
// replies, a 550 for one recipient, the relay shut down and restarted on
// its spool in the middle of it all, and the final reply of some
// transactions lost after the server took the message.
//
// Duplicates are counted: a recipient gets a message twice exactly when
// the server took it and its 250 was lost on the way back. The relay,
// which saw the connection fail, cannot tell that from a failure before
// the server took the message, and must try again (at least once, never
// lost); the proxy loses one reply per message at most, so each such
// recipient has the message exactly twice, and every other once.
func TestDelivererFaults(t *testing.T) {
	t.Parallel()
	// Without PIPELINING and CHUNKING, so that the proxy sees one command
	// at a time and the data end with a dot.
	srv := newSMTPServer(t, &smtptest.Options{TLS: smtptest.NoTLS, Disable: []string{"PIPELINING", "CHUNKING"}})
	proxy := newReplyDropper(t, srv.Addr, 3)
	client := func(addr string) *relay.Client {
		c, err := relay.NewClient(addr, &relay.ClientOptions{TLS: relay.NoTLS, LocalName: "relay.example", Timeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	down, up := client(closedAddr(t)), client(proxy.addr())
	var recovered atomic.Bool
	sender := relay.SenderFunc(func(ctx context.Context, env *relay.Envelope, msg relay.Message) (*relay.Receipt, error) {
		if recovered.Load() {
			return up.Send(ctx, env, msg)
		}
		return down.Send(ctx, env, msg)
	})

	dir := t.TempDir()
	events := &eventLog{}
	opts := &relay.DelivererOptions{
		Workers:      4,
		RetryBackoff: 20 * time.Millisecond,
		MaxRetry:     200 * time.Millisecond,
		Hostname:     "relay.example",
		Events:       events,
	}
	type running struct {
		spool  *relay.Spool
		cancel context.CancelFunc
		done   chan error
	}
	start := func() *running {
		r := &running{spool: newSpool(t, dir, nil), done: make(chan error, 1)}
		d, err := relay.NewDeliverer(r.spool, sender, opts)
		if err != nil {
			t.Fatal(err)
		}
		var ctx context.Context
		ctx, r.cancel = context.WithCancel(t.Context())
		go func() { r.done <- d.Run(ctx) }()
		return r
	}
	stop := func(r *running) {
		r.cancel()
		if err := <-r.done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if err := r.spool.Close(); err != nil {
			t.Error(err)
		}
	}

	const messages = 24
	bounced := func(i int) bool { return i%4 == 0 }
	r := start()
	queueIDs := map[string]int{} // queue ID: message number
	for i := range messages {
		rcpts := relay.To("bob@example.org", "carol@example.org")
		if bounced(i) {
			rcpts = append(rcpts, relay.Recipient{Addr: "nobody@example.org"})
		}
		w, err := r.spool.Create(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(w, "From: alice@example.com\r\nTo: bob@example.org, carol@example.org\r\nSubject: message %d\r\nMessage-ID: <m%d@example.com>\r\n\r\n%s\r\n", i, i, strings.Repeat("Hello. ", 200))
		e := &relay.Entry{
			Envelope:  relay.Envelope{From: "bounces@relay.example", To: rcpts},
			Sender:    "alice@example.com",
			MessageID: fmt.Sprintf("<m%d@example.com>", i),
		}
		if err := w.Commit(t.Context(), e); err != nil {
			t.Fatal(err)
		}
		queueIDs[e.ID] = i
	}

	// The upstream is down: every message is deferred.
	waitFor(t, "every message deferred while the upstream is down", func() bool {
		deferred := map[string]bool{}
		for _, e := range events.all() {
			if e.Type == relay.EventDeferred {
				deferred[e.QueueID] = true
			}
		}
		return len(deferred) == messages
	})

	// It comes back, misbehaving.
	for _, f := range []smtptest.Fault{
		{On: smtptest.MAIL, Reply: relay.Reply{Code: 421, Enhanced: relay.EnhancedCode{4, 3, 2}, Message: "shutting down"}, Times: 3},
		{On: smtptest.RCPT, Rcpt: "carol@example.org", Reply: relay.Reply{Code: 451, Enhanced: relay.EnhancedCode{4, 2, 0}, Message: "mailbox busy"}, Times: 4},
		{On: smtptest.RCPT, Rcpt: "nobody@example.org", Reply: relay.Reply{Code: 550, Enhanced: relay.EnhancedCode{5, 1, 1}, Message: "no such user"}},
		{On: smtptest.Content, Hangup: true, After: 300, Times: 3},
		{On: smtptest.EndOfData, Reply: relay.Reply{Code: 451, Enhanced: relay.EnhancedCode{4, 3, 0}, Message: "local error"}, Times: 2},
	} {
		if err := srv.Fail(f); err != nil {
			t.Fatal(err)
		}
	}
	srv.SetDelay(5 * time.Millisecond)
	recovered.Store(true)

	// Shut down and restart on the same spool with part of it delivered.
	waitFor(t, "a third of the recipients delivered", func() bool {
		n := 0
		for _, e := range events.all() {
			if e.Type == relay.EventDelivered {
				n++
			}
		}
		return n >= messages*2/3
	})
	stop(r)
	between := newSpool(t, dir, nil)
	left := between.Len()
	between.Close()
	r = start()
	waitFor(t, "the spool to empty", func() bool { return r.spool.Len() == 0 })
	stop(r)
	if files := spoolFiles(t, dir); len(files) != 0 {
		t.Errorf("files left in the spool: %v", files)
	}

	// What the server kept, by Message-ID and recipient; the DSNs apart.
	// A recipient of a transaction whose reply was lost (the first copy
	// the server kept of a message the proxy names) is due twice.
	got := map[string]int{} // "<m1@example.com> bob@example.org": copies
	dup := map[string]bool{}
	lost := map[string]bool{}
	for _, id := range proxy.drops() {
		lost[id] = true
	}
	var dsns []*smtptest.Message
	for _, m := range srv.Messages() {
		msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
		if err != nil {
			t.Fatal(err)
		}
		id := msg.Header.Get("Message-Id")
		if lost[id] {
			delete(lost, id)
			for _, to := range m.Envelope.To {
				dup[id+" "+to.Addr] = true
			}
		}
		if m.Envelope.From == "" {
			dsns = append(dsns, m)
			continue
		}
		for _, to := range m.Envelope.To {
			got[id+" "+to.Addr]++
		}
	}
	if len(lost) != 0 {
		t.Errorf("replies lost for messages the server did not keep: %v", lost)
	}
	var duplicates int
	for i := range messages {
		for _, rcpt := range []string{"bob@example.org", "carol@example.org"} {
			key := fmt.Sprintf("<m%d@example.com> %s", i, rcpt)
			want := 1
			if dup[key] {
				want = 2
				duplicates++
			}
			if got[key] != want {
				t.Errorf("%s: kept %d times, want %d", key, got[key], want)
			}
			delete(got, key)
		}
	}
	for key, n := range got {
		t.Errorf("%s: kept %d times, and never sent", key, n)
	}

	// One DSN per message with nobody@, about that recipient alone, kept
	// twice when its own reply was lost.
	dsnIDs := map[string][]string{} // original Message-ID: DSN Message-IDs
	copies := map[string]int{}      // DSN Message-ID: copies kept
	for _, m := range dsns {
		d := readDSN(t, string(m.Data))
		if len(m.Envelope.To) != 1 || m.Envelope.To[0].Addr != "alice@example.com" {
			t.Errorf("DSN to %v", m.Envelope.To)
		}
		if len(d.rcpts) != 1 {
			t.Errorf("DSN about %d recipients, want 1", len(d.rcpts))
			continue
		}
		wantFields(t, "DSN", d.rcpts[0], map[string]string{
			"Final-Recipient": "rfc822; nobody@example.org",
			"Action":          "failed",
			"Status":          "5.1.1",
			"Diagnostic-Code": "smtp; 550 5.1.1 no such user",
		})
		id, orig := d.header.Get("Message-Id"), d.header.Get("In-Reply-To")
		if copies[id] == 0 {
			dsnIDs[orig] = append(dsnIDs[orig], id)
		}
		copies[id]++
	}
	for i := range messages {
		orig := fmt.Sprintf("<m%d@example.com>", i)
		ids := dsnIDs[orig]
		if !bounced(i) {
			if len(ids) != 0 {
				t.Errorf("message %d: DSNs %v, want none", i, ids)
			}
			continue
		}
		if len(ids) != 1 {
			t.Errorf("message %d: DSNs %v, want one", i, ids)
			continue
		}
		want := 1
		if dup[ids[0]+" alice@example.com"] {
			want = 2
			duplicates++
		}
		if copies[ids[0]] != want {
			t.Errorf("message %d: its DSN kept %d times, want %d", i, copies[ids[0]], want)
		}
	}

	// Each recipient of each message has one final event, of the right
	// kind, with the queue ID, the Message-ID and the remote reply.
	final := map[string][]relay.Event{}
	for _, e := range events.all() {
		if e.Type == relay.EventDelivered || e.Type == relay.EventBounced {
			final[e.QueueID+" "+e.Rcpt] = append(final[e.QueueID+" "+e.Rcpt], e)
		}
	}
	for qid, i := range queueIDs {
		rcpts := []string{"bob@example.org", "carol@example.org"}
		if bounced(i) {
			rcpts = append(rcpts, "nobody@example.org")
		}
		for _, rcpt := range rcpts {
			evs := final[qid+" "+rcpt]
			if len(evs) != 1 {
				t.Errorf("message %d, %s: %d final events, want 1", i, rcpt, len(evs))
				continue
			}
			e := evs[0]
			wantType, wantCode := relay.EventDelivered, 250
			if rcpt == "nobody@example.org" {
				wantType, wantCode = relay.EventBounced, 550
			}
			if e.Type != wantType || e.MessageID != fmt.Sprintf("<m%d@example.com>", i) || e.Reply == nil || e.Reply.Code != wantCode || e.Host != proxy.addr() || e.Time.IsZero() {
				t.Errorf("message %d, %s: event %+v", i, rcpt, e)
			}
		}
	}

	// Each fault was met, and deferred the recipients it concerned.
	faults := map[string]bool{}
	for _, e := range events.all() {
		if e.Type != relay.EventDeferred {
			continue
		}
		switch {
		case e.Reply != nil:
			faults[fmt.Sprintf("%d %s", e.Reply.Code, e.Reply.Enhanced)] = true
		case strings.Contains(e.Reason, "connection refused"):
			faults["down"] = true
		default:
			faults["dropped"] = true
		}
	}
	for _, f := range []string{"down", "421 4.3.2", "451 4.2.0", "451 4.3.0", "dropped"} {
		if !faults[f] {
			t.Errorf("no recipient deferred by %q; deferred by %v", f, faults)
		}
	}

	s := srv.Stats()
	t.Logf("%d messages, %d DSNs; %d left in the spool at the restart; %d transactions, %d messages kept by the server, %d connections; %d replies lost, %d duplicate deliveries",
		messages, len(dsns), left, s.Transactions, s.Messages, s.Connections, len(proxy.drops()), duplicates)
	if len(proxy.drops()) == 0 {
		t.Error("no reply was lost: the test did not exercise duplicates")
	}
}
