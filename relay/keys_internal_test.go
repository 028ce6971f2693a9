package relay

import (
	"bytes"
	"crypto/rand"
	"strings"
	"testing"
)

func TestKeyFormat(t *testing.T) {
	t.Parallel()
	id, secret, err := newKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key := formatKey(id, &secret)
	if len(key) != 77 || !strings.HasPrefix(key, "shk_") || key[20] != '_' {
		t.Fatalf("key %q: want shk_, 16 characters, _, 56 characters", key)
	}
	if key[4:20] != id.String() {
		t.Errorf("ID part %q, want %q", key[4:20], id)
	}
	gotID, gotSecret, ok := parseKey(key)
	if !ok || gotID != id || gotSecret != secret {
		t.Fatalf("parseKey(formatKey(...)) = %v, %v; want the ID and secret back", gotID, ok)
	}
	if back, ok := parseKeyID(id.String()); !ok || back != id {
		t.Errorf("parseKeyID(%q) = %v, %v", id, back, ok)
	}
}

func TestParseKeyRefuses(t *testing.T) {
	t.Parallel()
	id, secret, _ := newKey(rand.Reader)
	key := formatKey(id, &secret)
	for name, s := range map[string]string{
		"empty":            "",
		"prefix only":      "shk_",
		"other prefix":     "shx_" + key[4:],
		"upper-case":       strings.ToUpper(key),
		"upper prefix":     "SHK_" + key[4:],
		"short":            key[:76],
		"long":             key + "a",
		"no separator":     key[:20] + "a" + key[21:],
		"separator moved":  key[:19] + "_" + key[19:76],
		"padding":          key[:76] + "=",
		"base32 digit 1":   key[:30] + "1" + key[31:],
		"base32 digit 8":   key[:5] + "8" + key[6:],
		"newline in ID":    key[:10] + "\n" + key[11:],
		"CR in secret":     key[:40] + "\r" + key[41:],
		"space":            key[:76] + " ",
		"leading space":    " " + key[:76],
		"non-ASCII":        key[:40] + "é" + key[42:],
		"NUL":              key[:40] + "\x00" + key[41:],
		"base64url secret": key[:40] + "-" + key[41:],
	} {
		if _, _, ok := parseKey(s); ok {
			t.Errorf("%s: parseKey(%q) accepted", name, s)
		}
	}
}

// FuzzParseKey checks that parseKey accepts exactly the strings formatKey
// writes: whatever it accepts, formatKey writes back unchanged.
func FuzzParseKey(f *testing.F) {
	id, secret, _ := newKey(bytes.NewReader(bytes.Repeat([]byte{0x5a}, 64)))
	key := formatKey(id, &secret)
	f.Add(key)
	f.Add("")
	f.Add("shk_")
	f.Add(key[:76])
	f.Add(key[:40] + "\n" + key[41:])
	f.Add(strings.ToUpper(key))
	f.Add("shk_aaaaaaaaaaaaaaaa_" + strings.Repeat("7", 56))
	f.Fuzz(func(t *testing.T, s string) {
		id, secret, ok := parseKey(s)
		if !ok {
			return
		}
		if back := formatKey(id, &secret); back != s {
			t.Fatalf("parseKey accepted %q, which formats as %q", s, back)
		}
	})
}

func TestCheckKeyName(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"a", "web app", "Zoë's shop", "billing-prod.2", strings.Repeat("x", MaxKeyName)} {
		if err := checkKeyName(name); err != nil {
			t.Errorf("checkKeyName(%q) = %v, want nil", name, err)
		}
	}
	for _, name := range []string{
		"", strings.Repeat("x", MaxKeyName+1), "a\nb", "a\rb", "tab\there", "nul\x00", "del\x7f",
		"c1\u0085", "bidi\u202eevil", "zero\u200bwidth", "line\u2028sep", " lead", "trail ", "bad\xffutf8",
	} {
		if err := checkKeyName(name); err == nil {
			t.Errorf("checkKeyName(%q) = nil, want an error", name)
		}
	}
}

func TestNormalizeScopes(t *testing.T) {
	t.Parallel()
	got, err := normalizeScopes([]string{"mail.send", "mail.send"})
	if err != nil || len(got) != 1 || got[0] != ScopeSend {
		t.Errorf("normalizeScopes(mail.send twice) = %q, %v", got, err)
	}
	for _, scopes := range [][]string{nil, {}, {"mail.read"}, {"mail.send", "admin"}, {"MAIL.SEND"}, {""}} {
		if got, err := normalizeScopes(scopes); err == nil {
			t.Errorf("normalizeScopes(%q) = %q, want an error", scopes, got)
		}
	}
}

func TestNormalizeDomains(t *testing.T) {
	t.Parallel()
	got, err := normalizeDomains([]string{"Example.COM.", "*.example.org", "example.com", "xn--bcher-kva.example", "a-b.c1.example"}, []string{ScopeSend})
	want := []string{"*.example.org", "a-b.c1.example", "example.com", "xn--bcher-kva.example"}
	if err != nil || strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("normalizeDomains = %q, %v; want %q", got, err, want)
	}
	for _, d := range []string{
		"", ".", "com", "*.com", "*", "*.", "**.example.com", "a.*.example.com", "example..com", ".example.com",
		"-a.example.com", "a-.example.com", "ex_ample.com", "ex ample.com", "bücher.example", "example.com\n",
		strings.Repeat("a", 64) + ".com", strings.Repeat("abcdefghi.", 26) + "com", "user@example.com", "[192.0.2.1]",
	} {
		if got, err := normalizeDomains([]string{d}, []string{ScopeSend}); err == nil {
			t.Errorf("normalizeDomains(%q) = %q, want an error", d, got)
		}
	}
	if _, err := normalizeDomains(nil, []string{ScopeSend}); err == nil {
		t.Error("normalizeDomains(none) for a sending key: want an error")
	}
}

func TestKeyHash(t *testing.T) {
	t.Parallel()
	id, secret, _ := newKey(rand.Reader)
	k1 := bytes.Repeat([]byte{1}, 32)
	k2 := bytes.Repeat([]byte{2}, 32)
	h := keyHash(k1, id, &secret)
	if h != keyHash(k1, id, &secret) {
		t.Error("keyHash is not deterministic")
	}
	if h == keyHash(k2, id, &secret) {
		t.Error("keyHash does not depend on the hash key")
	}
	other := id
	other[0] ^= 1
	if h == keyHash(k1, other, &secret) {
		t.Error("keyHash does not depend on the ID")
	}
}
