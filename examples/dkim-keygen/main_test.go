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
		// Cross-check p= with openssl's view of the key file.
		if _, err := exec.LookPath("openssl"); err != nil {
			continue
		}
		der, err := exec.Command("openssl", "pkey", "-in", prefix+".key", "-pubout", "-outform", "DER").Output()
		if err != nil {
			t.Fatal(err)
		}
		p := txts[0][strings.Index(txts[0], "p=")+2:]
		want := base64.StdEncoding.EncodeToString(der)
		if alg == "ed25519" {
			want = base64.StdEncoding.EncodeToString(der[len(der)-ed25519.PublicKeySize:])
			if rec.KeyType != "ed25519" {
				t.Errorf("k=%s", rec.KeyType)
			}
		}
		if p != want {
			t.Errorf("%s: p=%s, openssl says %s", alg, p, want)
		}
	}
}

func TestKeygenUsage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"-d", "example.com", "-s", "sel"}, 2},
		{[]string{"-a", "dsa", "-d", "example.com", "-s", "sel", "-o", filepath.Join(dir, "x")}, 2},
		{[]string{"-bogus"}, 2},
		{[]string{"-d", "example.com", "-s", "sel", "-o", filepath.Join(dir, "no", "such", "dir")}, 1},
	} {
		var out, errb bytes.Buffer
		if code := run(c.args, nil, &out, &errb); code != c.code {
			t.Errorf("%v: exit %d, want %d (%s)", c.args, code, c.code, errb.String())
		}
	}
}
