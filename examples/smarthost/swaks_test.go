package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/smarthost-go/smarthost/dkim"
	"github.com/smarthost-go/smarthost/internal/peertest"
	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/relay/smtptest"
	"github.com/smarthost-go/smarthost/srs"
)

// swaksRun runs swaks against the relay at addr with args and returns
// its exit status and transcript.
func swaksRun(t *testing.T, swaks, addr string, args ...string) (int, string) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(swaks, append([]string{"--server", host, "--port", port, "--timeout", "60"}, args...)...)
	out, err := cmd.CombinedOutput()
	if ee := (*exec.ExitError)(nil); err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), string(out)
}

// TestSwaks submits with swaks (the SMTP test tool of many a mail
// administrator) over STARTTLS with AUTH LOGIN and AUTH PLAIN and an API
// key, through the relay as a process, to an smtptest sink over implicit
// TLS verified with -upstream-ca. The first message, from a domain with a
// customer DKIM key and a return path, arrives with both DKIM-Signature
// fields, the customer's first, which dkimpy verifies against the public
// keys, and with the envelope sender bounces+ID@em1234.customer.example;
// the second, from a domain with neither, arrives signed by the provider
// only, with an SRS envelope sender that reverses, with the secret the
// relay made, to the sender swaks gave. Events tell of both. swaks without
// AUTH (no trusted network) is refused at RCPT, with and without TLS, a
// key for a foreign sender domain is refused, and nothing of these is
// queued. SIGTERM then stops the relay with status 0.
func TestSwaks(t *testing.T) {
	t.Parallel()
	swaks := peertest.Program(t, "swaks")
	py := peertest.Python(t, "dkim", "nacl")
	dir := t.TempDir()
	sink := newSink(t, &smtptest.Options{TLS: smtptest.ImplicitTLS})
	ca := writeCA(t, sink, dir)
	customerKey, customer := writeDKIMKey(t, dir, "customer.pem", "ed25519")
	providerKey, provider := writeDKIMKey(t, dir, "provider.pem", "rsa2048")
	events := filepath.Join(dir, "events.jsonl")
	d := startDaemon(t, dir, nil,
		"-listen", "127.0.0.1:0", "-hostname", "relay.provider.example",
		"-dkim", "customer.example:s1:"+customerKey, "-dkim", "provider.example:p1:"+providerKey,
		"-provider-domain", "provider.example",
		"-return-path", "customer.example:em1234.customer.example",
		"-srs-domain", "srs.provider.example",
		"-upstream", sink.Addr, "-upstream-tls", "implicit", "-upstream-ca", ca,
		"-events", events, "-key-domains", "customer.example,other.example")
	key := d.firstKey()

	// Two messages, AUTH LOGIN and AUTH PLAIN over STARTTLS.
	for _, m := range []struct{ mech, from, to, id string }{
		{"LOGIN", "orders@customer.example", "buyer@example.net", "<m1@customer.example>"},
		{"PLAIN", "news@other.example", "reader@example.org", "<m2@other.example>"},
	} {
		code, out := swaksRun(t, swaks, d.addr, "--tls", "--auth", m.mech, "--auth-user", relay.KeyUser, "--auth-password", key,
			"--from", m.from, "--to", m.to, "--header", "Message-Id: "+m.id, "--body", "Your order has shipped.\nThank you.")
		if code != 0 || !strings.Contains(out, "<~  235 ") || !regexp.MustCompile(`<~  250 2\.0\.0 .*queued`).MatchString(out) {
			t.Fatalf("swaks AUTH %s: exit %d\n%s", m.mech, code, out)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	msgs, err := sink.WaitMessages(ctx, 2)
	if err != nil {
		t.Fatalf("the sink has %d messages: %v\nrelay log:\n%s", len(sink.Messages()), err, d.stderr)
	}
	byID := map[string]*smtptest.Message{}
	for _, m := range msgs {
		ids := headerFields(t, m.Data, "Message-ID")
		if len(ids) != 1 {
			t.Fatalf("Message-ID fields %q", ids)
		}
		byID[ids[0]] = m
		if m.TLS == nil {
			t.Errorf("%s went to the upstream without TLS", ids[0])
		}
	}
	m1, m2 := byID["<m1@customer.example>"], byID["<m2@other.example>"]
	if m1 == nil || m2 == nil {
		t.Fatalf("the sink has %v", byID)
	}

	// The return path, and SRS.
	if id, ok := relay.ReturnPathID(m1.Envelope.From); !ok || !strings.HasSuffix(m1.Envelope.From, "@em1234.customer.example") ||
		m1.Envelope.From != "bounces+"+id+"@em1234.customer.example" {
		t.Errorf("message 1: envelope sender %q, want bounces+ID@em1234.customer.example", m1.Envelope.From)
	}
	if !strings.HasPrefix(m2.Envelope.From, "SRS0=") || !strings.HasSuffix(m2.Envelope.From, "@srs.provider.example") {
		t.Errorf("message 2: envelope sender %q, want SRS0=...@srs.provider.example", m2.Envelope.From)
	}
	secrets, err := readSecrets(filepath.Join(dir, "smarthost-data", "srs-secrets"))
	if err != nil {
		t.Fatal(err)
	}
	rw, err := srs.NewRewriter("srs.provider.example", secrets, nil)
	if err != nil {
		t.Fatal(err)
	}
	if orig, err := rw.Reverse(context.Background(), m2.Envelope.From); err != nil || orig != "news@other.example" {
		t.Errorf("message 2: %q reverses to %q, %v; want news@other.example", m2.Envelope.From, orig, err)
	}
	for i, m := range []*smtptest.Message{m1, m2} {
		if len(m.Envelope.To) != 1 || m.Envelope.To[0].Addr != []string{"buyer@example.net", "reader@example.org"}[i] {
			t.Errorf("message %d: recipients %+v", i+1, m.Envelope.To)
		}
	}

	// The signatures: d= and s= in order, then dkimpy.
	wantSigs := [][]string{{"d=customer.example", "s=s1"}, {"d=provider.example", "s=p1"}}
	for i, w := range [][][]string{wantSigs, wantSigs[1:]} {
		sigs := headerFields(t, []*smtptest.Message{m1, m2}[i].Data, "DKIM-Signature")
		if len(sigs) != len(w) {
			t.Errorf("message %d: %d DKIM-Signature fields, want %d", i+1, len(sigs), len(w))
			continue
		}
		for j, tags := range w {
			for _, tag := range tags {
				if !regexp.MustCompile(`(^|;)\s*` + regexp.QuoteMeta(tag) + `\s*(;|$)`).MatchString(sigs[j]) {
					t.Errorf("message %d, signature %d lacks %s: %s", i+1, j+1, tag, sigs[j])
				}
			}
		}
	}
	var zone strings.Builder
	for _, k := range []struct {
		name string
		key  crypto.Signer
	}{{dkim.RecordName("s1", "customer.example"), customer}, {dkim.RecordName("p1", "provider.example"), provider}} {
		txt, err := dkim.KeyRecordText(k.key.Public(), nil)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&zone, "%s %s\n", k.name, txt)
	}
	got := peertest.DkimpyVerify(t, py, zone.String(), m1.Data, m2.Data,
		bytes.Replace(m1.Data, []byte("Thank you."), []byte("Thank you!"), 1))
	if len(got) != 3 || fmt.Sprint(got[0]) != "[true true]" || fmt.Sprint(got[1]) != "[true]" ||
		len(got[2]) != 2 || got[2][0] == true || got[2][1] == true {
		t.Errorf("dkimpy: %v; want [true true], [true], and two failures for the altered body", got)
	}

	// The events: accepted, then delivered, for each.
	var evs []map[string]any
	waitFor(t, time.Minute, "two delivered events", func() bool {
		evs = readEvents(t, events)
		n := 0
		for _, e := range evs {
			if e["event"] == "delivered" {
				n++
			}
		}
		return n == 2
	})
	for _, id := range []string{"<m1@customer.example>", "<m2@other.example>"} {
		var seen []string
		for _, e := range evs {
			if e["message_id"] == id && e["queue_id"] != "" {
				seen = append(seen, e["event"].(string))
			}
		}
		if strings.Join(seen, ",") != "accepted,delivered" {
			t.Errorf("events of %s: %v, want accepted, delivered", id, seen)
		}
	}

	// No open relay: without AUTH, with or without TLS, refused at RCPT;
	// a key for a foreign sender domain refused at MAIL.
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no AUTH", []string{"--from", "orders@customer.example", "--to", "victim@example.net"}, "530 5.7.0"},
		{"no AUTH, TLS", []string{"--tls", "--from", "orders@customer.example", "--to", "victim@example.net"}, "530 5.7.0"},
		{"foreign domain", []string{"--tls", "--auth", "PLAIN", "--auth-user", relay.KeyUser, "--auth-password", key,
			"--from", "ceo@bank.example", "--to", "victim@example.net"}, "550 5.7.1"},
	} {
		code, out := swaksRun(t, swaks, d.addr, tc.args...)
		// swaks marks a reply it takes for an error "<**", or "<~*"
		// under TLS.
		if code == 0 || !regexp.MustCompile(`\n<[*~]\* `+regexp.QuoteMeta(tc.want)+` `).MatchString(out) || strings.Contains(out, "354 ") {
			t.Errorf("%s: exit %d, want a refusal %q:\n%s", tc.name, code, tc.want, out)
		}
	}
	if n := len(spoolEntries(t, filepath.Join(dir, "smarthost-data", "spool"))); n != 0 {
		t.Errorf("%d messages in the spool after the refusals", n)
	}
	if code := d.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0\n%s", code, d.stderr)
	}
	accepted := 0
	for _, e := range readEvents(t, events) {
		if e["event"] == "accepted" {
			accepted++
		}
	}
	if n := len(sink.Messages()); n != 2 || accepted != 2 {
		t.Errorf("after the refusals: %d messages at the sink, %d accepted events; want 2 and 2", n, accepted)
	}
}

// writeCA writes the sink's certificate as PEM, for -upstream-ca.
func writeCA(t *testing.T, s *smtptest.Server, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "upstream-ca.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeDKIMKey makes a key of kind and writes it to dir/name as PEM.
func writeDKIMKey(t *testing.T, dir, name, kind string) (string, crypto.Signer) {
	t.Helper()
	key, err := dkim.GenerateKey(kind, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := dkim.MarshalPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p, key
}

// readEvents reads the JSON lines of an events file.
func readEvents(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e map[string]any
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("events line %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}
