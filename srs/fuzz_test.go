package srs_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/smarthost-go/smarthost/srs"
)

// The fuzz targets check Reverse against refReverse, a plain reading of
// libsrs2's srs_reverse written with crypto/hmac and encoding/base64: Reverse
// may only return an address when the reference verifies the same hash, and
// then the same address. A forged or truncated address is an error.

var fuzzNow = time.Unix(1577836860, 0) // 2020-01-01 00:01:00 UTC, day stamp "2W"

var fuzzSecrets = []string{"tops3cr3t", "an older secret"}

func fuzzRewriter(t testing.TB, mod func(*testOpts)) *srs.Rewriter {
	return mustNew(t, testOpts{Domain: "example.com", Secrets: fuzzSecrets, Options: srs.Options{Now: func() time.Time { return fuzzNow }}}, mod)
}

func refVerify(hash string, fields ...string) bool {
	if len(hash) < 4 {
		return false
	}
	hash = hash[:4]
	for _, s := range fuzzSecrets {
		m := hmac.New(sha1.New, []byte(s))
		for _, f := range fields {
			m.Write([]byte(asciiLower(f)))
		}
		want := base64.StdEncoding.EncodeToString(m.Sum(nil))[:4]
		if foldHash(want) == foldHash(hash) {
			return true
		}
	}
	return false
}

func foldHash(h string) string {
	return strings.NewReplacer("-", "+", "_", "/").Replace(asciiLower(h))
}

// quotedStrings matches RFC 5321 Quoted-strings: what is left of a local
// part without them must hold no "@".
var quotedStrings = regexp.MustCompile(`(?s)"(?:[^"\\]|\\.)*"`)

// refMailbox reports whether local "@" domain is an address Reverse may
// return: no "@" in the domain, none outside quotes in the local part.
func refMailbox(local, domain string) bool {
	return !strings.Contains(domain, "@") && !strings.Contains(quotedStrings.ReplaceAllString(local, ""), "@")
}

// refReverse returns the original address and true, or false.
func refReverse(addr string) (string, bool) {
	if len(addr) > 1024 || len(addr) < 5 {
		return "", false
	}
	tag := asciiUpper(addr[:4])
	if (tag != "SRS0" && tag != "SRS1") || !strings.ContainsRune("=+-", rune(addr[4])) {
		return "", false
	}
	at := strings.LastIndex(addr, "@")
	if at < 0 {
		return "", false
	}
	local := addr[:at]
	if tag == "SRS1" {
		f := strings.SplitN(local[5:], "=", 3)
		if len(f) != 3 || f[1] == "" || !refMailbox("SRS0"+f[2], f[1]) || !refVerify(f[0], f[1], f[2]) {
			return "", false
		}
		return "SRS0" + f[2] + "@" + f[1], true
	}
	f := strings.SplitN(local[5:], "=", 4)
	if len(f) != 4 || f[2] == "" || f[3] == "" || len(f[1]) != 2 || !refMailbox(f[3], f[2]) {
		return "", false
	}
	const b32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	hi, lo := strings.IndexByte(b32, asciiUpper(f[1])[0]), strings.IndexByte(b32, asciiUpper(f[1])[1])
	if hi < 0 || lo < 0 {
		return "", false
	}
	then := hi*32 + lo
	today := int(fuzzNow.Unix()/86400) % 1024
	age := ((today-then)%1024 + 1024) % 1024
	if age > 21 || !refVerify(f[0], f[1], f[2], f[3]) {
		return "", false
	}
	if f[2] == "1" {
		return "", false // database alias, and the fuzz rewriter has no store
	}
	return f[3] + "@" + f[2], true
}

var sentinels = []error{srs.ErrNotSRS, srs.ErrBadHash, srs.ErrExpired, srs.ErrSyntax, srs.ErrTooLong, srs.ErrNoStore, srs.ErrUnknownAlias}

func checkSentinel(t *testing.T, op, addr string, err error) {
	t.Helper()
	for _, s := range sentinels {
		if errors.Is(err, s) {
			var ae *srs.AddressError
			if !errors.As(err, &ae) || ae.Op != op {
				t.Fatalf("%s(%q): %v is not an *AddressError", op, addr, err)
			}
			return
		}
	}
	t.Fatalf("%s(%q): error %v wraps no sentinel", op, addr, err)
}

func reverseSeeds(f *testing.F) {
	r := fuzzRewriter(f, nil)
	for _, a := range []string{"test@otherdomain.com", "SRS0=opaque+string@otherdomain.com", "SRS1=X=thirddomain.com==opaque+string@otherdomain.com", "\"a b\"@x.example", "\"a@b\"@x.example", "a=b@c.example"} {
		out, err := r.Forward(context.Background(), a)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(out)
		f.Add(out[:len(out)/2])
		f.Add(asciiUpper(out))
	}
	for _, a := range []string{
		"SRS0=XjO9=2V=otherdomain.com=test@example.com",
		"SRS0=te87=T7=otherdomain.com=test@example.com",
		"SRS0=FAKE=2V=otherdomain.com=test@example.com",
		"SRS0=-3_5=2W=somedomain.com=hash234@example.com",
		"SRS1=JIBX=thirddomain.com==opaque+string@example.com",
		"SRS0=bxzH=2W=1=DCJGDE6N24LCRT41A4T0G1UIF0DTKKQJ@example.com",
		"SRS0=XjO9=2V=otherdomain.com=a@b@example.com", "SRS0=XjO9=2V=b@otherdomain.com=a@example.com",
		"SRS0=@example.com", "SRS0=XjO9@example.com", "SRS0=XjO9=2V@example.com", "SRS1=@x", "SRS1+a=b=@c", "srs0-", "",
	} {
		f.Add(a)
	}
}

func FuzzReverse(f *testing.F) {
	reverseSeeds(f)
	r := fuzzRewriter(f, nil)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, addr string) {
		got, err := r.Reverse(ctx, addr)
		want, ok := refReverse(addr)
		if err != nil {
			checkSentinel(t, "reverse", addr, err)
			if ok {
				t.Fatalf("Reverse(%q) = %v; the reference gives %q", addr, err, want)
			}
			return
		}
		if !ok || got != want {
			t.Fatalf("Reverse(%q) = %q; the reference gives %q, %t", addr, got, want, ok)
		}
	})
}

func FuzzForward(f *testing.F) {
	for _, a := range []string{
		"test@otherdomain.com", "test@example.com", "TEST@Example.COM", "foo", "", "\"\"", "@x", "x@",
		"user+tag@sub.example.org", "\"quoted name\"@x.example", "\"a@b\"@x.example", "a@b@x.example", "\"a\\\"@b@x.example", "a=b@c.example", "a@b=c",
		"SRS0=opaque+string@otherdomain.com", "SRS1=X=thirddomain.com==opaque+string@otherdomain.com",
		"SRS0@x.example", "SRS1@x.example", "srs1=@x", "SRS1=h=@x", "x@1", strings.Repeat("a", 60) + "@example.net",
	} {
		f.Add(a)
	}
	store := &srs.MemoryStore{Now: func() time.Time { return fuzzNow }}
	plain := fuzzRewriter(f, func(o *testOpts) { o.AllowLongLocalPart = true })
	stored := fuzzRewriter(f, func(o *testOpts) { o.Store = store; o.Separator = '+' })
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, addr string) {
		for _, r := range []*srs.Rewriter{plain, stored} {
			out, err := r.Forward(ctx, addr)
			if err != nil {
				checkSentinel(t, "forward", addr, err)
				continue
			}
			if out == addr {
				continue // null sender or local domain
			}
			if r == stored {
				if at := strings.LastIndexByte(out, '@'); at > 64 {
					t.Fatalf("Forward(%q) = %q: local part over 64 octets with a store", addr, out)
				}
			}
			back, err := r.Reverse(ctx, out)
			if err != nil {
				t.Fatalf("Reverse(Forward(%q) = %q) = %v", addr, out, err)
			}
			if r == stored && back == addr && strings.Contains(out, "=1=") {
				continue // database alias: the original comes back as it was
			}
			want := addr
			at := strings.LastIndexByte(addr, '@')
			tag := asciiUpper(addr[:min(4, at)])
			switch {
			case tag == "SRS0" && (at == 4 || strings.IndexByte("=+-", addr[4]) >= 0):
				want = "SRS0" + addr[4:]
			case tag == "SRS1" && strings.IndexByte("=+-", addr[4]) >= 0:
				p := strings.SplitN(addr[5:at], "=", 3)
				want = "SRS0" + p[2] + "@" + p[1]
			}
			if back != want {
				t.Fatalf("Reverse(Forward(%q) = %q) = %q, want %q", addr, out, back, want)
			}
		}
	})
}
