package sasl

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	gosasl "github.com/emersion/go-sasl"
)

// The mechanism names, as servers advertise them.
const (
	Plain       = "PLAIN"         // RFC 4616
	Login       = "LOGIN"         // draft-murchison-sasl-login
	CRAMMD5     = "CRAM-MD5"      // RFC 2195
	XOAuth2     = "XOAUTH2"       // Google and Microsoft
	SCRAMSHA1   = "SCRAM-SHA-1"   // RFC 5802
	SCRAMSHA256 = "SCRAM-SHA-256" // RFC 7677
)

// Errors. A failed exchange wraps one of them.
var (
	// ErrAuthFailed: the credentials are wrong (server side), or the
	// server did not prove that it knows them (SCRAM, client side).
	ErrAuthFailed = errors.New("sasl: authentication failed")
	// ErrSyntax: a message of the exchange is malformed.
	ErrSyntax = errors.New("sasl: malformed message")
	// ErrUnexpected: a message came when the exchange was over, or a
	// challenge the mechanism does not have.
	ErrUnexpected = errors.New("sasl: unexpected message")
	// ErrNoMechanism: no mechanism can be used with what both sides have.
	ErrNoMechanism = errors.New("sasl: no usable mechanism")
)

// Credentials are what a client authenticates with. Password and Token are
// secrets: String and GoString leave them out.
type Credentials struct {
	// Identity is the authorization identity, the user to act as (PLAIN
	// RFC 4616 §2, SCRAM "a=" RFC 5802 §5.1); "" is Username itself.
	Identity string
	// Username is the authentication identity.
	Username string
	// Password is the user's password, for every mechanism but XOAUTH2.
	Password string
	// Token is an OAuth 2.0 access token, for XOAUTH2 only.
	Token string
	// Rand is the source of the SCRAM client nonce; nil is crypto/rand.
	// Up to 32 bytes are read, each becoming a printable character; a
	// reader that ends sooner, after 16 bytes at least, gives a shorter
	// nonce, so a test can set the nonce of an RFC example exactly.
	Rand io.Reader
}

// String describes c without its secrets.
func (c Credentials) String() string {
	return fmt.Sprintf("{Identity:%q Username:%q Password:%s Token:%s}",
		c.Identity, c.Username, redacted(c.Password), redacted(c.Token))
}

// GoString describes c without its secrets.
func (c Credentials) GoString() string { return "sasl.Credentials" + c.String() }

func redacted(s string) string {
	if s == "" {
		return `""`
	}
	return "<redacted>"
}

// NewClient returns the client side of mechanism mech (one of the
// constants of this package, in any case) for cred. It fails when cred
// lacks what the mechanism needs: a password, or for XOAUTH2 a token.
func NewClient(mech string, cred Credentials) (gosasl.Client, error) {
	mech = strings.ToUpper(mech)
	need, what := cred.Password, "password"
	if mech == XOAuth2 {
		need, what = cred.Token, "token"
	}
	if need == "" || cred.Username == "" {
		return nil, fmt.Errorf("%w: %s needs a user name and a %s", ErrNoMechanism, mech, what)
	}
	switch mech {
	case Plain:
		return &plainClient{cred: cred}, nil
	case Login:
		return &loginClient{cred: cred}, nil
	case CRAMMD5:
		return &cramClient{cred: cred}, nil
	case XOAuth2:
		return &xoauth2Client{cred: cred}, nil
	case SCRAMSHA1, SCRAMSHA256:
		return newSCRAMClient(mech, cred), nil
	}
	return nil, fmt.Errorf("%w: %q is not a mechanism of this package", ErrNoMechanism, mech)
}

// preference is the order in which Choose takes mechanisms: the more a
// mechanism keeps the password from the server and from the wire, the
// earlier it comes.
var preference = [...]string{SCRAMSHA256, SCRAMSHA1, CRAMMD5, Plain, Login}

// Choose returns a client for the strongest mechanism in offered (the
// names a server advertised, in any case) that cred can use.
//
// With a Token, that is XOAUTH2 when offered: the token is the credential
// the account was given. Otherwise, and when XOAUTH2 is not offered but a
// Password is set, the order is SCRAM-SHA-256, SCRAM-SHA-1, CRAM-MD5,
// PLAIN, LOGIN:
//
//   - SCRAM (RFC 5802) never sends the password, or anything an
//     eavesdropper or the server could replay, and the server proves that
//     it knows the user's keys; the server keeps only salted keys, not the
//     password. SHA-256 (RFC 7677) is the stronger hash.
//   - CRAM-MD5 (RFC 2195) never sends the password either, but the server
//     must keep it in clear to check the answer, and MD5 is weak.
//   - PLAIN (RFC 4616) sends the password itself: TLS hides it from the
//     wire, but the server, or whoever holds the certificate it presents,
//     reads it.
//   - LOGIN is PLAIN in two steps with no authorization identity, an
//     obsolete mechanism that its draft says to use only when PLAIN is
//     not offered.
//
// Choose does not know whether the connection is encrypted: a caller that
// may fall to PLAIN or LOGIN must have TLS first (RFC 4954 §4).
func Choose(offered []string, cred Credentials) (gosasl.Client, error) {
	has := make(map[string]bool, len(offered))
	for _, m := range offered {
		has[strings.ToUpper(m)] = true
	}
	if cred.Token != "" && has[XOAuth2] && cred.Username != "" {
		return NewClient(XOAuth2, cred)
	}
	if cred.Password != "" {
		for _, m := range preference {
			if !has[m] {
				continue
			}
			if m == SCRAMSHA1 || m == SCRAMSHA256 {
				// A password SASLprep refuses cannot be used with
				// SCRAM; the password mechanisms send it as it is.
				if _, err := SASLprep(cred.Password, false); err != nil {
					continue
				}
			}
			return NewClient(m, cred)
		}
	}
	return nil, fmt.Errorf("%w: the server offers %s", ErrNoMechanism, strings.Join(offered, " "))
}

// Complete reports whether the exchange of c is over from the client's
// side. For SCRAM, that means the server sent its final message and its
// signature was verified (RFC 5802 §5.1 "v="): a server that reports
// success without it has not proved that it knows the user's keys, and
// Complete returns an error wrapping ErrAuthFailed. Other mechanisms do
// not authenticate the server, and Complete returns nil for them.
//
// In SMTP (RFC 4954 §4) the server sends its final message as a 334
// challenge before its 235 reply, so a client of go-smtp should call
// Complete after Client.Auth succeeds.
func Complete(c gosasl.Client) error {
	if s, ok := c.(*scramClient); ok && s.step != scramDone {
		return fmt.Errorf("%w: the server reported success without proving itself", ErrAuthFailed)
	}
	return nil
}

// plainClient is PLAIN (RFC 4616 §2): one message,
// [authzid] NUL authcid NUL passwd.
type plainClient struct{ cred Credentials }

func (c *plainClient) Start() (string, []byte, error) {
	for _, s := range []string{c.cred.Identity, c.cred.Username, c.cred.Password} {
		if strings.IndexByte(s, 0) >= 0 {
			return "", nil, fmt.Errorf("%w: PLAIN credentials may not hold NUL (RFC 4616 §2)", ErrSyntax)
		}
	}
	return Plain, []byte(c.cred.Identity + "\x00" + c.cred.Username + "\x00" + c.cred.Password), nil
}

func (c *plainClient) Next(challenge []byte) ([]byte, error) {
	return nil, fmt.Errorf("%w: PLAIN has no challenge", ErrUnexpected)
}

func (c *plainClient) String() string   { return "sasl.Client{PLAIN " + c.cred.String() + "}" }
func (c *plainClient) GoString() string { return c.String() }

// loginClient is LOGIN (draft-murchison-sasl-login §2): the server asks
// twice, and the client answers the user name, then the password, whatever
// the prompts say.
type loginClient struct {
	cred Credentials
	step int
}

func (c *loginClient) Start() (string, []byte, error) { return Login, nil, nil }

func (c *loginClient) Next(challenge []byte) ([]byte, error) {
	c.step++
	switch c.step {
	case 1:
		return []byte(c.cred.Username), nil
	case 2:
		return []byte(c.cred.Password), nil
	}
	return nil, fmt.Errorf("%w: LOGIN has two challenges", ErrUnexpected)
}

func (c *loginClient) String() string   { return "sasl.Client{LOGIN " + c.cred.String() + "}" }
func (c *loginClient) GoString() string { return c.String() }

// cramClient is CRAM-MD5 (RFC 2195 §2): the answer to the server's
// challenge is the user name, a space, and the hex HMAC-MD5 of the
// challenge keyed with the password.
type cramClient struct {
	cred Credentials
	done bool
}

func (c *cramClient) Start() (string, []byte, error) { return CRAMMD5, nil, nil }

func (c *cramClient) Next(challenge []byte) ([]byte, error) {
	if c.done {
		return nil, fmt.Errorf("%w: CRAM-MD5 has one challenge", ErrUnexpected)
	}
	if len(challenge) == 0 {
		return nil, fmt.Errorf("%w: empty CRAM-MD5 challenge", ErrSyntax)
	}
	c.done = true
	return []byte(c.cred.Username + " " + cramDigest(c.cred.Password, challenge)), nil
}

func cramDigest(password string, challenge []byte) string {
	m := hmac.New(md5.New, []byte(password))
	m.Write(challenge)
	return hex.EncodeToString(m.Sum(nil))
}

func (c *cramClient) String() string   { return "sasl.Client{CRAM-MD5 " + c.cred.String() + "}" }
func (c *cramClient) GoString() string { return c.String() }

// xoauth2Client is Google's and Microsoft's XOAUTH2: one message,
// "user=" user ^A "auth=Bearer " token ^A ^A. A server that refuses the
// token sends a challenge (a JSON error) and waits for an empty response
// before its failure reply.
type xoauth2Client struct {
	cred   Credentials
	failed bool
}

func (c *xoauth2Client) Start() (string, []byte, error) {
	if strings.ContainsAny(c.cred.Username+c.cred.Token, "\x01") {
		return "", nil, fmt.Errorf("%w: XOAUTH2 user and token may not hold ^A", ErrSyntax)
	}
	return XOAuth2, []byte("user=" + c.cred.Username + "\x01auth=Bearer " + c.cred.Token + "\x01\x01"), nil
}

func (c *xoauth2Client) Next(challenge []byte) ([]byte, error) {
	if c.failed {
		return nil, fmt.Errorf("%w: XOAUTH2 has one error challenge", ErrUnexpected)
	}
	c.failed = true
	return []byte{}, nil
}

func (c *xoauth2Client) String() string   { return "sasl.Client{XOAUTH2 " + c.cred.String() + "}" }
func (c *xoauth2Client) GoString() string { return c.String() }
