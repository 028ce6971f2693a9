package dnsauth_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smarthost-go/smarthost/dnsauth"
	"github.com/smarthost-go/smarthost/internal/peertest"
)

// named is a BIND 9 server run by a test.
type named struct {
	addr string
	log  string // the file named logs to
}

// startNamed runs BIND's named on 127.0.0.1, on a free port for UDP and
// TCP, as the primary of example.com with the zone text (under an SOA and
// NS), taking updates signed with the test key (RFC 2136, RFC 8945). The
// configuration, the zone, its journal and the log are in a temporary
// directory; named is stopped when the test ends. It skips t when named
// is not installed.
func startNamed(t *testing.T, zone string) *named {
	t.Helper()
	bin := peertest.Program(t, "named")
	var last string
	for range 3 { // another program may take the port first
		n, out, ok := tryNamed(t, bin, zone)
		if ok {
			return n
		}
		last = out
		if !strings.Contains(out, "address in use") {
			break
		}
	}
	t.Fatalf("named did not start:\n%s", last)
	return nil
}

func tryNamed(t *testing.T, bin, zone string) (*named, string, bool) {
	t.Helper()
	dir := t.TempDir()
	port := freePort(t)
	conf := fmt.Sprintf(`options {
	directory %[1]q;
	listen-on port %[2]d { 127.0.0.1; };
	listen-on-v6 { none; };
	pid-file %[3]q;
	session-keyfile %[4]q;
	managed-keys-directory %[1]q;
	recursion no;
	dnssec-validation no;
	notify no;
};
controls { };
key %[5]q {
	algorithm hmac-sha256;
	secret %[6]q;
};
zone "example.com" {
	type primary;
	file %[7]q;
	journal %[8]q;
	allow-update { key %[5]q; };
};
`, dir, port, filepath.Join(dir, "named.pid"), filepath.Join(dir, "session.key"), pushKeyName, pushSecret,
		filepath.Join(dir, "example.com.zone"), filepath.Join(dir, "example.com.zone.jnl"))
	zoneText := "$TTL 300\n" + pushZone + zone + "\n"
	for name, text := range map[string]string{"named.conf": conf, "example.com.zone": zoneText} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	logPath := filepath.Join(dir, "named.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	// -g: foreground, logging to stderr; no -u, so that named, run by
	// root in CI, keeps the user it was started as and can write dir.
	cmd := exec.Command(bin, "-g", "-4", "-n", "1", "-c", filepath.Join(dir, "named.conf"))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	c := &dns.Client{Net: "tcp", Timeout: 500 * time.Millisecond}
	q := new(dns.Msg)
	q.SetQuestion("example.com.", dns.TypeSOA)
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		select {
		case <-exited:
			out, _ := os.ReadFile(logPath)
			return nil, string(out), false
		default:
		}
		if r, _, err := c.Exchange(q, addr); err == nil && r.Rcode == dns.RcodeSuccess && r.Authoritative {
			return &named{addr: addr, log: logPath}, "", true
		}
		time.Sleep(50 * time.Millisecond)
	}
	out, _ := os.ReadFile(logPath)
	return nil, "no answer within 20s\n" + string(out), false
}

// freePort returns a port of 127.0.0.1 free for both UDP and TCP.
func freePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
		pc.Close()
		if err == nil {
			l.Close()
			return port
		}
	}
	t.Fatal("no port free for both UDP and TCP")
	return 0
}

// query asks named for the records of a type at name, authoritative
// answers and referrals alike, in presentation form without owner and TTL.
func (n *named) query(t *testing.T, name string, qtype uint16) []string {
	t.Helper()
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), qtype)
	r, _, err := (&dns.Client{Net: "tcp", Timeout: 2 * time.Second}).Exchange(q, n.addr)
	if err != nil {
		t.Fatalf("query %s: %v", name, err)
	}
	var out []string
	for _, rr := range slices.Concat(r.Answer, r.Ns) {
		if h := rr.Header(); h.Rrtype == qtype && strings.EqualFold(h.Name, dns.Fqdn(name)) {
			if txt, ok := rr.(*dns.TXT); ok {
				out = append(out, strings.Join(txt.Txt, ""))
			} else {
				out = append(out, strings.TrimPrefix(rr.String(), h.String()))
			}
		}
	}
	slices.Sort(out)
	return out
}

func (n *named) updater(t *testing.T, secret string) *dnsauth.Updater {
	t.Helper()
	u, err := dnsauth.NewUpdater(n.addr, "example.com", mustKey(t, secret), nil)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestPushBIND: a plan applied to and revoked from BIND 9 by signed
// dynamic updates, checked by querying named: the delegated mode's
// records, the SPF record replaced beside another TXT record, every change
// skipped the second time; conflicts found before the update and by BIND
// on the update's prerequisites; a wrong key refused; the NS records of
// the subdomain mode, which BIND answers as a referral.
//
// Not parallel: named starting takes the CPU that the timing-sensitive
// tests of the resolver, which run in parallel, count on.
func TestPushBIND(t *testing.T) {
	n := startNamed(t, `
@ TXT "google-site-verification=abc"
@ TXT "v=spf1 mx -all"
`)
	u := n.updater(t, pushSecret)
	ctx := context.Background()
	p := delegated(t, "v=spf1 mx -all")
	check := func(what, name string, qtype uint16, want ...string) {
		t.Helper()
		if got := n.query(t, name, qtype); !slices.Equal(got, want) {
			t.Errorf("%s: %s %s: %q, want %q", what, name, dns.TypeToString[qtype], got, want)
		}
	}

	// A wrong key: BIND answers NOTAUTH with a TSIG error (RFC 8945 §5.3.2).
	res, err := n.updater(t, "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC13cm9uZw==").Apply(ctx, p.Changes())
	if !errors.Is(err, dnsauth.ErrRefused) || !strings.Contains(err.Error(), "BADSIG") {
		t.Fatalf("wrong key: %v", err)
	}
	if got := outcomes(res); got != "not-applied not-applied not-applied not-applied not-applied" {
		t.Errorf("wrong key: %s", got)
	}
	check("wrong key", "em1234.example.com", dns.TypeCNAME)

	res, err = u.Apply(ctx, p.Changes())
	if err != nil {
		t.Fatal(err)
	}
	if got := outcomes(res); got != "applied applied applied applied applied" {
		t.Errorf("apply: %s", got)
	}
	check("apply", "em1234.example.com", dns.TypeCNAME, "u1234.wl.provider.net.")
	check("apply", "s1._domainkey.example.com", dns.TypeCNAME, "s1.domainkey.u1234.wl.provider.net.")
	check("apply", "s2._domainkey.example.com", dns.TypeCNAME, "s2.domainkey.u1234.wl.provider.net.")
	check("apply", "example.com", dns.TypeTXT, "google-site-verification=abc", "v=spf1 mx include:_spf.provider.net -all")
	check("apply", "_dmarc.example.com", dns.TypeTXT, "v=DMARC1; p=none; rua=mailto:dmarc-reports@example.com")
	soa := n.query(t, "example.com", dns.TypeSOA)

	res, err = u.Apply(ctx, p.Changes())
	if err != nil || outcomes(res) != "skipped skipped skipped skipped skipped" {
		t.Errorf("apply again: %s, %v", outcomes(res), err)
	}
	check("apply again", "example.com", dns.TypeSOA, soa...)

	// A plan made before the SPF record changed: a conflict, found
	// before any update is sent.
	res, err = u.Apply(ctx, delegated(t, "v=spf1 a -all").Changes())
	if !errors.Is(err, dnsauth.ErrConflict) || res.Changes[3].Outcome != dnsauth.OutcomeConflict ||
		len(res.Changes[3].Found) != 1 || res.Changes[3].Found[0].Value != "v=spf1 mx include:_spf.provider.net -all" {
		t.Errorf("stale plan: %s, %+v, %v", outcomes(res), res.Changes[3].Found, err)
	}
	check("stale plan", "example.com", dns.TypeSOA, soa...)

	// The SPF record changed by another client between reading and the
	// update: BIND refuses the prerequisites (NXRRSET), nothing changes.
	r := delegated(t, "v=spf1 mx -all").Revoke()
	dnsauth.SetBeforeSend(u, func() {
		m := new(dns.Msg)
		m.SetUpdate("example.com.")
		m.Insert([]dns.RR{mustRR(t, `example.com. 300 IN TXT "v=spf1 include:_spf.provider.net include:other.net -all"`)})
		m.Remove([]dns.RR{mustRR(t, `example.com. 0 IN TXT "v=spf1 mx include:_spf.provider.net -all"`)})
		m.SetTsig(pushKeyName+".", dns.HmacSHA256, 300, time.Now().Unix())
		c := &dns.Client{Net: "tcp", TsigSecret: map[string]string{pushKeyName + ".": pushSecret}}
		if reply, _, err := c.Exchange(m, n.addr); err != nil || reply.Rcode != dns.RcodeSuccess {
			t.Errorf("the other client's update: %v %v", reply, err)
		}
	})
	res, err = u.Apply(ctx, r)
	dnsauth.SetBeforeSend(u, nil)
	if !errors.Is(err, dnsauth.ErrConflict) || outcomes(res) != "not-applied not-applied not-applied conflict" {
		t.Errorf("SPF changed meanwhile: %s, %v", outcomes(res), err)
	}
	check("SPF changed meanwhile", "s1._domainkey.example.com", dns.TypeCNAME, "s1.domainkey.u1234.wl.provider.net.")
	check("SPF changed meanwhile", "example.com", dns.TypeTXT, "google-site-verification=abc", "v=spf1 include:_spf.provider.net include:other.net -all")
	log, _ := os.ReadFile(n.log)
	if !strings.Contains(string(log), "prerequisite not satisfied") {
		t.Errorf("named did not log a failed prerequisite:\n%s", log)
	}

	// Put the SPF record back as the plan left it, and revoke.
	fix := []dnsauth.Change{{Action: dnsauth.Replace, Record: dnsauth.Record{Name: "example.com.", Type: "TXT", TTL: 300, Purpose: dnsauth.PurposeSPF,
		Value: "v=spf1 mx include:_spf.provider.net -all", Replaces: "v=spf1 include:_spf.provider.net include:other.net -all"}}}
	if _, err := u.Apply(ctx, fix); err != nil {
		t.Fatal(err)
	}
	res, err = u.Apply(ctx, r)
	if err != nil || outcomes(res) != "applied applied applied applied" {
		t.Fatalf("revoke: %s, %v", outcomes(res), err)
	}
	check("revoke", "s1._domainkey.example.com", dns.TypeCNAME)
	check("revoke", "s2._domainkey.example.com", dns.TypeCNAME)
	check("revoke", "em1234.example.com", dns.TypeCNAME)
	check("revoke", "example.com", dns.TypeTXT, "google-site-verification=abc", "v=spf1 mx -all")
	check("revoke", "_dmarc.example.com", dns.TypeTXT, "v=DMARC1; p=none; rua=mailto:dmarc-reports@example.com")
	res, err = u.Apply(ctx, r)
	if err != nil || outcomes(res) != "skipped skipped skipped skipped" {
		t.Errorf("revoke again: %s, %v", outcomes(res), err)
	}

	// The subdomain mode: NS records at mail.example.com, a zone cut,
	// which BIND answers with a referral.
	sub := mustPlan(t, &dnsauth.Request{Domain: "example.com", Mode: dnsauth.Subdomain, Subdomain: "mail", Selectors: []string{"s1"},
		Nameservers: []string{"ns1.provider.net", "ns2.provider.net"}, SPFInclude: "_spf.provider.net",
		ExistingSPF: []string{"v=spf1 mx include:_spf.provider.net -all"}, ExistingDMARC: "v=DMARC1; p=none"})
	for _, step := range []struct {
		changes []dnsauth.Change
		want    string
		ns      []string
	}{
		{sub.Changes(), "applied applied", []string{"ns1.provider.net.", "ns2.provider.net."}},
		{sub.Changes(), "skipped skipped", []string{"ns1.provider.net.", "ns2.provider.net."}},
		{sub.Revoke(), "applied applied", nil},
		{sub.Revoke(), "skipped skipped", nil},
	} {
		res, err := u.Apply(ctx, step.changes)
		if err != nil || outcomes(res) != step.want {
			t.Errorf("subdomain: %s, want %s: %v", outcomes(res), step.want, err)
		}
		check("subdomain", "mail.example.com", dns.TypeNS, step.ns...)
	}
}

func mustRR(t *testing.T, s string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return rr
}
