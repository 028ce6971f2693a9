package sasl_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/smarthost-go/smarthost/relay/sasl"
)

// fuzzUsers is a store with the key of RFC 7677's example user and a
// fixed server nonce, so that the RFC's messages are valid seeds.
func fuzzUsers(f *testing.F) (*sasl.Users, func() *sasl.Server) {
	v := scramVectors[1]
	salt, _ := base64.StdEncoding.DecodeString(v.salt)
	k, err := sasl.NewSCRAMKeys(v.mech, "pencil", salt, 4096)
	if err != nil {
		f.Fatal(err)
	}
	u := &sasl.Users{}
	u.SetSCRAMKeys("user", k)
	return u, func() *sasl.Server {
		u.Rand = strings.NewReader(v.serverNonce) // only this goroutine reads it
		s, err := u.NewServer(v.mech)
		if err != nil {
			f.Fatal(err)
		}
		return s
	}
}

// FuzzSCRAMClientFirst feeds the server arbitrary client-first-messages:
// no panic; one it takes gets a server-first-message that extends the
// client's nonce and is never the end of the exchange.
func FuzzSCRAMClientFirst(f *testing.F) {
	for _, v := range scramVectors {
		f.Add(v.clientFirst)
	}
	f.Add("y,a=us=2Cer,n=us=3Der,r=abc,x=ext")
	f.Add("p=tls-unique,,n=user,r=abc")
	f.Add("n,,m=x,n=user,r=abc")
	f.Add("n,,n=user")
	_, server := fuzzUsers(f)
	f.Fuzz(func(t *testing.T, msg string) {
		s := server()
		first, done, err := s.Next([]byte(msg))
		if err != nil {
			return
		}
		if done {
			t.Fatalf("client-first %q ended the exchange", msg)
		}
		i := strings.Index(msg, ",r=")
		if i < 0 || !strings.HasPrefix(string(first), "r=") {
			t.Fatalf("client-first %q taken without a nonce; answer %q", msg, first)
		}
		cnonce, _, _ := strings.Cut(msg[i+3:], ",")
		if !strings.HasPrefix(string(first), "r="+cnonce) || strings.HasPrefix(string(first), "r="+cnonce+",") {
			t.Fatalf("server-first %q does not extend the client nonce %q", first, cnonce)
		}
	})
}

// FuzzSCRAMClientFinal feeds arbitrary client-final-messages after the
// RFC 7677 client-first: no panic, and only the genuine message
// authenticates.
func FuzzSCRAMClientFinal(f *testing.F) {
	v := scramVectors[1]
	f.Add(v.clientFinal)
	f.Add(strings.Replace(v.clientFinal, ",p=", ",x=ext,p=", 1))
	f.Add("c=biws,r=x,p=AAAA")
	f.Add("c=,r=,p=")
	_, server := fuzzUsers(f)
	f.Fuzz(func(t *testing.T, msg string) {
		s := server()
		if _, _, err := s.Next([]byte(v.clientFirst)); err != nil {
			t.Fatal(err)
		}
		final, done, err := s.Next([]byte(msg))
		if err != nil {
			return
		}
		if done || msg != v.clientFinal || string(final) != v.serverFinal {
			t.Fatalf("client-final %q accepted: %q, done %v", msg, final, done)
		}
	})
}

// FuzzPlain feeds the PLAIN server arbitrary messages: no panic, and only
// user's password (as SASLprep makes it), for user or for no one else,
// logs in, as the user's name in the store.
func FuzzPlain(f *testing.F) {
	f.Add("\x00user\x00pencil")
	f.Add("user\x00user\x00pencil")
	f.Add("Ursel\x00Kurt\x00xipj3plmq")
	f.Add("\x00\x00")
	f.Add("\x00user\x00p\xffencil")
	f.Add("\x00us\u00ader\x00pen\u00adcil")
	u, _ := fuzzUsers(f)
	f.Fuzz(func(t *testing.T, msg string) {
		s, _ := u.NewServer(sasl.Plain)
		_, done, err := s.Next([]byte(msg))
		if err != nil || !done {
			return
		}
		parts := strings.Split(msg, "\x00")
		pw, _ := sasl.SASLprep(parts[2], false)
		if s.Username() != "user" || pw != "pencil" || parts[0] != "" && parts[0] != parts[1] && parts[0] != "user" {
			t.Fatalf("PLAIN %q logged in as %q", msg, s.Username())
		}
	})
}
