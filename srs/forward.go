package srs

import (
	"context"
	"crypto/sha1"
	"encoding/base32"
	"log/slog"
	"strings"
	"time"
)

// Forward rewrites the envelope sender addr into an address of the SRS
// domain (the forward direction of the Sender Rewriting Scheme, libsrs2
// srs_forward). With <sep> the configured Separator:
//
//   - user@host becomes SRS0<sep>HHHH=TT=host=user@Domain;
//   - a foreign SRS0<x>rest@hop (x one of "=+-") becomes
//     SRS1<sep>HHHH=hop=<x>rest@Domain, keeping the first hop;
//   - a foreign SRS1<x>HHHH=hop=opaque@other becomes
//     SRS1<sep>HHHH=hop=opaque@Domain, with our hash;
//   - a sender in Domain or LocalDomains is returned unchanged unless
//     AlwaysRewrite is set, and so is the null reverse-path ""
//     (RFC 5321 section 4.5.5).
//
// The address is split at its last "@": the domain follows it (RFC 5321
// section 4.1.2). The local part may hold "@" only inside a quoted string
// ("a@b"@orig.example); an address with an "@" outside quotes, such as
// a@b@orig.example, is not an RFC 5321 Mailbox and is refused with
// ErrSyntax. postsrsd 1.10 splits such an address at its first "@" and
// writes SRS0=HHHH=TT=b@orig.example=a@Domain, which it then refuses to
// reverse ("No user in SRS0 address"), and it refuses the reverse of an
// address split at the last "@" (its hash covers "a", not "a@b"): there is
// no split both can reverse, so Forward makes no address of it.
//
// When the SRS local part would exceed 64 octets (RFC 5321 section 4.5.3.1.1), the
// address goes to the Store if there is one ("SRS0<sep>HHHH=TT=1=KEY@Domain",
// postsrsd 2.x database mode), is written anyway if AllowLongLocalPart is
// set, and is otherwise refused with ErrTooLong. With StoreMode StoreAll
// every non-SRS sender goes to the Store. ctx is passed to the Store.
//
// Errors are *AddressError values wrapping ErrSyntax (no "@", empty local
// part or domain, an "@" outside quotes in the local part, "=" in the domain
// or the domain "1", malformed SRS1 input), ErrTooLong, or the Store's error.
func (r *Rewriter) Forward(ctx context.Context, addr string) (string, error) {
	out, err := r.forward(ctx, addr)
	if r.log != nil && r.log.Enabled(ctx, slog.LevelDebug) {
		r.log.LogAttrs(ctx, slog.LevelDebug, "srs forward", slog.String("addr", addr), slog.String("result", out), errAttr(err))
	}
	return out, err
}

func errAttr(err error) slog.Attr {
	if err == nil {
		return slog.Attr{}
	}
	return slog.String("err", err.Error())
}

func (r *Rewriter) forward(ctx context.Context, addr string) (string, error) {
	if addr == "" {
		return "", nil
	}
	s, err := splitSender(addr)
	if err != nil {
		return "", err
	}
	if !r.always && r.isLocal(s.host) {
		return addr, nil
	}
	if err := s.readSRS(); err != nil {
		return "", err
	}
	return r.rewrite(ctx, s)
}

// sender is an envelope sender that Forward rewrites.
type sender struct {
	addr, user, host string
	// srs is set for a foreign SRS address, whose first hop and opaque
	// rest go into the SRS1 address.
	srs         bool
	hop, opaque string
}

// splitSender splits addr at its last "@" and refuses what Forward cannot
// rewrite.
func splitSender(addr string) (*sender, error) {
	const op = "forward"
	if len(addr) > maxAddrLen {
		return nil, addrErr(op, addr, ErrTooLong, "address longer than 512 octets")
	}
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return nil, addrErr(op, addr, ErrSyntax, "no domain")
	}
	user, host := addr[:at], addr[at+1:]
	if host == "" {
		return nil, addrErr(op, addr, ErrSyntax, "no domain")
	}
	if user == "" {
		return nil, addrErr(op, addr, ErrSyntax, "no local part")
	}
	if atOutsideQuotes(user) {
		return nil, addrErr(op, addr, ErrSyntax, `"@" outside quotes in local part`)
	}
	// The hash covers the fields concatenated without separators, so an
	// "=" in the domain would let Reverse split the address differently
	// under the same hash; "1" is the database-alias marker.
	if strings.IndexByte(host, '=') >= 0 {
		return nil, addrErr(op, addr, ErrSyntax, `"=" in domain`)
	}
	if host == "1" {
		return nil, addrErr(op, addr, ErrSyntax, `domain "1" is reserved for database aliases`)
	}
	return &sender{addr: addr, user: user, host: host}, nil
}

// readSRS finds the fields of a foreign SRS0 or SRS1 local part, which
// Forward keeps.
func (s *sender) readSRS() error {
	const op = "forward"
	switch user := s.user; {
	case asciiEqualFold(user, "SRS1"):
		// libsrs2 takes this for an SRS1 address and finds no fields.
		return addrErr(op, s.addr, ErrSyntax, "no host in SRS1 address")
	case isSRSTag(user, '1'):
		// SRS1<sep>HHHH=hop=opaque: keep hop and opaque (libsrs2
		// srs_compile_guarded).
		rest := user[5:]
		if rest == "" {
			return addrErr(op, s.addr, ErrSyntax, "no hash in SRS1 address")
		}
		i := strings.IndexByte(rest, '=')
		if i < 0 {
			return addrErr(op, s.addr, ErrSyntax, "no host in SRS1 address")
		}
		rest = rest[i+1:]
		j := strings.IndexByte(rest, '=')
		if j < 0 {
			return addrErr(op, s.addr, ErrSyntax, "no user in SRS1 address")
		}
		s.hop, s.opaque = rest[:j], rest[j+1:]
		if s.hop == "" {
			return addrErr(op, s.addr, ErrSyntax, "no host in SRS1 address")
		}
		// Reverse will give SRS0<opaque>@hop: refuse now what it would
		// refuse then.
		if !mailbox("SRS0"+s.opaque, s.hop) {
			return addrErr(op, s.addr, ErrSyntax, `"@" outside quotes in SRS1 address`)
		}
		s.srs = true
	case isSRSTag(user, '0') || asciiEqualFold(user, "SRS0"):
		// SRS0<sep>rest@hop: the whole local part after "SRS0" is opaque.
		// A local part of just "SRS0" counts too (libsrs2 tests the
		// separator with strchr, which also finds the terminating NUL), so
		// our strings stay the same as postsrsd's.
		s.hop, s.opaque = s.host, user[4:]
		s.srs = true
	}
	return nil
}

// rewrite writes the SRS address of s: SRS1 for a foreign SRS address,
// else SRS0, or an SRS0 address of a Store key when the local part would
// be too long or StoreMode says so.
func (r *Rewriter) rewrite(ctx context.Context, s *sender) (string, error) {
	const op = "forward"
	var localLen int
	if s.srs {
		localLen = 4 + 1 + r.hashLen + 1 + len(s.hop) + 1 + len(s.opaque)
	} else {
		localLen = 4 + 1 + r.hashLen + 1 + 2 + 1 + len(s.host) + 1 + len(s.user)
	}
	useStore := r.store != nil && (localLen > maxLocalLen || (r.storeMode == StoreAll && !s.srs))
	if !useStore && localLen > maxLocalLen && !r.allowLong {
		return "", addrErr(op, s.addr, ErrTooLong, "SRS local part would exceed 64 octets and there is no store")
	}
	if useStore {
		key := aliasKey(s.addr)
		if err := r.store.Put(ctx, key, s.addr, r.maxAgeDuration()); err != nil {
			return "", &AddressError{Op: op, Addr: truncate(s.addr), Reason: "store: " + err.Error(), Err: err}
		}
		return r.compileSRS0("1", key), nil
	}
	if s.srs {
		return r.compileSRS1(s.hop, s.opaque), nil
	}
	return r.compileSRS0(s.host, s.user), nil
}

// atOutsideQuotes reports whether local holds an "@" outside a quoted
// string. In RFC 5321 section 4.1.2 a Local-part is a Dot-string, which has
// no "@", or a Quoted-string, inside which "@" may appear and "\" quotes the
// next character. An "@" after a quote that is never closed is outside
// quotes too.
func atOutsideQuotes(local string) bool {
	quoted, atInQuote := false, false
	for i := 0; i < len(local); i++ {
		switch c := local[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted, atInQuote = !quoted, false
		case c == '@':
			if !quoted {
				return true
			}
			atInQuote = true
		}
	}
	return quoted && atInQuote
}

// mailbox reports whether local "@" domain is an address Forward takes
// apart as local and domain: the domain has no "@", the local part none
// outside quotes.
func mailbox(local, domain string) bool {
	return strings.IndexByte(domain, '@') < 0 && !atOutsideQuotes(local)
}

func truncate(addr string) string {
	if len(addr) > 128 {
		return addr[:128] + "..."
	}
	return addr
}

func (r *Rewriter) maxAgeDuration() time.Duration { return time.Duration(r.maxAge) * day }

// isSRSTag reports whether local starts with "SRS0" or "SRS1" (any case)
// followed by one of the separators "=+-" (libsrs2 SRS_IS_SRS_ADDRESS).
func isSRSTag(local string, digit byte) bool {
	return len(local) >= 5 &&
		(local[0]|0x20) == 's' && (local[1]|0x20) == 'r' && (local[2]|0x20) == 's' &&
		local[3] == digit && isSeparator(local[4])
}

func isSeparator(c byte) bool { return c == '=' || c == '+' || c == '-' }

// asciiEqualFold compares ignoring ASCII case only (C strcasecmp): Unicode
// folding would equate "ſ" (U+017F) with "s" or "K" (U+212A) with "k".
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// compileSRS0 writes SRS0<sep>HHHH=TT=host=user@Domain (libsrs2
// srs_compile_shortcut).
func (r *Rewriter) compileSRS0(host, user string) string {
	stamp := makeStamp(r.now())
	d := r.sum(&r.keys[0], string(stamp[:]), host, user)
	var b strings.Builder
	b.Grow(4 + 1 + r.hashLen + 1 + 2 + 1 + len(host) + 1 + len(user) + 1 + len(r.domain))
	b.WriteString("SRS0")
	b.WriteByte(r.sep)
	r.writeHash(&b, &d)
	b.WriteByte('=')
	b.Write(stamp[:])
	b.WriteByte('=')
	b.WriteString(host)
	b.WriteByte('=')
	b.WriteString(user)
	b.WriteByte('@')
	b.WriteString(r.domain)
	return b.String()
}

// compileSRS1 writes SRS1<sep>HHHH=hop=opaque@Domain (libsrs2
// srs_compile_guarded).
func (r *Rewriter) compileSRS1(hop, opaque string) string {
	d := r.sum(&r.keys[0], hop, opaque, "")
	var b strings.Builder
	b.Grow(4 + 1 + r.hashLen + 1 + len(hop) + 1 + len(opaque) + 1 + len(r.domain))
	b.WriteString("SRS1")
	b.WriteByte(r.sep)
	r.writeHash(&b, &d)
	b.WriteByte('=')
	b.WriteString(hop)
	b.WriteByte('=')
	b.WriteString(opaque)
	b.WriteByte('@')
	b.WriteString(r.domain)
	return b.String()
}

func (r *Rewriter) writeHash(b *strings.Builder, d *[sha1.Size]byte) {
	var h [maxHashLen]byte
	encodeHash(h[:], d, r.hashLen, r.enc)
	b.Write(h[:r.hashLen])
}

// aliasKey is the database-mode key of addr: the base32hex (RFC 4648
// section 7) encoding, without padding, of SHA-1 over the address as given
// (postsrsd 2.x postsrsd_forward).
func aliasKey(addr string) string {
	d := sha1.Sum([]byte(addr))
	return base32.HexEncoding.EncodeToString(d[:])
}
