package relay_test

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/relay/smtptest"
)

// Every envelope option reaches the server as it was given.
func TestEnvelopeOptions(t *testing.T) {
	t.Parallel()
	srv := newServer(t, nil)
	c := newClient(t, srv.Addr, &relay.ClientOptions{RootCAs: srv.CertPool()})
	for _, env := range []*relay.Envelope{
		{From: "", To: relay.To("postmaster@example.org")},
		{From: "jöran@example.com", To: relay.To("用户@例子.广告"), SMTPUTF8: true},
		{From: "a@example.com", To: relay.To("b@example.org"), Body: relay.BodyEightBit},
		{From: "a@example.com", To: relay.To("b@example.org"), Body: relay.BodyBinary},
		{From: "a@example.com", To: relay.To("b@example.org"), RequireTLS: true},
		{From: "a@example.com", Return: relay.ReturnHeaders, EnvID: "QQ 314159+1=2", To: []relay.Recipient{
			{Addr: "b@example.org", Notify: []relay.DSNNotify{relay.NotifySuccess, relay.NotifyDelay}, ORcpt: "rfc822;b+orig=1@example.org"},
			{Addr: "c@example.org", Notify: []relay.DSNNotify{relay.NotifyNever}},
		}},
	} {
		rec := send(t, c, env, hello)
		if !rec.DSN {
			t.Error("Receipt.DSN is false, and the server offers DSN")
		}
		msgs := srv.Messages()
		got := msgs[len(msgs)-1].Envelope
		if !reflect.DeepEqual(&got, env) {
			t.Errorf("the server got\n%+v\nwant\n%+v", got, *env)
		}
	}
	// SIZE= is the message's size.
	if m := srv.Messages()[0]; m.Size != hello.Size() {
		t.Errorf("SIZE=%d, want %d", m.Size, hello.Size())
	}
}

// Options the server does not offer: refused before MAIL with the reply a
// server would give, except DSN, which is left out.
func TestEnvelopeOptionsNotOffered(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		disable string
		env     *relay.Envelope
		code    int
		enh     relay.EnhancedCode
	}{
		{"SMTPUTF8", &relay.Envelope{From: "jöran@example.com", To: relay.To("b@example.org"), SMTPUTF8: true}, 553, relay.EnhancedCode{5, 6, 7}},
		{"SMTPUTF8", &relay.Envelope{From: "a@example.com", To: relay.To("b@example.org"), SMTPUTF8: true}, 554, relay.EnhancedCode{5, 6, 9}},
		{"8BITMIME", &relay.Envelope{From: "a@example.com", To: relay.To("b@example.org"), Body: relay.BodyEightBit}, 554, relay.EnhancedCode{5, 6, 3}},
		{"BINARYMIME", &relay.Envelope{From: "a@example.com", To: relay.To("b@example.org"), Body: relay.BodyBinary}, 554, relay.EnhancedCode{5, 6, 3}},
		{"CHUNKING", &relay.Envelope{From: "a@example.com", To: relay.To("b@example.org"), Body: relay.BodyBinary}, 554, relay.EnhancedCode{5, 6, 3}},
		{"REQUIRETLS", &relay.Envelope{From: "a@example.com", To: relay.To("b@example.org"), RequireTLS: true}, 550, relay.EnhancedCode{5, 7, 30}},
	} {
		srv := newServer(t, &smtptest.Options{Disable: []string{tt.disable}})
		c := newClient(t, srv.Addr, &relay.ClientOptions{RootCAs: srv.CertPool()})
		rec, err := c.Send(ctx(t), tt.env, hello)
		r := replyOf(err)
		if rec != nil || r == nil || r.Code != tt.code || r.Enhanced != tt.enh || !r.Permanent() {
			t.Errorf("without %s: %v, want %d %v", tt.disable, err, tt.code, tt.enh)
		}
		if n := srv.Stats().Commands["MAIL"]; n != 0 {
			t.Errorf("without %s: MAIL sent", tt.disable)
		}
	}

	// REQUIRETLS needs TLS, and a verified certificate.
	for _, opts := range []*relay.ClientOptions{{TLS: relay.NoTLS}, {TLS: relay.OpportunisticTLS}} {
		srv := newServer(t, nil)
		env := &relay.Envelope{From: "a@example.com", To: relay.To("b@example.org"), RequireTLS: true}
		_, err := newClient(t, srv.Addr, opts).Send(ctx(t), env, hello)
		if r := replyOf(err); r == nil || r.Enhanced != (relay.EnhancedCode{5, 7, 30}) {
			t.Errorf("REQUIRETLS with TLS mode %s: %v, want 5.7.30", opts.TLS, err)
		}
	}

	// DSN: the options are left out, and the Receipt says so.
	srv := newServer(t, &smtptest.Options{Disable: []string{"DSN"}})
	env := &relay.Envelope{From: "a@example.com", Return: relay.ReturnFull, EnvID: "x",
		To: []relay.Recipient{{Addr: "b@example.org", Notify: []relay.DSNNotify{relay.NotifySuccess}, ORcpt: "rfc822;b@example.org"}}}
	rec := send(t, newClient(t, srv.Addr, &relay.ClientOptions{RootCAs: srv.CertPool()}), env, hello)
	if rec.DSN {
		t.Error("Receipt.DSN is true, and the server does not offer DSN")
	}
	if got := srv.Messages()[0].Envelope; got.Return != "" || got.EnvID != "" || got.To[0].Notify != nil {
		t.Errorf("the server got DSN options: %+v", got)
	}
}

// A message over the server's SIZE is refused before it is sent.
func TestSizeLimit(t *testing.T) {
	t.Parallel()
	srv := newServer(t, &smtptest.Options{MaxMessageBytes: 100})
	c := newClient(t, srv.Addr, &relay.ClientOptions{RootCAs: srv.CertPool()})
	big := relay.Bytes(strings.Repeat("x", 101))
	rec, err := c.Send(ctx(t), envelope("a@example.com", "b@example.org"), big)
	if r := replyOf(err); rec != nil || r == nil || r.Code != 552 || r.Enhanced != (relay.EnhancedCode{5, 3, 4}) {
		t.Errorf("Send = %v, want 552 5.3.4", err)
	}
	if st := srv.Stats(); st.Commands["MAIL"] != 0 || st.Commands["BDAT"] != 0 {
		t.Errorf("commands %v: the message was sent", st.Commands)
	}
	// At the limit, it goes, on the same connection.
	send(t, c, envelope("a@example.com", "b@example.org"), relay.Bytes(strings.Repeat("x", 98)))
	if st := srv.Stats(); st.Connections != 1 || st.Messages != 1 {
		t.Errorf("stats %+v, want one message on one connection", st)
	}
}

// The bytes the server keeps: line endings normalized, a final CRLF added,
// dots stuffed over DATA and unstuffed by the server, and binary octets
// untouched; with DATA and with BDAT.
func TestMessageBytes(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"Subject: x\n\nbare LF\nlines", "Subject: x\r\n\r\nbare LF\r\nlines\r\n"},
		{"Subject: x\r\n\r\nbare CR\rline\r", "Subject: x\r\n\r\nbare CR\r\nline\r\n"},
		{"Subject: x\r\n\r\n.\r\n..\r\n.leading dot\n.", "Subject: x\r\n\r\n.\r\n..\r\n.leading dot\r\n.\r\n"},
		{"Subject: x\r\n\r\nno final line ending", "Subject: x\r\n\r\nno final line ending\r\n"},
		{"", ""},
		{"bin\x00ary\xff\x80\r\n", "bin\x00ary\xff\x80\r\n"},
	}
	for _, chunking := range []bool{false, true} {
		var disable []string
		if !chunking {
			disable = []string{"CHUNKING"}
		}
		srv := newServer(t, &smtptest.Options{TLS: smtptest.NoTLS, Disable: disable})
		c := newClient(t, srv.Addr, &relay.ClientOptions{TLS: relay.NoTLS, ChunkSize: 16})
		for _, tt := range tests {
			send(t, c, envelope("a@example.com", "b@example.org"), relay.Bytes(tt.in))
			msgs := srv.Messages()
			m := msgs[len(msgs)-1]
			if string(m.Data) != tt.want || m.BDAT != chunking {
				t.Errorf("chunking %v: %q arrived as %q (BDAT %v), want %q", chunking, tt.in, m.Data, m.BDAT, tt.want)
			}
		}
	}
}

// Some recipients refused: each says why, the others get the message.
func TestSomeRecipientsRefused(t *testing.T) {
	t.Parallel()
	for _, disable := range [][]string{nil, {"CHUNKING"}, {"PIPELINING"}, {"PIPELINING", "CHUNKING"}} {
		srv := newServer(t, &smtptest.Options{Disable: disable})
		srv.Fail(smtptest.Fault{On: smtptest.RCPT, Rcpt: "gone@example.org", Reply: relay.Reply{Code: 550, Enhanced: relay.EnhancedCode{5, 1, 1}, Message: "No such user"}})
		srv.Fail(smtptest.Fault{On: smtptest.RCPT, Rcpt: "full@example.org", Reply: relay.Reply{Code: 452, Enhanced: relay.EnhancedCode{4, 2, 2}, Message: "Mailbox full"}})
		c := newClient(t, srv.Addr, &relay.ClientOptions{RootCAs: srv.CertPool()})
		rec := send(t, c, envelope("a@example.com", "b@example.org", "gone@example.org", "c@example.org", "full@example.org"), hello)

		if got, want := rec.Accepted(), []string{"b@example.org", "c@example.org"}; !reflect.DeepEqual(got, want) {
			t.Errorf("%v: accepted %v, want %v", disable, got, want)
		}
		gone, full := rec.Rcpts[1].Reply, rec.Rcpts[3].Reply
		if gone.Code != 550 || gone.Enhanced != (relay.EnhancedCode{5, 1, 1}) || gone.Message != "No such user" || !gone.Permanent() {
			t.Errorf("%v: gone@ got %+v", disable, gone)
		}
		if full.Code != 452 || !full.Temporary() {
			t.Errorf("%v: full@ got %+v", disable, full)
		}
		if r := rec.Rcpts[0].Reply; r.Code != 250 || r.Enhanced != (relay.EnhancedCode{2, 0, 0}) {
			t.Errorf("%v: b@ got %+v, want the 250 of the end of data", disable, r)
		}
		m := srv.Messages()[0]
		if len(m.Envelope.To) != 2 || m.Envelope.To[0].Addr != "b@example.org" || m.Envelope.To[1].Addr != "c@example.org" {
			t.Errorf("%v: the server delivered to %+v", disable, m.Envelope.To)
		}
	}
}

// Every recipient refused: no content is sent, and the Receipt says why
// for each, without an error.
func TestAllRecipientsRefused(t *testing.T) {
	t.Parallel()
	const marker = "the body must not leave"
	body := relay.Bytes("Subject: x\r\n\r\n" + marker + "\r\n")
	for _, tt := range []struct {
		name    string
		disable []string
		msg     relay.Message
	}{
		{"DATA pipelined", []string{"CHUNKING"}, body},
		{"DATA stepwise", []string{"CHUNKING", "PIPELINING"}, body},
		{"BDAT in chunks", nil, relay.Bytes(strings.Repeat(marker+"\r\n", 20))},
		{"BDAT stepwise", []string{"PIPELINING"}, body},
	} {
		srv := newServer(t, &smtptest.Options{TLS: smtptest.NoTLS, Disable: tt.disable})
		srv.Fail(smtptest.Fault{On: smtptest.RCPT, Reply: relay.Reply{Code: 550, Enhanced: relay.EnhancedCode{5, 1, 1}, Message: "No such user"}})
		w := &wire{record: true}
		c := newClient(t, srv.Addr, &relay.ClientOptions{TLS: relay.NoTLS, Dial: w.dial, ChunkSize: 64})
		rec := send(t, c, envelope("a@example.com", "b@example.org", "c@example.org"), tt.msg)
		if len(rec.Accepted()) != 0 || rec.Rcpts[0].Reply.Code != 550 || rec.Rcpts[1].Reply.Code != 550 {
			t.Errorf("%s: receipt %+v", tt.name, rec.Rcpts)
		}
		if bytes.Contains(w.bytes(), []byte(marker)) {
			t.Errorf("%s: the content was sent", tt.name)
		}
		if st := srv.Stats(); st.Messages != 0 || st.Commands["BDAT"] != 0 {
			t.Errorf("%s: stats %+v", tt.name, st)
		}
		// The connection is still good.
		srv.ClearFaults()
		send(t, c, envelope("a@example.com", "b@example.org"), hello)
		if st := srv.Stats(); st.Connections != 1 || st.Messages != 1 {
			t.Errorf("%s: after, stats %+v", tt.name, st)
		}
	}

	// A message that fits in one chunk goes with the commands, and the
	// server discards it.
	srv := newServer(t, &smtptest.Options{TLS: smtptest.NoTLS})
	srv.Fail(smtptest.Fault{On: smtptest.RCPT, Reply: relay.Reply{Code: 550, Message: "No"}})
	c := newClient(t, srv.Addr, &relay.ClientOptions{TLS: relay.NoTLS})
	rec := send(t, c, envelope("a@example.com", "b@example.org"), body)
	if len(rec.Accepted()) != 0 || srv.Stats().Messages != 0 {
		t.Errorf("inline BDAT: receipt %+v, %d messages kept", rec.Rcpts, srv.Stats().Messages)
	}
}

// A refused MAIL FROM fails the Send with the server's reply, and leaves
// the connection usable.
func TestMailRefused(t *testing.T) {
	t.Parallel()
	for _, disable := range [][]string{nil, {"CHUNKING"}, {"PIPELINING"}} {
		srv := newServer(t, &smtptest.Options{Disable: disable})
		srv.Fail(smtptest.Fault{On: smtptest.MAIL, Times: 1, Reply: relay.Reply{Code: 451, Enhanced: relay.EnhancedCode{4, 3, 0}, Message: "Try later"}})
		c := newClient(t, srv.Addr, &relay.ClientOptions{RootCAs: srv.CertPool()})
		rec, err := c.Send(ctx(t), envelope("a@example.com", "b@example.org"), hello)
		if r := replyOf(err); rec != nil || r == nil || r.Code != 451 || !r.Temporary() || r.Enhanced != (relay.EnhancedCode{4, 3, 0}) {
			t.Errorf("%v: Send = %+v, %v; want 451 4.3.0", disable, rec, err)
		}
		send(t, c, envelope("a@example.com", "b@example.org"), hello)
		if st := srv.Stats(); st.Connections != 1 || st.Messages != 1 {
			t.Errorf("%v: stats %+v, want the message on the same connection", disable, st)
		}
	}
}

// A refusal at the end of the data fails the Send; the Receipt keeps each
// recipient's reply.
func TestEndOfDataRefused(t *testing.T) {
	t.Parallel()
	for _, disable := range [][]string{nil, {"CHUNKING"}} {
		srv := newServer(t, &smtptest.Options{Disable: disable})
		srv.Fail(smtptest.Fault{On: smtptest.RCPT, Rcpt: "gone@example.org", Reply: relay.Reply{Code: 550, Message: "No"}})
		srv.Fail(smtptest.Fault{On: smtptest.EndOfData, Reply: relay.Reply{Code: 554, Enhanced: relay.EnhancedCode{5, 7, 1}, Message: "Spam"}})
		c := newClient(t, srv.Addr, &relay.ClientOptions{RootCAs: srv.CertPool()})
		rec, err := c.Send(ctx(t), envelope("a@example.com", "b@example.org", "gone@example.org"), hello)
		if r := replyOf(err); r == nil || r.Code != 554 {
			t.Fatalf("%v: %v, want 554", disable, err)
		}
		if rec == nil || rec.Rcpts[0].Reply.Code != 554 || rec.Rcpts[1].Reply.Code != 550 || len(rec.Accepted()) != 0 {
			t.Errorf("%v: receipt %+v", disable, rec)
		}
	}
}

// Round trips per message on a reused connection, counted on the client's
// connection: two with PIPELINING and DATA, one with CHUNKING; without
// PIPELINING, one per command.
func TestRoundTrips(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		disable []string
		rcpts   int
		trips   int
		writes  int
	}{
		{"pipelining and chunking", nil, 1, 1, 1},
		{"pipelining and chunking, 10 recipients", nil, 10, 1, 1},
		{"pipelining", []string{"CHUNKING"}, 1, 2, 2},
		{"pipelining, 10 recipients", []string{"CHUNKING"}, 10, 2, 2},
		// RSET, MAIL, RCPT, DATA, the content.
		{"no pipelining", []string{"PIPELINING", "CHUNKING"}, 1, 5, 5},
		{"no pipelining, 10 recipients", []string{"PIPELINING", "CHUNKING"}, 10, 14, 14},
		// RSET, MAIL, RCPT, BDAT LAST.
		{"chunking without pipelining", []string{"PIPELINING"}, 1, 4, 4},
	} {
		srv := newServer(t, &smtptest.Options{TLS: smtptest.NoTLS, Disable: tt.disable})
		w := &wire{}
		c := newClient(t, srv.Addr, &relay.ClientOptions{TLS: relay.NoTLS, Dial: w.dial})
		var to []string
		for i := range tt.rcpts {
			to = append(to, fmt.Sprintf("r%d@example.org", i))
		}
		msg := relay.Bytes(strings.Repeat("0123456789abcde\n", 640)) // 10 KiB
		send(t, c, envelope("a@example.com", to...), msg)
		for range 5 {
			w0, t0 := w.counts()
			send(t, c, envelope("a@example.com", to...), msg)
			w1, t1 := w.counts()
			if t1-t0 != tt.trips || w1-w0 != tt.writes {
				t.Errorf("%s: %d round trips and %d writes for a message, want %d and %d", tt.name, t1-t0, w1-w0, tt.trips, tt.writes)
			}
		}
		if st := srv.Stats(); st.Connections != 1 || st.Messages != 6 {
			t.Errorf("%s: stats %+v", tt.name, st)
		}
	}
}

// Large messages in chunks: every chunk arrives, with or without
// PIPELINING.
func TestChunks(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&b, "line %d\r\n", i)
	}
	body := b.String()
	for _, disable := range [][]string{nil, {"PIPELINING"}} {
		srv := newServer(t, &smtptest.Options{TLS: smtptest.NoTLS, Disable: disable})
		c := newClient(t, srv.Addr, &relay.ClientOptions{TLS: relay.NoTLS, ChunkSize: 1000})
		send(t, c, envelope("a@example.com", "b@example.org"), relay.Bytes(body))
		// A message of an exact number of chunks ends with BDAT 0 LAST.
		send(t, c, envelope("a@example.com", "b@example.org"), relay.Bytes(strings.Repeat("x", 998)+"\r\n"))
		msgs := srv.Messages()
		if string(msgs[0].Data) != body || !msgs[0].BDAT || len(msgs[1].Data) != 1000 {
			t.Errorf("%v: got %d and %d octets", disable, len(msgs[0].Data), len(msgs[1].Data))
		}
		if n := srv.Stats().Commands["BDAT"]; n != (len(body)+999)/1000+2 {
			t.Errorf("%v: %d BDAT commands", disable, n)
		}
	}
}

// A chunk refused ends the transaction, and the connection stays usable.
func TestChunkRefused(t *testing.T) {
	t.Parallel()
	srv := newServer(t, &smtptest.Options{TLS: smtptest.NoTLS})
	srv.Fail(smtptest.Fault{On: smtptest.BDAT, Times: 1, Reply: relay.Reply{Code: 452, Enhanced: relay.EnhancedCode{4, 3, 1}, Message: "Disk full"}})
	c := newClient(t, srv.Addr, &relay.ClientOptions{TLS: relay.NoTLS, ChunkSize: 100})
	rec, err := c.Send(ctx(t), envelope("a@example.com", "b@example.org"), relay.Bytes(strings.Repeat("x\r\n", 1000)))
	if r := replyOf(err); r == nil || r.Code != 452 || rec == nil || rec.Rcpts[0].Reply.Code != 452 {
		t.Errorf("Send = %+v, %v; want 452", rec, err)
	}
	if srv.Stats().Messages != 0 {
		t.Error("the server kept a message")
	}
	send(t, c, envelope("a@example.com", "b@example.org"), hello)
	if st := srv.Stats(); st.Connections != 1 || st.Messages != 1 {
		t.Errorf("stats %+v", st)
	}
}

// Bad input is refused before anything is sent: not even a connection.
func TestCommandInjection(t *testing.T) {
	t.Parallel()
	srv := newServer(t, nil)
	c := newClient(t, srv.Addr, &relay.ClientOptions{RootCAs: srv.CertPool()})
	for _, env := range []*relay.Envelope{
		envelope("a@example.com\r\nRCPT TO:<victim@example.net>", "b@example.org"),
		envelope("a@example.com", "b@example.org\nDATA"),
		envelope("a@example.com", "b@example.org\x00"),
		envelope("a@example.com", "b@example.org> NOTIFY=NEVER"),
		{From: "a@example.com", To: relay.To("b@example.org"), EnvID: "x\r\nQUIT"},
		{From: "a@example.com", To: []relay.Recipient{{Addr: "b@example.org", ORcpt: "rfc822;b@example.org\rRSET"}}},
	} {
		_, err := c.Send(ctx(t), env, hello)
		if !errors.Is(err, relay.ErrSyntax) {
			t.Errorf("%+v: %v, want ErrSyntax", env, err)
		}
	}
	if n := srv.Stats().Connections; n != 0 {
		t.Errorf("%d connections", n)
	}
}

// The same through a Proxy that delays each way: the round trips counted
// on the connection, and the time they take, which can only be more than
// the delays they add up to.
func TestRoundTripsThroughProxy(t *testing.T) {
	t.Parallel()
	const delay = 5 * time.Millisecond
	for _, tt := range []struct {
		name    string
		disable []string
		trips   int
	}{
		{"pipelining and chunking", nil, 1},
		{"pipelining", []string{"CHUNKING"}, 2},
	} {
		srv := newServer(t, &smtptest.Options{TLS: smtptest.NoTLS, Disable: tt.disable})
		proxy, err := smtptest.NewProxy(srv.Addr, delay)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { proxy.Close() })
		w := &wire{}
		c := newClient(t, proxy.Addr, &relay.ClientOptions{TLS: relay.NoTLS, Dial: w.dial})
		env := envelope("a@example.com", "b@example.org", "c@example.org")
		send(t, c, env, hello)
		_, t0 := w.counts()
		start := time.Now()
		const n = 5
		for range n {
			send(t, c, env, hello)
		}
		took := time.Since(start)
		_, t1 := w.counts()
		if got := (t1 - t0) / n; got != tt.trips || (t1-t0)%n != 0 {
			t.Errorf("%s: %d round trips for %d messages, want %d each", tt.name, t1-t0, n, tt.trips)
		}
		if min := time.Duration(n*tt.trips) * 2 * delay; took < min {
			t.Errorf("%s: %v for %d round trips of %v", tt.name, took, n*tt.trips, 2*delay)
		}
		t.Logf("%s: %d round trips a message, %v a message with %v each way", tt.name, (t1-t0)/n, took/n, delay)
	}
}
