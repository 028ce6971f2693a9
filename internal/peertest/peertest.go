// Package peertest finds the real peers that interop tests run, and skips
// a test with a message that says how to install one that is missing.
package peertest

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Node returns the command that runs a Node.js script with the modules of
// testdata/npm (mailauth), as "npm ci" there installs them, or skips t.
func Node(t testing.TB, script string, args ...string) *exec.Cmd {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node not found: install Node.js and run npm ci in testdata/npm to run the mailauth interop tests")
	}
	modules := filepath.Join(moduleRoot(t), "testdata", "npm", "node_modules")
	if _, err := os.Stat(filepath.Join(modules, "mailauth", "package.json")); err != nil {
		t.Skip("mailauth not installed: run npm ci in testdata/npm to run the mailauth interop tests")
	}
	cmd := exec.Command("node", append([]string{script}, args...)...)
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
