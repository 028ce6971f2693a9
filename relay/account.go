package relay

import (
	"context"
	"errors"
	"slices"
	"strings"
)

// ScopeSend is the scope an account needs to submit mail.
const ScopeSend = "mail.send"

// ErrAuthFailed is returned by an Authenticator for credentials it does
// not know, a revoked key or a wrong secret alike: a client learns nothing
// more than that.
var ErrAuthFailed = errors.New("relay: authentication failed")

// Account is who may submit mail through the relay: the holder of an API
// key, or of a user name and password.
type Account struct {
	// Name names the account (the API key's name) in logs and events.
	Name string `json:"name"`
	// Scopes are what the account may do; ScopeSend to submit mail.
	Scopes []string `json:"scopes"`
	// Domains are the sender domains the account may use, in MAIL FROM
	// and in the header's From field; an entry "*.example.com" also allows
	// every subdomain. Empty: none.
	Domains []string `json:"domains"`
}

// Can reports whether the account has the scope.
func (a *Account) Can(scope string) bool { return slices.Contains(a.Scopes, scope) }

// MaySendFrom reports whether the account may use domain as a sender
// domain, compared without regard to ASCII case or a final dot.
func (a *Account) MaySendFrom(domain string) bool {
	d := strings.ToLower(strings.TrimSuffix(domain, "."))
	if d == "" {
		return false
	}
	for _, allowed := range a.Domains {
		allowed = strings.ToLower(strings.TrimSuffix(allowed, "."))
		if parent, ok := strings.CutPrefix(allowed, "*."); ok {
			if strings.HasSuffix(d, "."+parent) {
				return true
			}
			continue
		}
		if d == allowed {
			return true
		}
	}
	return false
}

// Authenticator checks the credentials a client gives with SMTP AUTH (RFC
// 4954): for an API key, the user is "apikey" and the password the key.
// Implementations compare secrets in constant time, keep them only hashed,
// and never log them; revoking an account takes effect for the next
// Authenticate.
type Authenticator interface {
	Authenticate(ctx context.Context, user, password string) (*Account, error)
}
