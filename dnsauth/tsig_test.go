package dnsauth_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/smarthost-go/smarthost/dnsauth"
)

// The test key, as tsig-keygen would print it.
const (
	pushKeyName = "update-key"
	pushSecret  = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I="
)

func mustKey(t *testing.T, secret string) *dnsauth.TSIGKey {
	t.Helper()
	k, err := dnsauth.NewTSIGKey(pushKeyName, "hmac-sha256", secret)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestParseTSIGKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, name, alg string }{
		{"update-key:hmac-sha256:" + pushSecret, "update-key.", "hmac-sha256"},
		{"Update-Key.:HMAC-SHA512.:" + pushSecret, "update-key.", "hmac-sha512"},
		{"k.example.com:hmac-sha1:" + pushSecret, "k.example.com.", "hmac-sha1"},
		{"update-key:" + pushSecret, "update-key.", "hmac-sha256"},
		{"update-key::" + pushSecret, "update-key.", "hmac-sha256"},
	} {
		k, err := dnsauth.ParseTSIGKey(tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if k.Name() != tc.name || k.Algorithm() != tc.alg {
			t.Errorf("%s: %s %s, want %s %s", tc.in, k.Name(), k.Algorithm(), tc.name, tc.alg)
		}
	}
	for _, in := range []string{
		"",
		pushSecret,
		"a:b:c:" + pushSecret,
		"k:hmac-md5:" + pushSecret,
		"k:hmac-sha256:" + pushSecret + "!",
		"k:hmac-sha256:",
		":hmac-sha256:" + pushSecret,
		"a..b:hmac-sha256:" + pushSecret,
	} {
		_, err := dnsauth.ParseTSIGKey(in)
		if !errors.Is(err, dnsauth.ErrTSIGKey) {
			t.Errorf("%q: %v, want ErrTSIGKey", in, err)
		} else if strings.Contains(err.Error(), pushSecret[:8]) {
			t.Errorf("%q: the error tells the secret: %v", in, err)
		}
	}
}

// TestTSIGKeyHidesSecret: no fmt verb, no log record and no printing of a
// struct that holds a key shows the secret, in base64, hex or raw.
func TestTSIGKeyHidesSecret(t *testing.T) {
	t.Parallel()
	k := mustKey(t, pushSecret)
	raw, _ := base64.StdEncoding.DecodeString(pushSecret)
	leaks := func(s string) bool {
		return strings.Contains(s, pushSecret) || strings.Contains(strings.ToLower(s), hex.EncodeToString(raw)[:16]) ||
			strings.Contains(s, string(raw[:8])) || strings.Contains(s, fmt.Sprint(raw[:4])[1:10])
	}
	var out []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T"} {
		out = append(out, fmt.Sprintf(verb, k), fmt.Sprintf(verb, *k))
	}
	out = append(out, k.String(), k.GoString(),
		fmt.Sprintf("%+v", struct{ Key *dnsauth.TSIGKey }{k}),
		fmt.Sprintf("%+v", struct{ key dnsauth.TSIGKey }{*k}),
		fmt.Sprintf("%#v", struct{ key *dnsauth.TSIGKey }{k}))
	u, err := dnsauth.NewUpdater("127.0.0.1:53", "example.com", k, nil)
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, fmt.Sprintf("%+v", u), fmt.Sprintf("%#v", u))
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("key", "key", k, "value", *k)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("key", "key", k)
	out = append(out, logs.String())
	for _, s := range out {
		if leaks(s) {
			t.Errorf("the secret shows in %q", s)
		}
	}
	if !strings.Contains(logs.String(), "update-key.") || !strings.Contains(fmt.Sprint(k), "hmac-sha256") {
		t.Errorf("the key's name and algorithm do not show: %s", logs.String())
	}
}

// TestTSIGAlgorithms: updates signed with each algorithm are accepted by a
// server that holds the same key.
func TestTSIGAlgorithms(t *testing.T) {
	t.Parallel()
	for _, alg := range []string{"hmac-sha1", "hmac-sha224", "hmac-sha256", "hmac-sha384", "hmac-sha512"} {
		s, _ := pushServer(t, pushZone)
		k, err := dnsauth.ParseTSIGKey(pushKeyName + ":" + alg + ":" + pushSecret)
		if err != nil {
			t.Fatal(err)
		}
		u, err := dnsauth.NewUpdater(s.Addr, "example.com.", k, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := u.Apply(context.Background(), []dnsauth.Change{{Action: dnsauth.Add,
			Record: dnsauth.Record{Name: "x.example.com.", Type: "TXT", Value: alg, TTL: 300}}})
		if err != nil || outcomes(res) != "applied" {
			t.Errorf("%s: %s %v", alg, outcomes(res), err)
		}
	}
}

// FuzzParseTSIGKey: ParseTSIGKey never panics, and a key it returns has an
// absolute name and a known algorithm, and shows nothing but them.
func FuzzParseTSIGKey(f *testing.F) {
	for _, s := range []string{
		"update-key:hmac-sha256:" + pushSecret,
		"update-key:" + pushSecret,
		"k.example.com.:HMAC-SHA512.:" + pushSecret,
		"k:hmac-md5:" + pushSecret,
		"a:b:c:d",
		"::",
		"k:hmac-sha256: " + pushSecret + " ",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := dnsauth.ParseTSIGKey(s)
		if err != nil {
			if k != nil || !errors.Is(err, dnsauth.ErrTSIGKey) {
				t.Fatalf("%q: %v, %v", s, k, err)
			}
			return
		}
		if !strings.HasSuffix(k.Name(), ".") || k.Name() == "." || !strings.HasPrefix(k.Algorithm(), "hmac-sha") {
			t.Fatalf("%q: name %q, algorithm %q", s, k.Name(), k.Algorithm())
		}
		// What shows of a key is made of its name and algorithm alone.
		want := "TSIG key " + k.Name() + " " + k.Algorithm() + " (secret not shown)"
		for _, out := range []string{fmt.Sprint(k), fmt.Sprintf("%x", *k), fmt.Sprintf("%d", k)} {
			if out != want {
				t.Fatalf("%q: shows %q", s, out)
			}
		}
		if got, want := fmt.Sprintf("%#v", k), fmt.Sprintf("dnsauth.TSIGKey{name: %q, algorithm: %q, secret: /* not shown */}", k.Name(), k.Algorithm()); got != want {
			t.Fatalf("%q: %%#v shows %q", s, got)
		}
	})
}
