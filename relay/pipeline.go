package relay

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"net/netip"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/smarthost-go/smarthost/dkim"
	"github.com/smarthost-go/smarthost/srs"
)

// The pipeline's replies.
var (
	// Postfix's reply when the queue file cannot be written.
	errQueueWrite  = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Error: queue file write error, try again later"}
	errReadTimeout = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "Timeout exceeded, closing connection"}
	errNotSigned   = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Error: the message header cannot be signed"}
)

// errHeaderTooLarge is readHeader's error for a header block over the
// limit.
var errHeaderTooLarge = errors.New("relay: header block too large")

// dateLayout is the date-time of RFC 5322 §3.3.
const dateLayout = "Mon, 02 Jan 2006 15:04:05 -0700"

// tokenEncoding writes message and return-path IDs: lower-case base32
// (RFC 4648 §6), so that they survive any case folding of a local part.
var tokenEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// returnPathPrefix begins the local part of the return-path addresses the
// Server makes.
const returnPathPrefix = "bounces+"

// ReturnPathID returns the ID of a return-path address made by a Server,
// bounces+ID@domain (see ServerOptions.ReturnPaths), and whether addr is
// one. The ID is in the message's Entry (in its Envelope.From) and in its
// Received field; the recipient a bounce is about is in the DSN (RFC 3464
// Final-Recipient), to be matched with Entry.Rcpts.
func ReturnPathID(addr string) (id string, ok bool) {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return "", false
	}
	id, ok = strings.CutPrefix(strings.ToLower(addr[:at]), returnPathPrefix)
	if !ok || id == "" {
		return "", false
	}
	if _, err := tokenEncoding.DecodeString(id); err != nil {
		return "", false
	}
	return id, true
}

// Data receives the message content, checks its header, and streams it to
// the queue once, with the fields the relay adds, hashing it for the DKIM
// signatures on the way; the reply is 250 once the queue has committed the
// message, or says why not, and nothing is queued.
func (ss *serverSession) Data(r io.Reader) error {
	// BDAT runs Data on a goroutine of its own, while the session reads
	// the next commands: it works on a copy of the transaction.
	ss.mu.Lock()
	tx, acct := ss.tx, ss.account
	ss.mu.Unlock()
	e, err := ss.receive(r, &tx, acct)
	if err != nil {
		ss.c.log.Debug("relay: message refused", "remote", ss.c.remote, "from", tx.from, "reply", err)
		ss.srv.metrics.MessageRefused(smtpReason(err))
		return err
	}
	if e.ID == "" {
		return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "OK: every recipient is suppressed, nothing queued"}
	}
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "OK: queued as " + e.ID}
}

// receive runs the pipeline of one message.
func (ss *serverSession) receive(r io.Reader, tx *transaction, acct *Account) (*Entry, error) {
	s := ss.srv
	if cr := ss.c.dataReader(s.maxMessage); cr != nil {
		r = cr
	}
	src := &sourceReader{r: r}
	br := s.readers.Get().(*bufio.Reader)
	br.Reset(src)
	defer func() {
		br.Reset(nil)
		s.readers.Put(br)
	}()

	// The header block, the one part held in memory.
	hdr, sep, err := readHeader(br, s.maxHeader)
	if err == errHeaderTooLarge {
		return nil, &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4},
			Message: fmt.Sprintf("Error: message header exceeds %d octets", s.maxHeader)}
	}
	if err != nil {
		return nil, readFailure(err)
	}
	h, err := scanHeader(hdr)
	if err != nil {
		return nil, &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Error: " + err.Error()}
	}
	domains, err := fromDomains(h.from)
	if err != nil {
		return nil, &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Error: " + err.Error()}
	}
	if acct != nil {
		for _, d := range domains {
			if !acct.MaySendFrom(d) {
				return nil, &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1},
					Message: "From header field rejected: this key may not send mail from " + printable(d)}
			}
		}
	}
	fromDomain := domains[0]
	now := s.now()
	if len(tx.env.To) == 0 {
		// Every recipient was dropped (SuppressedDrop): the message is
		// read to its end and accepted, and nothing is queued.
		if _, err := br.WriteTo(io.Discard); err != nil {
			if src.err != nil {
				err = src.err
			}
			return nil, readFailure(err)
		}
		if err := ss.c.refusedContent(); err != nil {
			return nil, err
		}
		e := &Entry{Sender: tx.from, MessageID: h.messageID}
		if acct != nil {
			e.Account = acct.Name
		}
		ss.emitDropped(tx, e, now)
		ss.c.log.Debug("relay: message dropped", "remote", ss.c.remote, "message_id", h.messageID,
			"account", e.Account, "from", tx.from, "rcpts", len(tx.dropped))
		return e, nil
	}
	id := s.token(10)
	sender, err := s.rewriteSender(tx.from, fromDomain, id)
	if err != nil {
		return nil, err
	}

	// From here on, the message goes to the queue.
	qw, err := s.queue.Create(s.ctx)
	if err != nil {
		ss.c.log.Debug("relay: queue refused a message", "err", err)
		return nil, errQueueWrite
	}
	committed := false
	defer func() {
		if !committed {
			_ = qw.Abort()
		}
	}()
	out := &sinkWriter{q: qw}
	if signers := s.signersFor(fromDomain); len(signers) > 0 {
		out.sign = dkim.NewSigningWriter(signers...)
	}
	msgID := h.messageID
	var added []byte
	if !h.hasMessageID {
		msgID = "<" + s.token(16) + "@" + s.hostname + ">"
		added = append(added, "Message-ID: "+msgID+"\r\n"...)
	}
	if !h.hasDate {
		added = append(added, "Date: "+now.Format(dateLayout)+"\r\n"...)
	}
	if len(hdr) > 0 && hdr[len(hdr)-1] != '\n' {
		hdr = append(hdr, '\r', '\n') // the content ended inside its header
	}
	parts := [][]byte{ss.received(tx, acct, id, now), hdr, added}
	if sep {
		parts = append(parts, []byte("\r\n"))
	}
	for _, p := range parts {
		if _, err := out.Write(p); err != nil {
			return nil, ss.writeFailure(src, out, err)
		}
	}
	if _, err := br.WriteTo(out); err != nil {
		return nil, ss.writeFailure(src, out, err)
	}
	if err := ss.c.refusedContent(); err != nil {
		return nil, err
	}
	var sigs []byte
	if out.sign != nil {
		if err := out.sign.Close(); err != nil {
			return nil, ss.signFailure(err)
		}
		sigs = []byte(out.sign.Header())
	}

	env := tx.env
	env.From = sender
	e := &Entry{
		Envelope:  env,
		Sender:    tx.from,
		MessageID: msgID,
		Header:    sigs,
		Rcpts:     make([]RcptState, len(env.To)),
	}
	if acct != nil {
		e.Account = acct.Name
	}
	for i, rc := range env.To {
		e.Rcpts[i] = RcptState{Addr: rc.Addr, Status: RcptPending}
	}
	if err := qw.Commit(s.ctx, e); err != nil {
		ss.c.log.Debug("relay: queue commit failed", "err", err)
		return nil, errQueueWrite
	}
	committed = true
	if s.tracker != nil && sender != tx.from && strings.HasPrefix(sender, returnPathPrefix) {
		r := &TrackRecord{ID: id, QueueID: e.ID, MessageID: msgID, Account: e.Account, Sender: tx.from,
			Rcpts: make([]string, len(env.To)), Created: e.Created}
		for i, rc := range env.To {
			r.Rcpts[i] = rc.Addr
		}
		if r.Created.IsZero() {
			r.Created = now
		}
		if err := s.tracker.Record(s.ctx, r); err != nil {
			ss.c.log.Debug("relay: message not tracked", "queue_id", e.ID, "id", id, "err", err)
		}
	}
	s.metrics.MessageAccepted(e.Account, len(env.To))

	ss.c.log.Debug("relay: message accepted", "remote", ss.c.remote, "queue_id", e.ID, "id", id,
		"message_id", msgID, "account", e.Account, "from", tx.from, "envelope_from", sender,
		"rcpts", len(env.To), "size", out.n, "signatures", bytes.Count(sigs, []byte("DKIM-Signature:")))
	ss.emitDropped(tx, e, now)
	if s.events != nil {
		at := e.Created
		if at.IsZero() {
			at = now
		}
		for _, rc := range env.To {
			s.events.Emit(s.ctx, &Event{Type: EventAccepted, Time: at, QueueID: e.ID, MessageID: msgID,
				Account: e.Account, From: tx.from, Rcpt: rc.Addr})
		}
	}
	return e, nil
}

// emitDropped emits a dropped event per recipient of tx left out of the
// message of e, suppressed; e.ID is "" when nothing was queued.
func (ss *serverSession) emitDropped(tx *transaction, e *Entry, now time.Time) {
	for range tx.dropped {
		ss.srv.metrics.Recipient(EventDropped, "suppressed", 0)
	}
	if ss.srv.events == nil {
		return
	}
	for _, d := range tx.dropped {
		ss.srv.events.Emit(ss.srv.ctx, &Event{Type: EventDropped, Time: now, QueueID: e.ID, MessageID: e.MessageID,
			Account: e.Account, From: tx.from, Rcpt: d.addr, Reason: d.why})
	}
}

// writeFailure says why streaming the message failed: the client's side
// (content refused, too large, timeout, hung up), the signer's, or the
// queue's.
func (ss *serverSession) writeFailure(src *sourceReader, out *sinkWriter, err error) error {
	switch {
	case src.err != nil:
		return readFailure(src.err)
	case out.serr != nil:
		return ss.signFailure(out.serr)
	}
	ss.c.log.Debug("relay: queue write failed", "err", err)
	return errQueueWrite
}

// signFailure is the reply when the message cannot be signed: the
// client's fault when the signer cannot read the header (malformed, or too
// large), the relay's otherwise (a key that does not sign).
func (ss *serverSession) signFailure(err error) error {
	ss.c.log.Debug("relay: message not signed", "err", err)
	if errors.Is(err, dkim.ErrSyntax) || errors.Is(err, dkim.ErrTooLarge) {
		return errNotSigned
	}
	return errQueueWrite
}

// readFailure is the reply to an error reading the content: the reply the
// serverConn or go-smtp made of it (a refused line, the size limit), a
// timeout, or the error itself (the client is gone).
func readFailure(err error) error {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se
	}
	if isTimeout(err) {
		return errReadTimeout
	}
	return err
}

// sourceReader keeps the error of the content's reader, to tell it from
// the queue's.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// sinkWriter writes the message to the queue and to the DKIM signers.
type sinkWriter struct {
	q          io.Writer
	sign       *dkim.SigningWriter
	n          int64
	qerr, serr error
}

func (w *sinkWriter) Write(p []byte) (int, error) {
	if _, err := w.q.Write(p); err != nil {
		w.qerr = err
		return 0, err
	}
	if w.sign != nil {
		if _, err := w.sign.Write(p); err != nil {
			w.serr = err
			return 0, err
		}
	}
	w.n += int64(len(p))
	return len(p), nil
}

// readHeader reads the header block: its lines up to the empty line that
// ends it (RFC 5322 §2.1), which it consumes and reports with sep, or up to
// the end of the content.
func readHeader(br *bufio.Reader, max int) (hdr []byte, sep bool, err error) {
	partial := false // the last piece read ended inside a line
	for {
		line, err := br.ReadSlice('\n')
		if len(hdr)+len(line) > max {
			return nil, false, errHeaderTooLarge
		}
		if err == nil && !partial && len(line) == 2 && line[0] == '\r' {
			return hdr, true, nil
		}
		hdr = append(hdr, line...)
		switch {
		case err == bufio.ErrBufferFull:
			partial = true
			continue
		case err == io.EOF:
			return hdr, false, nil
		case err != nil:
			return nil, false, err
		}
		partial = false
	}
}

// headerInfo is what the pipeline needs of a header block.
type headerInfo struct {
	from         []string // the values of the From fields, unfolded
	messageID    string
	hasMessageID bool
	hasDate      bool
}

// scanHeader reads the fields of a header block (RFC 5322 §2.2): a name of
// printable ASCII other than ":", then ":" (white space before it is the
// obsolete syntax of §4.5, still read), and the value, folded onto lines
// that begin with white space.
func scanHeader(hdr []byte) (headerInfo, error) {
	var h headerInfo
	name := ""
	start, end := 0, 0 // of the current field's value
	flush := func() {
		switch strings.ToLower(name) {
		case "from":
			h.from = append(h.from, unfold(hdr[start:end]))
		case "message-id":
			h.hasMessageID = true
			h.messageID = unfold(hdr[start:end])
		case "date":
			h.hasDate = true
		}
	}
	for pos := 0; pos < len(hdr); {
		next := len(hdr)
		if i := bytes.IndexByte(hdr[pos:], '\n'); i >= 0 {
			next = pos + i + 1
		}
		line := hdr[pos:next]
		if line[0] == ' ' || line[0] == '\t' {
			if name == "" {
				return h, errors.New("the header begins with a continuation line")
			}
			end, pos = next, next
			continue
		}
		flush()
		colon := bytes.IndexByte(line, ':')
		n := bytes.TrimRight(line[:max(colon, 0)], " \t")
		if colon < 0 || len(n) == 0 || !isFieldName(n) {
			return h, errors.New("malformed header field (or no empty line before the body)")
		}
		name, start, end, pos = string(n), pos+colon+1, next, next
	}
	if name != "" {
		flush()
	}
	return h, nil
}

func isFieldName(b []byte) bool {
	for _, c := range b {
		if c < 33 || c > 126 || c == ':' {
			return false
		}
	}
	return true
}

// unfold returns a field value on one line, without its folding (RFC 5322
// §2.2.3) and surrounding white space.
func unfold(v []byte) string {
	s := strings.ReplaceAll(string(v), "\r\n", "")
	return strings.TrimSpace(strings.ReplaceAll(s, "\n", ""))
}

// fromDomains returns the domains of the addresses of the message's From
// field, of which RFC 5322 §3.6 wants exactly one; a relay that signs and
// aligns a message for its From domain needs it too.
func fromDomains(values []string) ([]string, error) {
	switch len(values) {
	case 0:
		return nil, errors.New("the message has no From header field (RFC 5322 §3.6)")
	case 1:
	default:
		return nil, errors.New("the message has more than one From header field (RFC 5322 §3.6)")
	}
	// Only the addresses matter: a display name in a charset that
	// net/mail does not know is read as it is.
	p := mail.AddressParser{WordDecoder: &mime.WordDecoder{
		CharsetReader: func(_ string, in io.Reader) (io.Reader, error) { return in, nil },
	}}
	list, err := p.ParseList(values[0])
	if err != nil || len(list) == 0 {
		return nil, errors.New("the From header field has no address that can be read")
	}
	ds := make([]string, len(list))
	for i, a := range list {
		if ds[i] = addrDomain(a.Address); ds[i] == "" {
			return nil, errors.New("the From header field has an address without a domain")
		}
	}
	return ds, nil
}

// rewriteSender returns the envelope sender of delivery: the null sender
// stays null (RFC 5321 §4.5.5); a From domain with a return-path domain
// gets bounces+ID@ it; else the SRS form of the client's, else the
// client's.
func (s *Server) rewriteSender(from, fromDomain, id string) (string, error) {
	if from == "" {
		return "", nil
	}
	if rp, ok := s.returnPaths[fromDomain]; ok {
		return returnPathPrefix + id + "@" + rp, nil
	}
	if s.srs == nil {
		return from, nil
	}
	out, err := s.srs.Forward(s.ctx, from)
	switch {
	case errors.Is(err, srs.ErrSyntax) || errors.Is(err, srs.ErrTooLong):
		s.log.Debug("relay: sender not rewritten", "from", from, "err", err)
		return "", &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 7},
			Message: "<" + printable(from) + ">: Sender address cannot be rewritten for forwarding"}
	case err != nil: // the Store of long addresses failed
		s.log.Debug("relay: sender not rewritten", "from", from, "err", err)
		return "", errQueueWrite
	}
	return out, nil
}

// signersFor returns the DKIM signers of a message from a domain: the
// customer's key for it, then the provider's.
func (s *Server) signersFor(domain string) []*dkim.Signer {
	var out []*dkim.Signer
	if sg := s.signers[domain]; sg != nil {
		out = append(out, sg)
	}
	if s.provider != nil {
		out = append(out, s.provider)
	}
	return out
}

// token returns n random octets as lower-case base32.
func (s *Server) token(n int) string {
	b := make([]byte, n)
	if _, err := io.ReadFull(s.rand, b); err != nil {
		_, _ = rand.Read(b)
	}
	return tokenEncoding.EncodeToString(b)
}

// received writes the Received field the relay adds (RFC 5321 §4.4), with
// the TLS and authentication comments as Postfix writes them and the
// protocol keywords of RFC 3848: ESMTP, then S for TLS and A for an
// authenticated client.
func (ss *serverSession) received(tx *transaction, acct *Account, id string, now time.Time) []byte {
	var b bytes.Buffer
	lit := addressLiteral(ss.c.remote.Addr())
	if isEHLOName(tx.helo) {
		fmt.Fprintf(&b, "Received: from %s (%s)\r\n", tx.helo, lit)
	} else {
		// A name that is neither cannot stand in the FROM clause: the
		// client's address does, and the name goes in a comment, where
		// no octet of it can end the clause or the field.
		fmt.Fprintf(&b, "Received: from %s (%s)\r\n", lit, lit)
		if tx.helo != "" {
			fmt.Fprintf(&b, "\t(helo=%s)\r\n", commentSafe(tx.helo))
		}
	}
	proto := "SMTP"
	if ss.c.usedEHLO() {
		proto = "ESMTP"
	}
	if st := ss.c.tlsState(); st != nil {
		proto = "ESMTPS"
		fmt.Fprintf(&b, "\t(using %s with cipher %s", tlsVersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
		if bits := cipherBits(st.CipherSuite); bits > 0 {
			fmt.Fprintf(&b, " (%d/%d bits)", bits, bits)
		}
		if st.CurveID != 0 {
			fmt.Fprintf(&b, "\r\n\t key-exchange %s", st.CurveID)
		}
		b.WriteString(")\r\n\t(No client certificate requested)\r\n")
	}
	if acct != nil {
		if proto == "SMTP" {
			proto = "ESMTP"
		}
		proto += "A"
		fmt.Fprintf(&b, "\t(Authenticated sender: %s)\r\n", commentSafe(acct.Name))
	}
	fmt.Fprintf(&b, "\tby %s with %s id %s", ss.srv.hostname, proto, id)
	if len(tx.env.To) == 1 {
		if a := tx.env.To[0].Addr; a == printable(a) && !strings.ContainsAny(a, "<>") {
			fmt.Fprintf(&b, "\r\n\tfor <%s>", a)
		}
	}
	fmt.Fprintf(&b, ";\r\n\t%s\r\n", now.Format(dateLayout))
	return b.Bytes()
}

// isEHLOName reports whether the client's EHLO name can stand in the FROM
// clause of a Received field (RFC 5321 §4.4): a Domain of §4.1.2, labels
// of letters, digits and inner hyphens, or an address literal of §4.1.3.
// go-smtp takes any word after EHLO.
func isEHLOName(h string) bool {
	if lit, ok := strings.CutPrefix(h, "["); ok {
		lit, ok = strings.CutSuffix(lit, "]")
		if !ok {
			return false
		}
		if v6, ok := strings.CutPrefix(lit, "IPv6:"); ok {
			a, err := netip.ParseAddr(v6)
			return err == nil && a.Is6() && a.Zone() == ""
		}
		a, err := netip.ParseAddr(lit)
		return err == nil && a.Is4()
	}
	if h == "" || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// commentSafe returns s with what may not appear in a comment of a header
// field replaced by "?".
func commentSafe(s string) string {
	b := []byte(printable(s))
	for i, c := range b {
		if c == '(' || c == ')' || c == '\\' {
			b[i] = '?'
		}
	}
	return string(b)
}

// addressLiteral writes an address as RFC 5321 §4.1.3 does.
func addressLiteral(a netip.Addr) string {
	switch {
	case !a.IsValid():
		return "[unknown]"
	case a.Is4():
		return "[" + a.String() + "]"
	}
	return "[IPv6:" + a.String() + "]"
}

// tlsVersionName names a TLS version as Postfix does: TLSv1.3.
func tlsVersionName(v uint16) string {
	switch v {
	case tls.VersionTLS13:
		return "TLSv1.3"
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS11:
		return "TLSv1.1"
	case tls.VersionTLS10:
		return "TLSv1"
	}
	return tls.VersionName(v)
}

// cipherBits is the key size of a cipher suite's cipher, 0 if unknown.
func cipherBits(id uint16) int {
	name := tls.CipherSuiteName(id)
	switch {
	case strings.Contains(name, "AES_128"):
		return 128
	case strings.Contains(name, "AES_256"), strings.Contains(name, "CHACHA20"):
		return 256
	}
	return 0
}
