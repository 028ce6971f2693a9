package natsqueue

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/smarthost-go/smarthost/relay"
)

// DefaultSuppressionsBucket is the bucket of Suppressions when
// SuppressionsOptions names none.
const DefaultSuppressionsBucket = "smarthost_suppressions"

// suppressionPrefix begins the bucket's key of every suppression.
const suppressionPrefix = "s."

// SuppressionsOptions configures NewSuppressions. A nil
// *SuppressionsOptions means the defaults.
type SuppressionsOptions struct {
	// Bucket is the KV bucket of the suppressions, created when it does
	// not exist. Default DefaultSuppressionsBucket.
	Bucket string
	// Replicas is the number of copies of a bucket NewSuppressions
	// creates: 3 in a three-node cluster. Default 1.
	Replicas int
	// MaxStale is how long Suppressed still answers from the
	// suppressions it has after it lost step with the bucket, before it
	// fails with ErrStale. Default DefaultMaxStale.
	MaxStale time.Duration
	// Logger receives a debug record of each Add and Remove, a warning
	// when the copy falls out of step and an error for each value of the
	// bucket that is not valid. Default: none.
	Logger *slog.Logger
	// Now is the clock of Suppression.Created when Add is given none,
	// and of MaxStale. Default time.Now.
	Now func() time.Time
}

// Suppressions is a relay.Suppressions in a JetStream KV bucket, for a
// fleet of relays: a suppression added through any instance (a hard
// bounce one relay saw, a spam report, the operator's command) refuses
// the recipient at the next RCPT on every other once the change has
// reached it. It is safe for concurrent use.
//
// As Keys, each instance keeps every suppression in memory, fed by a KV
// watcher, so that the Server's lookup at each RCPT is a map access with
// no round trip; Add and Remove return once this instance's copy has the
// change (or ctx ends, or 5 seconds pass); a lost watcher or connection
// makes the instance read the bucket again, and while out of step
// Suppressed and List answer from what it has for MaxStale, then fail
// with ErrStale, which the Server answers 451 4.3.0: a client tries again
// later rather than mail a recipient the list may hold. A value that is not a valid suppression
// is ignored with an error in the log.
//
// # Format
//
// A suppression is under the key "s." followed by SHA-256 of
// relay.SuppressionKey(account, recipient) in base64url without padding
// (RFC 4648 §5): a NATS key of 45 characters whatever octets the account
// and the address hold, and one key per suppression as the relay
// compares them (the domain without case, RFC 5321 §2.4). Its value is
// the JSON (RFC 8259) of the relay.Suppression, which holds the account
// and the address in full:
//
//	{"account":"shop","recipient":"bob@example.org","source":"bounce",
//	 "reason":"550 5.1.1 user unknown","queue_id":"Q0001",
//	 "created":"2026-01-02T15:04:05Z"}
type Suppressions struct {
	kv  jetstream.KeyValue
	log *slog.Logger
	now func() time.Time
	m   *kvMirror[*suppressionTable]
}

// suppressionKVKey is the bucket's key of the suppression of rcpt for
// account.
func suppressionKVKey(account, rcpt string) string {
	sum := sha256.Sum256([]byte(relay.SuppressionKey(account, rcpt)))
	return suppressionPrefix + base64.RawURLEncoding.EncodeToString(sum[:])
}

// decodeSuppression reads the value of the bucket's key kvKey: a valid
// suppression, under its own key.
func decodeSuppression(kvKey string, value []byte) (relay.Suppression, error) {
	var s relay.Suppression
	if err := decodeStrict(value, &s); err != nil {
		return s, err
	}
	if err := s.Check(); err != nil {
		return s, err
	}
	if suppressionKVKey(s.Account, s.Recipient) != kvKey {
		return s, errors.New("the suppression is not under its own key")
	}
	return s, nil
}

// suppressionTable is the suppressions of the bucket by bucket key.
type suppressionTable struct {
	m map[string]relay.Suppression
}

func newSuppressionTable() *suppressionTable {
	return &suppressionTable{m: map[string]relay.Suppression{}}
}

func (t *suppressionTable) put(key string, value []byte) error {
	s, err := decodeSuppression(key, value)
	if err != nil {
		return err
	}
	t.m[key] = s
	return nil
}

func (t *suppressionTable) remove(key string) { delete(t.m, key) }

// NewSuppressions opens the suppressions in the bucket of opts (created
// when it does not exist) through js, and returns once the instance's
// copy holds every one of them, or ctx ends. Close stops its watcher;
// the connection stays the caller's.
func NewSuppressions(ctx context.Context, js jetstream.JetStream, opts *SuppressionsOptions) (*Suppressions, error) {
	var o SuppressionsOptions
	if opts != nil {
		o = *opts
	}
	if o.Bucket == "" {
		o.Bucket = DefaultSuppressionsBucket
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
	kv, err := openBucket(ctx, js, jetstream.KeyValueConfig{
		Bucket:      o.Bucket,
		Description: "smarthost relay suppression list",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    o.Replicas,
	})
	if err != nil {
		return nil, err
	}
	s := &Suppressions{kv: kv, log: o.Logger, now: o.Now}
	s.m, err = startMirror(ctx, kv, js.Conn(), ">", newSuppressionTable, mirrorOptions{
		log: o.Logger, now: o.Now, maxStale: o.MaxStale, rewatch: DefaultRewatch,
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Suppressed implements relay.Suppressions, from this instance's copy.
func (s *Suppressions) Suppressed(ctx context.Context, account, rcpt string) (*relay.Suppression, error) {
	key := suppressionKVKey(account, rcpt)
	var found *relay.Suppression
	err := s.m.read(func(t *suppressionTable) {
		if v, ok := t.m[key]; ok {
			found = &v
		}
	})
	if err != nil {
		return nil, err
	}
	return found, nil
}

// Add implements relay.Suppressions. A zero Created is set to now.
func (s *Suppressions) Add(ctx context.Context, v relay.Suppression) error {
	if v.Created.IsZero() {
		v.Created = s.now()
	}
	v.Created = v.Created.UTC()
	if err := v.Check(); err != nil {
		return err
	}
	value, err := json.Marshal(&v)
	if err != nil {
		return fmt.Errorf("natsqueue: suppression: %w", err)
	}
	rev, err := s.kv.Put(ctx, suppressionKVKey(v.Account, v.Recipient), value)
	if err != nil {
		return fmt.Errorf("natsqueue: adding a suppression: %w", err)
	}
	s.m.waitOwnWrite(ctx, func(_ *suppressionTable, r uint64, _ bool) bool { return r >= rev })
	s.log.LogAttrs(ctx, slog.LevelDebug, "natsqueue: suppression added", slog.String("account", v.Account),
		slog.String("rcpt", v.Recipient), slog.String("source", string(v.Source)))
	return nil
}

// Remove implements relay.Suppressions.
func (s *Suppressions) Remove(ctx context.Context, account, rcpt string) error {
	key := suppressionKVKey(account, rcpt)
	var had relay.Suppression
	s.m.read(func(t *suppressionTable) { had = t.m[key] })
	if err := s.kv.Delete(ctx, key); err != nil {
		return fmt.Errorf("natsqueue: removing a suppression: %w", err)
	}
	if !had.Created.IsZero() {
		s.m.waitOwnWrite(ctx, func(t *suppressionTable, _ uint64, _ bool) bool {
			v, ok := t.m[key]
			return !ok || !v.Created.Equal(had.Created)
		})
	}
	s.log.LogAttrs(ctx, slog.LevelDebug, "natsqueue: suppression removed", slog.String("account", account), slog.String("rcpt", rcpt))
	return nil
}

// List implements relay.Suppressions, from this instance's copy.
func (s *Suppressions) List(ctx context.Context, account string) ([]relay.Suppression, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []relay.Suppression
	err := s.m.read(func(t *suppressionTable) {
		for _, v := range t.m {
			if account == "" || v.Account == account {
				out = append(out, v)
			}
		}
	})
	if err != nil {
		return nil, err
	}
	sortSuppressions(out)
	return out, nil
}

// sortSuppressions orders by Created, then account and recipient, as
// relay's lists do.
func sortSuppressions(l []relay.Suppression) {
	slices.SortFunc(l, func(a, b relay.Suppression) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(relay.SuppressionKey(a.Account, a.Recipient), relay.SuppressionKey(b.Account, b.Recipient))
	})
}

// Close stops the watcher; Suppressed and List fail after it. The
// connection stays open.
func (s *Suppressions) Close() error {
	s.m.close()
	return nil
}

// String names the bucket.
func (s *Suppressions) String() string { return "natsqueue.Suppressions(" + s.kv.Bucket() + ")" }
