package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smarthost-go/smarthost/dkim"
	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
	"github.com/smarthost-go/smarthost/internal/peertest"
)

func TestKeygen(t *testing.T) {
	t.Parallel()
	for _, alg := range []string{"ed25519", "rsa2048"} {
		dir := t.TempDir()
		prefix := filepath.Join(dir, "k")
		var out, errb bytes.Buffer
		if code := run([]string{"-a", alg, "-d", "example.com", "-s", "sel", "-o", prefix}, nil, &out, &errb); code != 0 {
			t.Fatalf("%s: exit %d: %s", alg, code, errb.String())
		}
		st, err := os.Stat(prefix + ".key")
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: key file %v %v", alg, st, err)
		}
		pemBytes, _ := os.ReadFile(prefix + ".key")
		if !bytes.HasPrefix(pemBytes, []byte("-----BEGIN PRIVATE KEY-----")) {
			t.Errorf("%s: not PKCS#8 PEM", alg)
		}
		// The printed line is a zone-file record.
		z, err := dnstest.ParseZone(out.String())
		if err != nil {
			t.Fatalf("%s: %q: %v", alg, out.String(), err)
		}
		txts, err := z.LookupTXT(context.Background(), "sel._domainkey.example.com")
		if err != nil || len(txts) != 1 {
			t.Fatalf("%s: %v %v", alg, txts, err)
		}
		rec, err := dkim.ParseKeyRecord(txts[0])
		if err != nil {
			t.Fatal(err)
		}
		if alg == "ed25519" && rec.KeyType != "ed25519" {
			t.Errorf("k=%s", rec.KeyType)
		}
		// Cross-check p= with openssl's view of the key file, in a subtest
		// that skips alone when openssl is missing.
		t.Run(alg+"/openssl", func(t *testing.T) {
			der, err := exec.Command(peertest.Program(t, "openssl"), "pkey", "-in", prefix+".key", "-pubout", "-outform", "DER").Output()
			if err != nil {
				t.Fatal(err)
			}
			p := txts[0][strings.Index(txts[0], "p=")+2:]
			want := base64.StdEncoding.EncodeToString(der)
			if alg == "ed25519" {
				want = base64.StdEncoding.EncodeToString(der[len(der)-ed25519.PublicKeySize:])
			}
			if p != want {
				t.Errorf("%s: p=%s, openssl says %s", alg, p, want)
			}
		})
	}
}

func TestKeygenUsage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	exists := filepath.Join(dir, "exists")
	if err := os.WriteFile(exists+".key", []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		code int
		want string // in stderr
	}{
		{[]string{"-d", "example.com", "-s", "sel"}, 2, "-o is required"},
		{[]string{"-a", "dsa", "-d", "example.com", "-s", "sel", "-o", filepath.Join(dir, "x")}, 2, "-a"},
		{[]string{"-bogus"}, 2, "-bogus"},
		// A key file that cannot be made is a usage error, found before a
		// key is made.
		{[]string{"-d", "example.com", "-s", "sel", "-o", filepath.Join(dir, "no", "such", "dir")}, 2, "-o: open " + filepath.Join(dir, "no", "such", "dir.key")},
		{[]string{"-d", "example.com", "-s", "sel", "-o", exists}, 2, "exists.key"},
		// The dkim package's rules for d= and s=, before any key file.
		{[]string{"-d", "exa mple..com", "-s", "sel", "-o", filepath.Join(dir, "d")}, 2, "-d: d=: syntax error"},
		{[]string{"-d", "example.com", "-s", "a b", "-o", filepath.Join(dir, "s")}, 2, "-s: s=: syntax error"},
	} {
		var out, errb bytes.Buffer
		code := run(c.args, nil, &out, &errb)
		if code != c.code || !strings.Contains(errb.String(), c.want) || strings.Count(errb.String(), "\n") != 1 || out.Len() != 0 {
			t.Errorf("%v: exit %d, want %d; stderr %q, want one line with %q", c.args, code, c.code, errb.String(), c.want)
		}
	}
	if b, err := os.ReadFile(exists + ".key"); string(b) != "keep me" {
		t.Errorf("existing key file: %q, %v", b, err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "[ds].key")); len(m) != 0 {
		t.Errorf("key files made for bad names: %v", m)
	}
}
