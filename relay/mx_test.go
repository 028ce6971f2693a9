package relay_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/miekg/dns"

	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/relay/smtptest"
)

// mxFixture is a zone and the Senders that stand for its hosts, by
// address; an address without one refuses connections.
type mxFixture struct {
	zone   *dnstest.Zone
	mu     sync.Mutex
	hosts  map[netip.Addr]relay.Sender
	dialed []relay.MXHost
}

func newMXFixture(t *testing.T, zone string) *mxFixture {
	t.Helper()
	z, err := dnstest.ParseZone(zone)
	if err != nil {
		t.Fatal(err)
	}
	return &mxFixture{zone: z, hosts: make(map[netip.Addr]relay.Sender)}
}

// host makes addr a host that delivers to an smtptest server, and returns
// the server.
func (fx *mxFixture) host(t *testing.T, addr string, opts *smtptest.Options) *smtptest.Server {
	t.Helper()
	if opts == nil {
		opts = &smtptest.Options{TLS: smtptest.NoTLS}
	}
	srv := newSMTPServer(t, opts)
	fx.hosts[netip.MustParseAddr(addr)] = smtpSender{addr: srv.Addr}
	return srv
}

func (fx *mxFixture) dial(h relay.MXHost) relay.Sender {
	fx.mu.Lock()
	defer fx.mu.Unlock()
	fx.dialed = append(fx.dialed, h)
	if s := fx.hosts[h.Addr.Addr()]; s != nil {
		return s
	}
	return fail(fmt.Errorf("dial tcp %s: %w", h.Addr, syscall.ECONNREFUSED))
}

// tried returns the hosts dialled since the last call, as "name[addr]".
func (fx *mxFixture) tried() string {
	fx.mu.Lock()
	defer fx.mu.Unlock()
	var out []string
	for _, h := range fx.dialed {
		out = append(out, h.Name+"["+h.Addr.Addr().String()+"]")
	}
	fx.dialed = nil
	return strings.Join(out, " ")
}

func (fx *mxFixture) sender(t *testing.T, opts *relay.MXOptions) *relay.MXSender {
	t.Helper()
	var o relay.MXOptions
	if opts != nil {
		o = *opts
	}
	o.Dial = fx.dial
	m, err := relay.NewMXSender(fx.zone, &o)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func sendTo(m relay.Sender, to ...string) (*relay.Receipt, error) {
	return m.Send(context.Background(), &relay.Envelope{From: "alice@example.com", To: relay.To(to...)}, testMessage)
}

// wantReply checks that err is a *relay.Reply with code and enhanced code.
func wantReply(t *testing.T, err error, code int, enh relay.EnhancedCode) {
	t.Helper()
	var r *relay.Reply
	if !errors.As(err, &r) || r.Code != code || r.Enhanced != enh {
		t.Errorf("error %v, want a %d %s reply", err, code, enh)
	}
}

const mxZone = `
example.org.      MX 20 mx2.example.org.
example.org.      MX 10 mx1.example.org.
example.org.      MX 30 mx3.example.org.
mx1.example.org.  A 192.0.2.1
mx2.example.org.  A 192.0.2.2
mx3.example.org.  A 192.0.2.3
mx3.example.org.  AAAA 2001:db8::3
`

// Hosts are tried in order of preference, each of their addresses, and
// the last error is returned when all fail.
func TestMXSenderPreferenceOrder(t *testing.T) {
	t.Parallel()
	fx := newMXFixture(t, mxZone)
	m := fx.sender(t, nil)
	_, err := sendTo(m, "bob@example.org")
	if !errors.Is(err, syscall.ECONNREFUSED) || !strings.Contains(err.Error(), "mx3.example.org") {
		t.Errorf("error %v, want the last host's", err)
	}
	if got, want := fx.tried(), "mx1.example.org[192.0.2.1] mx2.example.org[192.0.2.2] mx3.example.org[192.0.2.3] mx3.example.org[2001:db8::3]"; got != want {
		t.Errorf("tried %s\nwant  %s", got, want)
	}

	// MaxAttempts bounds the addresses tried.
	m = fx.sender(t, &relay.MXOptions{MaxAttempts: 2})
	sendTo(m, "bob@example.org")
	if got, want := fx.tried(), "mx1.example.org[192.0.2.1] mx2.example.org[192.0.2.2]"; got != want {
		t.Errorf("MaxAttempts 2: tried %s", got)
	}
	// Network chooses the address family.
	m = fx.sender(t, &relay.MXOptions{Network: "ip6"})
	sendTo(m, "bob@example.org")
	if got, want := fx.tried(), "mx3.example.org[2001:db8::3]"; got != want {
		t.Errorf("ip6: tried %s", got)
	}
}

// Hosts of equal preference are tried in random order (RFC 5321 §5.1).
func TestMXSenderEqualPreferenceIsRandom(t *testing.T) {
	t.Parallel()
	fx := newMXFixture(t, `
example.org.  MX 10 a.example.org.
example.org.  MX 10 b.example.org.
example.org.  MX 5 first.example.org.
example.org.  MX 20 last.example.org.
a.example.org.  A 192.0.2.1
b.example.org.  A 192.0.2.2
first.example.org.  A 192.0.2.5
last.example.org.  A 192.0.2.20
`)
	// Rand's integers pick the swaps of a Fisher-Yates shuffle: 0 swaps
	// the two hosts of preference 10, 1 keeps them.
	for _, tc := range []struct {
		rand byte
		want string
	}{
		{0x00, "first.example.org[192.0.2.5] b.example.org[192.0.2.2] a.example.org[192.0.2.1] last.example.org[192.0.2.20]"},
		{0x01, "first.example.org[192.0.2.5] a.example.org[192.0.2.1] b.example.org[192.0.2.2] last.example.org[192.0.2.20]"},
	} {
		sendTo(fx.sender(t, &relay.MXOptions{Rand: constReader(tc.rand)}), "bob@example.org")
		if got := fx.tried(); got != tc.want {
			t.Errorf("rand %#x: tried %s\nwant %s", tc.rand, got, tc.want)
		}
	}
}

// The next host is tried when one refuses the connection or answers 421
// or another 4xx; the message is delivered once.
func TestMXSenderFallsBack(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		fault *smtptest.Fault // on mx1; nil: mx1 refuses connections
	}{
		{"connection refused", nil},
		{"421 at greeting", &smtptest.Fault{On: smtptest.Greeting, Reply: relay.Reply{Code: 421, Enhanced: relay.EnhancedCode{4, 3, 2}, Message: "Busy"}}},
		{"451 to MAIL", &smtptest.Fault{On: smtptest.MAIL, Reply: relay.Reply{Code: 451, Enhanced: relay.EnhancedCode{4, 3, 0}, Message: "Later"}}},
		{"452 at end of data", &smtptest.Fault{On: smtptest.EndOfData, Reply: relay.Reply{Code: 452, Enhanced: relay.EnhancedCode{4, 3, 1}, Message: "Full"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fx := newMXFixture(t, mxZone)
			if tc.fault != nil {
				mx1 := fx.host(t, "192.0.2.1", nil)
				mx1.Fail(*tc.fault)
			}
			mx2 := fx.host(t, "192.0.2.2", nil)
			r, err := sendTo(fx.sender(t, nil), "bob@example.org")
			if err != nil {
				t.Fatal(err)
			}
			if got := fx.tried(); got != "mx1.example.org[192.0.2.1] mx2.example.org[192.0.2.2]" {
				t.Errorf("tried %s", got)
			}
			if r.Host != mx2.Addr || len(r.Accepted()) != 1 {
				t.Errorf("receipt %+v", r)
			}
			if n := mx2.Stats().Messages; n != 1 {
				t.Errorf("mx2 kept %d messages", n)
			}
		})
	}
}

// A 5xx for the transaction ends the domain: no other MX host is tried.
func TestMXSenderPermanentEndsDomain(t *testing.T) {
	t.Parallel()
	fx := newMXFixture(t, mxZone)
	mx1 := fx.host(t, "192.0.2.1", nil)
	mx1.Fail(smtptest.Fault{On: smtptest.MAIL, Reply: relay.Reply{Code: 550, Enhanced: relay.EnhancedCode{5, 7, 1}, Message: "Refused"}})
	fx.host(t, "192.0.2.2", nil)
	_, err := sendTo(fx.sender(t, nil), "bob@example.org")
	wantReply(t, err, 550, relay.EnhancedCode{5, 7, 1})
	if got := fx.tried(); got != "mx1.example.org[192.0.2.1]" {
		t.Errorf("tried %s", got)
	}
}

// A domain without MX records is its own host (RFC 5321 §5.1).
func TestMXSenderImplicitMX(t *testing.T) {
	t.Parallel()
	fx := newMXFixture(t, `
example.net.  A 192.0.2.7
example.net.  TXT "v=spf1 -all"
`)
	srv := fx.host(t, "192.0.2.7", nil)
	r, err := sendTo(fx.sender(t, nil), "bob@EXAMPLE.net")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Accepted()) != 1 || srv.Stats().Messages != 1 {
		t.Errorf("receipt %+v", r)
	}
	fx.mu.Lock()
	h := fx.dialed[0]
	fx.mu.Unlock()
	if !h.Implicit || h.Name != "example.net" || h.Domain != "example.net" || h.Pref != 0 || h.Addr.Port() != 25 {
		t.Errorf("dialled %+v", h)
	}
}

// A null MX (RFC 7505) fails at once with 556 5.1.10, without a
// connection, though the domain has an address.
func TestMXSenderNullMX(t *testing.T) {
	t.Parallel()
	fx := newMXFixture(t, `
nomail.example.  MX 0 .
nomail.example.  A 192.0.2.9
`)
	fx.host(t, "192.0.2.9", nil)
	_, err := sendTo(fx.sender(t, nil), "bob@nomail.example", "carol@nomail.example")
	wantReply(t, err, 556, relay.EnhancedCode{5, 1, 10})
	if got := fx.tried(); got != "" {
		t.Errorf("tried %s", got)
	}
}

// A "." among other MX records (which RFC 7505 §3 forbids) is skipped, and
// the others are used.
func TestMXSenderNullMXAmongOthers(t *testing.T) {
	t.Parallel()
	fx := newMXFixture(t, `
odd.example.  MX 0 .
odd.example.  MX 10 mx.odd.example.
mx.odd.example.  A 192.0.2.10
`)
	fx.host(t, "192.0.2.10", nil)
	if _, err := sendTo(fx.sender(t, nil), "bob@odd.example"); err != nil {
		t.Fatal(err)
	}
}

// A domain with no MX and no address, or that does not exist, fails with
// 550 5.1.2; a DNS failure with 451 4.4.3; MX hosts without addresses with
// 451 4.4.4.
func TestMXSenderDomainFailures(t *testing.T) {
	t.Parallel()
	fx := newMXFixture(t, `
noaddr.example.   TXT "exists, but has no MX and no address"
servfail.example. MX 10 mx.servfail.example.
badmx.example.    MX 10 gone.badmx.example.
private.example.  MX 10 mx.private.example.
mx.private.example. A 10.0.0.25
mx.private.example. AAAA fd00::25
hostfail.example. MX 10 mx.hostfail.example.
`)
	fx.zone.Fail("servfail.example", dns.TypeMX, dnstest.ServFail)
	fx.zone.Fail("mx.hostfail.example", dns.TypeANY, dnstest.Timeout)
	m := fx.sender(t, nil)
	for _, tc := range []struct {
		domain string
		code   int
		enh    relay.EnhancedCode
	}{
		{"noaddr.example", 550, relay.EnhancedCode{5, 1, 2}},
		{"nxdomain.example", 550, relay.EnhancedCode{5, 1, 2}},
		{"servfail.example", 451, relay.EnhancedCode{4, 4, 3}},
		{"badmx.example", 451, relay.EnhancedCode{4, 4, 4}},
		{"private.example", 451, relay.EnhancedCode{4, 4, 4}}, // AllowAddr's default
		{"hostfail.example", 451, relay.EnhancedCode{4, 4, 3}},
	} {
		_, err := sendTo(m, "bob@"+tc.domain)
		wantReply(t, err, tc.code, tc.enh)
	}
	if got := fx.tried(); got != "" {
		t.Errorf("tried %s", got)
	}
}

// Recipients of two domains: one transaction per domain, each to its own
// host, and the results merged in the order of the envelope.
func TestMXSenderTwoDomains(t *testing.T) {
	t.Parallel()
	fx := newMXFixture(t, `
one.example.      MX 10 mx.one.example.
mx.one.example.   A 192.0.2.1
two.example.      MX 10 mx.two.example.
mx.two.example.   A 192.0.2.2
`)
	one := fx.host(t, "192.0.2.1", nil)
	two := fx.host(t, "192.0.2.2", nil)
	two.Fail(smtptest.Fault{On: smtptest.RCPT, Rcpt: "dave@two.example", Reply: relay.Reply{Code: 550, Enhanced: relay.EnhancedCode{5, 1, 1}, Message: "No such user"}})

	r, err := sendTo(fx.sender(t, nil), "alice@one.example", "bob@two.example", "carol@ONE.example", "dave@two.example")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, x := range r.Rcpts {
		got = append(got, fmt.Sprintf("%s %d", x.Addr, x.Reply.Code))
	}
	if want := "[alice@one.example 250 bob@two.example 250 carol@ONE.example 250 dave@two.example 550]"; fmt.Sprint(got) != want {
		t.Errorf("results %v\nwant    %s", got, want)
	}
	if r.Host != one.Addr+", "+two.Addr {
		t.Errorf("Host %q", r.Host)
	}
	if st := one.Stats(); st.Transactions != 1 || st.Messages != 1 {
		t.Errorf("one.example's host: %+v", st)
	}
	m := one.Messages()[0]
	if len(m.Envelope.To) != 2 || m.Envelope.To[0].Addr != "alice@one.example" || m.Envelope.To[1].Addr != "carol@ONE.example" {
		t.Errorf("one.example's host got %+v", m.Envelope.To)
	}
	if st := two.Stats(); st.Transactions != 1 || st.Messages != 1 {
		t.Errorf("two.example's host: %+v", st)
	}
}

// With several domains each recipient gets its domain's outcome, failures
// included, and Send returns a Receipt.
func TestMXSenderMixedOutcomes(t *testing.T) {
	t.Parallel()
	fx := newMXFixture(t, `
ok.example.       MX 10 mx.ok.example.
mx.ok.example.    A 192.0.2.1
nomail.example.   MX 0 .
down.example.     MX 10 mx.down.example.
mx.down.example.  A 192.0.2.66
busy.example.     MX 10 mx.busy.example.
mx.busy.example.  A 192.0.2.42
`)
	fx.host(t, "192.0.2.1", nil)
	busy := fx.host(t, "192.0.2.42", nil)
	busy.Fail(smtptest.Fault{On: smtptest.Greeting, Reply: relay.Reply{Code: 421, Enhanced: relay.EnhancedCode{4, 3, 2}, Message: "Busy"}})
	r, err := sendTo(fx.sender(t, nil),
		"a@ok.example", "b@nomail.example", "c@nxdomain.example", "d@down.example", "no-domain", "f@busy.example", "g@[192.0.2.1]", "h@[IPv6:2001:db8::1]")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, x := range r.Rcpts {
		got = append(got, fmt.Sprintf("%s %d %s", x.Addr, x.Reply.Code, x.Reply.Enhanced))
	}
	want := []string{
		"a@ok.example 250 ",
		"b@nomail.example 556 5.1.10",
		"c@nxdomain.example 550 5.1.2",
		"d@down.example 451 4.4.1",
		"no-domain 553 5.1.3",
		"f@busy.example 421 4.3.2",
		"g@[192.0.2.1] 250 ", // an address literal, to that address
		"h@[IPv6:2001:db8::1] 451 4.4.1",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("results\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !strings.Contains(r.Rcpts[3].Reply.Message, "connection refused") {
		t.Errorf("unreachable host: %q", r.Rcpts[3].Reply.Message)
	}
}

// A recipient refused at RCPT TO keeps its reply when its domain's
// transaction then fails.
func TestMXSenderKeepsRcptReplies(t *testing.T) {
	t.Parallel()
	fx := newMXFixture(t, `
one.example.      MX 10 mx.one.example.
mx.one.example.   A 192.0.2.1
two.example.      MX 10 mx.two.example.
mx.two.example.   A 192.0.2.2
`)
	fx.host(t, "192.0.2.1", nil)
	two := fx.host(t, "192.0.2.2", nil)
	two.Fail(smtptest.Fault{On: smtptest.RCPT, Rcpt: "bob@two.example", Reply: relay.Reply{Code: 550, Enhanced: relay.EnhancedCode{5, 1, 1}, Message: "No such user"}})
	two.Fail(smtptest.Fault{On: smtptest.EndOfData, Reply: relay.Reply{Code: 451, Enhanced: relay.EnhancedCode{4, 3, 0}, Message: "Later"}})
	// The minimal test client gives no Receipt with an error; this one
	// does, as the smart-host client may.
	fx.hosts[netip.MustParseAddr("192.0.2.2")] = relay.SenderFunc(func(ctx context.Context, env *relay.Envelope, msg relay.Message) (*relay.Receipt, error) {
		r, err := smtpSender{addr: two.Addr}.Send(ctx, env, msg)
		if err != nil {
			return &relay.Receipt{Host: two.Addr, Rcpts: []relay.RcptResult{
				{Addr: env.To[0].Addr, Reply: &relay.Reply{Code: 550, Enhanced: relay.EnhancedCode{5, 1, 1}, Message: "No such user"}},
				{Addr: env.To[1].Addr},
			}}, err
		}
		return r, nil
	})
	r, err := sendTo(fx.sender(t, nil), "alice@one.example", "bob@two.example", "carol@two.example")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, x := range r.Rcpts {
		got = append(got, fmt.Sprintf("%s %d", x.Addr, x.Reply.Code))
	}
	if want := "[alice@one.example 250 bob@two.example 550 carol@two.example 451]"; fmt.Sprint(got) != want {
		t.Errorf("results %v\nwant    %s", got, want)
	}
}

// An address literal is delivered to its address, no lookup; one that
// AllowAddr refuses fails permanently.
func TestMXSenderAddressLiteral(t *testing.T) {
	t.Parallel()
	fx := newMXFixture(t, ``)
	srv := fx.host(t, "192.0.2.1", nil)
	if _, err := sendTo(fx.sender(t, nil), "bob@[192.0.2.1]"); err != nil {
		t.Fatal(err)
	}
	if srv.Stats().Messages != 1 {
		t.Error("not delivered")
	}
	if got := fx.tried(); got != "[192.0.2.1][192.0.2.1]" {
		t.Errorf("tried %s", got)
	}
	_, err := sendTo(fx.sender(t, nil), "bob@[127.0.0.1]")
	wantReply(t, err, 550, relay.EnhancedCode{5, 4, 4})
	_, err = sendTo(fx.sender(t, nil), "bob@[IPv6:fe80::1]")
	wantReply(t, err, 550, relay.EnhancedCode{5, 4, 4})
	if got := fx.tried(); got != "" {
		t.Errorf("tried %s", got)
	}
}

// An internationalized domain is looked up by its A-labels (RFC 5890).
func TestMXSenderIDN(t *testing.T) {
	t.Parallel()
	fx := newMXFixture(t, `
xn--bcher-kva.example.     MX 10 mx.xn--bcher-kva.example.
mx.xn--bcher-kva.example.  A 192.0.2.8
`)
	srv := fx.host(t, "192.0.2.8", nil)
	env := &relay.Envelope{From: "alice@example.com", To: relay.To("leser@bücher.example"), SMTPUTF8: true}
	if _, err := fx.sender(t, nil).Send(context.Background(), env, testMessage); err != nil {
		t.Fatal(err)
	}
	fx.mu.Lock()
	h := fx.dialed[0]
	fx.mu.Unlock()
	if h.Domain != "xn--bcher-kva.example" || h.Name != "mx.xn--bcher-kva.example" {
		t.Errorf("dialled %+v", h)
	}
	if got := srv.Messages()[0].Envelope.To[0].Addr; got != "leser@bücher.example" {
		t.Errorf("RCPT TO %q, want the address as given", got)
	}
}

// Over the network, as configured for tests and private networks: the MX
// host's address from the zone, the port overridden, loopback allowed,
// and STARTTLS taken when the host offers it.
func TestMXSenderPortOverride(t *testing.T) {
	t.Parallel()
	srv := newSMTPServer(t, nil) // STARTTLS
	_, portText, _ := net.SplitHostPort(srv.Addr)
	var port int
	fmt.Sscan(portText, &port)
	zone := dnstest.MustParseZone(`
example.org.      MX 10 mx.example.org.
mx.example.org.   A 127.0.0.1
`)
	m, err := relay.NewMXSender(zone, &relay.MXOptions{
		Port:      port,
		AllowAddr: func(netip.Addr) bool { return true },
		Dial: func(h relay.MXHost) relay.Sender {
			tc := srv.TLSConfig()
			return smtpSender{addr: h.Addr.String(), tls: tc}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := sendTo(m, "bob@example.org")
	if err != nil {
		t.Fatal(err)
	}
	if r.Host != srv.Addr {
		t.Errorf("Host %q, want %q", r.Host, srv.Addr)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 || msgs[0].TLS == nil {
		t.Errorf("messages %+v, want one over TLS", msgs)
	}

	// The default AllowAddr refuses loopback: nothing is dialled.
	m, err = relay.NewMXSender(zone, &relay.MXOptions{Port: port, Dial: func(relay.MXHost) relay.Sender {
		t.Error("dialled a loopback address")
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = sendTo(m, "bob@example.org")
	wantReply(t, err, 451, relay.EnhancedCode{4, 4, 4})
}

// An error reading the message ends the domain: no other host could read
// it.
func TestMXSenderMessageError(t *testing.T) {
	t.Parallel()
	fx := newMXFixture(t, mxZone)
	for _, a := range []string{"192.0.2.1", "192.0.2.2"} {
		fx.hosts[netip.MustParseAddr(a)] = accept(a)
	}
	gone := errors.New("spool file gone")
	_, err := fx.sender(t, nil).Send(context.Background(), testEnv, failingMessage{gone})
	if !errors.Is(err, gone) {
		t.Errorf("error %v", err)
	}
	if got := fx.tried(); got != "mx1.example.org[192.0.2.1]" {
		t.Errorf("tried %s", got)
	}
}

// The Logger gets one debug record per failed attempt.
func TestMXSenderLogs(t *testing.T) {
	t.Parallel()
	fx := newMXFixture(t, mxZone)
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	sendTo(fx.sender(t, &relay.MXOptions{Logger: logger, MaxAttempts: 2}), "bob@example.org")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "level=DEBUG") || !strings.Contains(lines[0], "host=mx1.example.org") || !strings.Contains(lines[1], "addr=192.0.2.2:25") {
		t.Errorf("logged:\n%s", buf.String())
	}
}

func TestMXSenderContextEnded(t *testing.T) {
	t.Parallel()
	fx := newMXFixture(t, mxZone)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := fx.sender(t, nil).Send(ctx, &relay.Envelope{To: relay.To("a@example.org", "b@example.net")}, testMessage)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v", err)
	}
	if got := fx.tried(); got != "" {
		t.Errorf("tried %s", got)
	}
}

func TestNewMXSenderErrors(t *testing.T) {
	t.Parallel()
	zone := dnstest.NewZone()
	dial := func(relay.MXHost) relay.Sender { return nil }
	for _, tc := range []struct {
		name string
		r    relay.MXResolver
		opts *relay.MXOptions
		want string
	}{
		{"nil resolver", nil, &relay.MXOptions{Dial: dial}, "resolver"},
		{"credentials", zone, &relay.MXOptions{Client: &relay.ClientOptions{Credentials: alice}}, "Credentials"},
		{"bad client options", zone, &relay.MXOptions{Client: &relay.ClientOptions{TLS: "tls"}}, `TLS mode "tls"`},
		{"bad network", zone, &relay.MXOptions{Dial: dial, Network: "tcp"}, "Network"},
		{"bad port", zone, &relay.MXOptions{Dial: dial, Port: 70000}, "Port"},
		{"negative attempts", zone, &relay.MXOptions{Dial: dial, MaxAttempts: -1}, "MaxAttempts"},
	} {
		_, err := relay.NewMXSender(tc.r, tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one about %s", tc.name, err, tc.want)
		}
	}
	// nil options: the default Dial.
	if m, err := relay.NewMXSender(zone, nil); err != nil {
		t.Errorf("nil options: %v", err)
	} else {
		m.Close()
	}
	// The module's resolvers satisfy MXResolver.
	var _ relay.MXResolver = net.DefaultResolver
}

// Direct delivery: the recipients' domains are looked up in DNS (a
// dnstest zone here), and each domain's best MX host is given to Dial.
// Here Dial returns a Sender that prints what it was given; without Dial,
// an MXSender delivers with a Client for h.Addr in opportunistic TLS.
func ExampleNewMXSender() {
	zone := dnstest.MustParseZone(`
example.org.      MX 10 mx1.example.org.
example.org.      MX 20 mx2.example.org.
mx1.example.org.  A 192.0.2.1
mx2.example.org.  A 192.0.2.2
example.net.      A 192.0.2.3
nomail.example.   MX 0 .
`)
	m, err := relay.NewMXSender(zone, &relay.MXOptions{
		Dial: func(h relay.MXHost) relay.Sender {
			return relay.SenderFunc(func(ctx context.Context, env *relay.Envelope, msg relay.Message) (*relay.Receipt, error) {
				fmt.Printf("%s: %s %s (implicit %v)\n", h.Domain, h.Name, h.Addr, h.Implicit)
				r := &relay.Receipt{Host: h.Addr.String()}
				for _, to := range env.To {
					r.Rcpts = append(r.Rcpts, relay.RcptResult{Addr: to.Addr, Reply: &relay.Reply{Code: 250, Message: "OK"}})
				}
				return r, nil
			})
		},
	})
	if err != nil {
		panic(err)
	}
	env := &relay.Envelope{From: "alice@example.com", To: relay.To("bob@example.org", "carol@example.net", "dave@nomail.example")}
	r, err := m.Send(context.Background(), env, relay.Bytes("Subject: hi\r\n\r\nHi.\r\n"))
	if err != nil {
		panic(err)
	}
	for _, x := range r.Rcpts {
		fmt.Println(x.Addr, x.Reply)
	}
	// Output:
	// example.org: mx1.example.org 192.0.2.1:25 (implicit false)
	// example.net: example.net 192.0.2.3:25 (implicit true)
	// bob@example.org 250 OK
	// carol@example.net 250 OK
	// dave@nomail.example 556 5.1.10 Recipient domain nomail.example has a null MX: it accepts no mail
}

// Without Dial, an MXSender delivers with Clients of this package: to the
// MX host's address on Port (25 by default), in opportunistic TLS with the
// MX host's name for SNI, with the template's EHLO name, reusing the
// connection for the next Send, and closing it with Close.
func TestMXSenderDefaultDial(t *testing.T) {
	t.Parallel()
	srv := newServer(t, nil) // STARTTLS, its certificate for localhost and 127.0.0.1
	plain := newServer(t, &smtptest.Options{TLS: smtptest.NoTLS})
	zone := dnstest.MustParseZone(`
example.org.      MX 10 mx.example.org.
mx.example.org.   A 127.0.0.1
example.net.      MX 10 localhost.
localhost.        A 127.0.0.1
`)
	port := func(addr string) int {
		_, p, _ := net.SplitHostPort(addr)
		var n int
		fmt.Sscan(p, &n)
		return n
	}
	loopback := func(a netip.Addr) bool { return a.IsLoopback() }
	m, err := relay.NewMXSender(zone, &relay.MXOptions{
		Port:      port(srv.Addr),
		AllowAddr: loopback,
		Client:    &relay.ClientOptions{LocalName: "relay.example.com", RootCAs: srv.CertPool()},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	// mx.example.org: TLS, but the certificate is not for that name.
	for range 2 {
		r, err := sendTo(m, "bob@example.org")
		if err != nil {
			t.Fatal(err)
		}
		if r.Host != srv.Addr || len(r.Accepted()) != 1 || r.TLS == nil || len(r.TLS.VerifiedChains) != 0 {
			t.Errorf("Receipt %+v, want bob@ accepted by %s over TLS not verified", r, srv.Addr)
		}
	}
	// localhost: TLS, verified.
	r, err := sendTo(m, "carol@example.net")
	if err != nil {
		t.Fatal(err)
	}
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
		t.Errorf("Receipt.TLS %+v, want verified TLS", r.TLS)
	}
	msgs := srv.Messages()
	if len(msgs) != 3 {
		t.Fatalf("%d messages", len(msgs))
	}
	for i, sni := range []string{"mx.example.org", "mx.example.org", "localhost"} {
		if msgs[i].TLS == nil || msgs[i].TLS.ServerName != sni || msgs[i].Helo != "relay.example.com" {
			t.Errorf("message %d: TLS %v, EHLO %q; want SNI %s and EHLO relay.example.com", i, msgs[i].TLS != nil, msgs[i].Helo, sni)
		}
	}
	// One connection per host name, the first reused.
	if st := srv.Stats(); st.Connections != 2 || st.Commands["QUIT"] != 0 {
		t.Errorf("%d connections, %d QUITs; want 2 and none before Close", st.Connections, st.Commands["QUIT"])
	}
	m.Close()
	if n := srv.Stats().Commands["QUIT"]; n != 2 {
		t.Errorf("%d QUITs after Close, want 2", n)
	}
	if _, err := sendTo(m, "bob@example.org"); !errors.Is(err, relay.ErrClientClosed) {
		t.Errorf("Send after Close: %v", err)
	}

	// A host without STARTTLS gets the message in plaintext.
	m, err = relay.NewMXSender(zone, &relay.MXOptions{Port: port(plain.Addr), AllowAddr: loopback})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if r, err := sendTo(m, "bob@example.org"); err != nil || r.TLS != nil || len(r.Accepted()) != 1 {
		t.Errorf("plaintext host: %+v, %v", r, err)
	}

	// Port 25 by default, through the template's Dial.
	var dialed []string
	var mu sync.Mutex
	m, err = relay.NewMXSender(zone, &relay.MXOptions{AllowAddr: loopback, Client: &relay.ClientOptions{
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			mu.Lock()
			dialed = append(dialed, addr)
			mu.Unlock()
			return (&net.Dialer{}).DialContext(ctx, network, plain.Addr)
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := sendTo(m, "bob@example.org"); err != nil {
		t.Fatal(err)
	}
	if len(dialed) != 1 || dialed[0] != "127.0.0.1:25" {
		t.Errorf("dialed %v, want 127.0.0.1:25", dialed)
	}
}
