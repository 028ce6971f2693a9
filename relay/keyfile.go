package relay

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Errors of a KeyFile's Create and Revoke.
var (
	ErrKeyExists   = errors.New("relay: a key of that name exists")
	ErrKeyNotFound = errors.New("relay: no key of that name")
)

const (
	keyFileVersion = 1
	// maxKeyFile bounds what a KeyFile reads: 64 MiB is some 200,000 keys.
	maxKeyFile = 64 << 20
	// hashKeyLen is the length of a hash key OpenKeyFile makes, and the
	// least it accepts.
	hashKeyLen = 32
)

// KeyFileOptions configures OpenKeyFile. A nil *KeyFileOptions means the
// defaults.
type KeyFileOptions struct {
	// HashKey is the key of the HMAC the key hashes are made with, at
	// least 32 octets of a random source (crypto/rand), the same in every
	// process that opens the file. Default: the content of HashKeyFile.
	HashKey []byte `json:"-"`
	// HashKeyFile holds the hash key when HashKey is nil: the key in
	// base64 (RFC 4648 §4) on one line. When neither it nor the key file
	// exists, OpenKeyFile creates it with 32 random octets, mode 0600.
	// Default: the key file's path with ".hashkey" appended.
	HashKeyFile string
	// Logger receives a debug record of each Authenticate, Create and
	// Revoke (never a secret), and an error record when the file changes
	// and cannot be read. Default: none.
	Logger *slog.Logger `json:"-"`
	// Now is the clock of KeyInfo.Created. Default: time.Now.
	Now func() time.Time `json:"-"`
}

// String shows the options without the hash key.
func (o KeyFileOptions) String() string {
	key := "<nil>"
	if o.HashKey != nil {
		key = "<redacted>"
	}
	return fmt.Sprintf("{HashKey:%s HashKeyFile:%q Logger:%v Now:%v}", key, o.HashKeyFile, o.Logger != nil, o.Now != nil)
}

// GoString is String, so that %#v shows no hash key either.
func (o KeyFileOptions) GoString() string { return "relay.KeyFileOptions" + o.String() }

// KeyFile is a store of API keys in a JSON file, and the Authenticator
// over it. It is safe for concurrent use, and several KeyFiles, in one
// process or in several (the relay and the command that manages its keys),
// may share a file.
//
// # Authentication
//
// Clients authenticate with the user name KeyUser ("apikey") and the key
// as the password; any other user name (compared exactly, so "APIKEY"
// too) fails. Authenticate finds the key's
// record by the ID in the key, hashes the key and compares the hash with
// the record's in constant time (crypto/subtle). A key that is unknown,
// revoked, malformed or wrong, or another user name, takes the same steps
// (the hash is computed in every case) and returns ErrAuthFailed, so the
// time taken tells a client nothing either. One Authenticate costs a stat
// of the file and an HMAC-SHA256: some 5 µs on a 2-core machine, the stat
// about half of it, for any of these outcomes (BenchmarkKeyFileAuthenticate).
//
// # Seeing changes at once
//
// Each Authenticate and List stats the file, and reads it again when it is
// another file (a new inode: every writer of this package replaces the
// file by renaming a new one over it) or its size or modification time has
// changed (an edit in place). A key created or revoked by any KeyFile is
// thus seen by the next Authenticate of every other, with no delay and no
// file watcher. A KeyFile keeps the file it read open, so that its inode
// number cannot be reused by a later version. An edit in place that keeps
// the size and lands within the file system's timestamp granularity of the
// previous one can go unseen until the next change: write with Create and
// Revoke, or replace the file by a rename.
//
// When the file has changed but cannot be read (malformed JSON, an unknown
// version or scope, a name twice, another hash key, or it is gone), the
// KeyFile keeps the keys it last read, logs the error once at error level,
// and List returns it. This keeps a relay serving through a half-written hand edit;
// the price is that a revocation by such an edit does not take effect
// until the file is right again, so Revoke, which only ever writes a valid
// file, is the way to revoke. Create and Revoke refuse to change a file
// they cannot read. OpenKeyFile refuses one from the start.
//
// # Writing
//
// Create and Revoke hold an exclusive lock (flock(2) on the file's path
// with ".lock" appended, a file left in place), read the file afresh,
// change it, write the whole of it to a new file in the same directory
// (mode 0600), fsync it, rename it over the old one and fsync the
// directory. A crash leaves the old file or the new one, never a mix, and
// two writers at once both keep their change. On systems without flock
// the lock is the lock file's existence, created with O_EXCL and removed
// after; a writer that dies holding it leaves it for a person to remove.
//
// # The hash key
//
// The file holds, for each key, its name, ID, scopes, sender domains,
// creation time and HMAC-SHA256 hash; never the key. The HMAC's key, the
// hash key, is not in the file: a copy of the key file alone (a backup, a
// file shared by mistake, one read through a path-traversal bug) then
// gives no way even to test a guessed key against it. By default the hash
// key is in a file of its own beside the key file (KeyFileOptions), which
// keeps the default setup to one directory but protects only against the
// theft of the one file; keep it elsewhere (HashKeyFile on another volume,
// HashKey from a secret store or a systemd credential) to protect against
// the theft of the directory. The file records an ID of its hash key (the
// start of an HMAC of a fixed text), so that opening it with another one
// is an error at once rather than every key failing. Changing the hash key
// invalidates every key.
//
// # Format
//
// A JSON object (RFC 8259) of version 1:
//
//	{
//	  "version": 1,
//	  "hash_key_id": "<16 hex digits>",
//	  "keys": [
//	    {
//	      "name": "shop",
//	      "id": "<the key's ID>",
//	      "scopes": ["mail.send"],
//	      "domains": ["*.shop.example", "shop.example"],
//	      "created": "2026-01-02T15:04:05Z",
//	      "hash": "<HMAC-SHA256 in base64url without padding>"
//	    }
//	  ]
//	}
//
// Unknown fields are refused, so that a misspelt one in a hand edit is an
// error rather than ignored.
type KeyFile struct {
	path      string
	lockPath  string
	hashKey   []byte
	hashKeyID string
	// dummy is the hash compared with when a key's ID is not in the file.
	dummy [sha256.Size]byte
	log   *slog.Logger
	now   func() time.Time
	// writing serializes this KeyFile's writers before the file lock.
	writing chan struct{}

	cur atomic.Pointer[keySnapshot] // nil once closed
	mu  sync.Mutex                  // held to replace cur, and for bad*
	// badFile and badErr are the version of the file last found
	// unreadable (nil when a stat failed) and why; badErr is nil when
	// cur is the file's current version.
	badFile fs.FileInfo
	badErr  error
}

// keySnapshot is one version of the key file, as read.
type keySnapshot struct {
	fi   fs.FileInfo
	f    *os.File // the file read, held open so its inode is not reused
	data *keyFileData
	byID map[keyID]*keyRecord
}

// keyFileData is the JSON of a key file.
type keyFileData struct {
	Version   int         `json:"version"`
	HashKeyID string      `json:"hash_key_id"`
	Keys      []keyRecord `json:"keys"`
}

// keyRecord is a key in the file: its KeyInfo and its hash.
type keyRecord struct {
	Name    string    `json:"name"`
	ID      string    `json:"id"`
	Scopes  []string  `json:"scopes"`
	Domains []string  `json:"domains"`
	Created time.Time `json:"created"`
	Hash    string    `json:"hash"`

	id   keyID             // ID, decoded
	hash [sha256.Size]byte // Hash, decoded
}

func (r *keyRecord) info() KeyInfo {
	return KeyInfo{Name: r.Name, ID: r.ID, Scopes: slices.Clone(r.Scopes), Domains: slices.Clone(r.Domains), Created: r.Created}
}

// OpenKeyFile opens the key file at path, creating it empty when it does
// not exist (and the hash key file too, when neither exists and opts gives
// no hash key). It refuses a file it cannot read, or one whose keys were
// hashed with another hash key. ctx bounds the wait for the file lock,
// taken only to create a file.
func OpenKeyFile(ctx context.Context, path string, opts *KeyFileOptions) (*KeyFile, error) {
	var o KeyFileOptions
	if opts != nil {
		o = *opts
	}
	if o.HashKeyFile == "" {
		o.HashKeyFile = path + ".hashkey"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.HashKey != nil && len(o.HashKey) < hashKeyLen {
		return nil, fmt.Errorf("relay: hash key of %d octets, under %d", len(o.HashKey), hashKeyLen)
	}
	k := &KeyFile{
		path:     path,
		lockPath: path + ".lock",
		hashKey:  slices.Clone(o.HashKey),
		log:      o.Logger,
		now:      o.Now,
		writing:  make(chan struct{}, 1),
	}
	rand.Read(k.dummy[:])
	if err := k.init(ctx, o.HashKeyFile); err != nil {
		return nil, err
	}
	snap, err := k.load()
	if err != nil {
		return nil, err
	}
	k.cur.Store(snap)
	return k, nil
}

// init sets the hash key, from the options or the hash key file, and
// creates the files that do not exist yet, holding the lock to do so.
func (k *KeyFile) init(ctx context.Context, hashKeyFile string) error {
	if ready, err := k.setup(hashKeyFile, false); ready || err != nil {
		return err
	}
	unlock, err := lockFile(ctx, k.lockPath)
	if err != nil {
		return err
	}
	defer unlock()
	_, err = k.setup(hashKeyFile, true) // again: another process may have been first
	return err
}

// setup reads the hash key and checks that the key file exists. When one
// of them must be made, it makes it if create is set (the caller holds the
// lock), else it returns ready false.
func (k *KeyFile) setup(hashKeyFile string, create bool) (ready bool, err error) {
	_, err = os.Stat(k.path)
	keysExist := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("relay: key file: %w", err)
	}
	if k.hashKey == nil {
		key, err := readHashKey(hashKeyFile)
		switch {
		case err == nil:
			k.hashKey = key
		case !errors.Is(err, fs.ErrNotExist):
			return false, err
		case keysExist:
			return false, fmt.Errorf("relay: hash key file %s does not exist, and the keys in %s were hashed with its key: restore it, or start a new key file", hashKeyFile, k.path)
		case !create:
			return false, nil
		default:
			key := make([]byte, hashKeyLen)
			rand.Read(key)
			if err := writeFileAtomic(hashKeyFile, []byte(base64.StdEncoding.EncodeToString(key)+"\n")); err != nil {
				return false, fmt.Errorf("relay: creating the hash key file: %w", err)
			}
			k.hashKey = key
		}
	}
	k.hashKeyID = hashKeyID(k.hashKey)
	switch {
	case keysExist:
		return true, nil
	case !create:
		return false, nil
	}
	return true, k.write(&keyFileData{Version: keyFileVersion, HashKeyID: k.hashKeyID, Keys: []keyRecord{}})
}

// readHashKey reads a hash key file. Its errors never show the content.
func readHashKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("relay: hash key file: %w", err)
	}
	defer f.Close()
	text, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return nil, fmt.Errorf("relay: hash key file: %w", err)
	}
	key, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(text)))
	if err != nil {
		return nil, fmt.Errorf("relay: hash key file %s: not one line of base64", path)
	}
	if len(key) < hashKeyLen {
		return nil, fmt.Errorf("relay: hash key file %s: a key of %d octets, under %d", path, len(key), hashKeyLen)
	}
	return key, nil
}

// load reads the file as it is now.
func (k *KeyFile) load() (*keySnapshot, error) {
	f, err := os.Open(k.path)
	if err != nil {
		return nil, fmt.Errorf("relay: key file: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("relay: key file: %w", err)
	}
	text, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err == nil && len(text) > maxKeyFile {
		err = fmt.Errorf("over %d octets", maxKeyFile)
	}
	var d *keyFileData
	if err == nil {
		d, err = parseKeyFile(text)
	}
	if err == nil && d.HashKeyID != k.hashKeyID {
		err = fmt.Errorf("its keys were hashed with another hash key (ID %s, not %s)", d.HashKeyID, k.hashKeyID)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("relay: key file %s: %w", k.path, err)
	}
	return newSnapshot(fi, f, d), nil
}

func newSnapshot(fi fs.FileInfo, f *os.File, d *keyFileData) *keySnapshot {
	snap := &keySnapshot{fi: fi, f: f, data: d, byID: make(map[keyID]*keyRecord, len(d.Keys))}
	for i := range d.Keys {
		snap.byID[d.Keys[i].id] = &d.Keys[i]
	}
	return snap
}

// parseKeyFile reads and checks the JSON of a key file.
func parseKeyFile(text []byte) (*keyFileData, error) {
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.DisallowUnknownFields()
	var d keyFileData
	if err := dec.Decode(&d); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON object")
	}
	if d.Version != keyFileVersion {
		return nil, fmt.Errorf("version %d, not %d", d.Version, keyFileVersion)
	}
	if len(d.HashKeyID) != 16 {
		return nil, errors.New("no hash_key_id of 16 hex digits")
	}
	names := make(map[string]bool, len(d.Keys))
	ids := make(map[keyID]bool, len(d.Keys))
	for i := range d.Keys {
		r := &d.Keys[i]
		if err := r.check(); err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		if names[r.Name] {
			return nil, fmt.Errorf("key %d: name %q twice", i+1, r.Name)
		}
		if ids[r.id] {
			return nil, fmt.Errorf("key %d: ID %s twice", i+1, r.ID)
		}
		names[r.Name], ids[r.id] = true, true
	}
	if d.Keys == nil {
		d.Keys = []keyRecord{}
	}
	return &d, nil
}

// check checks a record as Create would have made it, and decodes its ID
// and hash.
func (r *keyRecord) check() error {
	if err := checkKeyName(r.Name); err != nil {
		return err
	}
	var ok bool
	if r.id, ok = parseKeyID(r.ID); !ok {
		return fmt.Errorf("ID %q is not %d characters of base32", r.ID, keyIDChars)
	}
	var err error
	if r.Scopes, err = normalizeScopes(r.Scopes); err != nil {
		return err
	}
	if r.Domains, err = normalizeDomains(r.Domains, r.Scopes); err != nil {
		return err
	}
	h, err := base64.RawURLEncoding.Strict().DecodeString(r.Hash)
	if err != nil || len(h) != sha256.Size {
		return fmt.Errorf("hash of key %q is not %d octets in base64url", r.Name, sha256.Size)
	}
	copy(r.hash[:], h)
	return nil
}

// current returns the keys of the file as it is now, after reading it
// again if it changed; when it cannot be read, the keys last read and why.
func (k *KeyFile) current() (*keySnapshot, error) {
	fi, statErr := os.Stat(k.path)
	snap := k.cur.Load()
	if snap == nil {
		return nil, errKeyFileClosed
	}
	if statErr == nil && sameVersion(fi, snap.fi) {
		return snap, nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	snap = k.cur.Load()
	switch {
	case snap == nil:
		return nil, errKeyFileClosed
	case statErr == nil && sameVersion(fi, snap.fi):
		return snap, nil // read by another goroutine meanwhile
	case statErr == nil && k.badFile != nil && sameVersion(fi, k.badFile):
		return snap, k.badErr
	}
	var next *keySnapshot
	err := statErr
	if err != nil {
		err = fmt.Errorf("relay: key file: %w", err)
	} else {
		next, err = k.load()
	}
	if err != nil {
		if k.badErr == nil || k.badErr.Error() != err.Error() {
			k.log.Error("relay: key file changed and cannot be read; keeping the keys last read", "path", k.path, "keys", len(snap.data.Keys), "err", err)
		}
		k.badFile, k.badErr = fi, err
		return snap, err
	}
	k.replace(snap, next)
	k.log.Debug("relay: key file read again", "path", k.path, "keys", len(next.data.Keys))
	return next, nil
}

// replace makes next the current snapshot in place of old. The caller
// holds mu.
func (k *KeyFile) replace(old, next *keySnapshot) {
	k.cur.Store(next)
	k.badFile, k.badErr = nil, nil
	old.f.Close()
}

// sameVersion reports whether two stats are of one version of a file.
func sameVersion(a, b fs.FileInfo) bool {
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

var errKeyFileClosed = errors.New("relay: key file closed")

// Authenticate returns the account of the API key password when user is
// KeyUser, else ErrAuthFailed. See KeyFile for how it stays in step with
// the file, and for its constant-time comparison.
func (k *KeyFile) Authenticate(ctx context.Context, user, password string) (*Account, error) {
	snap, _ := k.current() // an unreadable change is logged there; the last keys serve
	if snap == nil {
		return nil, errKeyFileClosed
	}
	id, secret, parsed := parseKey(password)
	got := keyHash(k.hashKey, id, &secret)
	want := &k.dummy
	r, found := snap.byID[id]
	if found {
		want = &r.hash
	}
	match := subtle.ConstantTimeCompare(got[:], want[:]) == 1
	if match && found && parsed && user == KeyUser {
		k.log.LogAttrs(ctx, slog.LevelDebug, "relay: api key authenticated", slog.String("key", r.Name), slog.String("id", r.ID))
		return &Account{Name: r.Name, Scopes: slices.Clone(r.Scopes), Domains: slices.Clone(r.Domains)}, nil
	}
	if k.log.Enabled(ctx, slog.LevelDebug) {
		why := "wrong secret"
		switch {
		case user != KeyUser:
			why = "user is not " + KeyUser
		case !parsed:
			why = "not an API key"
		case !found:
			why = "unknown or revoked key"
		}
		attrs := []slog.Attr{slog.String("reason", why)}
		if parsed {
			attrs = append(attrs, slog.String("id", id.String()))
		}
		k.log.LogAttrs(ctx, slog.LevelDebug, "relay: api key refused", attrs...)
	}
	return nil, ErrAuthFailed
}

// Create adds a key of a new name with scopes (ScopeSend) and the sender
// domains it may use (see Account.Domains), and returns the key: the only
// time it is shown. ctx bounds the wait for the file lock.
func (k *KeyFile) Create(ctx context.Context, name string, scopes, domains []string) (key string, err error) {
	if err := checkKeyName(name); err != nil {
		return "", err
	}
	if scopes, err = normalizeScopes(scopes); err != nil {
		return "", err
	}
	if domains, err = normalizeDomains(domains, scopes); err != nil {
		return "", err
	}
	id, secret, err := newKey(rand.Reader)
	if err != nil {
		return "", err
	}
	hash := keyHash(k.hashKey, id, &secret)
	r := keyRecord{
		Name:    name,
		ID:      id.String(),
		Scopes:  scopes,
		Domains: domains,
		Created: k.now().UTC().Truncate(time.Second),
		Hash:    base64.RawURLEncoding.EncodeToString(hash[:]),
		id:      id,
		hash:    hash,
	}
	err = k.update(ctx, func(d *keyFileData) error {
		for i := range d.Keys {
			if d.Keys[i].Name == name {
				return fmt.Errorf("%w: %q", ErrKeyExists, name)
			}
			if d.Keys[i].ID == r.ID {
				return errors.New("relay: a new key's random ID is taken: the random source is broken")
			}
		}
		d.Keys = append(d.Keys, r)
		return nil
	})
	if err != nil {
		return "", err
	}
	k.log.LogAttrs(ctx, slog.LevelDebug, "relay: api key created", slog.String("key", name), slog.String("id", r.ID))
	return formatKey(id, &secret), nil
}

// Revoke removes the key of that name from the file, after which its
// name may be given to a new key: from the next Authenticate of every
// KeyFile of the file on, the key fails. ctx bounds the wait for the
// file lock.
func (k *KeyFile) Revoke(ctx context.Context, name string) error {
	var id string
	err := k.update(ctx, func(d *keyFileData) error {
		i := slices.IndexFunc(d.Keys, func(r keyRecord) bool { return r.Name == name })
		if i < 0 {
			return fmt.Errorf("%w: %q", ErrKeyNotFound, name)
		}
		id = d.Keys[i].ID
		d.Keys = slices.Delete(d.Keys, i, i+1)
		return nil
	})
	if err != nil {
		return err
	}
	k.log.LogAttrs(ctx, slog.LevelDebug, "relay: api key revoked", slog.String("key", name), slog.String("id", id))
	return nil
}

// List returns the keys in the file as it is now, sorted by name, or the
// error that keeps the file from being read.
func (k *KeyFile) List(ctx context.Context) ([]KeyInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	snap, err := k.current()
	if err != nil {
		return nil, err
	}
	out := make([]KeyInfo, len(snap.data.Keys))
	for i := range snap.data.Keys {
		out[i] = snap.data.Keys[i].info()
	}
	slices.SortFunc(out, func(a, b KeyInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// update changes the file with change, holding the locks, and takes the
// version it wrote as the current one.
func (k *KeyFile) update(ctx context.Context, change func(*keyFileData) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("relay: waiting to write the key file: %w", context.Cause(ctx))
	}
	select {
	case k.writing <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("relay: waiting to write the key file: %w", context.Cause(ctx))
	}
	defer func() { <-k.writing }()
	if k.cur.Load() == nil {
		return errKeyFileClosed
	}
	unlock, err := lockFile(ctx, k.lockPath)
	if err != nil {
		return err
	}
	defer unlock()
	// Read afresh under the lock, whatever this KeyFile saw before: the
	// change of another writer a moment ago is kept.
	snap, err := k.load()
	if err != nil {
		return err
	}
	defer snap.f.Close()
	d := *snap.data
	d.Keys = slices.Clone(d.Keys)
	if err := change(&d); err != nil {
		return err
	}
	if err := k.write(&d); err != nil {
		return err
	}
	// The version just written, as the lock is held: what is in d.
	f, err := os.Open(k.path)
	if err != nil {
		return fmt.Errorf("relay: key file: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("relay: key file: %w", err)
	}
	next := newSnapshot(fi, f, &d)
	k.mu.Lock()
	defer k.mu.Unlock()
	old := k.cur.Load()
	if old == nil {
		next.f.Close()
		return errKeyFileClosed
	}
	k.replace(old, next)
	return nil
}

// write replaces the key file with d.
func (k *KeyFile) write(d *keyFileData) error {
	text, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return fmt.Errorf("relay: key file: %w", err)
	}
	if err := writeFileAtomic(k.path, append(text, '\n')); err != nil {
		return fmt.Errorf("relay: writing the key file: %w", err)
	}
	return nil
}

// writeFileAtomic replaces the file at path with one holding text, mode
// 0600: it writes a new file in the same directory, syncs it, renames it
// over path and syncs the directory, so that after a crash path holds the
// old text or the new, and the new once this returns.
func writeFileAtomic(path string, text []byte) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp*") // O_EXCL, mode 0600
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(text); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

// Close releases the file. Authenticate, Create, Revoke and List fail
// after it.
func (k *KeyFile) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	snap := k.cur.Swap(nil)
	if snap == nil {
		return nil
	}
	return snap.f.Close()
}

// String names the file, and nothing of the keys or the hash key.
func (k *KeyFile) String() string { return "relay.KeyFile(" + k.path + ")" }

// GoString is String, so that %#v shows no hash key either.
func (k *KeyFile) GoString() string { return k.String() }
