package cli

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args           []string
		status         int
		stop           bool
		stdout, stderr string
	}{
		{[]string{"-h"}, OK, true, "  -n NAME\n    \ta NAME\n", ""},
		{[]string{"-help"}, OK, true, "Standard input: nothing\n", ""},
		{[]string{"-bogus"}, Usage, true, "", "prog: flag provided but not defined: -bogus\n"},
		{[]string{"-n"}, Usage, true, "", "prog: flag needs an argument: -n\n"},
		{[]string{"-n", "x"}, 0, false, "", ""},
	} {
		var stdout, stderr bytes.Buffer
		c := New("prog", "prog -n NAME", &stdout, &stderr)
		c.Stdin, c.Exit0, c.Exit1 = "nothing", "always", "never"
		c.Flags.String("n", "", "a `NAME`")
		status, stop := c.Parse(tc.args)
		if status != tc.status || stop != tc.stop || !strings.Contains(stdout.String(), tc.stdout) || stderr.String() != tc.stderr {
			t.Errorf("%q: %d %t, stdout %q, stderr %q", tc.args, status, stop, stdout.String(), stderr.String())
		}
	}
}

func TestParseInterleaved(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		rest string
		n    string
		stop bool
	}{
		{[]string{"a", "-n", "x", "b"}, "a b", "x", false},
		{[]string{"-n", "x", "a", "b"}, "a b", "x", false},
		{[]string{"a", "--", "-n", "x"}, "a -n x", "", false},
		{[]string{"a", "-bogus"}, "", "", true},
		{nil, "", "", false},
	} {
		c := New("prog", "prog -n NAME", &bytes.Buffer{}, &bytes.Buffer{})
		n := c.Flags.String("n", "", "a `NAME`")
		rest, _, stop := c.ParseInterleaved(tc.args)
		if strings.Join(rest, " ") != tc.rest || *n != tc.n || stop != tc.stop {
			t.Errorf("%q: rest %q, -n %q, stop %t; want %q, %q, %t", tc.args, rest, *n, stop, tc.rest, tc.n, tc.stop)
		}
	}
}

func TestMsg(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`srs: domain: domain "a b" contains ' '`: `domain: domain "a b" contains ' '`,
		"dkim: d=: syntax error: bad label":      "d=: syntax error: bad label",
		"open x: no such file or directory":      "open x: no such file or directory",
		"spfx: not a prefix":                     "spfx: not a prefix",
		"relay: sasl: no usable mechanism":       "no usable mechanism",
		"relay: mx.example:25: EHLO: 554 no":     "mx.example:25: EHLO: 554 no",
	} {
		if got := Msg(errors.New(in)); got != want {
			t.Errorf("Msg(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDNSCheck(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		zone, server string
		ok           bool
	}{
		{"", "", true}, {"z", "", true}, {"", "127.0.0.1:53", true}, {"", "[::1]:5353", true}, {"", "localhost:53", true},
		{"z", "127.0.0.1:53", false}, {"", "nonsense", false}, {"", "127.0.0.1", false}, {"", ":53", false},
		{"", "127.0.0.1:0", false}, {"", "127.0.0.1:domain", false}, {"", "127.0.0.1:70000", false},
	} {
		d := DNS{zone: tc.zone, server: tc.server}
		if err := d.Check(); (err == nil) != tc.ok {
			t.Errorf("-zone %q -dns %q: %v", tc.zone, tc.server, err)
		}
	}
}
