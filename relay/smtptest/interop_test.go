package smtptest_test

import (
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smarthost-go/smarthost/internal/peertest"
	"github.com/smarthost-go/smarthost/relay/smtptest"
)

// caFile writes the server's certificate as PEM for a peer to trust.
func caFile(t *testing.T, s *smtptest.Server) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "ca.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

const smtplibScript = `
import smtplib, ssl, sys
host, port, cafile = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile=cafile)
for mech in ("CRAM-MD5", "PLAIN", "LOGIN"):
    for password in ("wrong", "wonderland"):
        s = smtplib.SMTP(host, port, local_hostname="python.example")
        s.starttls(context=ctx)
        s.ehlo("python.example")
        s.user, s.password = "alice", password
        try:
            code, _ = s.auth(mech, getattr(s, "auth_" + mech.lower().replace("-", "_")))
        except smtplib.SMTPAuthenticationError as e:
            code = e.smtp_code
        print(mech, password, code)
        if code == 235:
            s.sendmail("a@example.com", ["b@example.org"], "Subject: %s\r\n\r\nHi.\r\n" % mech)
        s.quit()
`

// Python's smtplib, an independent client, does STARTTLS (verifying the
// certificate for 127.0.0.1) and CRAM-MD5, PLAIN and LOGIN against the
// fixture's relay/sasl servers.
func TestInteropPythonSmtplib(t *testing.T) {
	t.Parallel()
	python := peertest.Python(t)
	s := newServer(t, &smtptest.Options{Users: map[string]string{"alice": "wonderland"}})
	host, port, _ := strings.Cut(s.Addr, ":")
	out, err := exec.Command(python, "-c", smtplibScript, host, port, caFile(t, s)).CombinedOutput()
	if err != nil {
		t.Fatalf("smtplib: %v\n%s", err, out)
	}
	want := "CRAM-MD5 wrong 535\nCRAM-MD5 wonderland 235\nPLAIN wrong 535\nPLAIN wonderland 235\nLOGIN wrong 535\nLOGIN wonderland 235\n"
	if string(out) != want {
		t.Errorf("smtplib printed\n%s\nwant\n%s", out, want)
	}
	msgs := wait(t, s, 3)
	for i, mech := range []string{"CRAM-MD5", "PLAIN", "LOGIN"} {
		m := msgs[i]
		if m.Auth == nil || m.Auth.Mechanism != mech || m.Auth.Username != "alice" || m.TLS == nil || m.Helo != "python.example" {
			t.Errorf("message %d: auth %+v, TLS %v, helo %q", i, m.Auth, m.TLS != nil, m.Helo)
		}
	}
}

// curl authenticates with XOAUTH2 over implicit TLS; a wrong token is
// refused.
func TestInteropCurlXOAuth2(t *testing.T) {
	t.Parallel()
	curl := peertest.Program(t, "curl")
	s := newServer(t, &smtptest.Options{TLS: smtptest.ImplicitTLS, Tokens: map[string]string{"alice": "ya29.token"}})
	ca := caFile(t, s)
	run := func(token string) error {
		cmd := exec.Command(curl, "-sS", "--url", "smtps://"+s.Addr, "--cacert", ca,
			"--mail-from", "a@example.com", "--mail-rcpt", "b@example.org", "--upload-file", "-",
			"--user", "alice:", "--oauth2-bearer", token, "--login-options", "AUTH=XOAUTH2")
		cmd.Stdin = strings.NewReader("Subject: curl\r\n\r\nHi.\r\n")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Logf("curl: %v: %s", err, out)
		}
		return err
	}
	if err := run("wrong"); err == nil {
		t.Error("curl got through with a wrong token")
	}
	if err := run("ya29.token"); err != nil {
		t.Fatal(err)
	}
	m := wait(t, s, 1)[0]
	if m.Auth == nil || *m.Auth != (smtptest.Auth{Mechanism: "XOAUTH2", Username: "alice"}) || string(m.Data) != "Subject: curl\r\n\r\nHi.\r\n" {
		t.Errorf("auth %+v, data %q", m.Auth, m.Data)
	}
}
