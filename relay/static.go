package relay

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
)

// StaticAuthenticator is an Authenticator over credentials the program
// sets in memory: for tests, and for embedding the relay where accounts
// come from elsewhere (a configuration file, a database read at start).
// Several credentials may share a user name, so it holds any number of API
// keys under KeyUser. It keeps each user and password only as HMAC-SHA256
// under a random key of its own, made when the first credential is set,
// and finds them by that hash, so it never compares a secret byte by byte.
// It is safe for concurrent use; the zero value holds no credentials.
type StaticAuthenticator struct {
	mu    sync.RWMutex
	key   []byte
	creds map[[sha256.Size]byte]Account
}

// Set makes user and password authenticate as a copy of a, replacing what
// they authenticated as before.
func (s *StaticAuthenticator) Set(user, password string, a *Account) {
	acct := Account{Name: a.Name, Scopes: slices.Clone(a.Scopes), Domains: slices.Clone(a.Domains)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.key == nil {
		s.key = make([]byte, sha256.Size)
		rand.Read(s.key) // crypto/rand.Read does not return on failure
		s.creds = make(map[[sha256.Size]byte]Account)
	}
	s.creds[s.hash(user, password)] = acct
}

// Delete removes user and password: they no longer authenticate.
func (s *StaticAuthenticator) Delete(user, password string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.key != nil {
		delete(s.creds, s.hash(user, password))
	}
}

// Authenticate returns a copy of the account set for user and password,
// or ErrAuthFailed.
func (s *StaticAuthenticator) Authenticate(ctx context.Context, user, password string) (*Account, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.key == nil {
		return nil, ErrAuthFailed
	}
	a, ok := s.creds[s.hash(user, password)]
	if !ok {
		return nil, ErrAuthFailed
	}
	return &Account{Name: a.Name, Scopes: slices.Clone(a.Scopes), Domains: slices.Clone(a.Domains)}, nil
}

// hash is HMAC-SHA256 of the user's length, the user and the password.
// The caller holds mu.
func (s *StaticAuthenticator) hash(user, password string) [sha256.Size]byte {
	m := hmac.New(sha256.New, s.key)
	m.Write(binary.BigEndian.AppendUint64(nil, uint64(len(user))))
	m.Write([]byte(user))
	m.Write([]byte(password))
	var sum [sha256.Size]byte
	m.Sum(sum[:0])
	return sum
}

// String names the type and the number of credentials, nothing of them.
func (s *StaticAuthenticator) String() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return fmt.Sprintf("relay.StaticAuthenticator(%d credentials)", len(s.creds))
}

// GoString is String, so that %#v shows no hash or key either.
func (s *StaticAuthenticator) GoString() string { return s.String() }
