package relay

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ErrSyntax is wrapped by the errors of an Envelope that cannot be sent
// as it is: an address or a parameter that would break the command it goes
// in, or an option value SMTP does not have. Nothing was sent.
var ErrSyntax = errors.New("relay: syntax error")

// Limits of RFC 5321 §4.5.3.1.3 (a path, with its angle brackets) and of
// RFC 3461 (§4.4: ENVID; §4.2: ORCPT, both as xtext).
const (
	maxPath  = 256
	maxEnvID = 100
	maxORcpt = 500
)

// checkEnvelope refuses, before anything is sent, an envelope whose
// addresses or parameters would inject or break a command: CR, LF, NUL or
// another control character anywhere; "<", ">" or a space outside a
// quoted local part in an address; values of the options that SMTP does
// not have. Other syntax is the server's to judge, recipient by recipient,
// so that one odd address does not fail the others.
func checkEnvelope(env *Envelope) error {
	if env == nil {
		return fmt.Errorf("%w: no envelope", ErrSyntax)
	}
	if len(env.To) == 0 {
		return fmt.Errorf("%w: no recipients", ErrSyntax)
	}
	if env.From != "" {
		if err := checkAddr(env.From, env.SMTPUTF8); err != nil {
			return fmt.Errorf("%w: reverse-path %q: %v", ErrSyntax, env.From, err)
		}
	}
	switch env.Body {
	case "", BodyEightBit, BodyBinary:
	default:
		return fmt.Errorf("%w: BODY=%q is not %s or %s (RFC 6152, RFC 3030)", ErrSyntax, string(env.Body), BodyEightBit, BodyBinary)
	}
	switch env.Return {
	case "", ReturnFull, ReturnHeaders:
	default:
		return fmt.Errorf("%w: RET=%q is not %s or %s (RFC 3461 §4.3)", ErrSyntax, string(env.Return), ReturnFull, ReturnHeaders)
	}
	if env.EnvID != "" {
		if err := checkDSNText(env.EnvID); err != nil {
			return fmt.Errorf("%w: ENVID %q: %v", ErrSyntax, env.EnvID, err)
		}
		if n := len(xtext(env.EnvID)); n > maxEnvID {
			return fmt.Errorf("%w: ENVID is %d characters as xtext, over %d (RFC 3461 §4.4)", ErrSyntax, n, maxEnvID)
		}
	}
	for i, r := range env.To {
		if r.Addr == "" {
			return fmt.Errorf("%w: recipient %d is empty", ErrSyntax, i+1)
		}
		if err := checkAddr(r.Addr, env.SMTPUTF8); err != nil {
			return fmt.Errorf("%w: recipient %d %q: %v", ErrSyntax, i+1, r.Addr, err)
		}
		if err := checkNotify(r.Notify); err != nil {
			return fmt.Errorf("%w: recipient %d %q: %v", ErrSyntax, i+1, r.Addr, err)
		}
		if r.ORcpt != "" {
			if err := checkORcpt(r.ORcpt); err != nil {
				return fmt.Errorf("%w: recipient %d %q: ORCPT %q: %v", ErrSyntax, i+1, r.Addr, r.ORcpt, err)
			}
		}
	}
	return nil
}

// checkAddr checks that an address stays one path in its command.
func checkAddr(addr string, smtputf8 bool) error {
	if len(addr) > maxPath-2 {
		return fmt.Errorf("longer than %d octets (RFC 5321 §4.5.3.1.3)", maxPath-2)
	}
	if err := checkControls(addr); err != nil {
		return err
	}
	quoted := false
	for i := 0; i < len(addr); i++ {
		c := addr[i]
		switch {
		case c >= utf8.RuneSelf:
			if !smtputf8 {
				return errors.New("is not ASCII: set Envelope.SMTPUTF8 (RFC 6531)")
			}
		case c == '"' && (i == 0 || quoted):
			quoted = !quoted
		case c == '\\' && quoted:
			i++ // a quoted-pair (RFC 5321 §4.1.2)
		case quoted:
		case c == '<' || c == '>':
			return fmt.Errorf("holds %q, which would end the path", c)
		case c == ' ' || c == '\t':
			return errors.New("holds a space outside a quoted local part, which would start a parameter")
		}
	}
	if quoted {
		return errors.New("has an unterminated quoted local part")
	}
	if smtputf8 && !utf8.ValidString(addr) {
		return errors.New("is not valid UTF-8 (RFC 6531 §3.3)")
	}
	return nil
}

// checkControls refuses the control characters that would end a command
// line (CR, LF) or truncate it (NUL) in a server, or any other.
func checkControls(s string) error {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\r':
			return errors.New("holds a CR, which would end the command line and start another (command injection)")
		case c == '\n':
			return errors.New("holds an LF, which would end the command line and start another (command injection)")
		case c == 0:
			return errors.New("holds a NUL")
		case c < 0x20 || c == 0x7f:
			return fmt.Errorf("holds the control character 0x%02x", c)
		}
	}
	return nil
}

// checkDSNText checks the value of ENVID or the address of ORCPT before
// xtext: printable US-ASCII and space (RFC 3461 §4.2, §4.4).
func checkDSNText(s string) error {
	if err := checkControls(s); err != nil {
		return err
	}
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return errors.New("is not US-ASCII (RFC 3461)")
		}
	}
	return nil
}

func checkNotify(n []DSNNotify) error {
	for _, v := range n {
		switch v {
		case NotifySuccess, NotifyFailure, NotifyDelay:
		case NotifyNever:
			if len(n) > 1 {
				return errors.New("NOTIFY=NEVER goes alone (RFC 3461 §4.1)")
			}
		default:
			return fmt.Errorf("NOTIFY=%q is not NEVER, SUCCESS, FAILURE or DELAY (RFC 3461 §4.1)", string(v))
		}
	}
	return nil
}

// checkORcpt checks "addr-type;addr" (RFC 3461 §4.2).
func checkORcpt(s string) error {
	typ, addr, ok := strings.Cut(s, ";")
	if !ok || typ == "" || addr == "" {
		return errors.New(`is not "addr-type;address", such as "rfc822;bob@example.org" (RFC 3461 §4.2)`)
	}
	for i := 0; i < len(typ); i++ {
		c := typ[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return errors.New("addr-type is not an atom (RFC 3461 §4.2)")
		}
	}
	if err := checkDSNText(addr); err != nil {
		return err
	}
	if n := len(typ) + 1 + len(xtext(addr)); n > maxORcpt {
		return fmt.Errorf("is %d characters as xtext, over %d (RFC 3461 §4.2)", n, maxORcpt)
	}
	return nil
}

// xtext encodes s (RFC 3461 §4): "+" and "=", and octets outside "!" to
// "~", as "+" and two upper-case hex digits.
func xtext(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '!' || c > '~' || c == '+' || c == '=' {
			b.WriteByte('+')
			b.WriteByte("0123456789ABCDEF"[c>>4])
			b.WriteByte("0123456789ABCDEF"[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// extensions are the keywords of an EHLO reply (RFC 5321 §4.1.1.1), in
// upper case, with their parameters.
type extensions map[string]string

func (e extensions) has(kw string) bool { _, ok := e[kw]; return ok }

// mailCommand writes MAIL FROM with the parameters the server offers
// (RFC 5321 §4.1.1.2; SIZE RFC 1870, BODY RFC 6152 and RFC 3030, SMTPUTF8
// RFC 6531, REQUIRETLS RFC 8689, RET and ENVID RFC 3461). size < 0 is
// unknown, and not sent.
func mailCommand(env *Envelope, ext extensions, size int64) string {
	var b strings.Builder
	b.WriteString("MAIL FROM:<")
	b.WriteString(env.From)
	b.WriteByte('>')
	if ext.has("SIZE") && size >= 0 {
		b.WriteString(" SIZE=")
		b.WriteString(strconv.FormatInt(size, 10))
	}
	if env.Body != "" {
		b.WriteString(" BODY=")
		b.WriteString(string(env.Body))
	}
	if env.SMTPUTF8 {
		b.WriteString(" SMTPUTF8")
	}
	if env.RequireTLS {
		b.WriteString(" REQUIRETLS")
	}
	if ext.has("DSN") {
		if env.Return != "" {
			b.WriteString(" RET=")
			b.WriteString(string(env.Return))
		}
		if env.EnvID != "" {
			b.WriteString(" ENVID=")
			b.WriteString(xtext(env.EnvID))
		}
	}
	b.WriteString("\r\n")
	return b.String()
}

// rcptCommand writes RCPT TO with the DSN parameters when the server
// offers DSN (RFC 3461 §4.1, §4.2).
func rcptCommand(r *Recipient, ext extensions) string {
	var b strings.Builder
	b.WriteString("RCPT TO:<")
	b.WriteString(r.Addr)
	b.WriteByte('>')
	if ext.has("DSN") {
		for i, n := range r.Notify {
			if i == 0 {
				b.WriteString(" NOTIFY=")
			} else {
				b.WriteByte(',')
			}
			b.WriteString(string(n))
		}
		if r.ORcpt != "" {
			typ, addr, _ := strings.Cut(r.ORcpt, ";")
			b.WriteString(" ORCPT=")
			b.WriteString(typ)
			b.WriteByte(';')
			b.WriteString(xtext(addr))
		}
	}
	b.WriteString("\r\n")
	return b.String()
}
