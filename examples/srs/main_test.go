package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Expected addresses are postsrsd 2.x's (its socketmap tests: secret
// tops3cr3t, domain example.com, Unix time 1577836860).

func secretFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secrets")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRun(t *testing.T) {
	t.Parallel()
	one := secretFile(t, "tops3cr3t\n")
	rotated := secretFile(t, "n3w\r\n\r\ntops3cr3t\r\n")
	for _, tc := range []struct {
		name   string
		args   []string
		status int
		stdout string
		stderr string
	}{
		{"forward", []string{"forward", "-domain", "example.com", "-secret-file", one, "-now", "1577836860",
			"test@otherdomain.com", "SRS0=opaque+string@otherdomain.com", "test@example.com", "hash234@somedomain.com"}, 0,
			"SRS0=vmyz=2W=otherdomain.com=test@example.com\nSRS1=chaI=otherdomain.com==opaque+string@example.com\ntest@example.com\nSRS0=-3_5=2W=somedomain.com=hash234@example.com\n", ""},
		{"forward error keeps its line", []string{"forward", "-domain", "example.com", "-secret-file", one, "-now", "1577836860",
			"foo", "test@otherdomain.com"}, 1,
			"error: no domain\nSRS0=vmyz=2W=otherdomain.com=test@example.com\n", ""},
		{"reverse", []string{"reverse", "-domain", "example.com", "-secret-file", rotated, "-now", "1577836860",
			"SRS0=XjO9=2V=otherdomain.com=test@example.com", "SRS0=FAKE=2V=otherdomain.com=test@example.com",
			"SRS0=te87=T7=otherdomain.com=test@example.com", "test@example.com", "SRS1=JIBX=thirddomain.com==opaque+string@example.com"}, 1,
			"test@otherdomain.com\nerror: hash invalid in SRS address\nerror: timestamp out of date\nerror: not an SRS address\nSRS0=opaque+string@thirddomain.com\n", ""},
		{"max age", []string{"reverse", "-domain", "example.com", "-secret-file", one, "-now", "1577836860", "-max-age", "1",
			"SRS0=XjO9=2V=otherdomain.com=test@example.com"}, 0, "test@otherdomain.com\n", ""},
		{"separator and hash length", []string{"forward", "-domain", "example.com", "-secret-file", one, "-now", "1577836860", "-sep", "+", "-hash-len", "6",
			"SRS0=opaque+string@otherdomain.com"}, 0, "SRS1+chaI", ""},
		{"no mode", nil, 2, "", "srs: no mode: want forward or reverse"},
		{"bad mode", []string{"sideways", "-domain", "x"}, 2, "", `srs: unknown mode "sideways"`},
		{"no domain", []string{"forward", "-secret-file", one, "a@b"}, 2, "", "-domain is required"},
		{"no secret file", []string{"forward", "-domain", "example.com", "a@b"}, 2, "", "-secret-file is required"},
		{"missing secret file", []string{"forward", "-domain", "example.com", "-secret-file", one + ".nope", "a@b"}, 2, "", "-secret-file: open " + one + ".nope: no such file"},
		{"empty secret file", []string{"forward", "-domain", "example.com", "-secret-file", secretFile(t, "\n\n"), "a@b"}, 2, "", "no secret"},
		{"bad separator", []string{"forward", "-domain", "example.com", "-secret-file", one, "-sep", "/", "a@b"}, 2, "", "srs: -sep: Separator '/' is not one of = + -\n"},
		{"bad domain", []string{"forward", "-domain", "exa mple", "-secret-file", one, "a@b"}, 2, "", `srs: -domain: domain: domain "exa mple" contains ' '` + "\n"},
		{"bad max age", []string{"forward", "-domain", "example.com", "-secret-file", one, "-max-age", "2000", "a@b"}, 2, "", "srs: -max-age: MaxAge"},
		{"bad hash length", []string{"forward", "-domain", "example.com", "-secret-file", one, "-hash-len", "0", "a@b"}, 2, "", "-hash-len"},
		{"bad now", []string{"forward", "-domain", "example.com", "-secret-file", one, "-now", "yesterday", "a@b"}, 2, "", "-now"},
		{"unknown flag", []string{"forward", "-domain", "example.com", "-secret-file", one, "-bogus", "a@b"}, 2, "", "bogus"},
		{"no address", []string{"forward", "-domain", "example.com", "-secret-file", one}, 2, "", "no address"},
	} {
		var stdout, stderr bytes.Buffer
		status := run(tc.args, nil, &stdout, &stderr)
		if status != tc.status {
			t.Errorf("%s: status %d, want %d (stderr %q)", tc.name, status, tc.status, stderr.String())
		}
		if tc.status == 2 {
			if stdout.Len() != 0 || !strings.Contains(stderr.String(), tc.stderr) || strings.Count(stderr.String(), "\n") != 1 {
				t.Errorf("%s: stdout %q stderr %q, want %q in stderr", tc.name, stdout.String(), stderr.String(), tc.stderr)
			}
			continue
		}
		if !strings.HasPrefix(stdout.String(), tc.stdout) || (tc.name != "separator and hash length" && stdout.String() != tc.stdout) {
			t.Errorf("%s: stdout\n%s\nwant\n%s", tc.name, stdout.String(), tc.stdout)
		}
		if tc.name == "separator and hash length" && !strings.HasSuffix(stdout.String(), "=otherdomain.com==opaque+string@example.com\n") || stderr.Len() != 0 {
			t.Errorf("%s: stdout %q stderr %q", tc.name, stdout.String(), stderr.String())
		}
	}
}

// TestRunOptions: the flags that give the program srs.Options.
func TestRunOptions(t *testing.T) {
	t.Parallel()
	one := secretFile(t, "tops3cr3t\n")
	base := []string{"-domain", "example.com", "-secret-file", one, "-now", "1577836860"}
	long := strings.Repeat("x", 60) + "@otherdomain.com"
	for _, tc := range []struct {
		name   string
		args   []string
		status int
		match  func(string) bool
	}{
		// The postsrsd 2.x vector "SRS0=-3_5=2W=..." in postsrsd 1.x's alphabet.
		{"alphabet base64", []string{"forward", "-alphabet", "base64", "hash234@somedomain.com"}, 0,
			eq("SRS0=+3/5=2W=somedomain.com=hash234@example.com\n")},
		{"alphabet base64url", []string{"forward", "-alphabet", "base64url", "hash234@somedomain.com"}, 0,
			eq("SRS0=-3_5=2W=somedomain.com=hash234@example.com\n")},
		{"long refused", []string{"forward", long}, 1, eq("error: SRS local part would exceed 64 octets and there is no store\n")},
		{"allow long", []string{"forward", "-allow-long", long}, 0, func(s string) bool {
			return strings.HasPrefix(s, "SRS0=") && strings.HasSuffix(s, "=2W=otherdomain.com="+strings.Repeat("x", 60)+"@example.com\n")
		}},
		{"local domain", []string{"forward", "test@example.com"}, 0, eq("test@example.com\n")},
		{"always rewrite", []string{"forward", "-always-rewrite", "test@example.com"}, 0, func(s string) bool {
			return strings.HasPrefix(s, "SRS0=") && strings.HasSuffix(s, "=2W=example.com=test@example.com\n")
		}},
		{"local domains", []string{"forward", "-local-domains", ".corp.example,other.example", "a@x.corp.example", "a@other.example", "a@corp.example"}, 0,
			func(s string) bool {
				return strings.HasPrefix(s, "a@x.corp.example\na@other.example\nSRS0=") && strings.HasSuffix(s, "=2W=corp.example=a@example.com\n")
			}},
		// The vector's hash "XjO9" cut to 3 characters.
		{"hash-min", []string{"reverse", "-hash-min", "3", "SRS0=XjO=2V=otherdomain.com=test@example.com"}, 0, eq("test@otherdomain.com\n")},
		{"hash-min default", []string{"reverse", "SRS0=XjO=2V=otherdomain.com=test@example.com"}, 1, eq("error: hash too short in SRS address\n")},
		{"bad alphabet", []string{"forward", "-alphabet", "base32", "a@b.example"}, 2, nil},
		{"bad local domain", []string{"forward", "-local-domains", "a b", "a@b.example"}, 2, nil},
		{"bad hash-min", []string{"forward", "-hash-min", "5", "a@b.example"}, 2, nil},
		{"help", []string{"forward", "-h"}, 0, func(s string) bool {
			return strings.Contains(s, "-alphabet NAME") && strings.Contains(s, "-allow-long")
		}},
	} {
		var stdout, stderr bytes.Buffer
		args := append([]string{tc.args[0]}, append(append([]string(nil), base...), tc.args[1:]...)...)
		status := run(args, nil, &stdout, &stderr)
		if status != tc.status || (tc.match != nil && !tc.match(stdout.String())) {
			t.Errorf("%s: status %d, stdout %q, stderr %q", tc.name, status, stdout.String(), stderr.String())
		}
	}
}

func eq(want string) func(string) bool { return func(s string) bool { return s == want } }
