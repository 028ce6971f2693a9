package dkim_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smarthost-go/smarthost/dkim"
	"github.com/smarthost-go/smarthost/dnsauth/dnstest"
)

// zoneFromLines builds a zone from "name TXT-value" lines, the format of the
// shared DKIM conformance data.
func zoneFromLines(t testing.TB, text string) *dnstest.Zone {
	t.Helper()
	z := dnstest.NewZone()
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimRight(l, "\r")
		if strings.TrimSpace(l) == "" {
			continue
		}
		name, value, ok := strings.Cut(l, " ")
		if !ok {
			t.Fatalf("bad zone line %q", l)
		}
		z.AddTXT(strings.TrimSuffix(name, ".")+".", value)
	}
	return z
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.FromSlash(path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// toCRLF turns LF line ends into CRLF (files stored with LF endings).
func toCRLF(b []byte) []byte {
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	return bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
}

// fixedClock returns a clock stopped at Unix time sec.
func fixedClock(sec int64) func() time.Time {
	return func() time.Time { return time.Unix(sec, 0) }
}

// mustVerifier returns a Verifier over r, failing t on an error.
func mustVerifier(t testing.TB, r dkim.Resolver, o *dkim.VerifyOptions) *dkim.Verifier {
	t.Helper()
	v, err := dkim.NewVerifier(r, o)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// reason is the text of r.Err without the package prefix, "" on pass.
func reason(r *dkim.Result) string {
	if r.Err == nil {
		return ""
	}
	return strings.TrimPrefix(r.Err.Error(), "dkim: ")
}
