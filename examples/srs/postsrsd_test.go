package main

import (
	"bufio"
	"bytes"
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
)

// TestPostsrsd runs the program beside Debian's postsrsd 1.10 on 127.0.0.1
// with the same secret and the flags that mirror postsrsd's: with
// -alphabet base64 -allow-long, forward writes postsrsd's strings, and each
// reverses the other's addresses.
func TestPostsrsd(t *testing.T) {
	daemon := peertest.Program(t, "postsrsd")
	secrets := secretFile(t, "tops3cr3t\n")
	for _, c := range []struct {
		name         string
		ours, theirs []string
	}{
		{"defaults", nil, nil},
		{"separator and hash length", []string{"-sep", "+", "-hash-len", "8", "-hash-min", "5"}, []string{"-a+", "-n8", "-N5"}},
		{"always rewrite", []string{"-always-rewrite"}, []string{"-A"}},
		{"local domains", []string{"-local-domains", ".corp.example,other.example"}, []string{"-X.corp.example,other.example"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := startPostsrsd(t, daemon, secrets, c.theirs...)
			addrs := []string{
				"test@otherdomain.com", "First.Last@Mixed.Example", "user+tag@sub.example.net",
				strings.Repeat("x", 60) + "@otherdomain.com", // forwarded only with -allow-long
				"me@example.com", "a@x.corp.example", "a@other.example",
				"SRS0=opaque+string@otherdomain.com", "SRS1=X=third.example==opaque+string@otherdomain.com",
			}
			// Senders whose hash today has a '+' or '/', where the
			// alphabets differ.
			found := 0
			for i := 0; i < 200 && found < 2; i++ {
				a := "u" + strconv.Itoa(i) + "@otherdomain.com"
				if _, s := p.get(t, p.fwd, a); strings.ContainsAny(s[5:strings.IndexByte(s[5:], '=')+5], "+/") {
					addrs = append(addrs, a)
					found++
				}
			}
			if found == 0 {
				t.Fatal("no hash with '+' or '/' in 200 senders")
			}
			flags := append([]string{"-domain", "example.com", "-secret-file", secrets, "-alphabet", "base64", "-allow-long"}, c.ours...)
			fwd := runLines(t, "forward", flags, addrs)
			var srsAddrs, theirs []string
			for i, a := range addrs {
				code, want := p.get(t, p.fwd, a)
				if code != 200 {
					want = a // postsrsd leaves it ("Already rewritten", "excluded")
				}
				if fwd[i] != want {
					t.Errorf("forward %q: ours %q, postsrsd %d %q", a, fwd[i], code, want)
				}
				if fwd[i] != a {
					srsAddrs = append(srsAddrs, fwd[i])
					theirs = append(theirs, want)
				}
			}
			// Each reverses the other's: postsrsd ours, ours postsrsd's,
			// and in the other alphabet too.
			urls := make([]string, len(theirs))
			for i, a := range theirs {
				h := 5 + strings.IndexByte(a[5:], '=')
				urls[i] = a[:5] + strings.NewReplacer("+", "-", "/", "_").Replace(a[5:h]) + a[h:]
			}
			back := runLines(t, "reverse", flags, append(theirs, urls...))
			for i, s := range srsAddrs {
				code, want := p.get(t, p.rev, s)
				if code != 200 || back[i] != want || back[len(theirs)+i] != want {
					t.Errorf("reverse: postsrsd of %q %d %q; ours of %q %q, of %q %q", s, code, want, theirs[i], back[i], urls[i], back[len(theirs)+i])
				}
			}
		})
	}
	// Without -allow-long the 60-octet local part is refused, where
	// postsrsd forwards it; without -alphabet the hash is base64url.
	long := strings.Repeat("x", 60) + "@otherdomain.com"
	out := runLines(t, "forward", []string{"-domain", "example.com", "-secret-file", secrets}, []string{long})
	if !strings.HasPrefix(out[0], "error: ") {
		t.Errorf("forward of a 60-octet local part without -allow-long: %q", out[0])
	}
}

// runLines runs the program in mode with flags and addrs and returns its
// output lines; status 1 (some address failed) is fine.
func runLines(t *testing.T, mode string, flags, addrs []string) []string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	args := append(append([]string{mode}, flags...), addrs...)
	if code := run(args, nil, &stdout, &stderr); code != 0 && code != 1 {
		t.Fatalf("%q: exit %d: %s", args, code, stderr.String())
	}
	lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
	if len(lines) != len(addrs) {
		t.Fatalf("%d lines for %d addresses: %q", len(lines), len(addrs), lines)
	}
	return lines
}

// postsrsd is the daemon's two TCP lookup tables (Postfix tcp_table: a
// request "get ADDR\n", a reply "200 VALUE\n" or "500 REASON\n").
type postsrsd struct {
	fwd, rev *bufio.ReadWriter
}

func (p *postsrsd) get(t *testing.T, table *bufio.ReadWriter, addr string) (int, string) {
	t.Helper()
	if strings.ContainsAny(addr, "% \t") {
		t.Fatalf("%q needs tcp_table encoding", addr)
	}
	table.WriteString("get " + addr + "\n")
	if err := table.Flush(); err != nil {
		t.Fatal(err)
	}
	line, err := table.ReadString('\n')
	if err != nil {
		t.Fatalf("postsrsd: %q: %v", addr, err)
	}
	codeText, value, _ := strings.Cut(strings.TrimSuffix(line, "\n"), " ")
	code, _ := strconv.Atoi(codeText)
	if code == 200 {
		if value, err = url.PathUnescape(value); err != nil {
			t.Fatal(err)
		}
	}
	return code, value
}

// startPostsrsd runs the daemon for domain example.com on two free ports
// of 127.0.0.1; the test's cleanup kills it by its pid.
func startPostsrsd(t *testing.T, daemon, secrets string, flags ...string) *postsrsd {
	t.Helper()
	ports := make([]string, 2)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
		l.Close()
	}
	args := append([]string{"-s" + secrets, "-dexample.com", "-l127.0.0.1", "-4", "-f" + ports[0], "-r" + ports[1],
		"-p" + filepath.Join(t.TempDir(), "pid")}, flags...)
	if os.Geteuid() == 0 {
		args = append(args, "-unobody")
	}
	cmd := exec.Command(daemon, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	p := &postsrsd{}
	for i, table := range []**bufio.ReadWriter{&p.fwd, &p.rev} {
		var c net.Conn
		var err error
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if c, err = net.Dial("tcp", "127.0.0.1:"+ports[i]); err == nil {
				break
			}
		}
		if err != nil {
			t.Fatalf("postsrsd %q: %v", args, err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(30 * time.Second))
		*table = bufio.NewReadWriter(bufio.NewReader(c), bufio.NewWriter(c))
	}
	return p
}
