package dnsname

import (
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// wire builds the wire form of a name of raw labels (RFC 1035 §3.1).
func wire(labels []string) []byte {
	var b []byte
	for _, l := range labels {
		b = append(b, byte(len(l)))
		b = append(b, l...)
	}
	return append(b, 0)
}

// TestEscapeAgainstMiekg: Escape writes a raw name the way miekg/dns
// writes the same labels when it unpacks them from the wire, and Equal
// takes the two forms, and any case change, for the same name.
func TestEscapeAgainstMiekg(t *testing.T) {
	for _, raw := range []string{"o'brien.x.example", "a b.x.example", `a"b.x`, "a(b).x", "a;b.x", "a@b.x", "a\x00b.x",
		`a\046b.x`, "für.x", "a$b.x", "plain.example"} {
		labels := strings.Split(raw, ".")
		want, _, err := dns.UnpackDomainName(wire(labels), 0)
		if err != nil {
			t.Fatal(err)
		}
		got := Escape(raw) + "."
		if got != want {
			t.Errorf("Escape(%q) = %q, miekg/dns writes %q", raw, got, want)
		}
		if !Equal(got, strings.ToUpper(want)) || !Equal(got, strings.TrimSuffix(want, ".")) {
			t.Errorf("Equal(%q, %q) is false", got, want)
		}
	}
	for _, tc := range []struct {
		a, b string
		eq   bool
	}{
		{`a\.b.x.`, `a.b.x.`, false},
		{`a\046b.x.`, `a\.b.x.`, true},
		{`o\'brien.x.`, `o\039brien.x.`, true},
		{`a\\046b.x.`, `a\.b.x.`, false},
		{`ab.x.`, `a.bx.`, false},
		{`x.`, `x.y.`, false},
	} {
		if got := Equal(tc.a, tc.b); got != tc.eq {
			t.Errorf("Equal(%q, %q) = %v", tc.a, tc.b, got)
		}
	}
}

// FuzzEscape: for any raw labels, Escape gives a name miekg/dns packs back
// to the same wire labels, and TXT data survives EscapeTXT then
// UnescapeTXT and miekg's own packing.
func FuzzEscape(f *testing.F) {
	f.Add("o'brien", "a\x00b", `\046`)
	f.Add("für", `"q"`, "a b;c")
	f.Fuzz(func(t *testing.T, l1, l2, l3 string) {
		var labels []string
		for _, l := range []string{l1, l2, l3} {
			if l == "" || len(l) > 63 || strings.Contains(l, ".") {
				return
			}
			labels = append(labels, l)
		}
		raw := strings.Join(labels, ".")
		name := Escape(raw) + "."
		buf := make([]byte, 300)
		n, err := dns.PackDomainName(name, buf, 0, nil, false)
		if err != nil {
			t.Fatalf("miekg cannot pack %q: %v", name, err)
		}
		if got := buf[:n]; string(got) != string(wire(labels)) {
			t.Fatalf("%q packs to %q, want %q", name, got, wire(labels))
		}
		back, _, err := dns.UnpackDomainName(buf[:n], 0)
		if err != nil || !Equal(back, name) {
			t.Fatalf("unpacked %q (%v) is not Equal to %q", back, err, name)
		}
		txt := strings.Join(labels, "")
		if got := UnescapeTXT(EscapeTXT(txt)); got != txt {
			t.Fatalf("TXT %q comes back as %q", txt, got)
		}
		rr := &dns.TXT{Hdr: dns.RR_Header{Name: "t.", Rrtype: dns.TypeTXT, Class: dns.ClassINET}, Txt: []string{EscapeTXT(txt)}}
		msg := new(dns.Msg)
		msg.Answer = []dns.RR{rr}
		b, err := msg.Pack()
		if err != nil {
			t.Fatal(err)
		}
		var m dns.Msg
		if err := m.Unpack(b); err != nil {
			t.Fatal(err)
		}
		if got := UnescapeTXT(m.Answer[0].(*dns.TXT).Txt[0]); got != txt {
			t.Fatalf("TXT %q through miekg comes back as %q", txt, got)
		}
	})
}
