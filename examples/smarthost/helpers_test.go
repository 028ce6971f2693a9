package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/mail"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/relay/smtptest"
)

// The program is built once, into binDir, for the tests that run it as a
// process; TestMain removes it.
var (
	binDir   string
	buildErr error
	building sync.Once
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// binary returns the path of the program, built with the race detector
// when the tests are.
func binary(t *testing.T) string {
	t.Helper()
	building.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "smarthost-test"); buildErr != nil {
			return
		}
		args := []string{"build", "-o", filepath.Join(binDir, "smarthost")}
		if raceEnabled {
			args = append(args, "-race")
		}
		out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "smarthost")
}

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// daemon is the relay running as a process.
type daemon struct {
	t              *testing.T
	cmd            *exec.Cmd
	addr, tlsAddr  string // where it listens
	stdout, stderr *lockedBuffer
	done           chan struct{} // closed when the process has ended
	err            error         // of Wait, once done is closed
}

// listening is the log record of a relay that listens.
var listening = regexp.MustCompile(`msg=listening addr=(\S+)(?: tls_addr=(\S+))?`)

// startDaemon runs the relay in dir with args and waits until it
// listens. The process is killed at the end of the test if it still runs.
func startDaemon(t *testing.T, dir string, env []string, args ...string) *daemon {
	t.Helper()
	d := &daemon{t: t, stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, done: make(chan struct{})}
	d.cmd = exec.Command(binary(t), args...)
	d.cmd.Dir, d.cmd.Stdout, d.cmd.Stderr = dir, d.stdout, d.stderr
	d.cmd.Env = append(os.Environ(), env...)
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		d.err = d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		select {
		case <-d.done:
		default:
			d.cmd.Process.Kill()
			<-d.done
		}
	})
	deadline := time.After(time.Minute)
	for {
		if m := listening.FindStringSubmatch(d.stderr.String()); m != nil {
			d.addr, d.tlsAddr = m[1], m[2]
			return d
		}
		select {
		case <-d.done:
			t.Fatalf("the relay ended before it listened: %v\nstdout:\n%s\nstderr:\n%s", d.err, d.stdout, d.stderr)
		case <-deadline:
			t.Fatalf("the relay did not listen within a minute\nstderr:\n%s", d.stderr)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// stop sends sig and returns the exit status once the process has ended.
func (d *daemon) stop(sig os.Signal) int {
	d.t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		d.t.Fatal(err)
	}
	return d.wait()
}

// wait returns the exit status once the process has ended, -1 when a
// signal ended it.
func (d *daemon) wait() int {
	d.t.Helper()
	select {
	case <-d.done:
	case <-time.After(2 * time.Minute):
		d.cmd.Process.Kill()
		d.t.Fatalf("the relay did not end within two minutes\nstderr:\n%s", d.stderr)
	}
	if strings.Contains(d.stderr.String(), "WARNING: DATA RACE") {
		d.t.Errorf("the race detector reported:\n%s", d.stderr)
	}
	var ee *exec.ExitError
	switch {
	case d.err == nil:
		return 0
	case errors.As(d.err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return -1
		}
		return ee.ExitCode()
	}
	d.t.Fatal(d.err)
	return 0
}

// firstKey returns the API key the relay printed on its first start: the
// last line of its standard output.
func (d *daemon) firstKey() string {
	d.t.Helper()
	// The key is printed before the relay logs that it listens, but on
	// another pipe: it may reach its buffer after the log line did.
	printed := func() bool {
		return strings.Contains(d.stdout.String(), "\nshk_") || strings.HasPrefix(d.stdout.String(), "shk_")
	}
	for deadline := time.Now().Add(10 * time.Second); !printed() && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	out := strings.TrimSuffix(d.stdout.String(), "\n")
	key := out[strings.LastIndexByte(out, '\n')+1:]
	if !strings.HasPrefix(key, "shk_") {
		d.t.Fatalf("no API key printed; stdout %q", out)
	}
	return key
}

// newSink starts an smtptest server, closed at the end of the test.
func newSink(t *testing.T, opts *smtptest.Options) *smtptest.Server {
	t.Helper()
	s, err := smtptest.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// spoolEntries returns the messages (ID.msg files) in a spool directory.
func spoolEntries(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.msg"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// waitFor polls cond until it holds, or fails the test after a deadline
// that only a hung relay reaches.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waited %v for %s", d, what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// headerFields returns the values of the fields called name in the header
// of a message, in order.
func headerFields(t *testing.T, msg []byte, name string) []string {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(msg))
	if err != nil {
		t.Fatalf("the message does not parse: %v\n%s", err, msg)
	}
	return m.Header[textproto.CanonicalMIMEHeaderKey(name)]
}

// dialKey opens a session with the relay at addr, STARTTLS verified with
// the certificate in certFile for relay.test, and AUTH PLAIN with the API
// key. It returns AUTH's error, the session then closed.
func dialKey(t testing.TB, addr, certFile, key string) (*smtp.Client, error) {
	t.Helper()
	pem, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("no certificate in %s", certFile)
	}
	c, err := smtp.DialStartTLS(addr, &tls.Config{RootCAs: pool, ServerName: "relay.test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Auth(sasl.NewPlainClient("", relay.KeyUser, key)); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}
