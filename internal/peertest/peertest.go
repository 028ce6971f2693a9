// Package peertest finds the real peers that interop tests run, and skips
// a test with a message that says how to install one that is missing.
//
// Every skip reads "peer NAME not found: HOW", where HOW is the Debian
// package to install (the packages .ci/run installs) or the npm step.
package peertest

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// debian names the Debian package of each peer the tests run: programs by
// their name, Python modules as "python3 NAME", Perl modules as
// "perl NAME". Keep it in step with the list in .ci/run.
var debian = map[string]string{
	"curl":            "curl",
	"named":           "bind9",
	"named-checkzone": "bind9-utils",
	"node":            "nodejs",
	"opendkim":        "opendkim",
	"openssl":         "openssl",
	"perl":            "perl",
	"postcat":         "postfix",
	"postfix":         "postfix",
	"postsrsd":        "postsrsd",
	"python3":         "python3",
	"saslpasswd2":     "sasl2-bin",
	"xmllint":         "libxml2-utils",

	"python3 aiosmtpd": "python3-aiosmtpd",
	"python3 dkim":     "python3-dkim",
	"python3 nacl":     "python3-nacl",
	"python3 spf":      "python3-spf",

	"perl Mail::AuthenticationResults::Parser": "libmail-authenticationresults-perl",
	"perl Mail::DMARC::Policy":                 "libmail-dmarc-perl",
	"perl Mail::DMARC::PurePerl":               "libmail-dmarc-perl",
}

// skip skips t in the one format of this package: the peer, then how to
// install it.
func skip(t testing.TB, peer, install string) {
	t.Helper()
	t.Skipf("peer %s not found: %s", peer, install)
}

// aptGet is the install step for the peers named by keys of debian.
func aptGet(t testing.TB, keys ...string) string {
	t.Helper()
	var pkgs []string
	for _, k := range keys {
		p, ok := debian[k]
		if !ok {
			t.Fatalf("peertest: no Debian package known for %q: add it to the table", k)
		}
		if !slices.Contains(pkgs, p) {
			pkgs = append(pkgs, p)
		}
	}
	return "apt-get install " + strings.Join(pkgs, " ")
}

// Program returns the path of the program name, found on PATH or in
// /usr/sbin (where Debian puts daemons such as opendkim and postsrsd), or
// skips t naming the Debian package that installs it.
func Program(t testing.TB, name string) string {
	t.Helper()
	install := aptGet(t, name)
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	p := filepath.Join("/usr/sbin", name)
	if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
		return p
	}
	skip(t, name, install)
	return ""
}

// Python returns the path of a Python 3 interpreter that can import every
// one of modules, trying Debian's /usr/bin/python3 (where the python3-*
// packages install) and then python3 on PATH, or skips t naming the
// Debian packages of the modules that are missing.
func Python(t testing.TB, modules ...string) string {
	t.Helper()
	pkgs := make([]string, len(modules))
	for i, m := range modules {
		pkgs[i] = "python3 " + m
	}
	aptGet(t, pkgs...) // every module is known, found or not
	var found []string
	for _, name := range []string{"/usr/bin/python3", "python3"} {
		p, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		found = append(found, p)
		if len(modules) == 0 || exec.Command(p, "-c", "import "+strings.Join(modules, ", ")).Run() == nil {
			return p
		}
	}
	if len(found) == 0 {
		skip(t, "python3", aptGet(t, "python3"))
	}
	// Name the modules that the first interpreter cannot import.
	var missing []string
	pkgs = pkgs[:0]
	for _, m := range modules {
		if exec.Command(found[0], "-c", "import "+m).Run() != nil {
			missing, pkgs = append(missing, m), append(pkgs, "python3 "+m)
		}
	}
	if len(missing) == 0 { // each imports alone, not all together
		missing = modules
		for _, m := range modules {
			pkgs = append(pkgs, "python3 "+m)
		}
	}
	skip(t, "python3 module "+strings.Join(missing, ", "), aptGet(t, pkgs...))
	return ""
}

// Perl returns the path of a perl that can load every one of modules, or
// skips t naming the Debian packages of the modules that are missing.
func Perl(t testing.TB, modules ...string) string {
	t.Helper()
	pkgs := make([]string, len(modules))
	for i, m := range modules {
		pkgs[i] = "perl " + m
	}
	aptGet(t, pkgs...) // every module is known, found or not
	perl := Program(t, "perl")
	var missing []string
	pkgs = pkgs[:0]
	for _, m := range modules {
		if exec.Command(perl, "-M"+m, "-e1").Run() != nil {
			missing, pkgs = append(missing, m), append(pkgs, "perl "+m)
		}
	}
	if len(missing) > 0 {
		skip(t, "perl module "+strings.Join(missing, ", "), aptGet(t, pkgs...))
	}
	return perl
}

// Node returns the command that runs a Node.js script with the modules of
// testdata/npm (mailauth), as "npm ci" there installs them, or skips t.
func Node(t testing.TB, script string, args ...string) *exec.Cmd {
	t.Helper()
	node := Program(t, "node")
	modules := filepath.Join(moduleRoot(t), "testdata", "npm", "node_modules")
	if _, err := os.Stat(filepath.Join(modules, "mailauth", "package.json")); err != nil {
		skip(t, "node module mailauth", "run npm ci in testdata/npm")
	}
	cmd := exec.Command(node, append([]string{script}, args...)...)
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	return cmd
}

// moduleRoot is the directory of go.mod, above the test's directory.
func moduleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("peertest: no go.mod above the test directory")
		}
		dir = parent
	}
}

// RunJSON runs cmd with in, encoded as JSON, on its standard input (none
// when in is nil) and decodes its standard output into out. It fails t,
// with the peer's standard error, when the command fails or prints
// something else.
func RunJSON(t testing.TB, cmd *exec.Cmd, in, out any) {
	t.Helper()
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdin = bytes.NewReader(b)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", filepath.Base(cmd.Path), err, stderr.String())
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("%s printed %q: %v\n%s", filepath.Base(cmd.Path), b, err, stderr.String())
	}
}
