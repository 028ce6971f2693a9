package srs_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smarthost-go/smarthost/srs"
)

// Expected strings below come from postsrsd's own tests (the vectors file),
// from FORMAT.md's description of libsrs2, or from crypto/hmac computed here.

var vecNow = time.Unix(1577836860, 0) // stamp "2W" (day 18262, 18262 mod 1024 = 854 = 26*32+22)

func newR(t *testing.T, mod func(*testOpts)) *srs.Rewriter {
	t.Helper()
	return mustNew(t, testOpts{Domain: "example.com", Secrets: []string{"tops3cr3t"}, Options: srs.Options{Now: func() time.Time { return vecNow }}}, mod)
}

// testOpts holds the arguments of NewRewriter in one value that a test can
// change.
type testOpts struct {
	Domain  string
	Secrets []string
	srs.Options
}

func (o *testOpts) new() (*srs.Rewriter, error) {
	return srs.NewRewriter(o.Domain, o.Secrets, &o.Options)
}

// mustNew returns a Rewriter of o after mod (when not nil) changes it, or
// fails t.
func mustNew(t testing.TB, o testOpts, mod func(*testOpts)) *srs.Rewriter {
	t.Helper()
	if mod != nil {
		mod(&o)
	}
	r, err := o.new()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	const secret = "do-not-print-me"
	ok := testOpts{Domain: "example.com", Secrets: []string{secret}}
	for _, tc := range []struct {
		name string
		mod  func(*testOpts)
	}{
		{"no domain", func(o *testOpts) { o.Domain = "" }},
		{"domain with @", func(o *testOpts) { o.Domain = "a@b" }},
		{"domain with space", func(o *testOpts) { o.Domain = "a b" }},
		{"bad local domain", func(o *testOpts) { o.LocalDomains = []string{"x=y"} }},
		{"no secrets", func(o *testOpts) { o.Secrets = nil }},
		{"empty secret", func(o *testOpts) { o.Secrets = []string{secret, ""} }},
		{"separator", func(o *testOpts) { o.Separator = '/' }},
		{"hash too long", func(o *testOpts) { o.HashLength = 27 }},
		{"hash negative", func(o *testOpts) { o.HashLength = -1 }},
		{"hashmin above length", func(o *testOpts) { o.HashLength = 4; o.HashMin = 5 }},
		{"max age partial day", func(o *testOpts) { o.MaxAge = 36 * time.Hour }},
		{"max age wraps", func(o *testOpts) { o.MaxAge = 1024 * 24 * time.Hour }},
		{"alphabet", func(o *testOpts) { o.Alphabet = 7 }},
		{"store mode", func(o *testOpts) { o.StoreMode = 9 }},
	} {
		o := ok
		tc.mod(&o)
		r, err := o.new()
		if err == nil {
			t.Errorf("%s: New accepted %+v: %v", tc.name, o.Domain, r)
			continue
		}
		if strings.Contains(err.Error(), secret) || !strings.HasPrefix(err.Error(), "srs: ") {
			t.Errorf("%s: error %q", tc.name, err)
		}
	}
	if _, err := srs.NewRewriter("example.com", []string{secret}, nil); err != nil {
		t.Errorf("nil options: %v", err)
	}
	r, err := ok.new()
	if err != nil {
		t.Fatal(err)
	}
	s := r.String() + fmt.Sprintf("%v %+v", r, r)
	if strings.Contains(s, secret) {
		t.Errorf("String leaks the secret: %s", s)
	}
	if !strings.Contains(r.String(), "hash=4") || !strings.Contains(r.String(), "max-age=21d") || !strings.Contains(r.String(), "separator==") {
		t.Errorf("defaults not as documented: %s", r)
	}
}

// The hash is the RFC 4648 base64 prefix of HMAC-SHA1 over the lowercased
// fields: checked against crypto/hmac for every length and for secrets
// longer than the SHA-1 block (RFC 2104 hashes those first).
func TestHashMatchesHMAC(t *testing.T) {
	t.Parallel()
	for _, secret := range []string{"tops3cr3t", strings.Repeat("long secret ", 10)} {
		for n := 1; n <= 26; n++ {
			r := newR(t, func(o *testOpts) { o.Secrets = []string{secret}; o.HashLength = n; o.Alphabet = srs.Base64Std })
			out, err := r.Forward(context.Background(), "Alice.Smith@Other.Example")
			if err != nil {
				t.Fatal(err)
			}
			m := hmac.New(sha1.New, []byte(secret))
			m.Write([]byte("2w" + "other.example" + "alice.smith"))
			want := "SRS0=" + base64.StdEncoding.EncodeToString(m.Sum(nil))[:n] + "=2W=Other.Example=Alice.Smith@example.com"
			if out != want {
				t.Errorf("len %d: %q, want %q", n, out, want)
			}
		}
	}
}

func TestAlphabetsAndSeparators(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// postsrsd 2.x vector: base64url by default ...
	if out, _ := newR(t, nil).Forward(ctx, "hash234@somedomain.com"); out != "SRS0=-3_5=2W=somedomain.com=hash234@example.com" {
		t.Errorf("base64url: %q", out)
	}
	// ... and the same hash in standard base64 (its 1.x form, which the
	// 2.x vectors reverse).
	std := newR(t, func(o *testOpts) { o.Alphabet = srs.Base64Std; o.Separator = '+' })
	out, _ := std.Forward(ctx, "hash234@somedomain.com")
	if out != "SRS0++3/5=2W=somedomain.com=hash234@example.com" {
		t.Errorf("base64 with + separator: %q", out)
	}
	// The separator is not covered by the hash: any of =+- reverses.
	for _, sep := range "=+-" {
		a := "SRS0" + string(sep) + "+3/5=2W=somedomain.com=hash234@example.com"
		if back, err := newR(t, nil).Reverse(ctx, a); err != nil || back != "hash234@somedomain.com" {
			t.Errorf("Reverse(%q) = %q, %v", a, back, err)
		}
	}
	out, _ = newR(t, func(o *testOpts) { o.Separator = '-' }).Forward(ctx, "SRS0=opaque+string@otherdomain.com")
	if out != "SRS1-chaI=otherdomain.com==opaque+string@example.com" {
		t.Errorf("SRS1 with - separator: %q", out)
	}
}

func TestSecretRotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	old := newR(t, func(o *testOpts) { o.Secrets = []string{"old"} })
	both := newR(t, func(o *testOpts) { o.Secrets = []string{"new", "old"} })
	onlyNew := newR(t, func(o *testOpts) { o.Secrets = []string{"new"} })
	a, _ := old.Forward(ctx, "user@other.example")
	b, _ := both.Forward(ctx, "user@other.example")
	c, _ := onlyNew.Forward(ctx, "user@other.example")
	if b != c || a == b {
		t.Fatalf("the first secret must sign: old %q, both %q, new %q", a, b, c)
	}
	for _, x := range []string{a, b} {
		if back, err := both.Reverse(ctx, x); err != nil || back != "user@other.example" {
			t.Errorf("rotated Reverse(%q) = %q, %v", x, back, err)
		}
	}
	if _, err := onlyNew.Reverse(ctx, a); !errors.Is(err, srs.ErrBadHash) {
		t.Errorf("retired secret still verifies: %v", err)
	}
}

// Timestamps: valid up to MaxAge days old, modulo 1024 days; a stamp from
// the future has wrapped and is about 1000 days old (libsrs2
// srs_timestamp_check).
func TestTimestampAge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	signer := func(at time.Time) *srs.Rewriter {
		return newR(t, func(o *testOpts) { o.Now = func() time.Time { return at } })
	}
	a, _ := signer(vecNow).Forward(ctx, "user@other.example")
	for _, tc := range []struct {
		days   int
		maxAge time.Duration
		err    error
	}{
		{0, 0, nil}, {21, 0, nil}, {22, 0, srs.ErrExpired}, {-1, 0, srs.ErrExpired},
		{1024, 0, nil}, {1024 + 21, 0, nil}, {1024 + 22, 0, srs.ErrExpired},
		{29, 30 * 24 * time.Hour, nil}, {31, 30 * 24 * time.Hour, srs.ErrExpired},
		{1, 24 * time.Hour, nil}, {2, 24 * time.Hour, srs.ErrExpired},
	} {
		later := vecNow.Add(time.Duration(tc.days) * 24 * time.Hour)
		r := newR(t, func(o *testOpts) { o.Now = func() time.Time { return later }; o.MaxAge = tc.maxAge })
		_, err := r.Reverse(ctx, a)
		if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
			t.Errorf("%d days later, max age %v: %v, want %v", tc.days, tc.maxAge, err, tc.err)
		}
	}
	// postsrsd vectors: stamps T7 and 7N are out of date on 2020-01-01.
	if _, err := newR(t, nil).Reverse(ctx, "SRS0=te87=T7=otherdomain.com=test@example.com"); !errors.Is(err, srs.ErrExpired) {
		t.Errorf("T7: %v", err)
	}
	if _, err := newR(t, nil).Reverse(ctx, "SRS0=XjO9=2!=otherdomain.com=test@example.com"); !errors.Is(err, srs.ErrSyntax) {
		t.Errorf("bad stamp character: %v", err)
	}
}

func TestHashChecks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newR(t, nil)
	const good = "SRS0=XjO9=2V=otherdomain.com=test@example.com" // postsrsd vector
	for _, tc := range []struct {
		addr string
		err  error
	}{
		{good, nil},
		{"SRS0=xjo9=2v=otherdomain.com=test@example.com", nil},
		{"SRS0=XJO9=2V=OTHERDOMAIN.COM=TEST@EXAMPLE.COM", nil},
		{"SRS0=XjO9extra=2V=otherdomain.com=test@example.com", nil}, // truncated to HashLength
		{"SRS0=XjO=2V=otherdomain.com=test@example.com", srs.ErrSyntax},
		{"SRS0==2V=otherdomain.com=test@example.com", srs.ErrSyntax},
		{"SRS0=XjO8=2V=otherdomain.com=test@example.com", srs.ErrBadHash},
		{"SRS0=XjO9=2V=otherdomain.com=tesT2@example.com", srs.ErrBadHash},
		// libsrs2 hashes the fields concatenated without separators, so
		// moving the boundary between domain and local part keeps the hash
		// valid; postsrsd accepts this too. Documented on Reverse.
		{"SRS0=XjO9=2V=otherdomain.co=mtest@example.com", nil},
		{"SRS0=XjO9=2V=otherdomain.com=test@elsewhere.example", nil}, // domain not checked, as postsrsd
		{"SRS0=XjO9=2V==test@example.com", srs.ErrSyntax},
		{"SRS0=XjO9=2V=otherdomain.com=@example.com", srs.ErrSyntax},
		{"SRS0=XjO9=2V=otherdomain.com=test", srs.ErrSyntax},
		{"SRS2=XjO9=2V=otherdomain.com=test@example.com", srs.ErrNotSRS},
		{"SRS0/XjO9=2V=otherdomain.com=test@example.com", srs.ErrNotSRS},
		{"", srs.ErrNotSRS},
		{"SRS1=JIBX=thirddomain.com==opaque+string@example.com", nil},
		{"SRS1=JIBY=thirddomain.com==opaque+string@example.com", srs.ErrBadHash},
		{"SRS1=JIBX==opaque+string@example.com", srs.ErrSyntax},
		{"SRS1=JIBX@example.com", srs.ErrSyntax},
		{"SRS1=@example.com", srs.ErrSyntax},
		{"SRS0=XjO9=2V=otherdomain.com=" + strings.Repeat("x", 1000) + "@example.com", srs.ErrTooLong},
		{"SRS0=XjO9=2V=otherdomain.com=" + strings.Repeat("x", 500) + "@example.com", srs.ErrBadHash},
	} {
		_, err := r.Reverse(ctx, tc.addr)
		if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
			t.Errorf("Reverse(%q) = %v, want %v", tc.addr, err, tc.err)
		}
		if err != nil && !strings.Contains(err.Error(), strings.TrimSuffix(tc.addr[:min(len(tc.addr), 40)], "")) {
			t.Errorf("error %q does not name the address", err)
		}
	}
	// HashMin below HashLength accepts shorter hashes (postsrsd -N).
	short := newR(t, func(o *testOpts) { o.HashLength = 4; o.HashMin = 3 })
	if back, err := short.Reverse(ctx, "SRS0=XjO=2V=otherdomain.com=test@example.com"); err != nil || back != "test@otherdomain.com" {
		t.Errorf("HashMin 3: %q, %v", back, err)
	}
}

func TestLocalDomains(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newR(t, func(o *testOpts) { o.LocalDomains = []string{"Other.Example", ".corp.example"} })
	for _, tc := range []struct {
		addr      string
		unchanged bool
	}{
		{"a@example.com", true}, {"a@EXAMPLE.COM", true}, {"a@other.example", true},
		{"a@x.corp.example", true}, {"a@X.Y.CORP.example", true}, {"a@corp.example", false},
		{"a@sub.example.com", false}, {"a@notexample.com", false}, {"", true},
		{"SRS0=XjO9=2V=otherdomain.com=test@example.com", true},
		{"a@example.\u212Aom", false}, // Kelvin sign: only ASCII case is ignored
	} {
		out, err := r.Forward(ctx, tc.addr)
		if err != nil || (out == tc.addr) != tc.unchanged {
			t.Errorf("Forward(%q) = %q, %v; unchanged=%t", tc.addr, out, err, tc.unchanged)
		}
	}
	always := newR(t, func(o *testOpts) { o.AlwaysRewrite = true })
	out, err := always.Forward(ctx, "test@example.com")
	if err != nil || !strings.HasPrefix(out, "SRS0=") || !strings.HasSuffix(out, "=2W=example.com=test@example.com") {
		t.Errorf("AlwaysRewrite: %q, %v", out, err)
	}
	if back, err := always.Reverse(ctx, out); err != nil || back != "test@example.com" {
		t.Errorf("AlwaysRewrite reverse: %q, %v", back, err)
	}
}

func TestForwardErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newR(t, nil)
	// "SRſ0" is not "SRS0": only ASCII case is ignored (found by FuzzForward).
	if out, err := r.Forward(ctx, "SR\u017f0@x.example"); err != nil || !strings.HasSuffix(out, "=x.example=SR\u017f0@example.com") {
		t.Errorf("Forward(SRſ0@x.example) = %q, %v", out, err)
	}
	for _, a := range []string{"foo", "\"\"", "@x.example", "x@", "a@b=c", "a@1", "SRS1@x.example", "SRS1=@x.example", "SRS1=h@x.example", "SRS1=h=@x.example",
		strings.Repeat("a", 60) + "@example.net", "a@" + strings.Repeat("b", 520)} {
		out, err := r.Forward(ctx, a)
		var ae *srs.AddressError
		if err == nil || out != "" || !errors.As(err, &ae) || ae.Op != "forward" || !strings.HasPrefix(err.Error(), "srs: forward ") {
			t.Errorf("Forward(%q) = %q, %v", a, out, err)
		}
		if !errors.Is(err, srs.ErrSyntax) && !errors.Is(err, srs.ErrTooLong) {
			t.Errorf("Forward(%q): %v wraps neither ErrSyntax nor ErrTooLong", a, err)
		}
	}
}

type failStore struct{ err error }

func (f failStore) Put(context.Context, string, string, time.Duration) error { return f.err }
func (f failStore) Get(context.Context, string) (string, error)              { return "", f.err }

func TestStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := vecNow
	store := &srs.MemoryStore{Now: func() time.Time { return now }}
	r := newR(t, func(o *testOpts) { o.Store = store; o.StoreMode = srs.StoreAll })
	// postsrsd 2.x database-mode vector.
	out, err := r.Forward(ctx, "test@otherdomain.com")
	if err != nil || out != "SRS0=bxzH=2W=1=DCJGDE6N24LCRT41A4T0G1UIF0DTKKQJ@example.com" {
		t.Fatalf("database mode: %q, %v", out, err)
	}
	// The entry lives MaxAge (21 days) and not longer.
	now = vecNow.Add(21*24*time.Hour - time.Second)
	if _, err := store.Get(ctx, "DCJGDE6N24LCRT41A4T0G1UIF0DTKKQJ"); err != nil {
		t.Errorf("entry gone before MaxAge: %v", err)
	}
	now = vecNow.Add(21*24*time.Hour + time.Second)
	if _, err := store.Get(ctx, "DCJGDE6N24LCRT41A4T0G1UIF0DTKKQJ"); !errors.Is(err, srs.ErrUnknownAlias) {
		t.Errorf("entry alive after MaxAge: %v", err)
	}
	// A failing store: its error is wrapped, the address named.
	boom := errors.New("disk on fire")
	bad := newR(t, func(o *testOpts) { o.Store = failStore{boom}; o.StoreMode = srs.StoreAll })
	if _, err := bad.Forward(ctx, "a@b.example"); !errors.Is(err, boom) || !strings.Contains(err.Error(), "a@b.example") {
		t.Errorf("store failure: %v", err)
	}
	if _, err := bad.Reverse(ctx, out); !errors.Is(err, boom) {
		t.Errorf("store failure on reverse: %v", err)
	}
	// SRS addresses are not stored in StoreAll mode (postsrsd 2.x).
	out, err = r.Forward(ctx, "SRS0=opaque+string@otherdomain.com")
	if err != nil || out != "SRS1=chaI=otherdomain.com==opaque+string@example.com" {
		t.Errorf("SRS0 input in database mode: %q, %v", out, err)
	}
	// A cancelled context reaches the store.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := r.Forward(cctx, "c@d.example"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestMemoryStoreSweeps(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Unix(0, 0)
	s := &srs.MemoryStore{Now: func() time.Time { return now }}
	for i := range 100 {
		s.Put(ctx, fmt.Sprint(i), "a@b", time.Hour)
	}
	now = now.Add(2 * time.Hour)
	for i := range 200 {
		s.Put(ctx, fmt.Sprint("n", i), "a@b", time.Hour)
	}
	if s.Len() > 250 {
		t.Errorf("expired entries not swept: %d", s.Len())
	}
	if v, err := s.Get(ctx, "n5"); err != nil || v != "a@b" {
		t.Errorf("Get = %q, %v", v, err)
	}
}

func TestLoggerNeverSeesSecret(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r := newR(t, func(o *testOpts) { o.Logger = log; o.Secrets = []string{"s3cr3t-value"} })
	out, _ := r.Forward(context.Background(), "a@b.example")
	r.Reverse(context.Background(), out)
	r.Reverse(context.Background(), "SRS0=AAAA=2W=b.example=a@example.com")
	got := buf.String()
	if strings.Count(got, "\n") != 3 || !strings.Contains(got, "srs forward") || !strings.Contains(got, "hash invalid") {
		t.Errorf("log:\n%s", got)
	}
	if strings.Contains(got, "s3cr3t") {
		t.Errorf("secret in log:\n%s", got)
	}
}

func TestConcurrent(t *testing.T) {
	t.Parallel()
	r := newR(t, func(o *testOpts) { o.Store = &srs.MemoryStore{}; o.StoreMode = srs.StoreAll })
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				a := fmt.Sprintf("u%d.%d@example.net", g, i)
				out, err := r.Forward(context.Background(), a)
				if err != nil {
					t.Error(err)
					return
				}
				if back, err := r.Reverse(context.Background(), out); err != nil || back != a {
					t.Errorf("%q -> %q -> %q, %v", a, out, back, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// An address with "@" inside a quoted local part is split at its last "@"
// (RFC 5321 section 4.1.2: the domain follows the last "@").
func TestQuotedAtSign(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newR(t, nil)
	for _, tc := range []struct{ addr, suffix string }{
		{`"a@b"@other.example`, `=2W=other.example="a@b"@example.com`},
		{`"a\"@b"@other.example`, `=2W=other.example="a\"@b"@example.com`},
		{`"@"@other.example`, `=2W=other.example="@"@example.com`},
		{`x."a@b"@other.example`, `=2W=other.example=x."a@b"@example.com`},
		// The quoted string does not carry over from the domain: Reverse
		// reads the fields before it looks at the quotes.
		{`"a@b"@odd"domain`, `=2W=odd"domain="a@b"@example.com`},
	} {
		out, err := r.Forward(ctx, tc.addr)
		if err != nil || !strings.HasSuffix(out, tc.suffix) {
			t.Errorf("Forward(%q) = %q, %v; want suffix %q", tc.addr, out, err, tc.suffix)
			continue
		}
		if back, err := r.Reverse(ctx, out); err != nil || back != tc.addr {
			t.Errorf("Reverse(%q) = %q, %v; want %q", out, back, err, tc.addr)
		}
	}
	// SRS0 and SRS1 addresses of quoted local parts make the round trip too.
	s1, err := r.Forward(ctx, `SRS0="a@b"@hop.example`)
	if err != nil || !strings.HasSuffix(s1, `=hop.example=="a@b"@example.com`) {
		t.Fatalf("Forward(SRS0) = %q, %v", s1, err)
	}
	if back, err := r.Reverse(ctx, s1); err != nil || back != `SRS0="a@b"@hop.example` {
		t.Errorf("Reverse(%q) = %q, %v", s1, back, err)
	}
}

// srs0 writes the SRS0 address of stamp, host and user under "tops3cr3t"
// with crypto/hmac, valid hash included, whatever the fields hold.
func srs0(stamp, host, user string) string {
	m := hmac.New(sha1.New, []byte("tops3cr3t"))
	m.Write([]byte(strings.ToLower(stamp + host + user)))
	return "SRS0=" + base64.StdEncoding.EncodeToString(m.Sum(nil))[:4] + "=" + stamp + "=" + host + "=" + user + "@example.com"
}

// An "@" outside quotes in a local part is not RFC 5321 syntax (section
// 4.1.2: a Local-part is a Dot-string or a Quoted-string): Forward refuses
// such an address, and Reverse refuses to return one, however the address
// is split and even when the hash verifies.
func TestUnquotedAtSign(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newR(t, nil)
	for _, a := range []string{
		"a@b@orig.example", "a@example.com@orig.example", "@a@orig.example", "a@@orig.example",
		`"a"@b@orig.example`, `a@"b"@orig.example`, `"a\"@b@orig.example`,
		"SRS0=x@y@orig.example", "SRS0=XjO9=2V=otherdomain.com=a@b@orig.example",
		"SRS1=HHHH=hop.example==a@b@orig.example", `SRS1="=b@c"=opaque@orig.example`,
	} {
		out, err := r.Forward(ctx, a)
		var ae *srs.AddressError
		if !errors.Is(err, srs.ErrSyntax) || !errors.As(err, &ae) || out != "" || !strings.Contains(ae.Reason, `"@" outside quotes`) {
			t.Errorf("Forward(%q) = %q, %v; want ErrSyntax for the \"@\"", a, out, err)
		}
	}
	s1, err := r.Forward(ctx, "SRS0=x@hop.example")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{
		srs0("2W", "orig.example", "a@b"),                         // a@b@orig.example split at the last "@"
		srs0("2W", "b@orig.example", "a"),                         // split at the first "@" (postsrsd 1.10)
		srs0("2W", "orig.example", `"a"@b`),                       // the quote closes before the "@"
		strings.Replace(s1, "=x@", "=x@y@", 1),                    // SRS1 with an "@" in its opaque part
		strings.Replace(s1, "=hop.example=", "=h@op.example=", 1), // and in its hop
	} {
		out, err := r.Reverse(ctx, a)
		var ae *srs.AddressError
		if !errors.Is(err, srs.ErrSyntax) || !errors.As(err, &ae) || out != "" || !strings.Contains(ae.Reason, `"@" outside quotes`) {
			t.Errorf("Reverse(%q) = %q, %v; want ErrSyntax for the \"@\"", a, out, err)
		}
	}
	// The same fields without the extra "@" verify: the hash is not why.
	if back, err := r.Reverse(ctx, srs0("2W", "orig.example", `"a@b"`)); err != nil || back != `"a@b"@orig.example` {
		t.Errorf("quoted: %q, %v", back, err)
	}
}
