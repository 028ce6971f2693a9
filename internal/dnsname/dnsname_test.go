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

// checkSpec is Check written from RFC 1035 §2.3.4 as plainly as it reads.
func checkSpec(name string, whole bool) bool {
	if whole && (name == "" || len(name) > MaxName) {
		return false
	}
	for _, l := range strings.Split(name, ".") {
		if l == "" || len(l) > MaxLabel {
			return false
		}
	}
	return true
}

func TestCheck(t *testing.T) {
	t.Parallel()
	l63, l64 := strings.Repeat("a", 63), strings.Repeat("a", 64)
	name253 := strings.Repeat("abcdefghi.", 24) + "a.example.com"
	for _, tc := range []struct {
		in            string
		check, labels bool
	}{
		{"example.com", true, true},
		{"com", true, true},
		{"_dmarc.Example.COM", true, true},
		{"\x00.\xff", true, true}, // lengths only
		{l63 + ".com", true, true},
		{name253, true, true},
		{"x" + name253, false, true},
		{l64 + ".com", false, false},
		{"", false, false},
		{".", false, false},
		{"example.com.", false, false},
		{".example.com", false, false},
		{"a..b", false, false},
		{strings.Repeat(l63+".", 5) + "x", false, true},
	} {
		if err := Check(tc.in); (err == nil) != tc.check || err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("Check(%.40q) = %v, want ok %t", tc.in, err, tc.check)
		}
		if err := CheckLabels(tc.in); (err == nil) != tc.labels || err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("CheckLabels(%.40q) = %v, want ok %t", tc.in, err, tc.labels)
		}
	}
}

// FuzzCheck: Check and CheckLabels accept exactly what the plain reading
// of RFC 1035 §2.3.4 accepts, and Absolute accepts a name when Check
// accepts it without its one final dot.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{"example.com", "a..b", ".", "", "a.", strings.Repeat("a.", 130), strings.Repeat("b", 64)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if got, want := Check(name) == nil, checkSpec(name, true); got != want {
			t.Fatalf("Check(%q) ok %t, want %t", name, got, want)
		}
		if got, want := CheckLabels(name) == nil, checkSpec(name, false); got != want {
			t.Fatalf("CheckLabels(%q) ok %t, want %t", name, got, want)
		}
		_, err := Absolute(name)
		if want := name == "." || Check(strings.TrimSuffix(name, ".")) == nil; (err == nil) != want {
			t.Fatalf("Absolute(%q): %v, want ok %t", name, err, want)
		}
	})
}
