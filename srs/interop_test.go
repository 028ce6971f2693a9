package srs_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/smarthost-go/smarthost/internal/peertest"
	"github.com/smarthost-go/smarthost/srs"
)

// Differential test against Debian's postsrsd 1.10 (package postsrsd), a
// TCP lookup-table daemon: one port forwards, one reverses; a request is
// "get <url-encoded address>\n", a reply "200 <url-encoded result>\n" or
// "500 <reason>\n".

type postsrsd struct {
	fwd, rev *lookupConn
}

type lookupConn struct {
	c net.Conn
	r *bufio.Reader
}

func (l *lookupConn) get(t testing.TB, addr string) (code int, value string) {
	t.Helper()
	l.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(l.c, "get %s\n", tcpTableEncode(addr)); err != nil {
		t.Fatal(err)
	}
	line, err := l.r.ReadString('\n')
	if err != nil {
		t.Fatalf("postsrsd: reading reply to %q: %v", addr, err)
	}
	line = strings.TrimRight(line, "\n")
	codeStr, rest, _ := strings.Cut(line, " ")
	code, err = strconv.Atoi(codeStr)
	if err != nil {
		t.Fatalf("postsrsd: bad reply %q", line)
	}
	if code == 200 {
		v, err := url.PathUnescape(rest)
		if err != nil {
			t.Fatalf("postsrsd: bad encoding in %q: %v", line, err)
		}
		return code, v
	}
	return code, rest
}

// tcpTableEncode escapes as Postfix's tcp_table does: '%', white space,
// control and non-ASCII octets become %XX.
func tcpTableEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '%' {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startPostsrsd runs postsrsd on 127.0.0.1 with the given secrets and extra
// flags; it is killed (by its pid) when the test ends.
func startPostsrsd(t testing.TB, domain string, secrets []string, flags ...string) *postsrsd {
	t.Helper()
	bin := peertest.Program(t, "postsrsd")
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secrets")
	if err := os.WriteFile(secretFile, []byte(strings.Join(secrets, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(dir, "pid")
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		fport, rport := freePort(t), freePort(t)
		if fport == rport {
			continue
		}
		args := append([]string{"-s", secretFile, "-d", domain, "-l", "127.0.0.1", "-4",
			"-f", strconv.Itoa(fport), "-r", strconv.Itoa(rport), "-p", pidFile}, flags...)
		if os.Geteuid() == 0 {
			args = append(args, "-u", "nobody")
		}
		cmd := exec.Command(bin, args...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pid := cmd.Process.Pid
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		t.Cleanup(func() {
			cmd.Process.Kill() // the daemon, by its pid
			<-done
		})
		p := &postsrsd{}
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case <-done:
				lastErr = fmt.Errorf("postsrsd exited: %s", stderr.String())
			default:
			}
			if lastErr != nil {
				break
			}
			fc, err1 := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(fport))
			if err1 != nil {
				time.Sleep(20 * time.Millisecond)
				continue
			}
			rc, err2 := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(rport))
			if err2 != nil {
				fc.Close()
				time.Sleep(20 * time.Millisecond)
				continue
			}
			t.Cleanup(func() { fc.Close(); rc.Close() })
			p.fwd = &lookupConn{fc, bufio.NewReader(fc)}
			p.rev = &lookupConn{rc, bufio.NewReader(rc)}
			break
		}
		if p.fwd != nil {
			// postsrsd may accept connections before it writes its pid
			// file: wait for the file, which must name the process started.
			var b []byte
			var err error
			for {
				b, err = os.ReadFile(pidFile)
				if err == nil && strings.TrimSpace(string(b)) != "" || time.Now().After(deadline) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(pid) {
				t.Fatalf("postsrsd pid file %q, %v; started pid %d", b, err, pid)
			}
			return p
		}
		if lastErr == nil {
			lastErr = errors.New("postsrsd did not accept connections")
		}
	}
	t.Fatalf("cannot start postsrsd: %v", lastErr)
	return nil
}

// interopAddresses generates senders: odd local parts, + tags, quoted
// forms, upper case, non-ASCII, foreign SRS0/SRS1 addresses, local ones.
// Local parts containing "@" are left out: postsrsd splits an address at
// its first "@", we at the last and only inside quotes
// (TestPostsrsdDivergences, TestPostsrsdUnquotedAtSign).
func interopAddresses(t *testing.T, seed uint64, domain string) []string {
	locals := []string{
		"test", "alice", "Bob.Smith", "UPPER", "first.last", "user+tag", "user+Tag+more",
		"o'hara", "x_y-z", "a!b#c$d&e*f", "{braces}|~`^", "dots..inside", "a=b", "a==b",
		"ends=", "=starts", "\"quoted name\"", "\"Mixed Case\"", "jörg",
		"ÜBER", "percent%sign", "slash/and?question", "SRSX=not=srs", "srs2=x", "SRS0",
		"srs", "sRs0", "SRS1", "srs1=", "SRS1=onlyhash", "1", "0", strings.Repeat("x", 40),
	}
	domains := []string{"otherdomain.com", "Mixed.Example.ORG", "sub.sub.example.net", "xn--bcher-kva.example", "1.2.3.4.in-addr.example", "[192.0.2.1]"}
	rng := rand.New(rand.NewPCG(seed, 17))
	var out []string
	for _, l := range locals {
		for range 2 {
			out = append(out, l+"@"+domains[rng.IntN(len(domains))])
		}
	}
	// Local senders, any case.
	out = append(out, "me@"+domain, "Me@"+strings.ToUpper(domain))
	// Foreign SRS addresses made by a first hop with another secret.
	now := time.Now()
	hop1, err := srs.NewRewriter("hop1.example", []string{"hop1 secret"}, &srs.Options{Alphabet: srs.Base64Std, Now: func() time.Time { return now }, AllowLongLocalPart: true})
	if err != nil {
		t.Fatal(err)
	}
	hop2, err := srs.NewRewriter("Hop2.example", []string{"hop2 secret"}, &srs.Options{Separator: '+', Now: func() time.Time { return now }, AllowLongLocalPart: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 12 {
		orig := locals[rng.IntN(len(locals))] + "@" + domains[i%len(domains)]
		s0, err := hop1.Forward(ctx, orig)
		if err != nil {
			continue // e.g. a malformed SRS1 local part
		}
		s1, err := hop2.Forward(ctx, s0)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s0, s1, asciiLower(s0), asciiUpper(s1))
	}
	out = append(out,
		"SRS0=opaque+string@otherdomain.com",
		"SRS0+x@otherdomain.com",
		"srs0-anything=goes@otherdomain.com",
		"SRS1=X=thirddomain.com==opaque+string@otherdomain.com",
		"SRS1+HASH=third.example=-opaque@Other.example",
	)
	return out
}

type interopConfig struct {
	name    string
	secrets []string // postsrsd's, first signs
	ours    []string // ours, first signs (rotation: may differ in order)
	sep     byte
	hashLen int
	hashMin int
}

func TestPostsrsdInterop(t *testing.T) {
	configs := []interopConfig{
		{name: "default", secrets: []string{"tops3cr3t"}, ours: []string{"tops3cr3t"}, sep: '='},
		{name: "plus-rotation", secrets: []string{"new secret", "old secret"}, ours: []string{"new secret", "old secret"}, sep: '+'},
		// We sign with the second of postsrsd's secrets: it must verify ours
		// with its old secret, and we must verify its with our old secret.
		{name: "minus-rotated-order", secrets: []string{"Alpha", "Beta"}, ours: []string{"Beta", "Alpha"}, sep: '-'},
		{name: "hash8-min5", secrets: []string{"k3y with spaces"}, ours: []string{"k3y with spaces"}, sep: '=', hashLen: 8, hashMin: 5},
	}
	for i, cfg := range configs {
		t.Run(cfg.name, func(t *testing.T) {
			const domain = "example.com"
			flags := []string{"-a", string(cfg.sep)}
			if cfg.hashLen != 0 {
				flags = append(flags, "-n", strconv.Itoa(cfg.hashLen), "-N", strconv.Itoa(cfg.hashMin))
			}
			p := startPostsrsd(t, domain, cfg.secrets, flags...)
			base := testOpts{Domain: domain, Secrets: cfg.ours, Options: srs.Options{Separator: cfg.sep, HashLength: cfg.hashLen, HashMin: cfg.hashMin, AllowLongLocalPart: true}}
			std := base
			std.Alphabet = srs.Base64Std
			ours, err := std.new()
			if err != nil {
				t.Fatal(err)
			}
			urlR, err := base.new() // default base64url alphabet
			if err != nil {
				t.Fatal(err)
			}
			sameSigner := cfg.secrets[0] == cfg.ours[0]
			checked := 0
			for _, addr := range interopAddresses(t, uint64(i), domain) {
				checked += checkInteropAddress(t, p, ours, urlR, addr, sameSigner)
			}
			if checked < 100 {
				t.Fatalf("only %d addresses compared", checked)
			}
			checkHashLengths(t, p, ours, cfg)
			checkAges(t, p, cfg, base)
		})
	}
}

func checkInteropAddress(t *testing.T, p *postsrsd, ours, urlR *srs.Rewriter, addr string, sameSigner bool) int {
	t.Helper()
	ctx := context.Background()
	code, theirs := p.fwd.get(t, addr)
	got, err := ours.Forward(ctx, addr)
	at := strings.LastIndexByte(addr, '@')
	local := strings.EqualFold(addr[at+1:], ours.Domain())
	switch {
	case code == 200:
		if err != nil {
			t.Errorf("forward %q: postsrsd %q, ours error %v", addr, theirs, err)
			return 0
		}
		if sameSigner && got != theirs {
			t.Errorf("forward %q:\n postsrsd %q\n ours     %q", addr, theirs, got)
		}
	case local && theirs == "Already rewritten":
		if err != nil || got != addr {
			t.Errorf("forward %q: postsrsd leaves it, ours %q, %v", addr, got, err)
		}
		return 1
	default:
		if err == nil {
			t.Errorf("forward %q: postsrsd %d %s, ours %q", addr, code, theirs, got)
		}
		return 1
	}
	if local {
		if got != addr {
			t.Errorf("forward local %q = %q", addr, got)
		}
		return 1
	}
	// The original at the first hop: the input itself, except for SRS1
	// inputs, which reverse to the SRS0 address at their first hop.
	want := addr
	if l := strings.ToUpper(addr); strings.HasPrefix(l, "SRS0") && strings.IndexByte("=+-@", addr[4]) >= 0 {
		// The SRS1 made of it reverses with an upper-case tag. A local part
		// of just "SRS0" counts as SRS0 with an empty rest, as in libsrs2.
		want = "SRS0" + addr[4:]
	} else if strings.HasPrefix(l, "SRS1") {
		parts := strings.SplitN(addr[5:at], "=", 3)
		want = "SRS0" + parts[2] + "@" + parts[1]
	}
	// postsrsd reverses ours (whoever signed).
	if code, back := p.rev.get(t, got); code != 200 || back != want {
		t.Errorf("postsrsd reverse of ours %q = %d %q, want %q", got, code, back, want)
	}
	// We reverse postsrsd's, in either alphabet, in any case.
	for _, v := range []string{theirs, toURLAlphabet(theirs), asciiUpper(theirs), asciiLower(theirs)} {
		back, err := ours.Reverse(ctx, v)
		if err != nil || !strings.EqualFold(back, want) {
			t.Errorf("our reverse of postsrsd's %q = %q, %v; want %q", v, back, err, want)
		}
		back2, err := urlR.Reverse(ctx, v)
		if err != nil || back2 != back {
			t.Errorf("base64url rewriter reverse of %q = %q, %v", v, back2, err)
		}
	}
	if back, _ := ours.Reverse(ctx, theirs); back != want {
		t.Errorf("our reverse of %q = %q, want exactly %q", theirs, back, want)
	}
	// And postsrsd 1.10 accepts upper-cased addresses of ours, like we do.
	if code, back := p.rev.get(t, asciiUpper(got)); code != 200 || !strings.EqualFold(back, want) {
		t.Errorf("postsrsd reverse of %q = %d %q", asciiUpper(got), code, back)
	}
	return 1
}

// toURLAlphabet rewrites the hash of an SRS address into base64url.
func toURLAlphabet(a string) string {
	i := strings.IndexByte(a[5:], '=')
	if i < 0 {
		return a
	}
	h := strings.NewReplacer("+", "-", "/", "_").Replace(a[5 : 5+i])
	return a[:5] + h + a[5+i:]
}

// checkHashLengths: a hash truncated to HashMin still verifies, one
// character shorter fails, in both implementations.
func checkHashLengths(t *testing.T, p *postsrsd, ours *srs.Rewriter, cfg interopConfig) {
	ctx := context.Background()
	hashLen, hashMin := cfg.hashLen, cfg.hashMin
	if hashLen == 0 {
		hashLen, hashMin = 4, 4
	}
	_, addr := p.fwd.get(t, "truncate.me@otherdomain.com")
	i := strings.IndexByte(addr[5:], '=')
	if i != hashLen {
		t.Fatalf("postsrsd hash in %q has %d characters, want %d", addr, i, hashLen)
	}
	for n := hashMin - 1; n <= hashLen; n++ {
		v := addr[:5+n] + addr[5+i:]
		code, theirs := p.rev.get(t, v)
		back, err := ours.Reverse(ctx, v)
		if (code == 200) != (err == nil) || (code == 200 && back != theirs) {
			t.Errorf("hash length %d %q: postsrsd %d %q, ours %q %v", n, v, code, theirs, back, err)
		}
		if wantOK := n >= hashMin; wantOK != (err == nil) {
			t.Errorf("hash length %d (min %d): ours %v", n, hashMin, err)
		}
	}
	// A longer hash is truncated to HashLength: extra characters do not count.
	v := addr[:5+i] + "ZZ" + addr[5+i:]
	code, _ := p.rev.get(t, v)
	_, err := ours.Reverse(ctx, v)
	if code != 200 || err != nil {
		t.Errorf("over-long hash %q: postsrsd %d, ours %v", v, code, err)
	}
}

// checkAges: our clock seam makes stamps of other days; postsrsd (real
// clock, 21-day max age) and we must agree on which still reverse.
func checkAges(t *testing.T, p *postsrsd, cfg interopConfig, base testOpts) {
	ctx := context.Background()
	real := time.Now()
	check := base
	check.Alphabet = srs.Base64Std
	verifier, err := check.new()
	if err != nil {
		t.Fatal(err)
	}
	for _, days := range []int{0, 1, 20, 21, 22, 30, 500, -1, -5} {
		opts := check
		opts.Now = func() time.Time { return real.Add(-time.Duration(days) * 24 * time.Hour) }
		old, err := opts.new()
		if err != nil {
			t.Fatal(err)
		}
		addr, err := old.Forward(ctx, "aged@otherdomain.com")
		if err != nil {
			t.Fatal(err)
		}
		code, theirs := p.rev.get(t, addr)
		back, err := verifier.Reverse(ctx, addr)
		wantOK := days >= 0 && days <= 21
		if (code == 200) != wantOK || (err == nil) != wantOK {
			t.Errorf("stamp %d days old %q: postsrsd %d %q, ours %q %v, want ok=%t", days, addr, code, theirs, back, err, wantOK)
		}
		if !wantOK && !errors.Is(err, srs.ErrExpired) {
			t.Errorf("stamp %d days old: %v, want ErrExpired", days, err)
		}
	}
}

// asciiUpper and asciiLower change ASCII letters only: the hash covers the
// ASCII-lowercased octets, so other case changes are real changes.
func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 32
		}
	}
	return string(b)
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 32
		}
	}
	return string(b)
}

// TestPostsrsdDivergences pins down where we deliberately differ from
// postsrsd 1.10, and checks that postsrsd still behaves as described.
func TestPostsrsdDivergences(t *testing.T) {
	p := startPostsrsd(t, "example.com", []string{"tops3cr3t"})
	r, err := srs.NewRewriter("example.com", []string{"tops3cr3t"}, &srs.Options{Alphabet: srs.Base64Std})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		addr        string
		theirsMatch string // substring of postsrsd's 200 reply
		oursErr     error  // nil: ours must succeed
		oursMatch   string
	}{
		// An empty local part is not an RFC 5321 Local-part: we refuse it,
		// postsrsd writes "...=otherdomain.com=@example.com".
		{"@otherdomain.com", "=otherdomain.com=@example.com", srs.ErrSyntax, ""},
		// An empty domain: postsrsd writes "SRS0=HHHH=TT==user@...".
		{"user@", "==user@example.com", srs.ErrSyntax, ""},
		// A quoted local part with "@" (RFC 5321 Quoted-string): postsrsd
		// splits at the first "@", taking `b"@otherdomain.com` as the
		// domain; we split at the last, as RFC 5321 section 4.1.2 reads.
		// postsrsd reverses neither (see below).
		{`"a@b"@otherdomain.com`, `=b"@otherdomain.com="a@example.com`, nil, `=otherdomain.com="a@b"@example.com`},
	} {
		code, theirs := p.fwd.get(t, tc.addr)
		if code != 200 || !strings.Contains(theirs, tc.theirsMatch) {
			t.Errorf("postsrsd forward %q = %d %q, expected it to contain %q", tc.addr, code, theirs, tc.theirsMatch)
		}
		got, err := r.Forward(ctx, tc.addr)
		if tc.oursErr != nil {
			if !errors.Is(err, tc.oursErr) {
				t.Errorf("Forward(%q) = %q, %v; want %v", tc.addr, got, err, tc.oursErr)
			}
			continue
		}
		if err != nil || !strings.Contains(got, tc.oursMatch) {
			t.Errorf("Forward(%q) = %q, %v; want it to contain %q", tc.addr, got, err, tc.oursMatch)
		}
		back, err := r.Reverse(ctx, got)
		if err != nil || back != tc.addr {
			t.Errorf("Reverse(%q) = %q, %v; want %q", got, back, err, tc.addr)
		}
		// postsrsd splits at the first "@" on reverse too, and so hashes
		// other fields than we signed, or finds no user.
		if code, back := p.rev.get(t, got); code == 200 {
			t.Errorf("postsrsd reverse of ours %q = %q", got, back)
		}
		if code, back := p.rev.get(t, theirs); code == 200 {
			t.Errorf("postsrsd reverse of its own %q = %q", theirs, back)
		}
	}
}

// TestPostsrsdUnquotedAtSign: for an address with an "@" outside quotes
// in its local part, postsrsd 1.10 splits at the first "@" on forward and
// on reverse, and cannot reverse what it forwarded; nor what a split at
// the last "@" makes. We refuse such an address both ways (ErrSyntax), so
// neither implementation ever hands out an SRS address that does not
// come back.
func TestPostsrsdUnquotedAtSign(t *testing.T) {
	const secret = "tops3cr3t"
	p := startPostsrsd(t, "example.com", []string{secret})
	r, err := srs.NewRewriter("example.com", []string{secret}, &srs.Options{Alphabet: srs.Base64Std})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	stamp := func(s string) string { return strings.SplitN(s, "=", 4)[2] }
	for _, tc := range []struct {
		addr, first, last string // the address, split at its first "@", at its last
	}{
		{"a@b@orig.example", "b@orig.example=a", "orig.example=a@b"},
		{"a@example.com@orig.example", "example.com@orig.example=a", "orig.example=a@example.com"},
		{"@a@orig.example", "a@orig.example=", "orig.example=@a"},
		{"SRS0=x@y@orig.example", "", ""},
	} {
		code, theirs := p.fwd.get(t, tc.addr)
		if code != 200 {
			t.Fatalf("postsrsd forward %q = %d %q, expected an address", tc.addr, code, theirs)
		}
		if tc.first != "" && !strings.HasSuffix(theirs, "="+stamp(theirs)+"="+tc.first+"@example.com") {
			t.Errorf("postsrsd forward %q = %q, expected the split %q", tc.addr, theirs, tc.first)
		}
		if code, back := p.rev.get(t, theirs); code != 500 {
			t.Errorf("postsrsd reverses its own %q: %d %q", theirs, code, back)
		}
		if got, err := r.Forward(ctx, tc.addr); !errors.Is(err, srs.ErrSyntax) {
			t.Errorf("Forward(%q) = %q, %v; want ErrSyntax", tc.addr, got, err)
		}
		if got, err := r.Reverse(ctx, theirs); !errors.Is(err, srs.ErrSyntax) {
			t.Errorf("Reverse(postsrsd's %q) = %q, %v; want ErrSyntax", theirs, got, err)
		}
		if tc.last == "" {
			continue
		}
		// The address a split at the last "@" gives, valid hash and all
		// (what this package wrote before): postsrsd, splitting at the
		// first "@", finds a bad hash; we find a syntax error.
		host, user, _ := strings.Cut(tc.last, "=")
		last := srs0(stamp(theirs), host, user)
		if code, back := p.rev.get(t, last); code != 500 || !strings.Contains(back, "Hash invalid") {
			t.Errorf("postsrsd reverse of %q = %d %q, want a hash error", last, code, back)
		}
		if got, err := r.Reverse(ctx, last); !errors.Is(err, srs.ErrSyntax) {
			t.Errorf("Reverse(%q) = %q, %v; want ErrSyntax", last, got, err)
		}
	}
}

// TestPostsrsdLocalPolicy compares always-rewrite (-A) and excluded domains
// (-X, our LocalDomains) with postsrsd 1.10.
func TestPostsrsdLocalPolicy(t *testing.T) {
	ctx := context.Background()
	const secret = "policy s3cret"
	t.Run("always-rewrite", func(t *testing.T) {
		p := startPostsrsd(t, "example.com", []string{secret}, "-A")
		r, err := srs.NewRewriter("example.com", []string{secret}, &srs.Options{Alphabet: srs.Base64Std, AlwaysRewrite: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range []string{"me@example.com", "Me@EXAMPLE.COM", "you@other.example"} {
			code, theirs := p.fwd.get(t, a)
			got, err := r.Forward(ctx, a)
			if code != 200 || err != nil || got != theirs || got == a {
				t.Errorf("forward %q: postsrsd %d %q, ours %q %v", a, code, theirs, got, err)
			}
			if back, err := r.Reverse(ctx, theirs); err != nil || back != a {
				t.Errorf("reverse %q: %q %v", theirs, back, err)
			}
		}
	})
	t.Run("excluded-domains", func(t *testing.T) {
		p := startPostsrsd(t, "example.com", []string{secret}, "-X.corp.example,other.example")
		r, err := srs.NewRewriter("example.com", []string{secret}, &srs.Options{Alphabet: srs.Base64Std, LocalDomains: []string{".corp.example", "other.example"}})
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			addr     string
			excluded bool
		}{
			{"a@x.corp.example", true}, {"a@X.Y.CORP.EXAMPLE", true}, {"a@other.example", true}, {"a@OTHER.example", true},
			{"a@corp.example", false}, {"a@another.example", false}, {"a@other.example.net", false},
		} {
			code, theirs := p.fwd.get(t, tc.addr)
			got, err := r.Forward(ctx, tc.addr)
			if err != nil {
				t.Errorf("Forward(%q): %v", tc.addr, err)
				continue
			}
			if tc.excluded {
				if code != 500 || !strings.Contains(theirs, "excluded") || got != tc.addr {
					t.Errorf("excluded %q: postsrsd %d %q, ours %q", tc.addr, code, theirs, got)
				}
				continue
			}
			if code != 200 || got != theirs {
				t.Errorf("forward %q: postsrsd %d %q, ours %q", tc.addr, code, theirs, got)
			}
		}
	})
}
