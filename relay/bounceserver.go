package relay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/smarthost-go/smarthost/relay/bounce"
	"github.com/smarthost-go/smarthost/srs"
)

// The defaults of BounceServerOptions.
const (
	defaultBounceMaxMessageBytes = 10 << 20
	defaultBounceMaxRecipients   = 10
)

// The BounceServer's replies (RFC 5321 §4.2, RFC 3463).
var (
	errBounceMixed    = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 5, 3}, Message: "Send bounces and forwarded mail in separate messages"}
	errBounceTemp     = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Temporary lookup failure, try again later"}
	errBounceNoHeader = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Error: the message has no header"}
)

// BounceServerOptions are the optional settings of a BounceServer; nil
// means every default, and a zero field its default. For
// MaxMessageBytes, MaxRecipients, MaxConnections, MaxConnectionsPerIP,
// ReadTimeout and WriteTimeout, a negative value means no limit.
type BounceServerOptions struct {
	// Hostname names the server in its greeting (RFC 5321 §4.3.1).
	// Default: os.Hostname.
	Hostname string
	// TLSConfig is offered with STARTTLS (RFC 3207). Default nil: none.
	TLSConfig *tls.Config

	// ReturnPathDomains are the return-path domains of
	// ServerOptions.ReturnPaths (its values, such as
	// "em1234.example.com"): mail to bounces+ID@ one of them is accepted
	// when Tracker knows ID. Default none.
	ReturnPathDomains []string
	// Tracker maps a return-path ID to its message; needed with
	// ReturnPathDomains.
	Tracker Tracker
	// SRS is the Server's rewriter: mail to an address of its domain is
	// accepted when it reverses (the hash verifies and the timestamp is
	// within MaxAge), and is forwarded to the original sender. Default
	// nil: no SRS address is accepted.
	SRS *srs.Rewriter

	// AbuseAddresses are addresses, such as "abuse@provider.example" or
	// "fbl@provider.example", where mailbox providers send their
	// feedback-loop reports (RFC 5965, RFC 6449): a report whose
	// returned message has a tracked return path (its Return-Path field,
	// RFC 5965 §2 item 4) becomes a spamreport event and a suppression,
	// as if it had come to the return path; one about a message not
	// tracked is logged. Anything but a feedback report is refused with
	// 550 5.7.1, so that the sender of a complaint written by hand learns
	// it went nowhere. Default none.
	AbuseAddresses []string

	// Suppressions receives the recipients of hard bounces and spam
	// reports, for the account of the message. Default nil: none.
	Suppressions Suppressions
	// Events receives a bounced event per failed recipient and a
	// spamreport event per recipient reported. Default nil: none.
	Events Events
	// Metrics counts each bounced event as the outcome of its recipient
	// (Metrics.Recipient, EventBounced, with the status of the report and
	// the time since the message was accepted): a bounce that comes back
	// after the delivery is counted as one the Deliverer met. Default
	// nil: none.
	Metrics Metrics
	// Logger receives debug records: connections, each message and what
	// was made of it, the recipients of a report that the message did not
	// have. Default nil: none.
	Logger *slog.Logger

	// MaxMessageBytes is the size limit, advertised with SIZE (RFC 1870);
	// a larger message is refused with 552 5.3.4. A bounce that returns
	// the whole of a large message is not worth more. Default 10 MiB.
	MaxMessageBytes int64
	// MaxRecipients per message; RCPT beyond it gets 452 4.5.3. A bounce
	// has one. Default 10.
	MaxRecipients int
	// MaxConnections and MaxConnectionsPerIP, ReadTimeout and
	// WriteTimeout, MaxLineLength: as in ServerOptions, with the same
	// defaults.
	MaxConnections, MaxConnectionsPerIP int
	ReadTimeout, WriteTimeout           time.Duration
	MaxLineLength                       int

	// Now is the clock of events and suppressions. Default time.Now.
	Now func() time.Time
}

// BounceServer is the return-path receiver: the SMTP server, on port 25,
// of the return-path domains and the SRS domain, where the bounces (RFC
// 3464 DSNs and the common non-standard bounces, parsed by
// relay/bounce.Parse) and feedback reports (RFC 5965) of the messages a
// Server sent come back. It has no AUTH, and accepts mail only for
//
//   - bounces+ID@ one of ReturnPathDomains, ID known to the Tracker: the
//     message is parsed, and each failed recipient of a bounce that the
//     original message had becomes a bounced event (and, when the failure
//     is hard, a suppression for the message's account); a feedback
//     report becomes a spamreport event and a suppression; an auto-reply
//     is only logged. Nothing is queued, and nothing is ever sent back to
//     the report's sender (a bounce goes to the null sender, which is
//     never answered, RFC 5321 §4.5.5);
//   - an address of the SRS rewriter's domain that reverses: the message
//     is not parsed but queued, unchanged but for a Received field, to the
//     original sender, with the null sender, so that a bounce of it is
//     never bounced again.
//
// Any other recipient is refused at RCPT with 550 5.1.1: it is no open
// relay, and it sends no backscatter to forged senders. The reading of the
// client's bytes (strict CRLF), the connection limits and timeouts are the
// Server's.
type BounceServer struct {
	srv     *Server
	domains map[string]bool
	abuse   map[string]bool // lower-case addresses
	tracker Tracker
	srs     *srs.Rewriter
	supp    Suppressions
	events  Events
	metrics Metrics
	log     *slog.Logger
	now     func() time.Time
	maxSize int64
}

// NewBounceServer returns a BounceServer that queues the mail it forwards
// to SRS senders in q. opts may be nil, though a server without
// ReturnPathDomains and SRS refuses everything.
func NewBounceServer(q Queue, opts *BounceServerOptions) (*BounceServer, error) {
	var o BounceServerOptions
	if opts != nil {
		o = *opts
	}
	b := &BounceServer{domains: make(map[string]bool), abuse: make(map[string]bool), tracker: o.Tracker, srs: o.SRS,
		supp: o.Suppressions, events: o.Events, metrics: o.Metrics, log: o.Logger, now: o.Now}
	if b.metrics == nil {
		b.metrics = NopMetrics{}
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	if b.now == nil {
		b.now = time.Now
	}
	for _, d := range o.ReturnPathDomains {
		k := strings.ToLower(strings.TrimSuffix(d, "."))
		if !isDomainName(k) {
			return nil, fmt.Errorf("relay: NewBounceServer: return-path domain %q is not a domain name", d)
		}
		b.domains[k] = true
	}
	for _, a := range o.AbuseAddresses {
		if at := strings.LastIndexByte(a, '@'); at <= 0 || !isDomainName(strings.ToLower(a[at+1:])) {
			return nil, fmt.Errorf("relay: NewBounceServer: abuse address %q is not an address", a)
		}
		b.abuse[strings.ToLower(a)] = true
	}
	if (len(b.domains) > 0 || len(b.abuse) > 0) && b.tracker == nil {
		return nil, errors.New("relay: NewBounceServer: ReturnPathDomains and AbuseAddresses need a Tracker")
	}
	b.maxSize = o.MaxMessageBytes
	if b.maxSize == 0 {
		b.maxSize = defaultBounceMaxMessageBytes
	}
	srv, err := NewServer(q, &ServerOptions{
		Hostname:            o.Hostname,
		TLSConfig:           o.TLSConfig,
		Logger:              b.log,
		MaxMessageBytes:     b.maxSize,
		MaxRecipients:       cmpDefault(o.MaxRecipients, defaultBounceMaxRecipients),
		MaxConnections:      o.MaxConnections,
		MaxConnectionsPerIP: o.MaxConnectionsPerIP,
		ReadTimeout:         o.ReadTimeout,
		WriteTimeout:        o.WriteTimeout,
		MaxLineLength:       o.MaxLineLength,
		Now:                 o.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("relay: NewBounceServer: %w", err)
	}
	if b.maxSize < 0 {
		b.maxSize = 0
	}
	srv.bounce = b
	b.srv = srv
	return b, nil
}

// Serve accepts connections on l and serves them, offering STARTTLS when
// the server has a TLSConfig: port 25. It returns ErrServerClosed after
// Shutdown or Close, or the error of l.Accept.
func (b *BounceServer) Serve(l net.Listener) error { return b.srv.Serve(l) }

// Shutdown stops the server gracefully, as Server.Shutdown does.
func (b *BounceServer) Shutdown(ctx context.Context) error { return b.srv.Shutdown(ctx) }

// Close stops the server at once, as Server.Close does.
func (b *BounceServer) Close() error { return b.srv.Close() }

// bounceRcpt is an accepted recipient: a tracked message's return path,
// or an SRS address and the original sender it reverses to.
type bounceRcpt struct {
	addr  string
	track *TrackRecord
	orig  string
	abuse bool // an AbuseAddresses address
}

// kind is what is done with mail to r: report, forward or feedback.
func (r *bounceRcpt) kind() int {
	switch {
	case r.track != nil:
		return 0
	case r.abuse:
		return 2
	}
	return 1
}

// bounceSession is go-smtp's session of one connection of a BounceServer.
// It has no AUTH (it does not implement smtp.AuthSession).
type bounceSession struct {
	b  *BounceServer
	c  *serverConn
	gc *smtp.Conn

	mu    sync.Mutex // Data may run on a goroutine of its own (BDAT)
	from  string
	helo  string
	open  bool
	rcpts []bounceRcpt
}

func (b *BounceServer) newSession(c *serverConn, gc *smtp.Conn) *bounceSession {
	return &bounceSession{b: b, c: c, gc: gc}
}

// Mail starts a transaction; any sender, the null one first (RFC 5321
// §4.5.5: bounces come from it).
func (bs *bounceSession) Mail(from string, opts *smtp.MailOptions) error {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	bs.from, bs.helo, bs.open, bs.rcpts = from, bs.gc.Hostname(), true, nil
	return nil
}

// Rcpt accepts a tracked return-path address or a valid SRS address, and
// refuses any other with 550 5.1.1 (RFC 3463: bad destination mailbox
// address).
func (bs *bounceSession) Rcpt(to string, opts *smtp.RcptOptions) error {
	r, err := bs.b.check(bs.b.srv.ctx, to)
	if err != nil {
		bs.c.log.Debug("relay: bounce recipient refused", "remote", bs.c.remote, "from", bs.from, "rcpt", to, "reply", err)
		return err
	}
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if len(bs.rcpts) > 0 && bs.rcpts[0].kind() != r.kind() {
		return errBounceMixed
	}
	bs.rcpts = append(bs.rcpts, *r)
	return nil
}

// check says whether the server accepts mail for addr.
func (b *BounceServer) check(ctx context.Context, addr string) (*bounceRcpt, error) {
	unknown := &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1},
		Message: "<" + printable(addr) + ">: Recipient address rejected: User unknown"}
	if b.abuse[strings.ToLower(addr)] {
		return &bounceRcpt{addr: addr, abuse: true}, nil
	}
	d := addrDomain(addr)
	if b.domains[d] {
		id, ok := ReturnPathID(addr)
		if !ok {
			return nil, unknown
		}
		rec, err := b.tracker.Lookup(ctx, id)
		if err != nil {
			b.log.Debug("relay: tracker lookup failed", "id", id, "err", err)
			return nil, errBounceTemp
		}
		if rec == nil {
			return nil, unknown
		}
		return &bounceRcpt{addr: addr, track: rec}, nil
	}
	if b.srs != nil && d == strings.ToLower(b.srs.Domain()) {
		orig, err := b.srs.Reverse(ctx, addr)
		switch {
		case err == nil:
			return &bounceRcpt{addr: addr, orig: orig}, nil
		case errors.Is(err, srs.ErrNotSRS), errors.Is(err, srs.ErrSyntax), errors.Is(err, srs.ErrExpired),
			errors.Is(err, srs.ErrBadHash), errors.Is(err, srs.ErrTooLong), errors.Is(err, srs.ErrUnknownAlias),
			errors.Is(err, srs.ErrNoStore):
			b.log.Debug("relay: SRS address refused", "rcpt", addr, "err", err)
			return nil, unknown
		default: // the Store failed
			b.log.Debug("relay: SRS lookup failed", "rcpt", addr, "err", err)
			return nil, errBounceTemp
		}
	}
	return nil, unknown
}

// Reset ends the transaction.
func (bs *bounceSession) Reset() {
	bs.mu.Lock()
	bs.open, bs.from, bs.rcpts = false, "", nil
	bs.mu.Unlock()
}

// Logout ends the session.
func (bs *bounceSession) Logout() error { return nil }

// Data reads the message: a report for the tracked recipients, or mail to
// forward for the SRS ones.
func (bs *bounceSession) Data(r io.Reader) error {
	bs.mu.Lock()
	from, helo, rcpts := bs.from, bs.helo, bs.rcpts
	bs.mu.Unlock()
	if len(rcpts) == 0 {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "No valid recipients"}
	}
	switch rcpts[0].kind() {
	case 1:
		return bs.forward(r, from, helo, rcpts)
	case 2:
		return bs.feedback(r, from)
	}
	return bs.report(r, from, rcpts)
}

// forward queues the message to the original senders of the SRS
// recipients, with the null sender (RFC 5321 §4.5.5: a bounce of it is
// never sent), preceded by a Received field (RFC 5321 §4.4).
func (bs *bounceSession) forward(r io.Reader, from, helo string, rcpts []bounceRcpt) error {
	s := bs.b.srv
	qw, err := s.queue.Create(s.ctx)
	if err != nil {
		bs.c.log.Debug("relay: queue refused a message", "err", err)
		return errQueueWrite
	}
	committed := false
	defer func() {
		if !committed {
			_ = qw.Abort()
		}
	}()
	id := s.token(10)
	proto := "ESMTP"
	if bs.c.tlsState() != nil {
		proto = "ESMTPS"
	}
	if !bs.c.usedEHLO() {
		proto = "SMTP"
	}
	rcv := fmt.Sprintf("Received: from %s (%s)\r\n\tby %s with %s id %s\r\n\tfor <%s>; %s\r\n",
		commentSafe(helo), addressLiteral(bs.c.remote.Addr()), s.hostname, proto, id,
		commentSafe(rcpts[0].addr), bs.b.now().Format(dateLayout))
	src := &sourceReader{r: r}
	if _, err := io.WriteString(qw, rcv); err != nil {
		bs.c.log.Debug("relay: queue write failed", "err", err)
		return errQueueWrite
	}
	n, err := io.Copy(qw, src)
	if err != nil {
		if src.err != nil {
			return readFailure(src.err)
		}
		bs.c.log.Debug("relay: queue write failed", "err", err)
		return errQueueWrite
	}
	if err := bs.c.refusedContent(); err != nil {
		return err
	}
	e := &Entry{Envelope: Envelope{From: ""}, Sender: ""}
	for _, rc := range rcpts {
		e.Envelope.To = append(e.Envelope.To, Recipient{Addr: rc.orig})
	}
	if err := qw.Commit(s.ctx, e); err != nil {
		bs.c.log.Debug("relay: queue commit failed", "err", err)
		return errQueueWrite
	}
	committed = true
	bs.c.log.Debug("relay: SRS mail forwarded", "remote", bs.c.remote, "from", from, "queue_id", e.ID,
		"rcpts", len(rcpts), "size", n)
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "OK: queued as " + e.ID}
}

// report parses the message (relay/bounce.Parse) and reports it for each
// tracked recipient. The whole message is read first, so that one over
// the size limit is refused (552 5.3.4) and reports nothing.
func (bs *bounceSession) report(r io.Reader, from string, rcpts []bounceRcpt) error {
	b := bs.b
	src := &sourceReader{r: r}
	limit := b.maxSize
	if limit == 0 {
		limit = 1<<63 - 1
	}
	rep, err := bounce.Parse(src, &bounce.Options{MaxBytes: limit, EnvelopeTo: rcpts[0].addr, Logger: b.log})
	if _, derr := io.Copy(io.Discard, src); derr != nil && src.err == nil {
		src.err = derr
	}
	if src.err != nil {
		return readFailure(src.err)
	}
	if cerr := bs.c.refusedContent(); cerr != nil {
		return cerr
	}
	if err != nil {
		bs.c.log.Debug("relay: bounce not parsed", "remote", bs.c.remote, "from", from, "err", err)
		if errors.Is(err, bounce.ErrSyntax) {
			return errBounceNoHeader
		}
		return readFailure(err)
	}
	now := b.now()
	ctx := b.srv.ctx
	for _, rc := range rcpts {
		rec := rc.track
		bs.c.log.Debug("relay: report received", "remote", bs.c.remote, "from", from, "id", rec.ID,
			"queue_id", rec.QueueID, "kind", rep.Kind, "format", rep.Format, "recipients", len(rep.Recipients))
		switch {
		case rep.Kind.IsBounce():
			b.bounced(ctx, rec, rep, now)
		case rep.Kind == bounce.KindFeedback:
			b.spamReport(ctx, rec, rep, now)
		}
	}
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "OK"}
}

// feedback reads mail to an abuse address: a feedback report (RFC 5965)
// about a tracked message, found by the return path of the message it
// returns, is reported as spamReport does; anything else is refused.
func (bs *bounceSession) feedback(r io.Reader, from string) error {
	b := bs.b
	src := &sourceReader{r: r}
	limit := b.maxSize
	if limit == 0 {
		limit = 1<<63 - 1
	}
	rep, err := bounce.Parse(src, &bounce.Options{MaxBytes: limit, Logger: b.log})
	if _, derr := io.Copy(io.Discard, src); derr != nil && src.err == nil {
		src.err = derr
	}
	if src.err != nil {
		return readFailure(src.err)
	}
	if cerr := bs.c.refusedContent(); cerr != nil {
		return cerr
	}
	if err != nil || rep.Kind != bounce.KindFeedback {
		bs.c.log.Debug("relay: not a feedback report", "remote", bs.c.remote, "from", from, "err", err)
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1},
			Message: "Only feedback reports (RFC 5965) are accepted at this address"}
	}
	var rec *TrackRecord
	if id, ok := ReturnPathID(rep.Original.ReturnPath); ok && b.domains[addrDomain(rep.Original.ReturnPath)] {
		if rec, err = b.tracker.Lookup(b.srv.ctx, id); err != nil {
			b.log.Debug("relay: tracker lookup failed", "id", id, "err", err)
			return errBounceTemp
		}
	}
	if rec == nil {
		b.log.Info("relay: feedback report about a message not tracked", "from", from,
			"return_path", rep.Original.ReturnPath, "message_id", rep.Original.MessageID)
	} else {
		b.spamReport(b.srv.ctx, rec, rep, b.now())
	}
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "OK"}
}

// bounced reports each failed recipient of a bounce that the message had:
// a bounced event, and a suppression when the failure is hard.
func (b *BounceServer) bounced(ctx context.Context, rec *TrackRecord, rep *bounce.Report, now time.Time) {
	for _, x := range rep.Recipients {
		if x.Action != bounce.ActionFailed {
			b.log.Debug("relay: bounce recipient not failed", "queue_id", rec.QueueID, "rcpt", x.Address, "action", x.Action)
			continue
		}
		addr, ok := rec.hasRcpt(x.Address)
		if !ok && x.OriginalAddress != "" {
			addr, ok = rec.hasRcpt(x.OriginalAddress)
		}
		if !ok {
			b.log.Debug("relay: bounce for a recipient the message did not have, ignored", "queue_id", rec.QueueID, "rcpt", x.Address)
			continue
		}
		reply := bounceReply(&x)
		if b.events != nil {
			b.events.Emit(ctx, &Event{Type: EventBounced, Time: now, QueueID: rec.QueueID, MessageID: rec.MessageID,
				Account: rec.Account, From: rec.Sender, Rcpt: addr, Reply: reply, Host: x.RemoteMTA,
				Hard: x.Hard, Reason: string(x.Reason)})
		}
		b.metrics.Recipient(EventBounced, replyReason(reply), now.Sub(rec.Created))
		if x.Hard && b.supp != nil {
			why := strings.TrimSpace(x.Status + " " + x.Diagnostic)
			err := b.supp.Add(ctx, Suppression{Account: rec.Account, Recipient: addr, Source: SuppressedByBounce,
				Reason: why, QueueID: rec.QueueID, Created: now})
			if err != nil {
				b.log.Debug("relay: suppression not added", "account", rec.Account, "rcpt", addr, "err", err)
			}
		}
	}
}

// spamReport reports the recipients a feedback report names that the
// message had (its Original-Rcpt-To fields, RFC 5965 §3.2), or the
// message's one recipient when it names none of them: a spamreport event
// and a suppression.
func (b *BounceServer) spamReport(ctx context.Context, rec *TrackRecord, rep *bounce.Report, now time.Time) {
	var named []string
	for _, x := range rep.Recipients {
		named = append(named, x.Address)
	}
	fbType := ""
	if rep.Feedback != nil {
		named = append(named, rep.Feedback.OriginalRcptTo...)
		fbType = rep.Feedback.Type
	}
	var addrs []string
	for _, n := range named {
		if a, ok := rec.hasRcpt(n); ok && !containsFold(addrs, a) {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 && len(rec.Rcpts) == 1 {
		addrs = rec.Rcpts
	}
	if len(addrs) == 0 {
		b.log.Debug("relay: feedback report names no recipient of the message, ignored", "queue_id", rec.QueueID, "named", named)
		return
	}
	for _, addr := range addrs {
		if b.events != nil {
			b.events.Emit(ctx, &Event{Type: EventSpamReport, Time: now, QueueID: rec.QueueID, MessageID: rec.MessageID,
				Account: rec.Account, From: rec.Sender, Rcpt: addr, Reason: fbType})
		}
		if b.supp != nil {
			err := b.supp.Add(ctx, Suppression{Account: rec.Account, Recipient: addr, Source: SuppressedBySpamReport,
				Reason: "feedback-type " + fbType, QueueID: rec.QueueID, Created: now})
			if err != nil {
				b.log.Debug("relay: suppression not added", "account", rec.Account, "rcpt", addr, "err", err)
			}
		}
	}
}

// bounceReply is the remote server's reply a bounce quotes: its reply
// code, or one of the status's class (550, 450), its enhanced status code
// (RFC 3463) and its diagnostic.
func bounceReply(x *bounce.Recipient) *Reply {
	r := &Reply{Code: x.ReplyCode, Message: x.Diagnostic}
	var c, s, d int
	if n, _ := fmt.Sscanf(x.Status, "%d.%d.%d", &c, &s, &d); n == 3 {
		r.Enhanced = EnhancedCode{c, s, d}
	}
	// The diagnostic of an SMTP reply begins with its codes (RFC 3464
	// §2.3.6 "smtp; 550 5.1.1 ..."): Message is the text after them.
	if r.Code != 0 {
		m, ok := strings.CutPrefix(r.Message, strconv.Itoa(r.Code))
		if ok && (m == "" || m[0] == ' ' || m[0] == '-') {
			m = strings.TrimLeft(m, " -")
			if f, rest, _ := strings.Cut(m, " "); f == x.Status {
				m = rest
			}
			r.Message = m
		}
	}
	if r.Code == 0 {
		switch c {
		case 4:
			r.Code = 450
		case 5:
			r.Code = 550
		}
	}
	return r
}
