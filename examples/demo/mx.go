package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/textproto"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/smarthost-go/smarthost/dkim"
	"github.com/smarthost-go/smarthost/dmarc"
	"github.com/smarthost-go/smarthost/msgauth"
	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/spf"
)

// goneRcpt is the recipient whose mailbox no longer exists: the MX accepts
// mail for it, as MXs in front of a mail store do, and bounces it
// afterwards.
const goneRcpt = "gone@" + receiverDomain

// mx is the receiving MX of example.net: a go-smtp server that checks each
// message as a large mailbox provider does, SPF for the client's address,
// its HELO and MAIL FROM, every DKIM signature, DMARC, and prepends the
// Authentication-Results header field (RFC 8601) to what it keeps.
type mx struct {
	o     *output
	srv   *smtp.Server
	ln    net.Listener
	spf   *spf.Checker
	dkim  *dkim.Verifier
	dmarc *dmarc.Evaluator

	// dsn sends the MX's bounces, by MX, to the return paths.
	dsn *relay.MXSender
	// ctx is the context of the bounces sent after the session.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	received chan *received
	dsns     chan dsnOutcome
}

// received is a message the MX took, with what it found.
type received struct {
	client   netip.Addr
	helo     string
	mailFrom string
	rcpts    []string
	at       time.Time   // when it was received
	tls      bool        // over TLS
	data     []byte      // with Authentication-Results prepended
	field    string      // the Authentication-Results field prepended
	authres  string      // its value, unfolded
	spf      *spf.Result // MAIL FROM
	spfHELO  *spf.Result
	dkim     dkim.Results
	dmarc    *dmarc.Result
}

func startMX(ctx context.Context, o *output, d *dnsWorld) (*mx, error) {
	m := &mx{o: o, received: make(chan *received, 10), dsns: make(chan dsnOutcome, 10)}
	var err error
	if m.spf, err = spf.NewChecker(d.resolver, nil); err != nil {
		return nil, err
	}
	if m.dkim, err = dkim.NewVerifier(d.resolver, nil); err != nil {
		return nil, err
	}
	if m.dmarc, err = dmarc.NewEvaluator(d.resolver, nil); err != nil {
		return nil, err
	}
	cert, _, err := selfSigned(mxHost)
	if err != nil {
		return nil, err
	}
	if m.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return nil, err
	}
	m.ctx, m.cancel = context.WithCancel(context.WithoutCancel(ctx))
	m.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		ap, err := netip.ParseAddrPort(c.Conn().RemoteAddr().String())
		if err != nil {
			return nil, err
		}
		return &mxSession{m: m, conn: c, client: ap.Addr().Unmap()}, nil
	}))
	m.srv.Domain = mxHost
	m.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	m.srv.EnableDSN = true
	if o.verbose {
		// go-smtp writes both directions, in plaintext after STARTTLS.
		m.srv.Debug = o.lineWriter(mxHost + " |")
	}
	go m.srv.Serve(m.ln)
	o.printf("  %s on %s (standing for port 25): SPF, DKIM, DMARC, Authentication-Results\n", mxHost, m.ln.Addr())
	return m, nil
}

// port is the port the MX listens on, in place of 25.
func (m *mx) port() int { return m.ln.Addr().(*net.TCPAddr).Port }

func (m *mx) close() {
	m.srv.Close()
	m.cancel()
	m.wg.Wait()
	if m.dsn != nil {
		m.dsn.Close()
	}
}

// mxSession is one SMTP session at the MX.
type mxSession struct {
	m        *mx
	conn     *smtp.Conn
	client   netip.Addr
	mailFrom string
	rcpts    []string
}

func (s *mxSession) Reset()        { s.mailFrom, s.rcpts = "", nil }
func (s *mxSession) Logout() error { return nil }

func (s *mxSession) Mail(from string, _ *smtp.MailOptions) error {
	s.mailFrom = from
	return nil
}

func (s *mxSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if !strings.HasSuffix(strings.ToLower(to), "@"+receiverDomain) {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "relay access denied"}
	}
	s.rcpts = append(s.rcpts, to)
	return nil
}

// Data checks the message while it streams in: SPF was decided by the
// connection and the envelope; DKIM hashes the message as it is read;
// DMARC combines both with the From field.
func (s *mxSession) Data(r io.Reader) error {
	ctx := s.m.ctx
	helo := s.conn.Hostname()
	var body bytes.Buffer
	// SPF for the HELO identity and for MAIL FROM (RFC 7208 §2.3, §2.4);
	// the latter is the one DMARC uses and Authentication-Results shows,
	// as large mailbox providers do.
	heloResult := s.m.spf.CheckHELO(ctx, s.client, helo)
	spfResult := s.m.spf.CheckMailFrom(ctx, s.client, s.mailFrom, helo)
	w := s.m.dkim.NewWriter(ctx)
	if _, err := io.Copy(w, io.TeeReader(r, &body)); err != nil {
		return err
	}
	dkimResults, err := w.Results()
	if err != nil {
		// A header block that cannot be read as one.
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "malformed message"}
	}
	dmarcResult := s.m.dmarc.Evaluate(ctx, w.Header(), spfResult, dkimResults)
	_, tlsOn := s.conn.TLSConnectionState()
	field := msgauth.Header(mxHost, spfResult, dkimResults, dmarcResult)
	got := &received{
		client:   s.client,
		helo:     helo,
		mailFrom: s.mailFrom,
		rcpts:    s.rcpts,
		at:       time.Now(),
		tls:      tlsOn,
		data:     append([]byte(field), body.Bytes()...),
		field:    field,
		authres:  msgauth.Format(mxHost, spfResult, dkimResults, dmarcResult),
		spf:      spfResult,
		spfHELO:  heloResult,
		dkim:     dkimResults,
		dmarc:    dmarcResult,
	}
	s.m.received <- got
	for _, rcpt := range s.rcpts {
		if strings.EqualFold(rcpt, goneRcpt) {
			s.m.wg.Go(func() { s.m.sendDSN(got, rcpt) })
		}
	}
	return nil
}

// stored is the message as the mailbox keeps it: the Return-Path of the
// final delivery (RFC 5321 §4.4) and the MX's own Received field above
// what the MX received, so that a header analyzer (examples/authcheck)
// finds the client, its HELO name and the envelope sender in it.
func (r *received) stored() []byte {
	with := "ESMTP"
	if r.tls {
		with = "ESMTPS"
	}
	head := fmt.Sprintf("Return-Path: <%s>\r\nReceived: from %s (%s [%s])\r\n\tby %s with %s\r\n\tfor <%s>; %s\r\n",
		r.mailFrom, r.helo, r.helo, r.client, mxHost, with, r.rcpts[0], r.at.Format(time.RFC1123Z))
	return append([]byte(head), r.data...)
}

// show prints what the MX received, the DKIM signatures abbreviated, and
// checks that it passed everything.
func (r *received) show(o *output, queueID string) error {
	hdr, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(r.data))).ReadMIMEHeader()
	if err != nil {
		return fmt.Errorf("the message the MX received: %w", err)
	}
	o.printf("  %s received it from %s (EHLO %s), queue ID %s at the relay:\n", mxHost, r.client, r.helo, queueID)
	o.printf("    Return-Path: <%s>\n", r.mailFrom)
	for _, sig := range hdr.Values("Dkim-Signature") {
		o.printf("    DKIM-Signature: %s\n", abbreviate(sig))
	}
	for line := range strings.Lines(r.field) {
		o.printf("    %s\n", strings.TrimRight(line, "\r\n"))
	}

	id, isRP := relay.ReturnPathID(r.mailFrom)
	if err := o.check(isRP && r.mailFrom == "bounces+"+id+"@"+returnPathDomain,
		"the envelope sender is the customer's return path, bounces+ID@%s", returnPathDomain); err != nil {
		return err
	}
	if err := o.check(r.spfHELO.Status == msgauth.Pass, "spf=%s for the HELO name %s from %s (%s)", r.spfHELO.Status, r.spfHELO.Domain, r.client, r.spfHELO.Mechanism); err != nil {
		return err
	}
	if err := o.check(r.spf.Status == msgauth.Pass, "spf=%s for MAIL FROM %s from %s (%s)", r.spf.Status, r.spf.Domain, r.client, r.spf.Mechanism); err != nil {
		return err
	}
	var signed []string
	for _, res := range r.dkim {
		if res.Status == msgauth.Pass {
			signed = append(signed, res.Domain)
		}
	}
	if err := o.check(len(r.dkim) == 2 && len(signed) == 2 && signed[0] != signed[1],
		"dkim=pass twice: %s", strings.Join(signed, " and ")); err != nil {
		return err
	}
	return o.check(r.dmarc.Status == msgauth.Pass, "dmarc=%s for %s (SPF aligned: %s, DKIM aligned: %s)",
		r.dmarc.Status, r.dmarc.AuthorDomain, r.dmarc.SPF, r.dmarc.DKIM)
}

var tagRE = regexp.MustCompile(`\b(v|a|d|s|b)=([^;]*)`)

// abbreviate returns the tags of a DKIM-Signature that say whose it is,
// and the start of its signature.
func abbreviate(sig string) string {
	var tags []string
	for _, m := range tagRE.FindAllStringSubmatch(sig, -1) {
		v := strings.Join(strings.Fields(m[2]), "")
		if m[1] == "b" && len(v) > 12 {
			v = v[:12] + "…"
		}
		tags = append(tags, m[1]+"="+v)
	}
	return strings.Join(tags, "; ")
}
