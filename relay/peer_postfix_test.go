package relay_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/smtp"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/smarthost-go/smarthost/internal/peertest"
	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/relay/sasl"
)

// postfix is a Postfix instance run by a test as a smart host: it takes
// mail from its one SASL user only, over TLS only, for any domain, and
// keeps every message on hold in its queue, where postcat reads it.
// Nothing leaves it.
type postfix struct {
	bin, postcat string
	conf         string // its config_directory
	maillog      string
	roots        *x509.CertPool
	// submission is the address of an smtpd like that of port 587:
	// STARTTLS required (smtpd_tls_security_level=encrypt, RFC 3207), then
	// AUTH (smtpd_tls_auth_only); it offers CHUNKING, so the client sends
	// with BDAT.
	submission string
	// submissions is an smtpd like that of port 465: implicit TLS
	// (smtpd_tls_wrappermode, RFC 8314 §3), without CHUNKING, so the
	// client sends with DATA.
	submissions string
}

// postfixRealm is the Cyrus SASL realm of the user, whose identity in
// Postfix is then "user@postfixRealm".
const postfixRealm = "example.net"

// postfixMain is main.cf; %[1]s is the test's directory, %[2]s the
// postfix user. Relaying is for SASL users only; every message goes on
// hold (an end-of-data restriction, after DATA and BDAT LAST alike), so
// no delivery is tried; the errors are not slowed down
// (smtpd_error_sleep_time is 1s by default); the log goes to a file.
const postfixMain = `compatibility_level = 3.6
queue_directory = %[1]s/queue
data_directory = %[1]s/data
mail_owner = %[2]s
myhostname = relay.example.net
mydomain = example.net
mydestination =
relay_domains =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.1/32
maillog_file = %[1]s/maillog
maillog_file_prefixes = %[1]s
smtpd_error_sleep_time = 0

smtpd_tls_cert_file = %[1]s/cert.pem
smtpd_tls_key_file = %[1]s/key.pem
smtpd_tls_security_level = encrypt
smtpd_tls_auth_only = yes

smtpd_sasl_auth_enable = yes
smtpd_sasl_type = cyrus
smtpd_sasl_path = smtpd
cyrus_sasl_config_path = %[1]s/conf/sasl
smtpd_sasl_local_domain = ` + postfixRealm + `
smtpd_sasl_authenticated_header = yes

smtpd_relay_restrictions = permit_sasl_authenticated, reject
smtpd_end_of_data_restrictions = check_client_access static:HOLD
`

// postfixMaster is master.cf, without chroot; %[1]d and %[2]d are the
// ports of the submission and submissions smtpds.
const postfixMaster = `127.0.0.1:%[1]d inet n - n - - smtpd
127.0.0.1:%[2]d inet n - n - - smtpd -o smtpd_tls_wrappermode=yes -o smtpd_discard_ehlo_keywords=chunking
cleanup   unix  n - n -    0 cleanup
qmgr      unix  n - n 300  1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n -    - trivial-rewrite
bounce    unix  - - n -    0 bounce
defer     unix  - - n -    0 bounce
trace     unix  - - n -    0 bounce
verify    unix  - - n -    1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -    - proxymap
error     unix  - - n -    - error
retry     unix  - - n -    - error
discard   unix  - - n -    - discard
anvil     unix  - - n -    1 anvil
scache    unix  - - n -    1 scache
postlog   unix-dgram n - n - 1 postlogd
`

// postfixSASL is the Cyrus SASL configuration of smtpd (smtpd.conf):
// the users in a sasldb, and the mechanisms under test.
const postfixSASL = `pwcheck_method: auxprop
auxprop_plugin: sasldb
sasldb_path: %s
mech_list: PLAIN LOGIN CRAM-MD5 SCRAM-SHA-1 SCRAM-SHA-256
`

// startPostfix runs Postfix with a configuration of its own (postfix -c
// DIR start), with the SASL user name (in realm postfixRealm) and
// password in a Cyrus sasldb made by saslpasswd2, until the test ends.
// It skips t when Postfix or sasl2-bin is not installed, or when the test
// does not run as root, which Postfix needs.
func startPostfix(t *testing.T, name, password string) *postfix {
	t.Helper()
	p := &postfix{bin: peertest.Program(t, "postfix"), postcat: peertest.Program(t, "postcat")}
	saslpasswd2 := peertest.Program(t, "saslpasswd2")
	if os.Geteuid() != 0 {
		t.Skip("peer postfix needs root: its master runs as root and its daemons as the postfix user; run the test as root")
	}
	owner, err := user.Lookup("postfix") // made by the Debian package
	if err != nil {
		t.Fatalf("postfix is installed without its user: %v", err)
	}
	uid, _ := strconv.Atoi(owner.Uid)

	// Not t.TempDir: its parents are closed to the postfix user, which
	// must reach the sasldb.
	dir, err := os.MkdirTemp("", "relay-postfix-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p.conf, p.maillog = filepath.Join(dir, "conf"), filepath.Join(dir, "maillog")
	// Debian's Postfix reads smtpd.conf from config_directory/sasl (it
	// did not from a cyrus_sasl_config_path elsewhere); upstream's reads
	// cyrus_sasl_config_path, which names the same directory. The sasldb
	// is outside config_directory, which "postfix check" wants all root's.
	saslConf := filepath.Join(p.conf, "sasl")
	for _, d := range []string{dir, p.conf, saslConf, filepath.Join(dir, "queue")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	_, _, p.roots = peerCert(t, dir)
	sasldb := filepath.Join(dir, "sasldb2")
	writeFile(t, filepath.Join(saslConf, "smtpd.conf"), fmt.Sprintf(postfixSASL, sasldb))
	cmd := exec.Command(saslpasswd2, "-f", sasldb, "-c", "-p", "-u", postfixRealm, name)
	cmd.Stdin = strings.NewReader(password)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("saslpasswd2: %v\n%s", err, out)
	}
	if err := os.Chown(sasldb, uid, -1); err != nil { // smtpd reads it as the postfix user
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(p.conf, "main.cf"), fmt.Sprintf(postfixMain, dir, owner.Username))

	t.Cleanup(func() { p.stop(t) })
	var out []byte
	for range 3 { // another program may take a port first
		ports := [2]int{freeTCPPort(t), freeTCPPort(t)}
		writeFile(t, filepath.Join(p.conf, "master.cf"), fmt.Sprintf(postfixMaster, ports[0], ports[1]))
		// start runs "postfix check", then the master with -w, which
		// returns once the master has opened its listeners, or failed.
		if out, err = exec.Command(p.bin, "-c", p.conf, "start").CombinedOutput(); err == nil {
			p.submission = fmt.Sprintf("127.0.0.1:%d", ports[0])
			p.submissions = fmt.Sprintf("127.0.0.1:%d", ports[1])
			return p
		}
		if log, _ := os.ReadFile(p.maillog); !bytes.Contains(log, []byte("in use")) {
			break
		}
	}
	t.Fatalf("postfix start: %v\n%s\n%s", err, out, p.log())
	return nil
}

// stop stops Postfix, and waits until its master is gone.
func (p *postfix) stop(t *testing.T) {
	exec.Command(p.bin, "-c", p.conf, "stop").Run()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		// "postfix status" fails when no master holds the lock of its
		// pid file.
		if exec.Command(p.bin, "-c", p.conf, "status").Run() != nil {
			return
		}
	}
	t.Errorf("postfix -c %s is still running 30s after postfix stop", p.conf)
}

// log returns Postfix's log, for a failure's message.
func (p *postfix) log() string {
	b, _ := os.ReadFile(p.maillog)
	return string(b)
}

// mechanisms are the SASL mechanisms Postfix offers after STARTTLS, as
// Go's net/smtp reads its EHLO reply.
func (p *postfix) mechanisms(t *testing.T) []string {
	t.Helper()
	c, err := smtp.Dial(p.submission)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.StartTLS(&tls.Config{ServerName: "127.0.0.1", RootCAs: p.roots}); err != nil {
		t.Fatal(err)
	}
	_, mechs := c.Extension("AUTH")
	c.Quit()
	return strings.Fields(mechs)
}

// queued is a message in Postfix's queue, as postcat shows it.
type queued struct {
	queue        string // "hold", where every message stays
	sender       string // in angle brackets, "<>" for the null sender
	recipients   []string
	saslMethod   string
	saslUsername string
	received     string // the Received header field Postfix added, unfolded
	content      string // the rest, header and body, lines ending in LF
}

// queued reads the message of queue ID id from the queue.
func (p *postfix) queued(t *testing.T, id string) queued {
	t.Helper()
	postcat := func(flags string) string {
		out, err := exec.Command(p.postcat, "-c", p.conf, flags, "-q", id).Output()
		if err != nil {
			t.Fatalf("postcat %s -q %s: %v\n%s", flags, id, err, p.log())
		}
		return string(out)
	}
	var q queued
	for line := range strings.Lines(postcat("-e")) {
		line = strings.TrimSuffix(line, "\n")
		if s, ok := strings.CutPrefix(line, "*** ENVELOPE RECORDS "); ok {
			q.queue, _, _ = strings.Cut(s, "/")
		}
		if k, v, ok := strings.Cut(line, ": "); ok {
			switch k {
			case "sender":
				q.sender = "<" + v + ">"
			case "recipient":
				q.recipients = append(q.recipients, v)
			case "named_attribute":
				if m, ok := strings.CutPrefix(v, "sasl_method="); ok {
					q.saslMethod = m
				} else if u, ok := strings.CutPrefix(v, "sasl_username="); ok {
					q.saslUsername = u
				}
			}
		}
	}
	// -bh: the header and the body, a line per record.
	msg := postcat("-bh")
	received, ok := strings.CutPrefix(msg, "Received: ")
	if !ok {
		t.Fatalf("the message %s does not begin with Postfix's Received:\n%s", id, msg)
	}
	var unfolded []string
	for line := range strings.Lines(received) {
		if len(unfolded) > 0 && line[0] != ' ' && line[0] != '\t' {
			break
		}
		unfolded = append(unfolded, strings.TrimSpace(line))
	}
	q.received = strings.Join(unfolded, " ")
	q.content = msg[len("Received: "):]
	for range unfolded {
		_, q.content, _ = strings.Cut(q.content, "\n")
	}
	return q
}

// queueID is the queue ID in Postfix's reply to the end of the message,
// the same for every recipient: "250 2.0.0 Ok: queued as ID" after DATA,
// and after BDAT LAST "250 2.0.0 Ok: N bytes queued as ID", where N is
// the octets Postfix received in the BDAT chunks, which must be those of
// content, the message as it goes on the wire.
func queueID(t *testing.T, rec *relay.Receipt, bdat bool, content string) string {
	t.Helper()
	want := "Ok: queued as "
	if bdat {
		want = fmt.Sprintf("Ok: %d bytes queued as ", len(content))
	}
	var id string
	for _, r := range rec.Rcpts {
		s, ok := strings.CutPrefix(r.Reply.Message, want)
		if r.Reply.Code != 250 || r.Reply.Enhanced != (relay.EnhancedCode{2, 0, 0}) || !ok || !queueIDRE.MatchString(s) || id != "" && s != id {
			t.Fatalf("%s: reply %d %s %q, want 250 2.0.0 %q and a queue ID, one for all", r.Addr, r.Reply.Code, r.Reply.Enhanced, r.Reply.Message, want)
		}
		id = s
	}
	return id
}

// queueIDRE matches a Postfix queue ID, short (hexadecimal) or long
// (enable_long_queue_ids).
var queueIDRE = regexp.MustCompile(`^[0-9A-Za-z]+$`)

// Our client submits to Postfix with each SASL mechanism that Postfix,
// with Cyrus SASL, offers of PLAIN, LOGIN, CRAM-MD5, SCRAM-SHA-1 and
// SCRAM-SHA-256, over STARTTLS and with BDAT (RFC 3030); and over implicit
// TLS, with DATA, two messages on one connection, with the mechanism the
// client chooses. Postfix takes each message (250 2.0.0 and its queue
// ID), records the mechanism and the user in its queue file, and keeps
// the envelope and the content as sent; it refuses a wrong password with
// 535 5.7.8 (RFC 4954 §6).
func TestPeerPostfix(t *testing.T) {
	t.Parallel()
	const name, password = "apikey", "shk_peer_test_key"
	p := startPostfix(t, name, password)
	offered := p.mechanisms(t)
	client := func(t *testing.T, addr string, mode relay.TLSMode, password, mech string) (*relay.Client, *wire) {
		w := &wire{record: true}
		return newClient(t, addr, &relay.ClientOptions{
			TLS:         mode,
			RootCAs:     p.roots,
			Credentials: &sasl.Credentials{Username: name, Password: password},
			Mechanism:   mech,
			Dial:        w.dial,
		}), w
	}
	// check checks the message of queue ID id against what was sent.
	check := func(t *testing.T, id, mech string, env *relay.Envelope) {
		t.Helper()
		q := p.queued(t, id)
		var to []string
		for _, r := range env.To {
			to = append(to, r.Addr)
		}
		if q.queue != "hold" || q.sender != "<"+env.From+">" || !slices.Equal(q.recipients, to) {
			t.Errorf("queue %s: %s, sender %s, recipients %q; want hold, <%s>, %q", id, q.queue, q.sender, q.recipients, env.From, to)
		}
		if q.saslMethod != mech || q.saslUsername != name+"@"+postfixRealm {
			t.Errorf("queue %s: sasl_method %q, sasl_username %q; want %q, %q", id, q.saslMethod, q.saslUsername, mech, name+"@"+postfixRealm)
		}
		// "ESMTPSA": ESMTP with STARTTLS (or TLS) and AUTH (RFC 3848 §1).
		for _, want := range []string{"(Authenticated sender: " + name + "@" + postfixRealm + ")", "with ESMTPSA id " + id} {
			if !strings.Contains(q.received, want) {
				t.Errorf("queue %s: Received: %s\nwant %q in it", id, q.received, want)
			}
		}
		if want := strings.ReplaceAll(peerMessageWire, "\r\n", "\n"); q.content != want {
			t.Errorf("queue %s: the message is\n%q\nwant\n%q", id, q.content, want)
		}
	}

	for _, mech := range []string{sasl.Plain, sasl.Login, sasl.CRAMMD5, sasl.SCRAMSHA1, sasl.SCRAMSHA256} {
		t.Run(mech, func(t *testing.T) {
			t.Parallel()
			if !slices.Contains(offered, mech) {
				t.Skipf("peer Cyrus SASL %s not found (Postfix offers %q): apt-get install libsasl2-modules", mech, offered)
			}
			env := envelope("alice@example.com", "bob@example.org", "carol@example.org")
			c, w := client(t, p.submission, relay.StartTLS, "wrong-"+password, mech)
			_, err := c.Send(ctx(t), env, relay.Bytes(peerMessage))
			if r := replyOf(err); r == nil || *r != (relay.Reply{Code: 535, Enhanced: relay.EnhancedCode{5, 7, 8}, Message: "Error: authentication failed: authentication failure"}) {
				t.Errorf("Send with a wrong password: %v, want Postfix's 535 5.7.8", err)
			}
			checkNoPlainCredentials(t, w.bytes(), "EHLO [127.0.0.1]\r\nSTARTTLS\r\n", name, "wrong-"+password)

			c, w = client(t, p.submission, relay.StartTLS, password, mech)
			rec := send(t, c, env, relay.Bytes(peerMessage))
			if rec.TLS == nil || len(rec.TLS.VerifiedChains) == 0 {
				t.Errorf("Receipt.TLS = %+v, want a verified TLS connection", rec.TLS)
			}
			check(t, queueID(t, rec, true, peerMessageWire), mech, env)
			checkNoPlainCredentials(t, w.bytes(), "EHLO [127.0.0.1]\r\nSTARTTLS\r\n", name, password)
		})
	}

	t.Run("implicit", func(t *testing.T) {
		t.Parallel()
		// The client's choice, the strongest both sides have.
		const chosen = sasl.SCRAMSHA256
		if !slices.Contains(offered, chosen) {
			t.Skipf("peer Cyrus SASL %s not found (Postfix offers %q): apt-get install libsasl2-modules", chosen, offered)
		}
		c, w := client(t, p.submissions, relay.ImplicitTLS, password, "")
		var ids []string
		for _, env := range []*relay.Envelope{
			envelope("alice@example.com", "bob@example.org"),
			envelope("", "carol@example.org", "dave@example.org"), // the null sender of a bounce
		} {
			rec := send(t, c, env, relay.Bytes(peerMessage))
			id := queueID(t, rec, false, peerMessageWire)
			check(t, id, chosen, env)
			ids = append(ids, id)
		}
		if ids[0] == ids[1] {
			t.Errorf("both messages have the queue ID %s", ids[0])
		}
		w.mu.Lock()
		dials := w.dials
		w.mu.Unlock()
		if dials != 1 {
			t.Errorf("%d connections for two messages, want one, reused", dials)
		}
		checkNoPlainCredentials(t, w.bytes(), "", name, password)
	})
}

// writeFile writes a file of the test, readable by all.
func writeFile(t *testing.T, name, text string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// freeTCPPort returns a port of 127.0.0.1 that was free a moment ago.
func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
