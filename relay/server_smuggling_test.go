package relay_test

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/smarthost-go/smarthost/relay"
)

// The SMTP smuggling payloads (SEC Consult, December 2023, and the
// variants found since): a fake end of data that some server might take
// for the real one, then the commands of a second message, then the real
// end. The relay must see none of them as an end: each is refused, no
// message is queued, and the connection is closed before the smuggled
// commands are read.
var srvSmuggling = []struct {
	name, fakeEnd, reply string
}{
	{"LF.LF", "\n.\n", "550 5.5.2 Error: bare <LF> received"},
	{"CR.CR", "\r.\r", "550 5.5.2 Error: bare <CR> received"},
	{"LF.CRLF", "\n.\r\n", "550 5.5.2 Error: bare <LF> received"},
	{"CRLF.LF", "\r\n.\n", "550 5.5.2 Error: bare <LF> received"},
	{"CR.CRLF", "\r.\r\n", "550 5.5.2 Error: bare <CR> received"},
	{"LF.CR", "\n.\r", "550 5.5.2 Error: bare <LF> received"},
	{"CRLF.CR", "\r\n.\r", "550 5.5.2 Error: bare <CR> received"},
	{"CR.LF", "\r.\n", "550 5.5.2 Error: bare <CR> received"},
	{"CRLF.CRCRLF", "\r\n.\r\r\n", "550 5.5.2 Error: bare <CR> received"},
	{"CRCRLF.CRLF", "\r\r\n.\r\n", "550 5.5.2 Error: bare <CR> received"},
	{"CRLF.LFLF", "\r\n.\n\n", "550 5.5.2 Error: bare <LF> received"},
	{"LFLF.LFLF", "\n\n.\n\n", "550 5.5.2 Error: bare <LF> received"},
	{"CRLF NUL.CRLF", "\r\n\x00.\r\n", "550 5.5.2 Error: NUL octet received"},
	{"CRLF.NUL CRLF", "\r\n.\x00\r\n", "550 5.5.2 Error: NUL octet received"},
	{"CRLF space.CRLF", "\r\n .\r\n\n", "550 5.5.2 Error: bare <LF> received"},
}

// srvCarrier is the start of the message that carries a payload: its end
// is the payload's first octet.
const srvCarrier = "From: orders@customer.example\r\nTo: buyer@example.net\r\nSubject: carrier\r\n\r\nfirst message"

// srvSmuggled are the commands of the second message.
const srvSmuggled = "MAIL FROM:<ceo@customer.example>\r\n" +
	"RCPT TO:<victim@example.net>\r\n" +
	"DATA\r\n" +
	"From: ceo@customer.example\r\nTo: victim@example.net\r\nSubject: smuggled\r\n\r\nwire the money\r\n"

func TestServerSmugglingDATA(t *testing.T) {
	t.Parallel()
	fx := srvStart(t, nil)
	for _, p := range srvSmuggling {
		t.Run(p.name, func(t *testing.T) {
			c := srvDial(t, fx.addr, "", 220)
			c.login(fx.client, srvKey)
			c.cmd(250, "MAIL FROM:<orders@customer.example>")
			c.cmd(250, "RCPT TO:<buyer@example.net>")
			c.cmd(354, "DATA")
			// All at once, as a pipelining attacker sends it.
			c.write(srvCarrier + p.fakeEnd + srvSmuggled + "\r\n.\r\nQUIT\r\n")
			c.expectText(p.reply)
			if !c.closed() {
				t.Error("the connection is still open after the refusal")
			}
		})
		// The payload at the very start of the content too.
		t.Run(p.name+"/first", func(t *testing.T) {
			c := srvDial(t, fx.addr, "", 220)
			c.login(fx.client, srvKey)
			c.cmd(250, "MAIL FROM:<orders@customer.example>")
			c.cmd(250, "RCPT TO:<buyer@example.net>")
			c.cmd(354, "DATA")
			c.write(strings.TrimPrefix(p.fakeEnd, "\r\n") + srvSmuggled + "\r\n.\r\nQUIT\r\n")
			c.expectText("550 5.5.2")
			if !c.closed() {
				t.Error("the connection is still open after the refusal")
			}
		})
	}
	fx.nothingQueued()
}

func TestServerSmugglingBDAT(t *testing.T) {
	t.Parallel()
	fx := srvStart(t, nil)
	bdat := func(chunk string, last bool) string {
		s := "BDAT " + strconv.Itoa(len(chunk))
		if last {
			s += " LAST"
		}
		return s + "\r\n" + chunk
	}
	// Refused: the payloads in a chunk, and bare line ends across chunk
	// boundaries.
	for _, p := range srvSmuggling {
		t.Run(p.name, func(t *testing.T) {
			c := srvDial(t, fx.addr, "", 220)
			c.login(fx.client, srvKey)
			c.cmd(250, "MAIL FROM:<orders@customer.example>")
			c.cmd(250, "RCPT TO:<buyer@example.net>")
			c.write(bdat(srvCarrier+p.fakeEnd+srvSmuggled, true) + "QUIT\r\n")
			c.expectText(p.reply)
			if !c.closed() {
				t.Error("the connection is still open after the refusal")
			}
		})
	}
	for name, chunks := range map[string][]string{
		"CR ending a chunk, then not LF":  {srvCarrier + "\r", "X\r\n"},
		"CR ending the last chunk":        {srvCarrier + "\r"},
		"CR, then an empty last chunk":    {srvCarrier + "\r", ""},
		"LF beginning a chunk after text": {srvCarrier, "\nmore\r\n"},
	} {
		t.Run(name, func(t *testing.T) {
			c := srvDial(t, fx.addr, "", 220)
			c.login(fx.client, srvKey)
			c.cmd(250, "MAIL FROM:<orders@customer.example>")
			c.cmd(250, "RCPT TO:<buyer@example.net>")
			for i, ch := range chunks {
				last := i == len(chunks)-1
				c.write(bdat(ch, last))
				if !last {
					code, msg, err := c.reply()
					if err != nil {
						t.Fatal(err)
					}
					if code != 250 {
						if !strings.HasPrefix(msg, "5.5.2") {
							t.Fatalf("reply %d %s", code, msg)
						}
						break
					}
					continue
				}
				c.expectText("550 5.5.2")
			}
			if !c.closed() {
				t.Error("the connection is still open after the refusal")
			}
		})
	}
	fx.nothingQueued()

	// Accepted, as one message: a CRLF split across two chunks, and a
	// CRLF.CRLF in a chunk, which BDAT does not read as an end.
	c := srvDial(t, fx.addr, "", 220)
	c.login(fx.client, srvKey)
	c.cmd(250, "MAIL FROM:<orders@customer.example>")
	c.cmd(250, "RCPT TO:<buyer@example.net>")
	c.write(bdat(srvCarrier+"\r", false))
	c.expect(250)
	c.write(bdat("\n.\r\n"+srvSmuggled, true))
	c.expectText("250 2.0.0 OK: queued as Q0001")
	c.cmd(221, "QUIT")
	entries, msgs := fx.q.stored()
	if _, commits, _ := fx.q.counts(); len(entries) != 1 || commits != 1 {
		t.Fatalf("%d messages queued (%d commits), want 1", len(entries), commits)
	}
	if !strings.HasSuffix(string(msgs[0]), "first message\r\n.\r\n"+srvSmuggled) {
		t.Errorf("content:\n%q", msgs[0])
	}
}

func TestServerBareLineEndInCommands(t *testing.T) {
	t.Parallel()
	fx := srvStart(t, nil)
	for _, tc := range []struct{ before, line, reply string }{
		{"", "EHLO client.test\n", "550 5.5.2 Error: bare <LF> received"},
		{"EHLO client.test\r\n", "NOOP\rRSET\r\n", "550 5.5.2 Error: bare <CR> received"},
		{"EHLO client.test\r\n", "MAIL FROM:<a@customer.example>\nRCPT TO:<b@example.net>\r\n", "550 5.5.2 Error: bare <LF> received"},
		{"EHLO client.test\r\n", "NOOP \x00\r\n", "550 5.5.2 Error: NUL octet received"},
	} {
		c := srvDial(t, fx.addr, "", 220)
		if tc.before != "" {
			c.write(tc.before)
			c.expect(250)
		}
		c.write(tc.line + "QUIT\r\n")
		c.expectText(tc.reply)
		if !c.closed() {
			t.Errorf("%q: the connection is still open after the refusal", tc.line)
		}
	}
}

// FuzzServerData sends any content after DATA, then the real end of data
// and a NOOP, from a trusted client. Content that holds an end of data of
// its own (a line "." alone) is left out: what follows it are commands.
// Whatever else the content, at most one message is queued; none when the
// content breaks a line rule (a bare CR or LF, a NUL); and a queued message
// is the content as sent, with only CRLF line ends.
func FuzzServerData(f *testing.F) {
	for _, p := range srvSmuggling {
		f.Add([]byte(srvCarrier + p.fakeEnd + srvSmuggled))
	}
	f.Add([]byte(srvMessage))
	f.Add([]byte(srvCarrier + "\r\n..\r\n.x\r\n"))
	fx := srvStart(f, func(o *relay.ServerOptions) {
		o.Trusted = append(o.Trusted, srvTrusted)
		o.MaxConnectionsPerIP = -1
	})
	f.Fuzz(func(t *testing.T, content []byte) {
		full := append(append([]byte("\r\n"), content...), "\r\n"...)
		if bytes.Contains(full, []byte("\r\n.\r\n")) {
			t.Skip("the content ends the data itself")
		}
		clean := !bytes.ContainsAny(bytes.ReplaceAll(full, []byte("\r\n"), nil), "\r\n\x00")
		for line := range bytes.SplitSeq(full, []byte("\r\n")) {
			clean = clean && len(line)+2 <= 2000
		}
		_, commits0, _ := fx.q.counts()
		c := srvDial(t, fx.addr, "127.0.0.2", 220)
		c.cmd(250, "EHLO client.test")
		c.cmd(250, "MAIL FROM:<orders@customer.example>")
		c.cmd(250, "RCPT TO:<buyer@example.net>")
		c.cmd(354, "DATA")
		c.write(string(content) + "\r\n.\r\nNOOP\r\n")
		// Every reply, until the server closes or answers the NOOP.
		for {
			_, msg, err := c.reply()
			if err != nil || strings.Contains(msg, "successfully done nothing") {
				break
			}
		}
		c.conn.Close()
		entries, msgs := fx.q.stored()
		_, commits, _ := fx.q.counts()
		switch n := commits - commits0; {
		case n > 1:
			t.Fatalf("%d messages committed from one DATA", n)
		case n == 1 && !clean:
			t.Fatalf("content with a bare CR or LF, or NUL, was queued: %q", content)
		case n == 1:
			m := msgs[len(msgs)-1][len(entries[len(entries)-1].Header):]
			unstuffed := bytes.ReplaceAll(full, []byte("\r\n."), []byte("\r\n"))[2:]
			hdr, body, sep := bytes.Cut(unstuffed, []byte("\r\n\r\n"))
			if sep {
				hdr = append(hdr, "\r\n"...)
			}
			if !bytes.Contains(m, hdr) || sep && !bytes.HasSuffix(m, append([]byte("\r\n\r\n"), body...)) {
				t.Fatalf("queued %q\nfrom content %q", m, content)
			}
		}
	})
}
