package smtptest_test

import (
	"io"
	"net"
	"testing"

	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/relay/smtptest"
)

// FuzzSession sends arbitrary client bytes, then a half-close, to a
// server: the fixture's reader of commands, DATA and BDAT content and
// SASL responses must not panic, and must end the session at the end of
// the input rather than wait for more.
func FuzzSession(f *testing.F) {
	f.Add("EHLO x\r\nMAIL FROM:<a@example.com> BODY=8BITMIME SIZE=5\r\nRCPT TO:<b@example.org> NOTIFY=FAILURE ORCPT=rfc822;b@example.org\r\nDATA\r\n..x\r\n.\r\nQUIT\r\n")
	f.Add("EHLO x\r\nMAIL FROM:<a@example.com> BODY=BINARYMIME\r\nRCPT TO:<b@example.org>\r\nBDAT 3\r\nabcBDAT 0 LAST\r\nRSET\r\n")
	f.Add("EHLO x\r\nAUTH PLAIN AHUAcA==\r\nAUTH LOGIN\r\ndQ==\r\ncA==\r\nAUTH CRAM-MD5\r\n*\r\n")
	f.Add("EHLO x\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<refuse@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\na\n.\r\nb\r\r\n.\r\n")
	f.Add("HELO x\r\nBDAT 99999999999\r\nBDAT 2 LAST junk\r\nSTARTTLS\r\nNOOP\r\n")
	f.Add("EHLO x\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n" + string(make([]byte, 5000)) + "\r\n.\r\n")
	s, err := smtptest.NewServer(&smtptest.Options{
		TLS:               smtptest.NoTLS,
		Users:             map[string]string{"u": "p"},
		AllowInsecureAuth: true,
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	s.Fail(smtptest.Fault{On: smtptest.RCPT, Rcpt: "refuse@example.org", Reply: relay.Reply{Code: 550, Message: "No"}})
	f.Fuzz(func(t *testing.T, input string) {
		c, err := net.Dial("tcp", s.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		go func() {
			c.Write([]byte(input))
			c.(*net.TCPConn).CloseWrite()
		}()
		io.Copy(io.Discard, c) // ends when the server ends the session
	})
}
