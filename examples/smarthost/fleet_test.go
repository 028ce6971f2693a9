package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/relay/smtptest"
)

// natsServer starts a NATS server with JetStream in the test process, on
// 127.0.0.1, its store in a temporary directory, and returns its URL.
func natsServer(t *testing.T) string {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		t.Fatal("the NATS server did not start")
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s.ClientURL()
}

// fleetSession opens a session with the relay d, whose self-signed
// certificate is under dir, STARTTLS verified, and AUTH PLAIN with key;
// it returns the client, or the reply to AUTH.
func fleetSession(t *testing.T, d *daemon, dir, key string) (*smtp.Client, error) {
	t.Helper()
	return dialKey(t, d.addr, filepath.Join(dir, "smarthost-data", "tls-cert.pem"), key)
}

// smtpCode returns the code and enhanced code of an SMTP reply error.
func smtpCode(err error) (int, smtp.EnhancedCode) {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.Code, se.EnhancedCode
	}
	return 0, smtp.EnhancedCode{}
}

// TestFleet: two relay processes with -queue on one NATS server: a key
// made by "apikey create -queue" authenticates on both, and a message
// submitted to the second is delivered; a foreign sender domain is
// refused; a suppression added by "suppression add -queue" refuses the
// recipient on both; "apikey revoke -queue" makes both refuse the key.
// No relay prints a first key: the fleet's keys are made by the command.
func TestFleet(t *testing.T) {
	t.Parallel()
	url := natsServer(t)
	sink := newSink(t, &smtptest.Options{TLS: smtptest.NoTLS})
	args := []string{"-listen", "127.0.0.1:0", "-hostname", "relay.test", "-queue", url, "-upstream", sink.Addr, "-upstream-tls", "none"}
	dirA, dirB := t.TempDir(), t.TempDir()
	a := startDaemon(t, dirA, nil, args...)
	b := startDaemon(t, dirB, nil, args...)
	for _, d := range []*daemon{a, b} {
		if out := d.stdout.String(); out != "" {
			t.Errorf("a relay of the fleet printed %q", out)
		}
	}

	// Usage errors.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"apikey", "list", "-queue", url, "-keys", "k.json"}, "-keys with -queue"},
		{[]string{"apikey", "list", "-queue", "http://127.0.0.1:1"}, "-queue"},
		{[]string{"apikey", "list", "-nats-creds", "x.creds"}, "-nats-creds needs -queue"},
		{[]string{"suppression", "list", "-queue", url, "-nats-creds", filepath.Join(dirA, "none.creds")}, "-nats-creds"},
		{[]string{"apikey", "list", "-queue", url, "-nats-replicas", "7"}, "-nats-replicas 7: want 1 to 5"},
		{[]string{"-queue", "nats://127.0.0.1:1", "-nats-tls-cert", "c.pem"}, "-nats-tls-cert and -nats-tls-key go together"},
		{[]string{"-queue", url, "-keys", "k.json"}, "-keys with -queue: the fleet's keys are in NATS"},
	} {
		if code, _, errOut := runMain(t, nil, tc.args...); code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", tc.args, code, errOut, tc.want)
		}
	}

	code, out, errOut := runMain(t, nil, "apikey", "create", "-queue", url, "-name", "shop", "-domains", "shop.example")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	key := lines[len(lines)-1]
	if code != 0 || !strings.HasPrefix(key, relay.KeyPrefix) {
		t.Fatalf("apikey create -queue: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, _ = runMain(t, nil, "apikey", "list", "-queue", url)
	if code != 0 || !strings.HasPrefix(out, "shop\t"+key[4:20]+"\t") || strings.Contains(out, key[21:]) {
		t.Errorf("apikey list -queue: exit %d, stdout %q", code, out)
	}

	// The key works on both relays (the change reaches a running relay
	// through its watcher: poll).
	var c *smtp.Client
	waitFor(t, 20*time.Second, "the new key taken by the second relay", func() bool {
		var err error
		c, err = fleetSession(t, b, dirB, key)
		return err == nil
	})
	msg := "From: <orders@shop.example>\r\nTo: <bob@example.org>\r\nMessage-ID: <fleet1@shop.example>\r\nSubject: hi\r\nDate: Thu, 03 Dec 2026 10:00:00 +0000\r\n\r\nHello.\r\n"
	if err := c.SendMail("orders@shop.example", []string{"bob@example.org"}, strings.NewReader(msg)); err != nil {
		t.Fatalf("sending through the second relay: %v", err)
	}
	c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if msgs, err := sink.WaitMessages(ctx, 1); err != nil || !strings.Contains(string(msgs[0].Data), "<fleet1@shop.example>") {
		t.Fatalf("delivered: %d messages, %v", len(msgs), err)
	}
	// The message went through the fleet's queue on JetStream, not a
	// spool of the relay's.
	for _, dir := range []string{dirA, dirB} {
		if _, err := os.Stat(filepath.Join(dir, "smarthost-data", "spool")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a relay with -queue made a spool: %v", err)
		}
	}
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := js.Stream(ctx, "RELAY_QUEUE"); err != nil || st.CachedInfo().State.LastSeq < 1 {
		t.Errorf("the fleet's queue stream: %v, %v", st, err)
	}
	ca, err := fleetSession(t, a, dirA, key)
	if err != nil {
		t.Fatalf("AUTH on the first relay: %v", err)
	}
	if err := ca.Mail("someone@other.example", nil); err == nil {
		t.Error("MAIL FROM a domain that is not the key's: taken")
	}
	ca.Close()

	// A suppression made by the command refuses the recipient on both.
	if code, _, errOut := runMain(t, nil, "suppression", "add", "-queue", url, "-account", "shop", "-reason", "asked to stop", "carol@example.org"); code != 0 {
		t.Fatalf("suppression add -queue: exit %d, %s", code, errOut)
	}
	for _, r := range []struct {
		d   *daemon
		dir string
	}{{a, dirA}, {b, dirB}} {
		waitFor(t, 20*time.Second, "the suppression refused at RCPT", func() bool {
			c, err := fleetSession(t, r.d, r.dir, key)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.Mail("orders@shop.example", nil); err != nil {
				t.Fatal(err)
			}
			code, enh := smtpCode(c.Rcpt("carol@example.org", nil))
			return code == 550 && enh == smtp.EnhancedCode{5, 1, 1}
		})
	}
	if code, out, _ := runMain(t, nil, "suppression", "list", "-queue", url); code != 0 || !strings.HasPrefix(out, "shop\tcarol@example.org\t") {
		t.Errorf("suppression list -queue: exit %d, stdout %q", code, out)
	}

	// Revoked through the command: refused on both.
	if code, out, _ := runMain(t, nil, "apikey", "revoke", "-queue", url, "shop"); code != 0 || out != "revoked shop\n" {
		t.Fatalf("apikey revoke -queue: exit %d, stdout %q", code, out)
	}
	for _, r := range []struct {
		d   *daemon
		dir string
	}{{a, dirA}, {b, dirB}} {
		waitFor(t, 20*time.Second, "the revoked key refused", func() bool {
			c, err := fleetSession(t, r.d, r.dir, key)
			if c != nil {
				c.Close()
			}
			code, enh := smtpCode(err)
			return code == 535 && enh == smtp.EnhancedCode{5, 7, 8}
		})
	}
	for _, d := range []*daemon{a, b} {
		if code := d.stop(syscall.SIGTERM); code != 0 {
			t.Errorf("exit %d after SIGTERM\n%s", code, d.stderr)
		}
		if strings.Contains(d.stderr.String(), key[21:]) {
			t.Error("the relay logged the key's secret")
		}
	}
}

// TestFleetConfig: the NATS settings of the configuration file, their
// files taken from its directory; the flags override them; a NATS file
// setting without -queue is a usage error.
func TestFleetConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "relay.creds"), []byte("creds"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "smarthost.yaml")
	yaml := "queue: nats://n1.internal:4222,nats://n2.internal\nnats-creds: relay.creds\nnats-replicas: 3\nhostname: relay.test\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	c := checked(t, nil, "-config", cfg)
	if c.Queue != "nats://n1.internal:4222,nats://n2.internal" || c.NATSCreds != filepath.Join(dir, "relay.creds") || c.NATSReplicas != 3 {
		t.Errorf("-check: queue %q, nats-creds %q, nats-replicas %d", c.Queue, c.NATSCreds, c.NATSReplicas)
	}
	if c := checked(t, nil, "-config", cfg, "-nats-replicas", "1"); c.NATSReplicas != 1 {
		t.Errorf("-nats-replicas 1 over the file's 3: %d", c.NATSReplicas)
	}
	code, _, errOut := runMain(t, nil, "-check", "-hostname", "relay.test", "-config", cfg, "-nats-creds", filepath.Join(dir, "missing.creds"))
	if code != 2 || !strings.Contains(errOut, "-nats-creds") {
		t.Errorf("a credentials file that does not exist: exit %d, stderr %q", code, errOut)
	}
	code, _, errOut = runMain(t, nil, "-check", "-hostname", "relay.test", "-nats-creds", filepath.Join(dir, "relay.creds"))
	if code != 2 || !strings.Contains(errOut, "-nats-creds needs -queue") {
		t.Errorf("-nats-creds without -queue: exit %d, stderr %q", code, errOut)
	}
}
