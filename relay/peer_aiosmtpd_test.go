package relay_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smarthost-go/smarthost/internal/peertest"
	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/relay/sasl"
)

// aiosmtpd is Python's aiosmtpd run by testdata/aiosmtpd_server.py.
type aiosmtpd struct {
	addr   string
	roots  *x509.CertPool
	events chan aioEvent
	stderr *syncBuffer
}

// aioEvent is one line of the script: an AUTH or a message received.
type aioEvent struct {
	Event       string   `json:"event"`
	Port        int      `json:"port"`
	Mechanism   string   `json:"mechanism"`
	Login       string   `json:"login"`
	Success     bool     `json:"success"`
	TLS         string   `json:"tls"`
	MailFrom    string   `json:"mail_from"`
	MailOptions []string `json:"mail_options"`
	RcptTos     []string `json:"rcpt_tos"`
	Data        []byte   `json:"data"`
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// startAiosmtpd runs aiosmtpd on 127.0.0.1 in mode "starttls" or
// "implicit", taking AUTH from user with password only, until the test
// ends. It skips t when python3-aiosmtpd is not installed.
func startAiosmtpd(t *testing.T, mode, user, password string) *aiosmtpd {
	t.Helper()
	python := peertest.Python(t, "aiosmtpd")
	certFile, keyFile, roots := peerCert(t, t.TempDir())
	cmd := exec.Command(python, "testdata/aiosmtpd_server.py", mode, certFile, keyFile, user, password)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &aiosmtpd{roots: roots, events: make(chan aioEvent, 100), stderr: &syncBuffer{}}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(s.events)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var e aioEvent
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				e = aioEvent{Event: fmt.Sprintf("not JSON: %q", sc.Text())}
			}
			s.events <- e
		}
		io.Copy(io.Discard, stdout)
	}()
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		stdin.Close() // the script stops at the end of its input
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	e := s.next(t)
	if e.Event != "ready" || e.Port == 0 {
		t.Fatalf("aiosmtpd started with %+v", e)
	}
	s.addr = fmt.Sprintf("127.0.0.1:%d", e.Port)
	return s
}

// next returns the next event of the script, failing t if none comes
// within a deadline far above what the script needs.
func (s *aiosmtpd) next(t *testing.T) aioEvent {
	t.Helper()
	select {
	case e, ok := <-s.events:
		if !ok {
			t.Fatalf("aiosmtpd ended:\n%s", s.stderr.String())
		}
		return e
	case <-time.After(30 * time.Second):
		t.Fatalf("aiosmtpd printed nothing in 30s:\n%s", s.stderr.String())
	}
	return aioEvent{}
}

// pythonTLS is the name Python's ssl gives the TLS version v.
func pythonTLS(v uint16) string { return strings.Replace(tls.VersionName(v), "TLS ", "TLSv", 1) }

// Our client submits to aiosmtpd, an SMTP server written independently of
// ours and of go-smtp, with AUTH over STARTTLS and over implicit TLS (RFC
// 8314): aiosmtpd receives the envelope and the content as sent, knows the
// user, and refuses a wrong password with 535 5.7.8 (RFC 4954 §6). With
// STARTTLS, nothing but EHLO and STARTTLS goes in plaintext (RFC 3207).
func TestPeerAiosmtpd(t *testing.T) {
	t.Parallel()
	const user, key = "apikey", "shk_peer_test_key" // the API-key convention of ClientOptions.Credentials
	for _, mode := range []relay.TLSMode{relay.StartTLS, relay.ImplicitTLS} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			s := startAiosmtpd(t, string(mode), user, key)
			client := func(password, mech string) (*relay.Client, *wire) {
				w := &wire{record: true}
				return newClient(t, s.addr, &relay.ClientOptions{
					TLS:         mode,
					RootCAs:     s.roots,
					Credentials: &sasl.Credentials{Username: user, Password: password},
					Mechanism:   mech,
					Dial:        w.dial,
				}), w
			}
			plain := "" // what goes before TLS
			if mode == relay.StartTLS {
				plain = "EHLO [127.0.0.1]\r\nSTARTTLS\r\n"
			}

			// A wrong password: aiosmtpd refuses it, and the Send fails
			// with its reply, 535 5.7.8 (RFC 4954 §6). aiosmtpd does not
			// offer ENHANCEDSTATUSCODES, so "5.7.8" is text (RFC 2034
			// §3), as are the codes of every reply below.
			c, w := client("wrong-"+key, "")
			_, err := c.Send(ctx(t), envelope("alice@example.com", "bob@example.org"), relay.Bytes(peerMessage))
			if r := replyOf(err); r == nil || *r != (relay.Reply{Code: 535, Message: "5.7.8 Authentication credentials invalid"}) {
				t.Fatalf("Send with a wrong password: %v, want the reply 535 5.7.8", err)
			}
			if e := s.next(t); e.Event != "auth" || e.Mechanism != sasl.Plain || e.Login != user || e.Success || e.TLS == "" {
				t.Errorf("aiosmtpd saw %+v, want a failed AUTH PLAIN of %s over TLS", e, user)
			}
			checkNoPlainCredentials(t, w.bytes(), plain, user, "wrong-"+key)

			// The right one, the mechanism chosen: PLAIN, the stronger of
			// the two aiosmtpd offers (PLAIN, LOGIN). One recipient is
			// refused; the others get the message.
			c, w = client(key, "")
			env := envelope("alice@example.com", "bob@example.org", "refused@example.org", "carol@example.org")
			rec := send(t, c, env, relay.Bytes(peerMessage))
			var got []string
			for _, r := range rec.Rcpts {
				got = append(got, fmt.Sprintf("%s %d %q %q", r.Addr, r.Reply.Code, r.Reply.Enhanced, r.Reply.Message))
			}
			want := []string{
				`bob@example.org 250 "" "2.0.0 OK: queued"`,
				`refused@example.org 550 "" "5.1.1 No such user here"`,
				`carol@example.org 250 "" "2.0.0 OK: queued"`,
			}
			if !slices.Equal(got, want) {
				t.Errorf("recipients:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if rec.TLS == nil || len(rec.TLS.VerifiedChains) == 0 {
				t.Fatalf("Receipt.TLS = %+v, want a verified TLS connection", rec.TLS)
			}
			if e := s.next(t); e.Event != "auth" || e.Mechanism != sasl.Plain || e.Login != user || !e.Success || e.TLS != pythonTLS(rec.TLS.Version) {
				t.Errorf("aiosmtpd saw %+v, want AUTH PLAIN of %s over %s", e, user, pythonTLS(rec.TLS.Version))
			}
			e := s.next(t)
			if e.Event != "message" || e.MailFrom != "alice@example.com" || !slices.Equal(e.RcptTos, []string{"bob@example.org", "carol@example.org"}) ||
				e.Login != user || e.TLS != pythonTLS(rec.TLS.Version) {
				t.Errorf("aiosmtpd received %+v", e)
			}
			if string(e.Data) != peerMessageWire {
				t.Errorf("aiosmtpd received the content\n%q\nwant\n%q", e.Data, peerMessageWire)
			}
			checkNoPlainCredentials(t, w.bytes(), plain, user, key)

			// LOGIN, with aiosmtpd's own prompts ("User Name\x00",
			// "Password\x00"), and an envelope with SMTPUTF8 and
			// 8BITMIME (RFC 6531 §3.4, RFC 6152 §2).
			c, w = client(key, sasl.Login)
			env = &relay.Envelope{From: "alice@example.com", To: relay.To("bob@example.org"), SMTPUTF8: true, Body: relay.BodyEightBit}
			utf8Message := "From: alice@example.com\r\nSubject: Grüße\r\n\r\nHéllo.\r\n"
			rec = send(t, c, env, relay.Bytes(utf8Message))
			if acc := rec.Accepted(); !slices.Equal(acc, []string{"bob@example.org"}) {
				t.Errorf("accepted %v", acc)
			}
			if e := s.next(t); e.Event != "auth" || e.Mechanism != sasl.Login || e.Login != user || !e.Success {
				t.Errorf("aiosmtpd saw %+v, want AUTH LOGIN of %s", e, user)
			}
			e = s.next(t)
			slices.Sort(e.MailOptions)
			if e.Event != "message" || !slices.Equal(e.MailOptions, []string{"BODY=8BITMIME", "SIZE=" + fmt.Sprint(len(utf8Message)), "SMTPUTF8"}) ||
				string(e.Data) != utf8Message || e.Login != user {
				t.Errorf("aiosmtpd received %+v with the content %q", e, e.Data)
			}
			checkNoPlainCredentials(t, w.bytes(), plain, user, key)
		})
	}
}
