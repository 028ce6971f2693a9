package sasl_test

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	gosasl "github.com/emersion/go-sasl"

	"github.com/smarthost-go/smarthost/relay/sasl"
)

// exchange runs c against s as SMTP AUTH carries them (RFC 4954 §4): the
// initial response, then challenge and response until s is done.
func exchange(c gosasl.Client, s gosasl.Server) error {
	_, resp, err := c.Start()
	if err != nil {
		return err
	}
	for range 10 {
		challenge, done, err := s.Next(resp)
		if err != nil || done {
			return err
		}
		if resp, err = c.Next(challenge); err != nil {
			return err
		}
	}
	return errors.New("exchange does not end")
}

func users(t testing.TB) *sasl.Users {
	t.Helper()
	u := &sasl.Users{}
	if err := u.SetPassword("user", "pencil"); err != nil {
		t.Fatal(err)
	}
	if err := u.SetToken("user", "token-1"); err != nil {
		t.Fatal(err)
	}
	return u
}

var allMechs = []string{sasl.SCRAMSHA256, sasl.SCRAMSHA1, sasl.CRAMMD5, sasl.Plain, sasl.Login, sasl.XOAuth2}

// Every client of the package authenticates to its server, and only with
// the right secret.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	u := users(t)
	for _, mech := range allMechs {
		t.Run(mech, func(t *testing.T) {
			t.Parallel()
			for _, tc := range []struct {
				name string
				cred sasl.Credentials
				want error
			}{
				{"right", sasl.Credentials{Username: "user", Password: "pencil", Token: "token-1"}, nil},
				{"right, as itself", sasl.Credentials{Identity: "user", Username: "user", Password: "pencil", Token: "token-1"}, nil},
				{"user name after SASLprep", sasl.Credentials{Username: "us\u00ader", Password: "pencil", Token: "token-1"}, nil},
				{"wrong secret", sasl.Credentials{Username: "user", Password: "pencil2", Token: "token-2"}, sasl.ErrAuthFailed},
				{"unknown user", sasl.Credentials{Username: "nobody", Password: "pencil", Token: "token-1"}, sasl.ErrAuthFailed},
			} {
				c, err := sasl.NewClient(mech, tc.cred)
				if err != nil {
					t.Fatal(err)
				}
				s, err := u.NewServer(mech)
				if err != nil {
					t.Fatal(err)
				}
				err = exchange(c, s)
				if !errors.Is(err, tc.want) {
					t.Fatalf("%s: %v, want %v", tc.name, err, tc.want)
				}
				if want := map[bool]string{true: "user"}[tc.want == nil]; s.Username() != want {
					t.Errorf("%s: Username() = %q, want %q", tc.name, s.Username(), want)
				}
				if tc.want == nil {
					if err := sasl.Complete(c); err != nil {
						t.Errorf("%s: Complete: %v", tc.name, err)
					}
					if _, _, err := s.Next([]byte{}); !errors.Is(err, sasl.ErrUnexpected) {
						t.Errorf("%s: Next after done: %v, want ErrUnexpected", tc.name, err)
					}
				}
			}
		})
	}
}

// go-sasl's own clients (PLAIN, LOGIN) work with the servers too.
func TestServerWithGoSASLClients(t *testing.T) {
	t.Parallel()
	u := users(t)
	for mech, c := range map[string]gosasl.Client{
		sasl.Plain: gosasl.NewPlainClient("", "user", "pencil"),
		sasl.Login: gosasl.NewLoginClient("user", "pencil"), // user name as initial response
	} {
		s, _ := u.NewServer(mech)
		if err := exchange(c, s); err != nil || s.Username() != "user" {
			t.Errorf("%s: %v, user %q", mech, err, s.Username())
		}
	}
}

// RFC 4616 §4: the first example logs tim in; in the second, Kurt asks to
// act as Ursel, which this server does not allow.
func TestPlainServerRFC4616(t *testing.T) {
	t.Parallel()
	u := &sasl.Users{}
	for user, pw := range map[string]string{"tim": "tanstaaftanstaaf", "Kurt": "xipj3plmq"} {
		if err := u.SetPassword(user, pw); err != nil {
			t.Fatal(err)
		}
	}
	s, _ := u.NewServer(sasl.Plain)
	if _, done, err := s.Next([]byte("\x00tim\x00tanstaaftanstaaf")); !done || err != nil || s.Username() != "tim" {
		t.Errorf("example 1: done %v, %v, user %q", done, err, s.Username())
	}
	// The server prepares the password with SASLprep (RFC 4616 §2).
	s, _ = u.NewServer(sasl.Plain)
	if _, done, err := s.Next([]byte("\x00tim\x00tanstaaf\u00adtanstaaf")); !done || err != nil {
		t.Errorf("password with a soft hyphen: done %v, %v", done, err)
	}
	s, _ = u.NewServer(sasl.Plain)
	if _, _, err := s.Next([]byte("Ursel\x00Kurt\x00xipj3plmq")); !errors.Is(err, sasl.ErrAuthFailed) {
		t.Errorf("example 2 (Kurt as Ursel): %v, want ErrAuthFailed", err)
	}
	// Without an initial response the server asks for it with an empty
	// challenge.
	s, _ = u.NewServer(sasl.Plain)
	if ch, done, err := s.Next(nil); ch == nil || len(ch) != 0 || done || err != nil {
		t.Errorf("Next(nil) = %q, %v, %v; want an empty challenge", ch, done, err)
	}
}

// RFC 2195 §2: the server's challenge and the check of tim's answer.
func TestCRAMMD5ServerRFC2195(t *testing.T) {
	t.Parallel()
	rnd := make([]byte, 16)
	binary.BigEndian.PutUint64(rnd, 1896)
	binary.BigEndian.PutUint64(rnd[8:], 697170952)
	u := &sasl.Users{Hostname: "postoffice.reston.mci.net"}
	if err := u.SetPassword("tim", "tanstaaftanstaaf"); err != nil {
		t.Fatal(err)
	}
	u.Rand = bytes.NewReader(rnd)
	s, _ := u.NewServer(sasl.CRAMMD5)
	ch, done, err := s.Next(nil)
	if want := "<1896.697170952@postoffice.reston.mci.net>"; string(ch) != want || done || err != nil {
		t.Fatalf("challenge %q, %v, %v; want %q", ch, done, err, want)
	}
	if _, done, err := s.Next([]byte("tim b913a602c7eda7a495b4e6e7334d3890")); !done || err != nil || s.Username() != "tim" {
		t.Errorf("answer: done %v, %v", done, err)
	}
}

// RFC 5802 §5 and RFC 7677 §3, from the server's side: its messages are
// the RFC's, byte for byte.
func TestSCRAMServerRFCExamples(t *testing.T) {
	t.Parallel()
	for _, v := range scramVectors {
		t.Run(v.mech, func(t *testing.T) {
			t.Parallel()
			salt, _ := base64.StdEncoding.DecodeString(v.salt)
			k, err := sasl.NewSCRAMKeys(v.mech, "pencil", salt, 4096)
			if err != nil {
				t.Fatal(err)
			}
			u := &sasl.Users{Rand: strings.NewReader(v.serverNonce)}
			if err := u.SetSCRAMKeys("user", k); err != nil {
				t.Fatal(err)
			}
			s, _ := u.NewServer(v.mech)
			first, done, err := s.Next([]byte(v.clientFirst))
			if string(first) != v.serverFirst || done || err != nil {
				t.Fatalf("server-first = %q, %v, %v; want %q", first, done, err, v.serverFirst)
			}
			final, done, err := s.Next([]byte(v.clientFinal))
			if string(final) != v.serverFinal || done || err != nil {
				t.Fatalf("server-final = %q, %v, %v; want %q", final, done, err, v.serverFinal)
			}
			if _, done, err := s.Next([]byte{}); !done || err != nil || s.Username() != "user" {
				t.Errorf("end: done %v, %v, user %q", done, err, s.Username())
			}
		})
	}
}

// The SCRAM server refuses what RFC 5802 does not allow, and proofs that
// are not the user's.
func TestSCRAMServerRefuses(t *testing.T) {
	t.Parallel()
	v := scramVectors[1]
	salt, _ := base64.StdEncoding.DecodeString(v.salt)
	k, _ := sasl.NewSCRAMKeys(v.mech, "pencil", salt, 4096)
	tamper := func(s, old, new string) string { return strings.Replace(s, old, new, 1) }
	for _, tc := range []struct {
		name               string
		clientFirst, final string
		want               error
	}{
		{"tampered proof", v.clientFirst, tamper(v.clientFinal, "p=dHzb", "p=dHzc"), sasl.ErrAuthFailed},
		{"short proof", v.clientFirst, v.clientFinal[:strings.Index(v.clientFinal, "p=")] + "p=AAAA", sasl.ErrAuthFailed},
		{"nonce not the combined one", v.clientFirst, tamper(v.clientFinal, "k0,p", "k1,p"), sasl.ErrAuthFailed},
		{"channel binding not the GS2 header", v.clientFirst, tamper(v.clientFinal, "c=biws", "c=eSws"), sasl.ErrSyntax},
		{"no proof", v.clientFirst, "c=biws,r=x", sasl.ErrSyntax},
		{"proof not base64", v.clientFirst, tamper(v.clientFinal, "p=dHzb", "p=*Hzb"), sasl.ErrSyntax},
		{"channel binding asked for", "p=tls-unique,,n=user,r=rOprNGfwEbeRWgbNEkqO", "", sasl.ErrAuthFailed},
		{"bad GS2 flag", "x,,n=user,r=rOprNGfwEbeRWgbNEkqO", "", sasl.ErrSyntax},
		{"no GS2 header", "n=user,r=rOprNGfwEbeRWgbNEkqO", "", sasl.ErrSyntax},
		{"mandatory extension", "n,,m=x,n=user,r=rOprNGfwEbeRWgbNEkqO", "", sasl.ErrSyntax},
		{"bare = in name", "n,,n=us=er,r=rOprNGfwEbeRWgbNEkqO", "", sasl.ErrSyntax},
		{"empty name", "n,,n=,r=rOprNGfwEbeRWgbNEkqO", "", sasl.ErrSyntax},
		{"nonce with a space", "n,,n=user,r=a b", "", sasl.ErrSyntax},
		{"acting as another", "n,a=admin,n=user,r=rOprNGfwEbeRWgbNEkqO", "", sasl.ErrAuthFailed},
		{"authzid not a=", "n,b=admin,n=user,r=rOprNGfwEbeRWgbNEkqO", "", sasl.ErrSyntax},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			u := &sasl.Users{Rand: strings.NewReader(v.serverNonce)}
			u.SetSCRAMKeys("user", k)
			s, _ := u.NewServer(v.mech)
			_, _, err := s.Next([]byte(tc.clientFirst))
			if tc.final != "" {
				if err != nil {
					t.Fatalf("client-first refused: %v", err)
				}
				_, _, err = s.Next([]byte(tc.final))
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("error %v, want %v", err, tc.want)
			}
			if s.Username() != "" {
				t.Errorf("Username() = %q after a failure", s.Username())
			}
		})
	}
}

// An unknown user gets a salt as a known one would, the same each time,
// so that the server-first-message does not tell who exists.
func TestSCRAMUnknownUserSalt(t *testing.T) {
	t.Parallel()
	u := users(t)
	salts := map[string]bool{}
	for range 2 {
		s, _ := u.NewServer(sasl.SCRAMSHA256)
		first, _, err := s.Next([]byte("n,,n=nobody,r=abcdefghijklmnop"))
		if err != nil {
			t.Fatal(err)
		}
		_, rest, _ := strings.Cut(string(first), ",s=")
		salts[rest] = true
	}
	if len(salts) != 1 {
		t.Errorf("the salts of an unknown user differ: %v", salts)
	}
}

func TestServerMalformed(t *testing.T) {
	t.Parallel()
	u := users(t)
	for _, tc := range []struct {
		mech string
		msgs []string // the client's messages; a first "" is no initial response
	}{
		{sasl.Plain, []string{"user\x00pencil"}},
		{sasl.Plain, []string{"\x00\x00pencil"}},
		{sasl.Plain, []string{"\x00user\x00"}},
		{sasl.Plain, []string{"\x00user\x00pen\x00cil"}},
		{sasl.Plain, []string{"\x00user\x00" + strings.Repeat("p", 256)}},
		{sasl.Plain, []string{"\x00us\xffer\x00pencil"}},
		{sasl.CRAMMD5, []string{"", "user"}},
		{sasl.CRAMMD5, []string{"", "user 1234"}},
		{sasl.CRAMMD5, []string{"unexpected initial response"}},
		{sasl.XOAuth2, []string{"user=user\x01auth=Bearer token-1\x01"}},
		{sasl.XOAuth2, []string{"user=user\x01auth=Basic dG9rZW4=\x01\x01"}},
		{sasl.XOAuth2, []string{"auth=Bearer token-1\x01\x01"}},
		{sasl.Login, []string{"", ""}},
	} {
		s, _ := u.NewServer(tc.mech)
		var err error
		for i, m := range tc.msgs {
			resp := []byte(m)
			if i == 0 && m == "" {
				resp = nil // no initial response
			}
			if _, _, err = s.Next(resp); err != nil {
				break
			}
		}
		if !errors.Is(err, sasl.ErrSyntax) {
			t.Errorf("%s %q: %v, want ErrSyntax", tc.mech, tc.msgs, err)
		}
	}
}

// XOAUTH2: a refused token gets a JSON error challenge, and the client's
// empty answer the failure.
func TestXOAuth2ServerFailure(t *testing.T) {
	t.Parallel()
	u := users(t)
	s, _ := u.NewServer(sasl.XOAuth2)
	ch, done, err := s.Next([]byte("user=user\x01auth=Bearer wrong\x01\x01"))
	if done || err != nil || !strings.Contains(string(ch), `"status":"401"`) {
		t.Fatalf("refused token: %q, %v, %v; want a JSON error challenge", ch, done, err)
	}
	if _, _, err := s.Next([]byte{}); !errors.Is(err, sasl.ErrAuthFailed) {
		t.Errorf("after the error challenge: %v, want ErrAuthFailed", err)
	}
}

func TestUsers(t *testing.T) {
	t.Parallel()
	var u sasl.Users
	if got := u.Mechanisms(); len(got) != 0 {
		t.Errorf("empty store offers %v", got)
	}
	if _, err := u.NewServer("GSSAPI"); !errors.Is(err, sasl.ErrNoMechanism) {
		t.Errorf("NewServer(GSSAPI): %v", err)
	}
	u.SetToken("t", "x")
	if got := fmt.Sprint(u.Mechanisms()); got != "[XOAUTH2]" {
		t.Errorf("with a token: %s", got)
	}
	k, _ := sasl.NewSCRAMKeys(sasl.SCRAMSHA1, "pw", []byte("salt"), 4096)
	u.SetSCRAMKeys("k", k)
	if got := fmt.Sprint(u.Mechanisms()); got != "[SCRAM-SHA-1 PLAIN LOGIN XOAUTH2]" {
		t.Errorf("with SCRAM-SHA-1 keys: %s", got)
	}
	u.SetPassword("p", "pw")
	if got := fmt.Sprint(u.Mechanisms()); got != "[SCRAM-SHA-256 SCRAM-SHA-1 CRAM-MD5 PLAIN LOGIN XOAUTH2]" {
		t.Errorf("with a password: %s", got)
	}
	// Keys alone check a PLAIN password; CRAM-MD5 needs the password.
	for mech, want := range map[string]error{sasl.Plain: nil, sasl.CRAMMD5: sasl.ErrAuthFailed} {
		c, _ := sasl.NewClient(mech, sasl.Credentials{Username: "k", Password: "pw"})
		s, _ := u.NewServer(mech)
		if err := exchange(c, s); !errors.Is(err, want) {
			t.Errorf("%s with keys only: %v, want %v", mech, err, want)
		}
	}
	if err := u.SetPassword("p", "bell\x07"); err == nil || strings.Contains(err.Error(), "bell") {
		t.Errorf("SetPassword with a control character: %v", err)
	}
	if err := u.SetPassword("", "pw"); err == nil {
		t.Error("SetPassword with an empty user name succeeded")
	}
	for _, tc := range []struct {
		mech string
		salt []byte
		iter int
	}{{"SCRAM-MD5", []byte("s"), 4096}, {sasl.SCRAMSHA1, nil, 4096}, {sasl.SCRAMSHA1, []byte("s"), 4095}} {
		if _, err := sasl.NewSCRAMKeys(tc.mech, "pw", tc.salt, tc.iter); err == nil {
			t.Errorf("NewSCRAMKeys(%s, salt %q, %d) succeeded", tc.mech, tc.salt, tc.iter)
		}
	}
	if s := fmt.Sprintf("%v %#v", k, k); strings.Contains(s, fmt.Sprint(k.StoredKey)) || strings.Contains(s, fmt.Sprint(k.ServerKey)) {
		t.Errorf("SCRAMKeys formatting shows the keys: %s", s)
	}
}
