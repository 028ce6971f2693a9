package srs

import (
	"context"
	"errors"
	"log/slog"
	"strings"
)

// Reverse maps an SRS address back to the address it was made from (the
// reverse direction of the Sender Rewriting Scheme, libsrs2 srs_reverse):
//
//   - SRS0<sep>HHHH=TT=host=user@any becomes user@host, once the timestamp
//     is at most MaxAge days old and the hash verifies under one of the
//     secrets;
//   - SRS1<sep>HHHH=hop=opaque@any becomes SRS0opaque@hop, the address at
//     the first hop, once the hash verifies;
//   - a database-mode address SRS0<sep>HHHH=TT=1=KEY@any is looked up in the
//     Store (with ctx).
//
// An SRS address is split at its last "@", as Forward splits its input.
// The address Reverse would return must be one Forward accepts: an "@" in
// the original domain or outside quotes in the original local part (as in
// an SRS0 address postsrsd 1.10 made of a@b@orig.example, or one made by
// an earlier version of this package) is an ErrSyntax, checked before the
// timestamp and the hash.
//
// The hash is compared in constant time, ignoring ASCII case, with '+' equal
// to '-' and '/' equal to '_', so both base64 alphabets reverse. The domain
// after "@" is not checked (postsrsd does not check it either); the mail
// system decides which domains it accepts. A hash longer than HashLength is
// truncated before the comparison.
//
// The format is postsrsd's and inherits one weakness of libsrs2: the hash
// covers the fields concatenated without separators, so characters moved
// across the "=" between the original domain and local part (for SRS1:
// between hop and opaque part) leave the hash valid, e.g. a valid
// "...=2V=gmail.co=mvictim@relay" also reverses as
// "...=2V=gmail.com=victim@relay". A forwarder exposed to this should keep
// MaxAge short, or use a Store with StoreAll: there the only movable
// boundary is between "1" and the SHA-1-derived key, so a shifted address
// names no domain an attacker can choose.
//
// Errors are *AddressError values wrapping ErrNotSRS, ErrSyntax, ErrExpired,
// ErrBadHash, ErrTooLong (over 1024 octets), ErrNoStore, ErrUnknownAlias or
// the Store's error. The timestamp is checked before the hash, as libsrs2
// does.
// Reverse never returns an address whose hash did not verify.
func (r *Rewriter) Reverse(ctx context.Context, addr string) (string, error) {
	out, err := r.reverse(ctx, addr)
	if r.log != nil && r.log.Enabled(ctx, slog.LevelDebug) {
		r.log.LogAttrs(ctx, slog.LevelDebug, "srs reverse", slog.String("addr", addr), slog.String("result", out), errAttr(err))
	}
	return out, err
}

func (r *Rewriter) reverse(ctx context.Context, addr string) (string, error) {
	const op = "reverse"
	if len(addr) > maxReverseLen {
		return "", addrErr(op, addr, ErrTooLong, "address longer than 1024 octets")
	}
	if !isSRSTag(addr, '0') && !isSRSTag(addr, '1') {
		return "", addrErr(op, addr, ErrNotSRS, "not an SRS address")
	}
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return "", addrErr(op, addr, ErrSyntax, "no domain")
	}
	local := addr[:at]
	if len(local) < 5 {
		return "", addrErr(op, addr, ErrNotSRS, "not an SRS address")
	}
	rest := local[5:]
	if local[3] == '1' {
		// SRS1<sep>HHHH=hop=opaque (libsrs2 srs_parse_guarded).
		if rest == "" {
			return "", addrErr(op, addr, ErrSyntax, "no hash in SRS1 address")
		}
		hash, rest, ok := strings.Cut(rest, "=")
		if !ok {
			return "", addrErr(op, addr, ErrSyntax, "no host in SRS1 address")
		}
		hop, opaque, ok := strings.Cut(rest, "=")
		if !ok {
			return "", addrErr(op, addr, ErrSyntax, "no user in SRS1 address")
		}
		if hop == "" {
			return "", addrErr(op, addr, ErrSyntax, "no host in SRS1 address")
		}
		if !mailbox("SRS0"+opaque, hop) {
			return "", addrErr(op, addr, ErrSyntax, `"@" outside quotes in SRS1 address`)
		}
		if err := r.hashErr(op, addr, r.checkHash(hash, hop, opaque, "")); err != nil {
			return "", err
		}
		return "SRS0" + opaque + "@" + hop, nil
	}

	// SRS0<sep>HHHH=TT=host=user (libsrs2 srs_parse_shortcut).
	if rest == "" {
		return "", addrErr(op, addr, ErrSyntax, "no hash in SRS0 address")
	}
	hash, rest, ok := strings.Cut(rest, "=")
	if !ok {
		return "", addrErr(op, addr, ErrSyntax, "no timestamp in SRS0 address")
	}
	stamp, rest, ok := strings.Cut(rest, "=")
	if !ok {
		return "", addrErr(op, addr, ErrSyntax, "no host in SRS0 address")
	}
	host, user, ok := strings.Cut(rest, "=")
	if !ok {
		return "", addrErr(op, addr, ErrSyntax, "no user in SRS0 address")
	}
	if host == "" {
		return "", addrErr(op, addr, ErrSyntax, "no host in SRS0 address")
	}
	if user == "" {
		return "", addrErr(op, addr, ErrSyntax, "no user in SRS0 address")
	}
	if !mailbox(user, host) {
		return "", addrErr(op, addr, ErrSyntax, `"@" outside quotes in SRS0 address`)
	}
	if reason, err := r.checkStamp(stamp); err != nil {
		return "", addrErr(op, addr, err, reason)
	}
	if err := r.hashErr(op, addr, r.checkHash(hash, stamp, host, user)); err != nil {
		return "", err
	}
	if host == "1" {
		return r.lookupAlias(ctx, addr, user)
	}
	return user + "@" + host, nil
}

func (r *Rewriter) hashErr(op, addr string, st hashStatus) error {
	switch st {
	case hashShort:
		return addrErr(op, addr, ErrSyntax, "hash too short in SRS address")
	case hashBad:
		return addrErr(op, addr, ErrBadHash, "hash invalid in SRS address")
	}
	return nil
}

// asciiUpper maps ASCII letters only (C toupper in the "C" locale).
func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - ('a' - 'A')
		}
	}
	return string(b)
}

// lookupAlias resolves a database-mode key (postsrsd 2.x: the key is
// compared in upper case).
func (r *Rewriter) lookupAlias(ctx context.Context, addr, key string) (string, error) {
	const op = "reverse"
	if r.store == nil {
		return "", addrErr(op, addr, ErrNoStore, "no database for alias")
	}
	orig, err := r.store.Get(ctx, asciiUpper(key))
	if err != nil {
		if errors.Is(err, ErrUnknownAlias) {
			return "", addrErr(op, addr, ErrUnknownAlias, "unknown alias")
		}
		return "", &AddressError{Op: op, Addr: truncate(addr), Reason: "store: " + err.Error(), Err: err}
	}
	if orig == "" {
		return "", addrErr(op, addr, ErrUnknownAlias, "unknown alias")
	}
	return orig, nil
}
