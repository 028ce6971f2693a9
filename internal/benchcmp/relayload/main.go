// Command relayload measures a relay end to end the way the relay-server
// issue asks: Postfix's smtp-source submits a number of messages over
// concurrent sessions from a trusted network, the relay under test
// forwards them to Postfix's smtp-sink, and the time is taken from the
// first connection until the sink has counted every message.
//
// It runs Postfix 3.7 itself as the peer (a private instance with
// relayhost set to the sink, no TLS, no signing) and, with -smarthost, the
// program examples/smarthost built beforehand (trusted network, the DKIM
// keys given with -dkim, a durable spool), one after the other on the same
// load, and prints one line per relay.
//
//	relayload [-sessions 20] [-messages 2000] [-size 10240] [-postfix=true]
//	          [-smarthost BIN -dkim DOMAIN:SELECTOR:KEYFILE ... -provider-domain D
//	           -smarthost-flag FLAG ...]
//
// It needs root (Postfix's master and smtp-sink -u), postfix and
// smtp-source/smtp-sink on PATH or in /usr/sbin.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(s string) error { *l = append(*l, s); return nil }

func main() {
	sessions := flag.Int("sessions", 20, "concurrent smtp-source sessions")
	messages := flag.Int("messages", 2000, "messages in all")
	size := flag.Int("size", 10240, "message size in octets")
	postfix := flag.Bool("postfix", true, "measure Postfix")
	smarthost := flag.String("smarthost", "", "the examples/smarthost `BINARY` to measure")
	provider := flag.String("provider-domain", "", "the smarthost's -provider-domain")
	var extra list
	flag.Var(&extra, "smarthost-flag", "one more flag for the smarthost, such as -spool-syncfs (repeatable)")
	var dkim list
	flag.Var(&dkim, "dkim", "a smarthost -dkim `DOMAIN:SELECTOR:KEYFILE` (repeatable)")
	timeout := flag.Duration("timeout", 5*time.Minute, "give up after this long per relay")
	flag.Parse()

	load := load{sessions: *sessions, messages: *messages, size: *size}
	if *postfix {
		report("postfix", load, func(ctx context.Context, dir string, sink int) (int, func(), error) {
			return startPostfix(ctx, dir, sink)
		}, *timeout)
	}
	if *smarthost != "" {
		report("smarthost", load, func(ctx context.Context, dir string, sink int) (int, func(), error) {
			return startSmarthost(ctx, dir, sink, *smarthost, *provider, dkim, extra)
		}, *timeout)
	}
}

type load struct{ sessions, messages, size int }

type starter func(ctx context.Context, dir string, sink int) (port int, stop func(), err error)

func report(name string, l load, start starter, timeout time.Duration) {
	d, err := measure(l, start, timeout)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
	fmt.Printf("%-10s %d messages of %d octets over %d sessions: %.2f s, %.0f messages/s\n",
		name, l.messages, l.size, l.sessions, d.Seconds(), float64(l.messages)/d.Seconds())
}

func measure(l load, start starter, timeout time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	dir, err := os.MkdirTemp("", "relayload-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil { // Postfix's daemons run as the postfix user
		return 0, err
	}

	sinkPort, counted, stopSink, err := startSink(ctx, l.messages)
	if err != nil {
		return 0, err
	}
	defer stopSink()
	port, stop, err := start(ctx, dir, sinkPort)
	if err != nil {
		return 0, err
	}
	defer stop()

	began := time.Now()
	src := exec.CommandContext(ctx, tool("smtp-source"), "-s", strconv.Itoa(l.sessions),
		"-m", strconv.Itoa(l.messages), "-l", strconv.Itoa(l.size),
		"-f", "sender@customer.example", "-t", "rcpt@receiver.example",
		"-M", "relay.example", fmt.Sprintf("127.0.0.1:%d", port))
	var srcErr bytes.Buffer
	src.Stderr = &srcErr
	if err := src.Start(); err != nil {
		return 0, err
	}
	srcDone := make(chan error, 1)
	go func() { srcDone <- src.Wait() }()
	for {
		select {
		case <-counted:
			return time.Since(began), nil
		case err := <-srcDone:
			if err != nil {
				return 0, fmt.Errorf("smtp-source: %v: %s", err, strings.TrimSpace(srcErr.String()))
			}
			srcDone = nil
		case <-ctx.Done():
			err := errors.New("the sink did not count every message in time")
			if log, rerr := os.ReadFile(filepath.Join(dir, "maillog")); rerr == nil {
				lines := strings.Split(strings.TrimSpace(string(log)), "\n")
				err = fmt.Errorf("%w; the end of the maillog:\n%s", err, strings.Join(lines[max(0, len(lines)-10):], "\n"))
			}
			return 0, err
		}
	}
}

// tool finds a Postfix program on PATH or in /usr/sbin.
func tool(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return filepath.Join("/usr/sbin", name)
}

// freePort returns a loopback TCP port nothing listens on now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startSink runs smtp-sink -c and closes done when its message counter
// reaches target.
func startSink(ctx context.Context, target int) (int, <-chan struct{}, func(), error) {
	port, err := freePort()
	if err != nil {
		return 0, nil, nil, err
	}
	cmd := exec.CommandContext(ctx, tool("smtp-sink"), "-c", "-u", "nobody", fmt.Sprintf("127.0.0.1:%d", port), "1024")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return 0, nil, nil, err
	}
	done := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		sc.Split(func(data []byte, atEOF bool) (int, []byte, error) {
			if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
				return i + 1, data[:i], nil
			}
			if atEOF && len(data) > 0 {
				return len(data), data, nil
			}
			return 0, nil, nil
		})
		for sc.Scan() {
			for _, f := range strings.Fields(sc.Text()) {
				if v, ok := strings.CutPrefix(f, "mesg="); ok {
					if n, err := strconv.Atoi(v); err == nil && n >= target {
						close(done)
						return
					}
				}
			}
		}
	}()
	if err := waitListen(ctx, port); err != nil {
		cmd.Process.Kill()
		return 0, nil, nil, fmt.Errorf("smtp-sink: %w", err)
	}
	return port, done, func() { cmd.Process.Kill(); cmd.Wait() }, nil
}

func waitListen(ctx context.Context, port int) error {
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nothing listens on port %d", port)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// startPostfix runs a private Postfix instance whose smtpd listens on a
// loopback port, accepts mail from 127.0.0.0/8, and relays everything to
// the sink without TLS.
func startPostfix(ctx context.Context, dir string, sink int) (int, func(), error) {
	port, err := freePort()
	if err != nil {
		return 0, nil, err
	}
	conf := filepath.Join(dir, "etc")
	for _, d := range []string{conf, filepath.Join(dir, "queue"), filepath.Join(dir, "data")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return 0, nil, err
		}
	}
	main := fmt.Sprintf(`compatibility_level = 3.6
queue_directory = %[1]s/queue
data_directory = %[1]s/data
mail_owner = postfix
setgid_group = postdrop
myhostname = relay.example
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
relayhost = [127.0.0.1]:%[2]d
smtp_tls_security_level = none
smtpd_tls_security_level = none
maillog_file = %[1]s/maillog
maillog_file_prefixes = %[1]s
biff = no
`, dir, sink)
	master := fmt.Sprintf(`127.0.0.1:%d inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`, port)
	owner, err := user.Lookup("postfix")
	if err != nil {
		return 0, nil, fmt.Errorf("postfix is installed without its user: %w", err)
	}
	uid, _ := strconv.Atoi(owner.Uid)
	if err := os.Chown(filepath.Join(dir, "data"), uid, -1); err != nil {
		return 0, nil, err
	}
	if err := os.WriteFile(filepath.Join(conf, "main.cf"), []byte(main), 0o644); err != nil {
		return 0, nil, err
	}
	if err := os.WriteFile(filepath.Join(conf, "master.cf"), []byte(master), 0o644); err != nil {
		return 0, nil, err
	}
	if out, err := exec.CommandContext(ctx, tool("postfix"), "-c", conf, "start").CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "maillog"))
		return 0, nil, fmt.Errorf("postfix start: %v: %s%s", err, out, log)
	}
	stop := func() { exec.Command(tool("postfix"), "-c", conf, "stop").Run() }
	if err := waitListen(ctx, port); err != nil {
		stop()
		return 0, nil, fmt.Errorf("postfix: %w", err)
	}
	return port, stop, nil
}

// startSmarthost runs examples/smarthost with a trusted loopback network
// and no limit of connections per client (smtp-source opens a session per
// message, its next one before the last is counted closed; Postfix exempts
// mynetworks from such limits), its files (a durable spool, the key file,
// the certificate) under dir, the given DKIM keys, and the sink as its
// upstream without TLS.
func startSmarthost(ctx context.Context, dir string, sink int, bin, provider string, dkim, extra []string) (int, func(), error) {
	port, err := freePort()
	if err != nil {
		return 0, nil, err
	}
	args := []string{
		"-listen", fmt.Sprintf("127.0.0.1:%d", port),
		"-spool", filepath.Join(dir, "spool"),
		"-keys", filepath.Join(dir, "keys"),
		"-trusted", "127.0.0.0/8",
		"-upstream", fmt.Sprintf("127.0.0.1:%d", sink),
		"-upstream-tls", "none",
		"-data", filepath.Join(dir, "data"),
		"-max-connections-per-ip", "-1",
	}
	args = append(args, extra...)
	for _, d := range dkim {
		args = append(args, "-dkim", d)
	}
	if provider != "" {
		args = append(args, "-provider-domain", provider)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		return 0, nil, err
	}
	stop := func() {
		if hwm := peakRSS(cmd.Process.Pid); hwm != "" {
			fmt.Printf("smarthost  peak resident memory %s\n", hwm)
		}
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		if ps := cmd.ProcessState; ps != nil {
			fmt.Printf("smarthost  CPU time %.2f s user, %.2f s system\n", ps.UserTime().Seconds(), ps.SystemTime().Seconds())
		}
	}
	if err := waitListen(ctx, port); err != nil {
		cmd.Process.Kill()
		return 0, nil, fmt.Errorf("smarthost: %w: %s", err, errOut.String())
	}
	return port, stop, nil
}

// peakRSS is the VmHWM line of a Linux process's status: its peak
// resident set size. "" where it cannot be read.
func peakRSS(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
