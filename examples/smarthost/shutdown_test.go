package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/smarthost-go/smarthost/relay/smtptest"
)

// TestGracefulShutdown: on SIGTERM the relay lets a client that is in the
// middle of its message finish it and get 250, ends the session with 421,
// cuts short a delivery that outlasts -shutdown-timeout, and exits 0; what
// it did not deliver is in the spool, and delivered once at the next
// start.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sink := newSink(t, &smtptest.Options{TLS: smtptest.NoTLS})
	args := []string{"-listen", "127.0.0.1:0", "-hostname", "relay.test", "-trusted", "127.0.0.0/8",
		"-upstream", sink.Addr, "-upstream-tls", "none", "-shutdown-timeout", "1s", "-key-domains", "client.example"}
	spool := filepath.Join(dir, "smarthost-data", "spool")

	// A message in the middle of its DATA at SIGTERM.
	d := startDaemon(t, dir, nil, args...)
	c, err := smtp.Dial(d.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("sender@client.example", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("rcpt@sink.example", nil); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "From: sender@client.example\r\nTo: rcpt@sink.example\r\nMessage-ID: <during-shutdown@client.example>\r\n")
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "the relay to begin its shutdown", func() bool { return strings.Contains(d.stderr.String(), `msg="shutting down"`) })
	io.WriteString(w, "Subject: sent during the shutdown\r\n\r\nThe relay waited for it.\r\n")
	if err := w.Close(); err != nil {
		t.Fatalf("the message finished during the shutdown: %v, want 250", err)
	}
	var se *smtp.SMTPError
	if err := c.Mail("sender@client.example", nil); !errors.As(err, &se) || se.Code != 421 {
		t.Errorf("the next command: %v, want 421", err)
	}
	if code := d.wait(); code != 0 {
		t.Fatalf("exit %d after SIGTERM, want 0\n%s", code, d.stderr)
	}

	// A delivery under way at SIGTERM, to an upstream that answers too
	// slowly to finish within -shutdown-timeout.
	// The message is in the spool, or (if a delivery worker leased it
	// before it saw the shutdown) at the sink.
	sink.SetDelay(time.Hour)
	d = startDaemon(t, dir, nil, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := sendPlain(ctx, d.addr, "<slow-upstream@client.example>"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "a connection to the upstream", func() bool { return sink.Stats().Connections > 0 })
	if code := d.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d after SIGTERM, want 0\n%s", code, d.stderr)
	}
	// No transaction could end at the sink while it was slow: the
	// delivery was cut short, and its message left in the spool.
	if n, s := len(sink.Messages()), len(spoolEntries(t, spool)); n > 1 || n+s != 2 {
		t.Fatalf("%d messages at the sink and %d in the spool after the shutdown, want 2 in all, the slow one in the spool", n, s)
	}

	// Started again, with the upstream quick: both delivered, once.
	sink.SetDelay(0)
	d = startDaemon(t, dir, nil, args...)
	if _, err := sink.WaitMessages(ctx, 2); err != nil {
		t.Fatalf("%v\n%s", err, d.stderr)
	}
	waitFor(t, time.Minute, "an empty spool", func() bool { return len(spoolEntries(t, spool)) == 0 })
	ids := map[string]int{}
	for _, m := range sink.Messages() {
		for _, id := range headerFields(t, m.Data, "Message-ID") {
			ids[id]++
		}
	}
	if want := map[string]int{"<during-shutdown@client.example>": 1, "<slow-upstream@client.example>": 1}; fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Errorf("the sink has %v, want %v", ids, want)
	}
	if code := d.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("exit %d after SIGTERM\n%s", code, d.stderr)
	}
}

// sendPlain submits one small message with that Message-ID over a
// plaintext session from a trusted network, and returns nil once the
// relay answered 250 to it.
func sendPlain(ctx context.Context, addr, msgID string) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	c := smtp.NewClient(conn)
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		return err
	}
	if err := c.Mail("sender@client.example", nil); err != nil {
		return err
	}
	if err := c.Rcpt("rcpt@sink.example", nil); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "From: sender@client.example\r\nTo: rcpt@sink.example\r\nMessage-ID: %s\r\nSubject: test\r\n\r\n%s\r\n",
		msgID, strings.Repeat("A line of the body of the message, to give it some length.\r\n", 20))
	if err := w.Close(); err != nil {
		return err
	}
	c.Quit()
	return nil
}
