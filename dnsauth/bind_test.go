package dnsauth_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smarthost-go/smarthost/dnsauth"
	"github.com/smarthost-go/smarthost/internal/peertest"
)

// TestZoneLoadsInBIND: the zone text of a plan, under an SOA and NS as any
// zone has, loads in BIND's named-checkzone, for the owner's zone and the
// provider's.
func TestZoneLoadsInBIND(t *testing.T) {
	t.Parallel()
	checkzone := peertest.Program(t, "named-checkzone")
	p, err := (&dnsauth.Request{Domain: "example.com", ReturnPath: "em1234", Selectors: []string{"s1", "s2"},
		Target: "u1234.wl.provider.net", SPFInclude: "_spf.provider.net", MX: "mx.provider.net",
		ExistingSPF: []string{`v=spf1 mx include:_spf.google.com -all exp=%{d}.why.example.com`},
		Keys:        map[string]crypto.PublicKey{"s1": rfc8463Key(t), "s2": rsaKey(t).Public()},
	}).Plan()
	if err != nil {
		t.Fatal(err)
	}
	for _, z := range []struct{ origin, text string }{
		{"example.com", p.Zone()},
		{"provider.net", p.ProviderZone()},
	} {
		head := "$TTL 3600\n" + z.origin + ". IN SOA ns1." + z.origin + ". hostmaster." + z.origin + ". 1 7200 900 1209600 300\n" +
			z.origin + ". IN NS ns1." + z.origin + ".\nns1." + z.origin + ". IN A 192.0.2.53\n"
		file := filepath.Join(t.TempDir(), z.origin+".zone")
		if err := os.WriteFile(file, []byte(head+z.text), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(checkzone, z.origin, file).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "OK") {
			t.Errorf("named-checkzone %s: %v\n%s\n%s", z.origin, err, out, head+z.text)
		}
	}
}

// rsaKey is a 2048-bit RSA key, whose key record needs two TXT strings.
func rsaKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
