package peertest

import (
	"fmt"
	"runtime"
	"testing"
)

// recorder is a testing.TB that keeps the message of a Skipf or Fatalf
// and ends the goroutine, as testing.T does.
type recorder struct {
	testing.TB
	skipped, fatal string
}

func (r *recorder) Helper() {}

func (r *recorder) Skipf(format string, args ...any) {
	r.skipped = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// run calls f with a recorder in a goroutine of its own, so that Skipf and
// Fatalf can end it.
func run(f func(testing.TB)) *recorder {
	r := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r
}

// TestSkipMessage: a missing peer skips with "peer NAME not found: HOW".
// It adds to the package table, so neither test here runs in parallel.
func TestSkipMessage(t *testing.T) {
	debian["python3 peertest_no_such_module"] = "python3-peertest-no-such-module"
	debian["perl Peertest::NoSuchModule"] = "libpeertest-nosuchmodule-perl"
	debian["peertest-no-such-program"] = "peertest-no-such-package"
	t.Cleanup(func() {
		delete(debian, "python3 peertest_no_such_module")
		delete(debian, "perl Peertest::NoSuchModule")
		delete(debian, "peertest-no-such-program")
	})
	for _, c := range []struct {
		f    func(testing.TB)
		want []string // any of them, as the machine has the interpreter or not
	}{
		{func(t testing.TB) { Program(t, "peertest-no-such-program") },
			[]string{"peer peertest-no-such-program not found: apt-get install peertest-no-such-package"}},
		{func(t testing.TB) { Python(t, "peertest_no_such_module") }, []string{
			"peer python3 module peertest_no_such_module not found: apt-get install python3-peertest-no-such-module",
			"peer python3 not found: apt-get install python3"}},
		{func(t testing.TB) { Perl(t, "Peertest::NoSuchModule") }, []string{
			"peer perl module Peertest::NoSuchModule not found: apt-get install libpeertest-nosuchmodule-perl",
			"peer perl not found: apt-get install perl"}},
	} {
		r := run(c.f)
		ok := false
		for _, w := range c.want {
			ok = ok || r.skipped == w
		}
		if !ok || r.fatal != "" {
			t.Errorf("skipped %q, fatal %q; want %q", r.skipped, r.fatal, c.want[0])
		}
	}
}

// TestUnknownPeer: a peer without a Debian package in the table fails the
// test, so that the table and .ci/run stay complete.
func TestUnknownPeer(t *testing.T) {
	for _, f := range []func(testing.TB){
		func(t testing.TB) { Program(t, "peertest-unknown") },
		func(t testing.TB) { Python(t, "peertest_unknown") },
		func(t testing.TB) { Perl(t, "Peertest::Unknown") },
	} {
		if r := run(f); r.fatal == "" || r.skipped != "" {
			t.Errorf("skipped %q, fatal %q; want a failure", r.skipped, r.fatal)
		}
	}
}
