package natsqueue

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
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/smarthost-go/smarthost/relay"
)

// DefaultKeysBucket is the bucket of Keys when KeysOptions names none.
const DefaultKeysBucket = "smarthost_keys"

// The keys of the keys bucket: the hash key's record, and one record per
// API key under the prefix, named by its name in base64url.
const (
	hashKeyKey = "hashkey"
	keyPrefix  = "key."
)

// KeysOptions configures NewKeys. A nil *KeysOptions means the defaults.
type KeysOptions struct {
	// Bucket is the KV bucket of the keys, created when it does not
	// exist. Default DefaultKeysBucket.
	Bucket string
	// Replicas is the number of copies of a bucket NewKeys creates: 3 in
	// a three-node cluster, so that two nodes keep it. Default 1.
	Replicas int
	// HashKey is the key of the HMAC the keys are hashed with, at least
	// 32 octets of a random source, the same for every instance of the
	// fleet, from a place the bucket's readers cannot read (a secret
	// store, a systemd credential). Default: the hash key kept in the
	// bucket itself, made by the first instance (see Keys).
	HashKey []byte
	// MaxStale is how long Authenticate still serves the keys it has
	// after it lost step with the bucket, before it fails with
	// ErrStale. Default DefaultMaxStale.
	MaxStale time.Duration
	// Logger receives a debug record of each Authenticate, Create and
	// Revoke (never a secret), a warning when the copy falls out of step
	// and an error for each value of the bucket that is not valid.
	// Default: none.
	Logger *slog.Logger
	// Now is the clock of KeyInfo.Created and of MaxStale. Default
	// time.Now.
	Now func() time.Time
	// Rand is the random source of new keys, and of the hash key made
	// for a new bucket. Default crypto/rand.Reader.
	Rand io.Reader
}

// String shows the options without the hash key.
func (o KeysOptions) String() string {
	key := "<nil>"
	if o.HashKey != nil {
		key = "<redacted>"
	}
	return fmt.Sprintf("{Bucket:%q Replicas:%d HashKey:%s MaxStale:%v Logger:%v Now:%v Rand:%v}",
		o.Bucket, o.Replicas, key, o.MaxStale, o.Logger != nil, o.Now != nil, o.Rand != nil)
}

// GoString is String, so that %#v shows no hash key either.
func (o KeysOptions) GoString() string { return "natsqueue.KeysOptions" + o.String() }

// Keys is a store of API keys in a JetStream KV bucket, and the
// relay.Authenticator over it, for a fleet of relays: a key created or
// revoked through any instance takes effect on every other within the
// time a change takes to reach it (milliseconds on a healthy cluster). It
// is safe for concurrent use.
//
// # Security
//
// As relay.KeyFile: the bucket holds, for each key, its name, ID, scopes,
// sender domains, creation time and HMAC-SHA256 hash under a hash key
// (relay.KeyHasher); never the key, which Create returns once.
// Authenticate finds the record by the key's ID and compares hashes with
// crypto/subtle, and takes the same steps for an unknown, revoked,
// malformed or wrong key, so its time tells nothing.
//
// The hash key is, by default, in the bucket itself, under the reserved
// key "hashkey": the first instance makes it (32 octets of crypto/rand)
// with a create that fails if another instance was first, so every
// instance, and the command that manages the keys, uses the same one
// without a secret to hand out to each machine. The price: whoever can
// read the bucket (credentials allowed on it, or a copy of its stream)
// has the hash key with the hashes, and could test guessed keys offline.
// With keys of 280 random bits that gains nothing, so the default is
// safe; it loses the second layer KeyFile has, where a copy of the key
// file alone allows no test at all. To keep that layer, give
// KeysOptions.HashKey on every instance: the bucket then holds only its
// ID (16 hex digits, from which it cannot be found), and an instance given
// another one is refused at NewKeys rather than failing every key.
//
// # Staying in step
//
// Each instance keeps every key record in memory, fed by a KV watcher
// (an ordered push consumer: no polling), so Authenticate is a map access
// and an HMAC, with no round trip. Create and Revoke return once the
// instance's own copy has the change (or ctx ends, or 5 seconds pass),
// so a List after them shows it. A change made on another instance
// reaches this one as soon as NATS delivers it: milliseconds on a
// healthy cluster.
//
// The copy does not go stale silently. When the watcher's subscription
// ends, the instance watches the bucket again (after DefaultRewatch while
// that fails); when the connection is lost and comes back, it does so at
// once. Each new watch reads the whole bucket and replaces the copy, so
// that nothing missed meanwhile (a revocation) is kept. While out of
// step, Authenticate answers from the keys it has for MaxStale (long
// enough for a client to reconnect to another node of a cluster), then
// fails with ErrStale, a temporary error that the relay answers 454
// 4.7.0, so that a revoked key does not keep working on a relay cut off
// from the bucket; such a relay cannot queue mail either. Each loss of
// step is a warning in the log, each failed watch an error.
//
// A value in the bucket that is not a valid record (malformed JSON, an
// unknown field, a record under another name's key, an ID taken by
// another key) is ignored with an error in the log: that key does not
// authenticate until a valid record replaces it.
//
// # Format
//
// The key "key." followed by the key's name in base64url without padding
// (RFC 4648 §5) holds the JSON (RFC 8259) of the key:
//
//	{"name":"shop","id":"<the key's ID>","scopes":["mail.send"],
//	 "domains":["shop.example"],"created":"2026-01-02T15:04:05Z",
//	 "hash":"<HMAC-SHA256 in base64url>"}
//
// and "hashkey" the JSON {"id":"<16 hex digits>","key":"<base64>"}, its
// "key" absent when the operator keeps the hash key.
type Keys struct {
	kv     jetstream.KeyValue
	hasher *relay.KeyHasher
	// dummy is the hash compared with when a key's ID is unknown.
	dummy [sha256.Size]byte
	log   *slog.Logger
	now   func() time.Time
	rand  io.Reader
	m     *kvMirror[*keyTable]
}

// keyRecord is the value of a key in the bucket.
type keyRecord struct {
	Name    string    `json:"name"`
	ID      string    `json:"id"`
	Scopes  []string  `json:"scopes"`
	Domains []string  `json:"domains"`
	Created time.Time `json:"created"`
	Hash    string    `json:"hash"`

	hash [sha256.Size]byte // Hash, decoded
}

func (r *keyRecord) info() relay.KeyInfo {
	return relay.KeyInfo{Name: r.Name, ID: r.ID, Scopes: slices.Clone(r.Scopes), Domains: slices.Clone(r.Domains), Created: r.Created}
}

// hashKeyRecord is the value of the reserved key "hashkey".
type hashKeyRecord struct {
	ID  string `json:"id"`
	Key string `json:"key,omitempty"`
}

// recordKey is the bucket's key of the API key called name.
func recordKey(name string) string {
	return keyPrefix + base64.RawURLEncoding.EncodeToString([]byte(name))
}

// decodeKeyRecord reads the value of the bucket's key kvKey: a record as
// Create writes it, under its own name's key.
func decodeKeyRecord(kvKey string, value []byte) (*keyRecord, error) {
	var r keyRecord
	if err := decodeStrict(value, &r); err != nil {
		return nil, err
	}
	info := r.info()
	if err := info.Check(); err != nil {
		return nil, err
	}
	if recordKey(r.Name) != kvKey {
		return nil, fmt.Errorf("the record of key %q is not under its name's key", r.Name)
	}
	h, err := base64.RawURLEncoding.Strict().DecodeString(r.Hash)
	if err != nil || len(h) != sha256.Size {
		return nil, fmt.Errorf("hash of key %q is not %d octets in base64url", r.Name, sha256.Size)
	}
	copy(r.hash[:], h)
	r.Scopes, r.Domains = info.Scopes, info.Domains
	return &r, nil
}

// decodeStrict decodes one JSON object into v, refusing unknown fields
// and anything after it.
func decodeStrict(value []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON object")
	}
	return nil
}

// keyTable is the keys of the bucket, by bucket key and by ID.
type keyTable struct {
	byKey map[string]*keyRecord
	byID  map[string]*keyRecord
}

func newKeyTable() *keyTable {
	return &keyTable{byKey: map[string]*keyRecord{}, byID: map[string]*keyRecord{}}
}

func (t *keyTable) put(key string, value []byte) error {
	r, err := decodeKeyRecord(key, value)
	if err != nil {
		return err
	}
	if o := t.byID[r.ID]; o != nil && recordKey(o.Name) != key {
		return fmt.Errorf("key %q has the ID of key %q", r.Name, o.Name)
	}
	t.remove(key)
	t.byKey[key], t.byID[r.ID] = r, r
	return nil
}

func (t *keyTable) remove(key string) {
	if r := t.byKey[key]; r != nil {
		delete(t.byKey, key)
		if t.byID[r.ID] == r {
			delete(t.byID, r.ID)
		}
	}
}

// NewKeys opens the keys in the bucket of opts (created when it does not
// exist) through js, sets the hash key up, and returns once the
// instance's copy holds every key of the bucket, or ctx ends. Close
// stops its watcher; the connection stays the caller's.
func NewKeys(ctx context.Context, js jetstream.JetStream, opts *KeysOptions) (*Keys, error) {
	var o KeysOptions
	if opts != nil {
		o = *opts
	}
	if o.Bucket == "" {
		o.Bucket = DefaultKeysBucket
	}
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	if o.MaxStale <= 0 {
		o.MaxStale = DefaultMaxStale
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.HashKey != nil {
		if _, err := relay.NewKeyHasher(o.HashKey); err != nil {
			return nil, fmt.Errorf("natsqueue: %w", err)
		}
	}
	kv, err := openBucket(ctx, js, jetstream.KeyValueConfig{
		Bucket:      o.Bucket,
		Description: "smarthost relay API keys (hashed)",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    o.Replicas,
	})
	if err != nil {
		return nil, err
	}
	k := &Keys{kv: kv, log: o.Logger, now: o.Now, rand: o.Rand}
	rand.Read(k.dummy[:])
	if k.hasher, err = setupHashKey(ctx, kv, o.HashKey, o.Rand); err != nil {
		return nil, err
	}
	k.m, err = startMirror(ctx, kv, js.Conn(), keyPrefix+">", newKeyTable, mirrorOptions{
		log: o.Logger, now: o.Now, maxStale: o.MaxStale, rewatch: DefaultRewatch,
	})
	if err != nil {
		return nil, err
	}
	return k, nil
}

// setupHashKey reads the bucket's hash key record, making it when there
// is none, and returns the hasher of the hash key: hashKey when given,
// else the one in the bucket.
func setupHashKey(ctx context.Context, kv jetstream.KeyValue, hashKey []byte, random io.Reader) (*relay.KeyHasher, error) {
	for range 3 {
		e, err := kv.Get(ctx, hashKeyKey)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			var rec hashKeyRecord
			key := hashKey
			if key == nil {
				key = make([]byte, 32)
				if _, err := io.ReadFull(random, key); err != nil {
					return nil, fmt.Errorf("natsqueue: reading a random hash key: %w", err)
				}
				rec.Key = base64.StdEncoding.EncodeToString(key)
			}
			h, err := relay.NewKeyHasher(key)
			if err != nil {
				return nil, fmt.Errorf("natsqueue: %w", err)
			}
			rec.ID = h.ID()
			value, _ := json.Marshal(rec)
			_, err = kv.Create(ctx, hashKeyKey, value)
			if errors.Is(err, jetstream.ErrKeyExists) {
				continue // another instance was first: take its
			}
			if err != nil {
				return nil, fmt.Errorf("natsqueue: bucket %s: storing the hash key: %w", kv.Bucket(), err)
			}
			return h, nil
		}
		if err != nil {
			return nil, fmt.Errorf("natsqueue: bucket %s: reading the hash key: %w", kv.Bucket(), err)
		}
		var rec hashKeyRecord
		if err := decodeStrict(e.Value(), &rec); err != nil {
			return nil, fmt.Errorf("natsqueue: bucket %s: the hash key record is not valid: %w", kv.Bucket(), err)
		}
		key := hashKey
		if key == nil {
			if rec.Key == "" {
				return nil, fmt.Errorf("natsqueue: bucket %s: its keys were hashed with a hash key its operator keeps (ID %s): give it", kv.Bucket(), rec.ID)
			}
			if key, err = base64.StdEncoding.DecodeString(rec.Key); err != nil {
				return nil, fmt.Errorf("natsqueue: bucket %s: the hash key record is not valid: its key is not base64", kv.Bucket())
			}
		}
		h, err := relay.NewKeyHasher(key)
		if err != nil {
			return nil, fmt.Errorf("natsqueue: bucket %s: %w", kv.Bucket(), err)
		}
		if h.ID() != rec.ID {
			return nil, fmt.Errorf("natsqueue: bucket %s: its keys were hashed with another hash key (ID %s, not %s)", kv.Bucket(), rec.ID, h.ID())
		}
		return h, nil
	}
	return nil, fmt.Errorf("natsqueue: bucket %s: the hash key record keeps changing", kv.Bucket())
}

// Authenticate returns the account of the API key password when user is
// relay.KeyUser, else relay.ErrAuthFailed; ErrStale when the instance has
// been out of step with the bucket for MaxStale (see Keys).
func (k *Keys) Authenticate(ctx context.Context, user, password string) (*relay.Account, error) {
	id, got, parsed := k.hasher.Hash(password)
	var acct *relay.Account
	var found bool
	err := k.m.read(func(t *keyTable) {
		want := &k.dummy
		r, ok := t.byID[id]
		if ok {
			want = &r.hash
		}
		match := subtle.ConstantTimeCompare(got[:], want[:]) == 1
		if match && ok && parsed && user == relay.KeyUser {
			acct = &relay.Account{Name: r.Name, Scopes: slices.Clone(r.Scopes), Domains: slices.Clone(r.Domains)}
		}
		found = ok
	})
	if err != nil {
		k.log.LogAttrs(ctx, slog.LevelDebug, "natsqueue: api key not checked", slog.String("err", err.Error()))
		return nil, err
	}
	if acct != nil {
		k.log.LogAttrs(ctx, slog.LevelDebug, "natsqueue: api key authenticated", slog.String("key", acct.Name), slog.String("id", id))
		return acct, nil
	}
	if k.log.Enabled(ctx, slog.LevelDebug) {
		why := "wrong secret"
		switch {
		case user != relay.KeyUser:
			why = "user is not " + relay.KeyUser
		case !parsed:
			why = "not an API key"
		case !found:
			why = "unknown or revoked key"
		}
		attrs := []slog.Attr{slog.String("reason", why)}
		if parsed {
			attrs = append(attrs, slog.String("id", id))
		}
		k.log.LogAttrs(ctx, slog.LevelDebug, "natsqueue: api key refused", attrs...)
	}
	return nil, relay.ErrAuthFailed
}

// Create adds a key of a new name with scopes (relay.ScopeSend) and the
// sender domains it may use (see relay.Account.Domains), and returns the
// key: the only time it is shown. A name taken is relay.ErrKeyExists.
func (k *Keys) Create(ctx context.Context, name string, scopes, domains []string) (string, error) {
	key, id, hash, err := k.hasher.NewKey(k.rand)
	if err != nil {
		return "", err
	}
	info := relay.KeyInfo{Name: name, ID: id, Scopes: scopes, Domains: domains, Created: k.now().UTC().Truncate(time.Second)}
	if err := info.Check(); err != nil {
		return "", err
	}
	r := keyRecord{Name: name, ID: id, Scopes: info.Scopes, Domains: info.Domains, Created: info.Created,
		Hash: base64.RawURLEncoding.EncodeToString(hash[:])}
	taken := false
	if err := k.m.read(func(t *keyTable) { _, taken = t.byID[id] }); err == nil && taken {
		return "", errors.New("natsqueue: a new key's random ID is taken: the random source is broken")
	}
	value, err := json.Marshal(&r)
	if err != nil {
		return "", fmt.Errorf("natsqueue: %w", err)
	}
	rev, err := k.kv.Create(ctx, recordKey(name), value)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return "", fmt.Errorf("%w: %q", relay.ErrKeyExists, name)
	}
	if err != nil {
		return "", fmt.Errorf("natsqueue: creating key %q: %w", name, err)
	}
	// This instance's copy has it when Create returns; ctx bounds the
	// wait, and the key, stored, is returned all the same.
	k.m.waitOwnWrite(ctx, func(_ *keyTable, r uint64, _ bool) bool { return r >= rev })
	k.log.LogAttrs(ctx, slog.LevelDebug, "natsqueue: api key created", slog.String("key", name), slog.String("id", id))
	return key, nil
}

// Revoke removes the key of that name from the bucket, after which its
// name may be given to a new key; every instance refuses the key from
// the moment the change reaches it. A name unknown is
// relay.ErrKeyNotFound.
func (k *Keys) Revoke(ctx context.Context, name string) error {
	rk := recordKey(name)
	e, err := k.kv.Get(ctx, rk)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("%w: %q", relay.ErrKeyNotFound, name)
	}
	if err != nil {
		return fmt.Errorf("natsqueue: revoking key %q: %w", name, err)
	}
	// Only the version read, so that a key made anew under the name
	// meanwhile is not revoked unseen.
	if err := k.kv.Delete(ctx, rk, jetstream.LastRevision(e.Revision())); err != nil {
		return fmt.Errorf("natsqueue: revoking key %q: %w", name, err)
	}
	var id string
	if r, err := decodeKeyRecord(rk, e.Value()); err == nil {
		id = r.ID
	}
	k.m.waitOwnWrite(ctx, func(t *keyTable, _ uint64, _ bool) bool {
		r := t.byKey[rk]
		return r == nil || r.ID != id
	})
	k.log.LogAttrs(ctx, slog.LevelDebug, "natsqueue: api key revoked", slog.String("key", name), slog.String("id", id))
	return nil
}

// List returns the keys of the bucket as this instance has them, sorted
// by name, or ErrStale.
func (k *Keys) List(ctx context.Context) ([]relay.KeyInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []relay.KeyInfo
	err := k.m.read(func(t *keyTable) {
		out = make([]relay.KeyInfo, 0, len(t.byKey))
		for _, r := range t.byKey {
			out = append(out, r.info())
		}
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b relay.KeyInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Close stops the watcher; Authenticate and List fail after it. The
// connection stays open.
func (k *Keys) Close() error {
	k.m.close()
	return nil
}

// String names the bucket, and nothing of the keys or the hash key.
func (k *Keys) String() string { return "natsqueue.Keys(" + k.kv.Bucket() + ")" }

// GoString is String, so that %#v shows no hash key either.
func (k *Keys) GoString() string { return k.String() }
