package dnsname

import (
	"errors"
	"strings"
	"testing"
)

func TestAbsolute(t *testing.T) {
	t.Parallel()
	l63 := strings.Repeat("a", 63)
	name253 := strings.Repeat("abcdefghi.", 24) + "a.example.com" // RFC 1035 §2.3.4: 255 on the wire
	for _, tc := range []struct{ in, want string }{
		{"example.com", "example.com."},
		{"Example.COM.", "Example.COM."},
		{".", "."},
		{l63 + ".com", l63 + ".com."},
		{name253, name253 + "."},
		{name253 + ".", name253 + "."},
		{"_dmarc.example.com", "_dmarc.example.com."},
	} {
		got, err := Absolute(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("Absolute(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "..", "a..b", ".a", "a.b..", strings.Repeat("a", 64) + ".com", "x" + name253} {
		if got, err := Absolute(in); !errors.Is(err, ErrInvalid) {
			t.Errorf("Absolute(%.40q) = %q, %v; want ErrInvalid", in, got, err)
		}
	}
}

func TestKey(t *testing.T) {
	t.Parallel()
	if Key("Ex.COM.") != "ex.com." || Key("ex.com.") != "ex.com." {
		t.Error("Key does not fold case")
	}
}

// FuzzAbsolute: an accepted name is absolute, within the RFC 1035 limits,
// and accepted again unchanged.
func FuzzAbsolute(f *testing.F) {
	for _, s := range []string{"example.com", "a..b", ".", "", strings.Repeat("a.", 130), "x\\.y.com."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		abs, err := Absolute(name)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if !strings.HasSuffix(abs, ".") || len(abs) > MaxName+1 {
			t.Fatalf("Absolute(%q) = %q", name, abs)
		}
		if abs != "." {
			for _, l := range strings.Split(strings.TrimSuffix(abs, "."), ".") {
				if len(l) == 0 || len(l) > MaxLabel {
					t.Fatalf("Absolute(%q) = %q has label %q", name, abs, l)
				}
			}
		}
		if again, err := Absolute(abs); err != nil || again != abs {
			t.Fatalf("Absolute(%q) = %q, %v; not stable", abs, again, err)
		}
	})
}
