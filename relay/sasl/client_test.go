package sasl_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	gosasl "github.com/emersion/go-sasl"

	"github.com/smarthost-go/smarthost/relay/sasl"
)

func newClient(t *testing.T, mech string, cred sasl.Credentials) gosasl.Client {
	t.Helper()
	c, err := sasl.NewClient(mech, cred)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// RFC 4616 §4: the two example messages.
func TestPlainRFC4616(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cred sasl.Credentials
		want string
	}{
		{sasl.Credentials{Username: "tim", Password: "tanstaaftanstaaf"}, "\x00tim\x00tanstaaftanstaaf"},
		{sasl.Credentials{Identity: "Ursel", Username: "Kurt", Password: "xipj3plmq"}, "Ursel\x00Kurt\x00xipj3plmq"},
	} {
		mech, ir, err := newClient(t, "plain", tc.cred).Start()
		if err != nil || mech != "PLAIN" || string(ir) != tc.want {
			t.Errorf("Start() = %q, %q, %v; want PLAIN, %q", mech, ir, err, tc.want)
		}
	}
	c := newClient(t, sasl.Plain, sasl.Credentials{Username: "a\x00b", Password: "p"})
	if _, _, err := c.Start(); !errors.Is(err, sasl.ErrSyntax) {
		t.Errorf("PLAIN with a NUL in the user name: %v, want ErrSyntax", err)
	}
	if _, err := c.Next([]byte("x")); !errors.Is(err, sasl.ErrUnexpected) {
		t.Errorf("PLAIN challenge: %v, want ErrUnexpected", err)
	}
}

// RFC 2195 §2: the example exchange.
func TestCRAMMD5RFC2195(t *testing.T) {
	t.Parallel()
	c := newClient(t, sasl.CRAMMD5, sasl.Credentials{Username: "tim", Password: "tanstaaftanstaaf"})
	mech, ir, err := c.Start()
	if err != nil || mech != "CRAM-MD5" || ir != nil {
		t.Fatalf("Start() = %q, %q, %v; want CRAM-MD5 and no initial response", mech, ir, err)
	}
	resp, err := c.Next([]byte("<1896.697170952@postoffice.reston.mci.net>"))
	if want := "tim b913a602c7eda7a495b4e6e7334d3890"; err != nil || string(resp) != want {
		t.Errorf("Next() = %q, %v; want %q", resp, err, want)
	}
	if _, err := c.Next([]byte("<1.2@x>")); !errors.Is(err, sasl.ErrUnexpected) {
		t.Errorf("second challenge: %v, want ErrUnexpected", err)
	}
}

// The example of Google's XOAUTH2 documentation, and the empty answer to
// an error challenge.
func TestXOAuth2(t *testing.T) {
	t.Parallel()
	c := newClient(t, sasl.XOAuth2, sasl.Credentials{Username: "someuser@example.com", Token: "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"})
	mech, ir, err := c.Start()
	if want := "user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01"; err != nil || mech != "XOAUTH2" || string(ir) != want {
		t.Fatalf("Start() = %q, %q, %v; want XOAUTH2, %q", mech, ir, err, want)
	}
	resp, err := c.Next([]byte(`{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}`))
	if err != nil || resp == nil || len(resp) != 0 {
		t.Errorf("answer to the error challenge = %q (nil %v), %v; want an empty response", resp, resp == nil, err)
	}
	if _, err := c.Next([]byte("{}")); !errors.Is(err, sasl.ErrUnexpected) {
		t.Errorf("second challenge: %v, want ErrUnexpected", err)
	}
}

// draft-murchison-sasl-login §2: the user name, then the password,
// whatever the prompts.
func TestLogin(t *testing.T) {
	t.Parallel()
	c := newClient(t, sasl.Login, sasl.Credentials{Username: "tim", Password: "secret"})
	if mech, ir, err := c.Start(); err != nil || mech != "LOGIN" || ir != nil {
		t.Fatalf("Start() = %q, %q, %v", mech, ir, err)
	}
	for i, want := range []string{"tim", "secret"} {
		got, err := c.Next([]byte([]string{"User Name", "Password"}[i]))
		if err != nil || string(got) != want {
			t.Errorf("answer %d = %q, %v; want %q", i+1, got, err, want)
		}
	}
	if _, err := c.Next([]byte("More:")); !errors.Is(err, sasl.ErrUnexpected) {
		t.Errorf("third challenge: %v, want ErrUnexpected", err)
	}
}

// scramVectors are the exchanges of RFC 5802 §5 and RFC 7677 §3, user
// "user", password "pencil".
var scramVectors = []struct {
	mech, clientNonce, serverNonce, salt string
	clientFirst, serverFirst             string
	clientFinal, serverFinal             string
}{{
	mech:        sasl.SCRAMSHA1,
	clientNonce: "fyko+d2lbbFgONRv9qkxdawL",
	serverNonce: "3rfcNHYJY1ZVvWVs7j",
	salt:        "QSXCR+Q6sek8bf92",
	clientFirst: "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
	serverFirst: "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
	clientFinal: "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
	serverFinal: "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
}, {
	mech:        sasl.SCRAMSHA256,
	clientNonce: "rOprNGfwEbeRWgbNEkqO",
	serverNonce: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
	salt:        "W22ZaJ0SNY7soEsUEjb6gQ==",
	clientFirst: "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
	serverFirst: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
	clientFinal: "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
	serverFinal: "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
}}

func scramClient(t *testing.T, mech, nonce string) gosasl.Client {
	return newClient(t, mech, sasl.Credentials{Username: "user", Password: "pencil", Rand: strings.NewReader(nonce)})
}

func TestSCRAMClientRFCExamples(t *testing.T) {
	t.Parallel()
	for _, v := range scramVectors {
		t.Run(v.mech, func(t *testing.T) {
			t.Parallel()
			c := scramClient(t, v.mech, v.clientNonce)
			mech, ir, err := c.Start()
			if err != nil || mech != v.mech || string(ir) != v.clientFirst {
				t.Fatalf("Start() = %q, %q, %v; want %q", mech, ir, err, v.clientFirst)
			}
			if err := sasl.Complete(c); !errors.Is(err, sasl.ErrAuthFailed) {
				t.Errorf("Complete before the server's signature: %v, want ErrAuthFailed", err)
			}
			final, err := c.Next([]byte(v.serverFirst))
			if err != nil || string(final) != v.clientFinal {
				t.Fatalf("client-final = %q, %v; want %q", final, err, v.clientFinal)
			}
			last, err := c.Next([]byte(v.serverFinal))
			if err != nil || last == nil || len(last) != 0 {
				t.Fatalf("answer to server-final = %q, %v; want empty", last, err)
			}
			if err := sasl.Complete(c); err != nil {
				t.Errorf("Complete: %v", err)
			}
			if _, err := c.Next([]byte("v=x")); !errors.Is(err, sasl.ErrUnexpected) {
				t.Errorf("message after the end: %v, want ErrUnexpected", err)
			}
		})
	}
}

// The client refuses a server that does not play by RFC 5802.
func TestSCRAMClientRefuses(t *testing.T) {
	t.Parallel()
	v := scramVectors[0]
	tamper := func(s, old, new string) string { return strings.Replace(s, old, new, 1) }
	for _, tc := range []struct {
		name                     string
		serverFirst, serverFinal string
		want                     error
	}{
		{"tampered server signature", v.serverFirst, tamper(v.serverFinal, "rmF9", "rmF8"), sasl.ErrAuthFailed},
		{"server error", v.serverFirst, "e=invalid-proof", sasl.ErrAuthFailed},
		{"server final not v=", v.serverFirst, "x=abc", sasl.ErrSyntax},
		{"signature not base64", v.serverFirst, "v=!!!", sasl.ErrSyntax},
		{"nonce not the client's", tamper(v.serverFirst, "fyko", "fykO"), "", sasl.ErrAuthFailed},
		{"nonce not extended", "r=fyko+d2lbbFgONRv9qkxdawL,s=QSXCR+Q6sek8bf92,i=4096", "", sasl.ErrAuthFailed},
		{"nonce with a comma-free but non-printable byte", tamper(v.serverFirst, "3rfc", "3\x7frfc"), "", sasl.ErrAuthFailed},
		{"4095 iterations", tamper(v.serverFirst, "i=4096", "i=4095"), "", sasl.ErrAuthFailed},
		{"1 iteration", tamper(v.serverFirst, "i=4096", "i=1"), "", sasl.ErrAuthFailed},
		{"too many iterations", tamper(v.serverFirst, "i=4096", "i=2000000000"), "", sasl.ErrAuthFailed},
		{"iteration count not a number", tamper(v.serverFirst, "i=4096", "i=4k"), "", sasl.ErrSyntax},
		{"iteration count with a sign", tamper(v.serverFirst, "i=4096", "i=+4096"), "", sasl.ErrSyntax},
		{"no salt", "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,i=4096", "", sasl.ErrSyntax},
		{"salt not base64", tamper(v.serverFirst, "s=QSXCR", "s=QS*CR"), "", sasl.ErrSyntax},
		{"empty salt", tamper(v.serverFirst, "s=QSXCR+Q6sek8bf92", "s="), "", sasl.ErrSyntax},
		{"mandatory extension", "m=ext," + v.serverFirst, "", sasl.ErrSyntax},
		{"attributes out of order", "s=QSXCR+Q6sek8bf92,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,i=4096", "", sasl.ErrSyntax},
		{"empty message", "", "", sasl.ErrSyntax},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := scramClient(t, v.mech, v.clientNonce)
			if _, _, err := c.Start(); err != nil {
				t.Fatal(err)
			}
			_, err := c.Next([]byte(tc.serverFirst))
			if tc.serverFinal != "" {
				if err != nil {
					t.Fatalf("server-first refused: %v", err)
				}
				_, err = c.Next([]byte(tc.serverFinal))
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("error %v, want %v", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "pencil") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

// A SCRAM password goes through SASLprep: one it refuses is an error of
// Start, and Choose takes another mechanism for it.
func TestSCRAMPasswordSASLprep(t *testing.T) {
	t.Parallel()
	c := newClient(t, sasl.SCRAMSHA256, sasl.Credentials{Username: "user", Password: "bell\x07"})
	if _, _, err := c.Start(); err == nil || strings.Contains(err.Error(), "bell") {
		t.Errorf("Start with a control character in the password: %v", err)
	}
	// U+00AA (ª) is NFKC "a": both clients send the same proof.
	a := newClient(t, sasl.SCRAMSHA1, sasl.Credentials{Username: "user", Password: "p\u00aass", Rand: strings.NewReader(scramVectors[0].clientNonce)})
	b := newClient(t, sasl.SCRAMSHA1, sasl.Credentials{Username: "user", Password: "pass", Rand: strings.NewReader(scramVectors[0].clientNonce)})
	var finals [2]string
	for i, c := range []gosasl.Client{a, b} {
		if _, _, err := c.Start(); err != nil {
			t.Fatal(err)
		}
		f, err := c.Next([]byte(scramVectors[0].serverFirst))
		if err != nil {
			t.Fatal(err)
		}
		finals[i] = string(f)
	}
	if finals[0] != finals[1] {
		t.Errorf("SASLprep: the proofs of \"p\\u00aass\" and \"pass\" differ:\n%s\n%s", finals[0], finals[1])
	}
}

func TestSCRAMAuthorizationIdentityAndEscapes(t *testing.T) {
	t.Parallel()
	c := newClient(t, sasl.SCRAMSHA256, sasl.Credentials{Identity: "ad=min", Username: "us,er", Password: "p", Rand: strings.NewReader("0123456789abcdefghij")})
	_, ir, err := c.Start()
	if want := "n,a=ad=3Dmin,n=us=2Cer,r=0123456789abcdefghij"; err != nil || string(ir) != want {
		t.Errorf("Start() = %q, %v; want %q", ir, err, want)
	}
}

func TestNonceFromRand(t *testing.T) {
	t.Parallel()
	// Bytes that are not printable, or a comma, become printable.
	c := newClient(t, sasl.SCRAMSHA1, sasl.Credentials{Username: "u", Password: "p", Rand: strings.NewReader(strings.Repeat("\x00,\xff ", 8))})
	_, ir, err := c.Start()
	if err != nil {
		t.Fatal(err)
	}
	nonce := strings.TrimPrefix(string(ir), "n,,n=u,r=")
	printable := strings.IndexFunc(nonce, func(r rune) bool { return r <= ' ' || r > '~' || r == ',' }) < 0
	if len(nonce) != 32 || !printable {
		t.Errorf("nonce %q: want 32 printable characters, no comma", nonce)
	}
	// A reader that ends before 16 bytes is an error.
	c = newClient(t, sasl.SCRAMSHA1, sasl.Credentials{Username: "u", Password: "p", Rand: strings.NewReader("short")})
	if _, _, err := c.Start(); err == nil {
		t.Error("a 5-byte nonce was accepted")
	}
}

func TestNewClientNeeds(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		mech string
		cred sasl.Credentials
	}{
		{sasl.Plain, sasl.Credentials{Username: "u"}},
		{sasl.XOAuth2, sasl.Credentials{Username: "u", Password: "p"}},
		{sasl.SCRAMSHA1, sasl.Credentials{Password: "p"}},
		{"DIGEST-MD5", sasl.Credentials{Username: "u", Password: "p"}},
	} {
		if _, err := sasl.NewClient(tc.mech, tc.cred); !errors.Is(err, sasl.ErrNoMechanism) {
			t.Errorf("NewClient(%s, %v): %v, want ErrNoMechanism", tc.mech, tc.cred, err)
		}
	}
}

// Secrets never show in the formatting of credentials and clients.
func TestSecretsNotFormatted(t *testing.T) {
	t.Parallel()
	cred := sasl.Credentials{Username: "tim", Password: "tanstaaf-secret", Token: "ya29.token-secret"}
	things := []any{cred, &cred}
	for _, m := range []string{sasl.Plain, sasl.Login, sasl.CRAMMD5, sasl.XOAuth2, sasl.SCRAMSHA1, sasl.SCRAMSHA256} {
		c, err := sasl.NewClient(m, cred)
		if err != nil {
			t.Fatal(err)
		}
		c.Start()
		things = append(things, c)
	}
	for _, x := range things {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
			s := fmt.Sprintf(verb, x)
			if strings.Contains(s, "secret") || strings.Contains(s, fmt.Sprintf("%x", "secret")) {
				t.Errorf("%s of %T shows a secret: %s", verb, x, s)
			}
		}
	}
	if s := cred.String(); !strings.Contains(s, "tim") {
		t.Errorf("String() = %s, want the user name", s)
	}
}
