package relay_test

import (
	"bytes"
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smarthost-go/smarthost/relay"
)

// srvNow is the fixed clock of the pipeline tests: the Received and Date
// fields must show exactly this time, in its zone.
var srvNow = time.Date(2026, time.April, 14, 9, 30, 5, 0, time.FixedZone("", 2*60*60))

// srvNowText is srvNow as RFC 5322 §3.3 writes it.
const srvNowText = "Tue, 14 Apr 2026 09:30:05 +0200"

// receivedStamp is a Received field read by the grammar of RFC 5321
// §4.4:
//
//	Stamp       = From-domain By-domain Opt-info [CFWS] ";" FWS date-time
//	From-domain = "FROM" FWS Extended-Domain
//	By-domain   = CFWS "BY" FWS Extended-Domain
//	Opt-info    = [Via] [With] [ID] [For] [Additional-Registered-Clauses]
//	Extended-Domain = Domain / ( Domain FWS "(" TCP-info ")" ) /
//	                  ( address-literal FWS "(" TCP-info ")" )
//	TCP-info    = address-literal / ( Domain FWS address-literal )
//
// with the comments (CFWS, RFC 5322 §3.2.2) kept apart.
type receivedStamp struct {
	from, fromInfo     string // the Extended-Domain of FROM: its domain, its TCP-info
	by, with, id, for_ string
	comments           []string // the comments other than TCP-info, unfolded
	date               time.Time
}

// parseReceived reads the value of a Received field (what follows
// "Received:").
func parseReceived(v string) (*receivedStamp, error) {
	p := &stampParser{s: v}
	st := &receivedStamp{}
	p.cfws()
	if kw := p.word(); !strings.EqualFold(kw, "from") {
		return nil, fmt.Errorf("begins with %q, not FROM", kw)
	}
	if !p.fws() {
		return nil, errors.New("no FWS after FROM")
	}
	st.from = p.word()
	if !isDomainOrLiteral(st.from) {
		return nil, fmt.Errorf("FROM %q is not a Domain or address-literal", st.from)
	}
	// The first comment after the FROM domain is its TCP-info.
	p.fws()
	if p.peek() == '(' {
		info := unfoldWS(p.comment())
		addr := info
		if d, a, ok := strings.Cut(info, " "); ok {
			if !isDomainOrLiteral(d) || strings.HasPrefix(d, "[") {
				return nil, fmt.Errorf("TCP-info %q", info)
			}
			addr = a
		}
		if !isAddressLiteral(addr) {
			return nil, fmt.Errorf("TCP-info %q has no address-literal", info)
		}
		st.fromInfo = info
	}
	clauses := map[string]*string{"by": &st.by, "with": &st.with, "id": &st.id, "for": &st.for_}
	order := []string{"by", "via", "with", "id", "for"}
	last := -1
	for {
		st.comments = append(st.comments, p.cfwsComments()...)
		if p.peek() == ';' {
			break
		}
		if !p.sawCFWS {
			return nil, fmt.Errorf("no CFWS before %q", p.rest())
		}
		kw := strings.ToLower(p.word())
		i := slices.Index(order, kw)
		if i <= last {
			return nil, fmt.Errorf("clause %q out of place", kw)
		}
		last = i
		if !p.fws() {
			return nil, fmt.Errorf("no FWS after %s", kw)
		}
		val := p.word()
		if dst := clauses[kw]; dst != nil {
			*dst = val
		}
	}
	if st.by == "" || !isDomainOrLiteral(st.by) {
		return nil, fmt.Errorf("BY %q", st.by)
	}
	p.pos++ // ";"
	if !p.fws() {
		return nil, errors.New("no FWS after ;")
	}
	d, err := mail.ParseDate(unfoldWS(strings.TrimRight(p.rest(), "\r\n")))
	if err != nil {
		return nil, err
	}
	st.date = d
	return st, nil
}

type stampParser struct {
	s       string
	pos     int
	sawCFWS bool // the last cfws consumed something
}

func (p *stampParser) peek() byte {
	if p.pos < len(p.s) {
		return p.s[p.pos]
	}
	return 0
}

func (p *stampParser) rest() string { return p.s[p.pos:] }

// fws consumes folding white space: ([*WSP CRLF] 1*WSP).
func (p *stampParser) fws() bool {
	start := p.pos
	for p.pos < len(p.s) {
		switch {
		case p.s[p.pos] == ' ' || p.s[p.pos] == '\t':
			p.pos++
		case strings.HasPrefix(p.s[p.pos:], "\r\n") && p.pos+2 < len(p.s) && (p.s[p.pos+2] == ' ' || p.s[p.pos+2] == '\t'):
			p.pos += 2
		default:
			return p.pos > start
		}
	}
	return p.pos > start
}

// comment consumes a comment, nested ones included, and returns its text.
func (p *stampParser) comment() string {
	depth, start := 0, p.pos
	for p.pos < len(p.s) {
		switch p.s[p.pos] {
		case '\\':
			p.pos++
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				p.pos++
				return p.s[start+1 : p.pos-1]
			}
		}
		p.pos++
	}
	return p.s[start+1:]
}

func (p *stampParser) cfws() { p.cfwsComments() }

// cfwsComments consumes CFWS and returns its comments, unfolded.
func (p *stampParser) cfwsComments() []string {
	var out []string
	start := p.pos
	for {
		p.fws()
		if p.peek() != '(' {
			break
		}
		out = append(out, unfoldWS(p.comment()))
	}
	p.sawCFWS = p.pos > start
	return out
}

// word consumes everything up to white space, a comment or ";".
func (p *stampParser) word() string {
	start := p.pos
	for p.pos < len(p.s) && !strings.ContainsRune(" \t\r\n(;", rune(p.s[p.pos])) {
		p.pos++
	}
	return p.s[start:p.pos]
}

func unfoldWS(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\r\n", "")), " ")
}

var (
	reDomain  = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$`)
	reLiteral = regexp.MustCompile(`^\[(\d{1,3}(\.\d{1,3}){3}|IPv6:[0-9A-Fa-f:.]+)\]$`)
)

func isAddressLiteral(s string) bool  { return reLiteral.MatchString(s) }
func isDomainOrLiteral(s string) bool { return reDomain.MatchString(s) || isAddressLiteral(s) }

// srvField returns the unfolded values of the header fields called name
// in a message's header block.
func srvField(msg []byte, name string) []string {
	hdr, _, _ := bytes.Cut(msg, []byte("\r\n\r\n"))
	var out []string
	for f := range strings.SplitSeq(strings.ReplaceAll(string(hdr)+"\r\n", "\r\n\t", "\t"), "\r\n") {
		f = strings.ReplaceAll(f, "\r\n ", " ")
		n, v, ok := strings.Cut(f, ":")
		if ok && strings.EqualFold(strings.TrimSpace(n), name) {
			out = append(out, v)
		}
	}
	return out
}

// srvFieldRaw returns the header fields called name as they are, folding
// kept.
func srvFieldRaw(msg []byte, name string) []string {
	hdr, _, _ := bytes.Cut(msg, []byte("\r\n\r\n"))
	var out []string
	var cur *string
	for line := range strings.SplitSeq(string(hdr), "\r\n") {
		if (strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t")) && cur != nil {
			*cur += "\r\n" + line
			continue
		}
		cur = nil
		if n, _, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(n), name) {
			out = append(out, line)
			cur = &out[len(out)-1]
		}
	}
	return out
}

// TestServerReceivedField checks the Received field the relay puts first,
// read by the grammar of RFC 5321 §4.4, for an authenticated client over
// STARTTLS and for a trusted one in plaintext.
func TestServerReceivedField(t *testing.T) {
	t.Parallel()
	fx := srvStart(t, func(o *relay.ServerOptions) {
		o.Now = func() time.Time { return srvNow }
		o.Trusted = append(o.Trusted, srvTrusted)
	})
	// Authenticated over STARTTLS: go-smtp's client greets as localhost.
	if _, err := srvSend(t, fx, srvKey, "orders@customer.example", []string{"buyer@example.net"}, srvMessage); err != nil {
		t.Fatal(err)
	}
	// Trusted, plaintext, HELO (not EHLO), two recipients.
	c := srvDial(t, fx.addr, "127.0.0.2", 220)
	c.cmd(250, "HELO printer.lan")
	c.cmd(250, "MAIL FROM:<scanner@other.example>")
	c.cmd(250, "RCPT TO:<a@example.net>")
	c.cmd(250, "RCPT TO:<b@example.net>")
	c.cmd(354, "DATA")
	c.write(strings.Replace(srvMessage, "customer.example", "other.example", 1) + ".\r\n")
	c.expect(250)

	entries, msgs := fx.q.stored()
	if len(entries) != 2 {
		t.Fatalf("%d messages queued, want 2", len(entries))
	}
	for i, want := range []struct {
		from, info, with, for_ string
		comments               []string
	}{
		{"localhost", "[127.0.0.1]", "ESMTPSA", "<buyer@example.net>",
			[]string{"using TLSv1.3 with cipher ", "No client certificate requested", "Authenticated sender: shop"}},
		{"printer.lan", "[127.0.0.2]", "SMTP", "", nil},
	} {
		content := msgs[i][len(entries[i].Header):]
		if !bytes.HasPrefix(content, []byte("Received:")) {
			t.Errorf("message %d does not begin with its Received field:\n%s", i, content)
			continue
		}
		fields := srvField(content, "Received")
		if len(fields) != 1 {
			t.Fatalf("message %d: %d Received fields", i, len(fields))
		}
		raw := srvFieldRaw(content, "Received")[0]
		for _, line := range strings.Split(raw, "\r\n") {
			if len(line)+2 > 78 { // RFC 5322 §2.1.1: SHOULD be at most 78
				t.Errorf("message %d: Received line of %d octets: %q", i, len(line), line)
			}
		}
		st, err := parseReceived(strings.TrimPrefix(raw, "Received:"))
		if err != nil {
			t.Fatalf("message %d: Received field %q: %v", i, raw, err)
		}
		id, _ := relay.ReturnPathID(entries[i].Envelope.From)
		if i == 1 { // other.example has no return path: the ID is not in the envelope
			id = st.id
		}
		if st.from != want.from || st.fromInfo != want.info || st.by != "relay.test" || st.with != want.with ||
			st.id == "" || st.id != id || st.for_ != want.for_ || !st.date.Equal(srvNow) {
			t.Errorf("message %d: Received %+v", i, st)
		}
		if !strings.HasSuffix(raw, srvNowText) {
			t.Errorf("message %d: Received date not %q in its zone: %q", i, srvNowText, raw)
		}
		if len(st.comments) != len(want.comments) {
			t.Errorf("message %d: comments %q, want %q", i, st.comments, want.comments)
			continue
		}
		for j, w := range want.comments {
			if !strings.HasPrefix(st.comments[j], w) {
				t.Errorf("message %d: comment %q, want %q...", i, st.comments[j], w)
			}
		}
	}
	// The EHLO name is the client's to choose: one that is not a Domain
	// or an address literal is put in a comment, and the field keeps its
	// form.
	for i, tc := range []struct{ helo, from, comment string }{
		{"mail-1.Example.NET", "mail-1.Example.NET", ""},
		{"[192.0.2.1]", "[192.0.2.1]", ""},
		{"[IPv6:2001:db8::1]", "[IPv6:2001:db8::1]", ""},
		{"a;b", "[127.0.0.2]", "helo=a;b"},
		{"x\tby\tevil.example;", "[127.0.0.2]", "helo=x?by?evil.example;"},
		{"host_name.example", "[127.0.0.2]", "helo=host_name.example"},
		{"-dash.example", "[127.0.0.2]", "helo=-dash.example"},
		{"a(b)c\\", "[127.0.0.2]", "helo=a?b?c?"},
		{"\"quoted\"", "[127.0.0.2]", "helo=\"quoted\""},
		{"\u00e9.example", "[127.0.0.2]", "helo=??.example"},
		{"[300.1.1.1]", "[127.0.0.2]", "helo=[300.1.1.1]"},
	} {
		c := srvDial(t, fx.addr, "127.0.0.2", 220)
		c.cmd(250, "EHLO "+tc.helo)
		c.cmd(250, "MAIL FROM:<scanner@other.example>")
		c.cmd(250, "RCPT TO:<a@example.net>")
		c.cmd(354, "DATA")
		c.write(strings.Replace(srvMessage, "customer.example", "other.example", 1) + ".\r\n")
		c.expect(250)
		entries, msgs := fx.q.stored()
		if len(entries) != 3+i {
			t.Fatalf("%d messages queued, want %d", len(entries), 3+i)
		}
		raw := srvFieldRaw(msgs[2+i][len(entries[2+i].Header):], "Received")[0]
		st, err := parseReceived(strings.TrimPrefix(raw, "Received:"))
		if err != nil {
			t.Errorf("EHLO %q: Received field %q: %v", tc.helo, raw, err)
			continue
		}
		var comments []string
		if tc.comment != "" {
			comments = []string{tc.comment}
		}
		if st.from != tc.from || st.fromInfo != "[127.0.0.2]" || st.with != "ESMTP" || !slices.Equal(st.comments, comments) {
			t.Errorf("EHLO %q: Received from %q (%s) with %s, comments %q; want from %q, comments %q",
				tc.helo, st.from, st.fromInfo, st.with, st.comments, tc.from, comments)
		}
	}
	// The IDs of two messages differ.
	a, _ := parseReceived(strings.TrimPrefix(srvFieldRaw(msgs[0][len(entries[0].Header):], "Received")[0], "Received:"))
	b, _ := parseReceived(strings.TrimPrefix(srvFieldRaw(msgs[1][len(entries[1].Header):], "Received")[0], "Received:"))
	if a == nil || b == nil || a.id == b.id {
		t.Errorf("two messages with one Received id")
	}
}
