package sasl_test

import (
	"errors"
	"testing"

	"github.com/smarthost-go/smarthost/relay/sasl"
)

func TestChoose(t *testing.T) {
	t.Parallel()
	pw := sasl.Credentials{Username: "u", Password: "p"}
	token := sasl.Credentials{Username: "u", Token: "t"}
	both := sasl.Credentials{Username: "u", Password: "p", Token: "t"}
	for _, tc := range []struct {
		offered []string
		cred    sasl.Credentials
		want    string // "" for ErrNoMechanism
	}{
		{[]string{"PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256"}, pw, "SCRAM-SHA-256"},
		{[]string{"plain", "scram-sha-1"}, pw, "SCRAM-SHA-1"},
		{[]string{"LOGIN", "PLAIN", "CRAM-MD5"}, pw, "CRAM-MD5"},
		{[]string{"LOGIN", "PLAIN"}, pw, "PLAIN"},
		{[]string{"LOGIN"}, pw, "LOGIN"},
		{[]string{"XOAUTH2", "SCRAM-SHA-256"}, both, "XOAUTH2"},
		{[]string{"XOAUTH2", "PLAIN"}, pw, "PLAIN"},
		{[]string{"SCRAM-SHA-256", "PLAIN"}, both, "SCRAM-SHA-256"},
		{[]string{"SCRAM-SHA-256", "PLAIN"}, token, ""},
		{[]string{"XOAUTH2"}, pw, ""},
		{[]string{"GSSAPI", "DIGEST-MD5"}, pw, ""},
		{nil, pw, ""},
		// A password SASLprep refuses cannot be used with SCRAM.
		{[]string{"SCRAM-SHA-256", "PLAIN"}, sasl.Credentials{Username: "u", Password: "p\x07"}, "PLAIN"},
	} {
		c, err := sasl.Choose(tc.offered, tc.cred)
		if tc.want == "" {
			if !errors.Is(err, sasl.ErrNoMechanism) {
				t.Errorf("Choose(%q, %v): %v, want ErrNoMechanism", tc.offered, tc.cred, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Choose(%q, %v): %v", tc.offered, tc.cred, err)
			continue
		}
		if mech, _, _ := c.Start(); mech != tc.want {
			t.Errorf("Choose(%q, %v) = %s, want %s", tc.offered, tc.cred, mech, tc.want)
		}
	}
}
