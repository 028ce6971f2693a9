package sasl

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"maps"
	"strings"
	"sync"
	"unicode/utf8"
)

// SCRAMKeys is what a SCRAM server keeps of a user (RFC 5802 §3): the salt,
// the iteration count, StoredKey and ServerKey. They let the server check
// a client's proof and prove itself in turn, but not log in as the user;
// SaltedPassword, which would, is not kept. String leaves the keys out.
type SCRAMKeys struct {
	Mechanism  string // SCRAMSHA1 or SCRAMSHA256
	Salt       []byte
	Iterations int
	StoredKey  []byte // H(ClientKey)
	ServerKey  []byte // HMAC(SaltedPassword, "Server Key")
}

// NewSCRAMKeys derives the keys of mechanism mech from a password (prepared
// with SASLprep as a stored string), a salt and an iteration count of at
// least MinIterations.
func NewSCRAMKeys(mech, password string, salt []byte, iterations int) (*SCRAMKeys, error) {
	h := scramHash(mech)
	if h == nil {
		return nil, fmt.Errorf("%w: %q is not a SCRAM mechanism of this package", ErrNoMechanism, mech)
	}
	if iterations < MinIterations || iterations > MaxIterations {
		return nil, fmt.Errorf("sasl: SCRAM iteration count %d is not between %d and %d", iterations, MinIterations, MaxIterations)
	}
	if len(salt) == 0 {
		return nil, errors.New("sasl: SCRAM needs a salt")
	}
	pw, err := SASLprep(password, true)
	if err != nil {
		return nil, fmt.Errorf("sasl: SCRAM password: %w", err)
	}
	salted, err := saltedPassword(h, pw, salt, iterations)
	if err != nil {
		return nil, err
	}
	return &SCRAMKeys{
		Mechanism:  mech,
		Salt:       append([]byte(nil), salt...),
		Iterations: iterations,
		StoredKey:  storedKey(h, salted),
		ServerKey:  hmacSum(h, salted, "Server Key"),
	}, nil
}

// String describes k without its keys.
func (k *SCRAMKeys) String() string {
	return fmt.Sprintf("sasl.SCRAMKeys{%s i=%d StoredKey:<redacted> ServerKey:<redacted>}", k.Mechanism, k.Iterations)
}

// GoString describes k without its keys.
func (k *SCRAMKeys) GoString() string { return k.String() }

// check reports whether password (prepared) is the one k was made of.
func (k *SCRAMKeys) check(password string) bool {
	h := scramHash(k.Mechanism)
	salted, err := saltedPassword(h, password, k.Salt, k.Iterations)
	return err == nil && subtle.ConstantTimeCompare(storedKey(h, salted), k.StoredKey) == 1
}

func storedKey(h func() hash.Hash, salted []byte) []byte {
	s := h()
	s.Write(hmacSum(h, salted, "Client Key"))
	return s.Sum(nil)
}

// unescapeName reads a saslname, refusing "=" not followed by 2C or 3D.
func unescapeName(s string) (string, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return "", fmt.Errorf("%w: SCRAM name holds NUL", ErrSyntax)
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", fmt.Errorf("%w: SCRAM name has a bare \"=\"", ErrSyntax)
		}
		i += 2
	}
	return b.String(), nil
}

// Users is an in-memory store of credentials with the server side of
// every mechanism of this package, for test fixtures and small servers.
// The zero value is empty and ready; its methods are safe for concurrent
// use. Set the exported fields before the first call.
//
// For each user it keeps the SCRAM keys of RFC 5802 §3 (salted, from which
// the password cannot be read back), which also check PLAIN and LOGIN
// passwords; and, set with SetPassword only, the password in clear for
// CRAM-MD5, whose server must have it (RFC 2195 §2).
type Users struct {
	// Rand is the source of salts, nonces and CRAM-MD5 challenges; nil is
	// crypto/rand.
	Rand io.Reader
	// Hostname ends the CRAM-MD5 challenge, <digits.digits@Hostname>
	// (RFC 2195 §2); "" is "localhost".
	Hostname string
	// Iterations is the SCRAM iteration count of SetPassword; 0 is
	// MinIterations.
	Iterations int

	mu    sync.RWMutex
	users map[string]*account
	fake  []byte // keys the salts of unknown users
}

type account struct {
	password string // for CRAM-MD5; "" when set from keys
	token    string
	scram    map[string]*SCRAMKeys
}

func (u *Users) rand() io.Reader {
	if u.Rand == nil {
		return rand.Reader
	}
	return u.Rand
}

// account returns the entry of a user, creating it; u.mu is held.
func (u *Users) account(name string) *account {
	if u.users == nil {
		u.users = map[string]*account{}
	}
	a := u.users[name]
	if a == nil {
		a = &account{scram: map[string]*SCRAMKeys{}}
		u.users[name] = a
	}
	return a
}

// storedName prepares a user name to store (SASLprep, RFC 4013); it must
// not be empty.
func storedName(username string) (string, error) {
	name, err := SASLprep(username, true)
	if err != nil || name == "" {
		return "", fmt.Errorf("sasl: user name: %w", errPrep)
	}
	return name, nil
}

// SetPassword sets the password of a user: it derives the keys of both
// SCRAM mechanisms, each with a new 16-byte salt, and keeps the password
// for CRAM-MD5. The user name and the password are prepared with SASLprep
// (stored strings); one it refuses is an error.
func (u *Users) SetPassword(username, password string) error {
	name, err := storedName(username)
	if err != nil {
		return err
	}
	iter := u.Iterations
	if iter == 0 {
		iter = MinIterations
	}
	keys := make(map[string]*SCRAMKeys, 2)
	for _, mech := range []string{SCRAMSHA256, SCRAMSHA1} {
		salt := make([]byte, 16)
		if _, err := io.ReadFull(u.rand(), salt); err != nil {
			return fmt.Errorf("sasl: salt: %w", err)
		}
		k, err := NewSCRAMKeys(mech, password, salt, iter)
		if err != nil {
			return err
		}
		keys[mech] = k
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	a := u.account(name)
	a.password = password
	a.scram = keys
	return nil
}

// SetSCRAMKeys sets the SCRAM keys of one mechanism for a user, as made by
// NewSCRAMKeys, for a server that does not know the password. They check
// PLAIN and LOGIN passwords too.
func (u *Users) SetSCRAMKeys(username string, k *SCRAMKeys) error {
	name, err := storedName(username)
	if err != nil {
		return err
	}
	if scramHash(k.Mechanism) == nil {
		return fmt.Errorf("%w: %q is not a SCRAM mechanism of this package", ErrNoMechanism, k.Mechanism)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	a := u.account(name)
	keys := maps.Clone(a.scram) // lookups hold the old map
	keys[k.Mechanism] = k
	a.scram = keys
	return nil
}

// SetToken sets the OAuth 2.0 token that XOAUTH2 accepts for a user.
func (u *Users) SetToken(username, token string) error {
	name, err := storedName(username)
	if err != nil {
		return err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.account(name).token = token
	return nil
}

// Mechanisms returns the mechanisms the store can serve for some user, in
// the order of Choose: SCRAM when it has keys, CRAM-MD5 when it has a
// password in clear, PLAIN and LOGIN when it has keys, then XOAUTH2 when
// it has a token.
func (u *Users) Mechanisms() []string {
	u.mu.RLock()
	defer u.mu.RUnlock()
	has := map[string]bool{}
	for _, a := range u.users {
		for m := range a.scram {
			has[m] = true
			has[Plain], has[Login] = true, true
		}
		if a.password != "" {
			has[CRAMMD5] = true
		}
		if a.token != "" {
			has[XOAuth2] = true
		}
	}
	var out []string
	for _, m := range append(preference[:], XOAuth2) {
		if has[m] {
			out = append(out, m)
		}
	}
	return out
}

// lookup finds a user by the name a client sent, prepared with SASLprep
// as the store's names are; it returns the prepared name.
func (u *Users) lookup(username string) (string, account, bool) {
	name, err := SASLprep(username, false)
	if err != nil {
		return "", account{}, false
	}
	u.mu.RLock()
	defer u.mu.RUnlock()
	a, ok := u.users[name]
	if !ok {
		return "", account{}, false
	}
	return name, *a, true
}

// checkPassword checks a password against a user's SCRAM keys, SHA-256
// first, and returns the user's (prepared) name.
func (u *Users) checkPassword(username, password string) (string, bool) {
	pw, err := SASLprep(password, false)
	if err != nil {
		return "", false
	}
	name, a, ok := u.lookup(username)
	if !ok {
		return "", false
	}
	for _, m := range []string{SCRAMSHA256, SCRAMSHA1} {
		if k := a.scram[m]; k != nil {
			return name, k.check(pw)
		}
	}
	return "", false
}

// NewServer returns the server side of one exchange of mechanism mech
// (a constant of this package, in any case).
func (u *Users) NewServer(mech string) (*Server, error) {
	mech = strings.ToUpper(mech)
	s := &Server{mech: mech, users: u}
	switch mech {
	case Plain:
		s.step = s.plain
	case Login:
		s.step = s.login
	case CRAMMD5:
		s.step = s.cram
	case XOAuth2:
		s.step = s.xoauth2
	case SCRAMSHA1, SCRAMSHA256:
		s.step = s.scramFirst
	default:
		return nil, fmt.Errorf("%w: %q is not a mechanism of this package", ErrNoMechanism, mech)
	}
	return s, nil
}

// Server is the server side of one exchange; it implements the Server
// interface of github.com/emersion/go-sasl, as go-smtp's AuthSession wants
// it. An error from Next wraps ErrAuthFailed (wrong credentials, unknown
// user: the two are not told apart), ErrSyntax or ErrUnexpected.
//
// The authorization identity a client may ask for (PLAIN, SCRAM a=) must
// be empty or the user itself: Server does not let one user act as
// another.
type Server struct {
	mech  string
	users *Users
	step  func(response []byte) ([]byte, bool, error)
	user  string
	done  bool

	// CRAM-MD5 and LOGIN state.
	challenge, name string
	// SCRAM state.
	keys                 *SCRAMKeys
	gs2, nonce, authPart string
}

// Next implements go-sasl's Server: it takes the client's response (nil
// when the client sent no initial response) and returns the next challenge,
// or done.
func (s *Server) Next(response []byte) (challenge []byte, done bool, err error) {
	if s.done {
		return nil, false, fmt.Errorf("%w: the %s exchange is over", ErrUnexpected, s.mech)
	}
	challenge, done, err = s.step(response)
	if err != nil || done {
		s.done = true
	}
	if err != nil {
		s.user = ""
	}
	return challenge, done, err
}

// Mechanism returns the name of the mechanism.
func (s *Server) Mechanism() string { return s.mech }

// Username returns the authenticated user once Next returned done without
// an error, else "".
func (s *Server) Username() string {
	if !s.done {
		return ""
	}
	return s.user
}

// String describes s without secrets.
func (s *Server) String() string { return fmt.Sprintf("sasl.Server{%s user=%q}", s.mech, s.Username()) }

// GoString describes s without secrets.
func (s *Server) GoString() string { return s.String() }

func authFailed(mech string) error { return fmt.Errorf("%w (%s)", ErrAuthFailed, mech) }

// plain is PLAIN (RFC 4616 §2): [authzid] NUL authcid NUL passwd, each
// UTF-8 of at most 255 octets, authcid and passwd not empty.
func (s *Server) plain(response []byte) ([]byte, bool, error) {
	if response == nil {
		return []byte{}, false, nil // no initial response: ask for it
	}
	authz, user, pass, err := parsePlain(response)
	if err != nil {
		return nil, false, err
	}
	name, ok := s.users.checkPassword(user, pass)
	if !ok || authz != "" && authz != user && authz != name {
		return nil, false, authFailed(Plain)
	}
	s.user = name
	return nil, true, nil
}

// parsePlain splits a PLAIN message (RFC 4616 §2).
func parsePlain(msg []byte) (authzid, authcid, passwd string, err error) {
	parts := strings.Split(string(msg), "\x00")
	if len(parts) != 3 {
		return "", "", "", fmt.Errorf("%w: PLAIN message has %d NULs, want 2", ErrSyntax, len(parts)-1)
	}
	for i, p := range parts {
		if len(p) > 255 || !utf8.ValidString(p) || (i > 0 && p == "") {
			return "", "", "", fmt.Errorf("%w: PLAIN field %d is empty, too long or not UTF-8", ErrSyntax, i+1)
		}
	}
	return parts[0], parts[1], parts[2], nil
}

// login is LOGIN (draft-murchison-sasl-login §2): the prompts "Username:"
// and "Password:" (the alternative the draft allows, the one SMTP clients
// expect). A user name sent as an initial response is taken.
func (s *Server) login(response []byte) ([]byte, bool, error) {
	switch {
	case s.challenge == "" && response == nil:
		s.challenge = "Username:"
		return []byte(s.challenge), false, nil
	case s.challenge == "" || s.challenge == "Username:":
		if len(response) == 0 {
			return nil, false, fmt.Errorf("%w: empty LOGIN user name", ErrSyntax)
		}
		s.name = string(response)
		s.challenge = "Password:"
		return []byte(s.challenge), false, nil
	}
	name, ok := s.users.checkPassword(s.name, string(response))
	if !ok {
		return nil, false, authFailed(Login)
	}
	s.user = name
	return nil, true, nil
}

// cram is CRAM-MD5 (RFC 2195 §2): the challenge is a msg-id,
// <random.random@hostname>, and the answer "user hexdigest".
func (s *Server) cram(response []byte) ([]byte, bool, error) {
	if s.challenge == "" {
		if len(response) > 0 {
			return nil, false, fmt.Errorf("%w: CRAM-MD5 has no initial response", ErrSyntax)
		}
		var b [16]byte
		if _, err := io.ReadFull(s.users.rand(), b[:]); err != nil {
			return nil, false, fmt.Errorf("sasl: CRAM-MD5 challenge: %w", err)
		}
		host := s.users.Hostname
		if host == "" {
			host = "localhost"
		}
		s.challenge = fmt.Sprintf("<%d.%d@%s>", binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:]), host)
		return []byte(s.challenge), false, nil
	}
	user, digest, ok := strings.Cut(string(response), " ")
	if !ok || user == "" || len(digest) != 32 {
		return nil, false, fmt.Errorf("%w: CRAM-MD5 answer is not \"user digest\"", ErrSyntax)
	}
	name, a, found := s.users.lookup(user)
	if !found || a.password == "" {
		return nil, false, authFailed(CRAMMD5)
	}
	want := cramDigest(a.password, []byte(s.challenge))
	if subtle.ConstantTimeCompare([]byte(strings.ToLower(digest)), []byte(want)) != 1 {
		return nil, false, authFailed(CRAMMD5)
	}
	s.user = name
	return nil, true, nil
}

// xoauth2 is XOAUTH2: a refused token gets a JSON error as a challenge,
// and the client's (empty) answer to it the failure.
func (s *Server) xoauth2(response []byte) ([]byte, bool, error) {
	if s.challenge != "" {
		return nil, false, authFailed(XOAuth2)
	}
	if response == nil {
		return []byte{}, false, nil
	}
	user, token, err := parseXOAuth2(response)
	if err != nil {
		return nil, false, err
	}
	name, a, found := s.users.lookup(user)
	if !found || a.token == "" || subtle.ConstantTimeCompare([]byte(token), []byte(a.token)) != 1 {
		s.challenge = `{"status":"401","schemes":"bearer","scope":"mail"}`
		return []byte(s.challenge), false, nil
	}
	s.user = name
	return nil, true, nil
}

// parseXOAuth2 reads "user=" user ^A "auth=Bearer " token ^A ^A.
func parseXOAuth2(msg []byte) (user, token string, err error) {
	rest, ok := strings.CutSuffix(string(msg), "\x01\x01")
	if !ok {
		return "", "", fmt.Errorf("%w: XOAUTH2 message does not end with ^A^A", ErrSyntax)
	}
	for _, kv := range strings.Split(rest, "\x01") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "user":
			user = v
		case "auth":
			t, ok := strings.CutPrefix(v, "Bearer ")
			if !ok {
				return "", "", fmt.Errorf("%w: XOAUTH2 auth is not a Bearer token", ErrSyntax)
			}
			token = t
		}
	}
	if user == "" || token == "" {
		return "", "", fmt.Errorf("%w: XOAUTH2 message lacks user or auth", ErrSyntax)
	}
	return user, token, nil
}

// scramFirst reads the client-first-message and answers the
// server-first-message (RFC 5802 §5.1, §7).
func (s *Server) scramFirst(response []byte) ([]byte, bool, error) {
	if response == nil {
		return []byte{}, false, nil // the client sends its first message now
	}
	cf, err := parseClientFirst(string(response))
	if err != nil {
		return nil, false, err
	}
	if cf.authzid != "" && cf.authzid != cf.user {
		return nil, false, authFailed(s.mech)
	}
	name, a, found := s.users.lookup(cf.user)
	s.keys = a.scram[s.mech]
	if !found || s.keys == nil {
		name, s.keys = cf.user, s.users.fakeKeys(s.mech, cf.user)
	}
	n, err := nonce(s.users.rand())
	if err != nil {
		return nil, false, err
	}
	s.user, s.gs2, s.nonce = name, cf.gs2, cf.nonce+n
	first := "r=" + s.nonce + ",s=" + base64.StdEncoding.EncodeToString(s.keys.Salt) + fmt.Sprintf(",i=%d", s.keys.Iterations)
	s.authPart = cf.bare + "," + first
	s.step = s.scramFinal
	return []byte(first), false, nil
}

// scramFinal checks the client-final-message and answers the server's
// signature; the client's empty answer to it ends the exchange.
func (s *Server) scramFinal(response []byte) ([]byte, bool, error) {
	cf, err := parseClientFinal(string(response))
	if err != nil {
		return nil, false, err
	}
	if cf.binding != s.gs2 {
		return nil, false, fmt.Errorf("%w: SCRAM channel binding c= is not the GS2 header", ErrSyntax)
	}
	if cf.nonce != s.nonce {
		return nil, false, authFailed(s.mech)
	}
	h := scramHash(s.mech)
	authMessage := s.authPart + "," + cf.without
	clientSig := hmacSum(h, s.keys.StoredKey, authMessage)
	if len(cf.proof) != len(clientSig) {
		return nil, false, authFailed(s.mech)
	}
	clientKey := make([]byte, len(clientSig))
	subtle.XORBytes(clientKey, cf.proof, clientSig)
	sum := h()
	sum.Write(clientKey)
	if subtle.ConstantTimeCompare(sum.Sum(nil), s.keys.StoredKey) != 1 {
		return nil, false, authFailed(s.mech)
	}
	s.step = s.scramEnd
	return []byte("v=" + base64.StdEncoding.EncodeToString(hmacSum(h, s.keys.ServerKey, authMessage))), false, nil
}

func (s *Server) scramEnd(response []byte) ([]byte, bool, error) {
	if len(response) != 0 {
		return nil, false, fmt.Errorf("%w: SCRAM client answered the server's signature", ErrUnexpected)
	}
	return nil, true, nil
}

// fakeKeys makes keys for a user the store does not have, with a salt that
// is the same at every attempt, so that the server-first-message does not
// tell which users exist (RFC 5802 §5.1 suggests it); no proof matches
// them.
func (u *Users) fakeKeys(mech, user string) *SCRAMKeys {
	u.mu.Lock()
	if u.fake == nil {
		u.fake = make([]byte, 32)
		io.ReadFull(u.rand(), u.fake)
	}
	key := u.fake
	u.mu.Unlock()
	m := hmac.New(sha256.New, key)
	m.Write([]byte(mech + "\x00" + user))
	sum := m.Sum(nil)
	iter := u.Iterations
	if iter == 0 {
		iter = MinIterations
	}
	return &SCRAMKeys{Mechanism: mech, Salt: sum[:16], Iterations: iter, StoredKey: sum[16:], ServerKey: sum[16:]}
}

// clientFirst is a parsed client-first-message.
type clientFirst struct {
	gs2, authzid, bare, user, nonce string
}

// parseClientFirst reads gs2-header client-first-message-bare (RFC 5802
// §7). The client may say "n" (no channel binding) or "y" (it could bind,
// but thinks the server cannot: true, this server has no -PLUS
// mechanism); "p=" asks for a binding this server does not do.
func parseClientFirst(msg string) (clientFirst, error) {
	var cf clientFirst
	flag, rest, ok := strings.Cut(msg, ",")
	if !ok {
		return cf, fmt.Errorf("%w: SCRAM client-first-message has no GS2 header", ErrSyntax)
	}
	switch {
	case flag == "n", flag == "y":
	case strings.HasPrefix(flag, "p="):
		return cf, fmt.Errorf("%w: SCRAM channel binding is not supported", ErrAuthFailed)
	default:
		return cf, fmt.Errorf("%w: SCRAM GS2 flag %q", ErrSyntax, flag)
	}
	authz, bare, ok := strings.Cut(rest, ",")
	if !ok {
		return cf, fmt.Errorf("%w: SCRAM GS2 header is not closed", ErrSyntax)
	}
	if authz != "" {
		v, ok := strings.CutPrefix(authz, "a=")
		if !ok {
			return cf, fmt.Errorf("%w: SCRAM authzid is not a=", ErrSyntax)
		}
		id, err := unescapeName(v)
		if err != nil || id == "" {
			return cf, fmt.Errorf("%w: SCRAM authzid", ErrSyntax)
		}
		cf.authzid = id
	}
	a, err := attrs(bare, 'n', 'r')
	if err != nil {
		return cf, err
	}
	cf.user, err = unescapeName(a[0])
	if err != nil || cf.user == "" || !utf8.ValidString(cf.user) {
		return cf, fmt.Errorf("%w: SCRAM user name", ErrSyntax)
	}
	if !printableNonce(a[1]) {
		return cf, fmt.Errorf("%w: SCRAM client nonce is not printable", ErrSyntax)
	}
	cf.gs2, cf.bare, cf.nonce = flag+","+authz+",", bare, a[1]
	return cf, nil
}

// clientFinal is a parsed client-final-message.
type clientFinal struct {
	binding, nonce, without string
	proof                   []byte
}

// parseClientFinal reads channel-binding "," nonce ["," extensions] ","
// proof (RFC 5802 §7).
func parseClientFinal(msg string) (clientFinal, error) {
	var cf clientFinal
	i := strings.LastIndex(msg, ",p=")
	if i < 0 {
		return cf, fmt.Errorf("%w: SCRAM client-final-message has no proof", ErrSyntax)
	}
	cf.without = msg[:i]
	a, err := attrs(cf.without, 'c', 'r')
	if err != nil {
		return cf, err
	}
	b, err := base64.StdEncoding.Strict().DecodeString(a[0])
	if err != nil {
		return cf, fmt.Errorf("%w: SCRAM channel binding is not base64", ErrSyntax)
	}
	cf.binding, cf.nonce = string(b), a[1]
	cf.proof, err = base64.StdEncoding.Strict().DecodeString(msg[i+3:])
	if err != nil || len(cf.proof) == 0 {
		return cf, fmt.Errorf("%w: SCRAM proof is not base64", ErrSyntax)
	}
	return cf, nil
}
