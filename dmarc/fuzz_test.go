package dmarc

import (
	"strings"
	"testing"
)

func FuzzParseRecord(f *testing.F) {
	for _, s := range []string{
		"v=DMARC1; p=none; rf=afrf; rua=mailto:dmarc-a@abuse.net; ruf=mailto:dmarc-f@abuse.net",
		"v=DMARC1;p=none;sp=none;rua=mailto:postmaster@cmnet.org!10m;;pct=100;ri=86400",
		"v=DMARC1; p=reject; sp=quarantine; np=none; psd=y; t=y; adkim=s; aspf=r; fo=0:d",
		"v=DMARC1; p=n;", "V=BOB", "", "v=DMARC1; pct=500; fo:1:d; rua=ftp://x, mailto://y!7g",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_ = Check(s)
		r, err := Parse(s)
		if err != nil {
			return
		}
		out := r.String()
		r2, err := Parse(out)
		if err != nil {
			t.Fatalf("String() %q does not parse: %v", out, err)
		}
		if r2.String() != out {
			t.Fatalf("round trip: %q -> %q", out, r2.String())
		}
		if len(r2.Invalid) != 0 {
			t.Fatalf("String() %q has invalid tags %v", out, r2.Invalid)
		}
	})
}

func FuzzFromDomains(f *testing.F) {
	for _, s := range []string{
		"Joe Johnson <joe@joe.com>", "\"Johnson, Joe <joe@joe.com>\" joe@joe.com", "<<<><joe@joe.com>>>",
		"(Joe (nested) Johnson) joe@joe.com", "Mail From:<joe@joe.com>", "a@b.example, c@d.example", "\"\\\"q\" <x@y.z>",
		"group: a@b.example;", "=?utf-8?q?J=C3=B6?= <j@bücher.example>",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ds, err := fromDomains(s)
		if err != nil {
			if len(ds) != 0 {
				t.Fatal("domains with an error")
			}
			return
		}
		if len(ds) == 0 {
			t.Fatal("no domains and no error")
		}
		for _, d := range ds {
			if !validDomain(d) || d != strings.ToLower(d) {
				t.Fatalf("invalid domain %q from %q", d, s)
			}
		}
	})
}
