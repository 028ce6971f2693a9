package natsqueue_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/relay/natsqueue"
)

var _ relay.Authenticator = (*natsqueue.Keys)(nil)

// TestKeysAcrossInstances: two relay instances, each with its own
// connection to one server: a key created on one authenticates on the
// other, with its account; a wrong secret, another user, a string that
// is no key are refused; a foreign sender domain is not the account's;
// a name is unique across instances; a key revoked on the second is
// refused on the first.
func TestKeysAcrossInstances(t *testing.T) {
	t.Parallel()
	s := kvServer(t, "", 0)
	var logs logBuffer
	// newKeys ends the context NewKeys was given as soon as it returns:
	// the watchers must outlive it.
	a := newKeys(t, kvConnect(t, s), &natsqueue.KeysOptions{Logger: logs.logger()})
	b := newKeys(t, kvConnect(t, s), &natsqueue.KeysOptions{Logger: logs.logger()})
	ctx := context.Background()
	defer func() {
		if strings.Contains(logs.String(), "level=ERROR") || strings.Contains(logs.String(), "level=WARN") {
			t.Errorf("a healthy fleet logged errors or warnings:\n%s", logs.String())
		}
	}()

	key, err := a.Create(ctx, "shop", []string{relay.ScopeSend}, []string{"shop.example", "*.shop.example"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(key, relay.KeyPrefix) {
		t.Fatalf("key %q", key)
	}
	// Create returns once a's own copy has it: no wait there.
	if err := authErr(a, key); err != nil {
		t.Errorf("on the instance that made it: %v", err)
	}
	eventually(t, "the key authenticates on the other instance", func() bool { return authErr(b, key) == nil })
	acct, err := b.Authenticate(ctx, relay.KeyUser, key)
	if err != nil {
		t.Fatal(err)
	}
	if acct.Name != "shop" || !acct.Can(relay.ScopeSend) || !acct.MaySendFrom("mail.shop.example") || acct.MaySendFrom("other.example") {
		t.Errorf("account %+v", acct)
	}

	flip := map[byte]byte{'a': 'b'}
	wrong := []byte(key)
	last := wrong[len(wrong)-1]
	if f, ok := flip[last]; ok {
		wrong[len(wrong)-1] = f
	} else {
		wrong[len(wrong)-1] = 'a'
	}
	for _, tt := range []struct{ what, user, pass string }{
		{"a wrong secret", relay.KeyUser, string(wrong)},
		{"another user", "APIKEY", key},
		{"no key", relay.KeyUser, "hunter2"},
		{"an unknown key", relay.KeyUser, key[:len(relay.KeyPrefix)] + strings.Repeat("a", 16) + key[len(relay.KeyPrefix)+16:]},
	} {
		if _, err := b.Authenticate(ctx, tt.user, tt.pass); !errors.Is(err, relay.ErrAuthFailed) {
			t.Errorf("%s: %v, want ErrAuthFailed", tt.what, err)
		}
	}

	if _, err := b.Create(ctx, "shop", []string{relay.ScopeSend}, []string{"x.example"}); !errors.Is(err, relay.ErrKeyExists) {
		t.Errorf("a second key named shop, on the other instance: %v, want ErrKeyExists", err)
	}
	for _, bad := range [][2][]string{{{"mail.send"}, nil}, {{"mail.admin"}, {"a.example"}}, {{"mail.send"}, {"localhost"}}} {
		if _, err := a.Create(ctx, "bad", bad[0], bad[1]); err == nil {
			t.Errorf("Create with scopes %v, domains %v: no error", bad[0], bad[1])
		}
	}
	list, err := b.List(ctx)
	if err != nil || len(list) != 1 || list[0].Name != "shop" || !slices.Equal(list[0].Domains, []string{"*.shop.example", "shop.example"}) {
		t.Errorf("List = %+v, %v", list, err)
	}

	if err := b.Revoke(ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	if err := authErr(b, key); !errors.Is(err, relay.ErrAuthFailed) {
		t.Errorf("revoked, on the instance that revoked it: %v", err)
	}
	eventually(t, "the revoked key refused on the other instance", func() bool { return errors.Is(authErr(a, key), relay.ErrAuthFailed) })
	if err := a.Revoke(ctx, "shop"); !errors.Is(err, relay.ErrKeyNotFound) {
		t.Errorf("Revoke of a revoked key: %v, want ErrKeyNotFound", err)
	}
	// The name is free again, and the new key is another.
	again, err := a.Create(ctx, "shop", []string{relay.ScopeSend}, []string{"shop.example"})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the new key of the name on the other instance", func() bool { return authErr(b, again) == nil })
	if err := authErr(b, key); !errors.Is(err, relay.ErrAuthFailed) {
		t.Errorf("the old key of a name made anew: %v", err)
	}
	a.Close()
	if err := authErr(a, again); err == nil || errors.Is(err, relay.ErrAuthFailed) {
		t.Errorf("Authenticate after Close: %v, want an error of its own", err)
	}
}

// kvValues returns every value ever written to the bucket (all of its
// stream's messages), and the stream's subjects.
func kvValues(t *testing.T, js jetstream.JetStream, bucket string) (values [][]byte, subjects []string) {
	t.Helper()
	ctx := context.Background()
	st, err := js.Stream(ctx, "KV_"+bucket)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		values = append(values, m.Data)
		subjects = append(subjects, m.Subject)
	}
	return values, subjects
}

// TestKeysNoSecret: no key, secret or hash key given by the operator is
// in the bucket, in the debug log or in String and the formatted
// options; the default hash key is in the bucket, and the operator's is
// not.
func TestKeysNoSecret(t *testing.T) {
	t.Parallel()
	s := kvServer(t, "", 0)
	js := kvConnect(t, s)
	hashKey := make([]byte, 32)
	rand.Read(hashKey)
	var logs logBuffer
	opts := &natsqueue.KeysOptions{Bucket: "opkeys", HashKey: hashKey, Logger: logs.logger()}
	k := newKeys(t, js, opts)
	ctx := context.Background()
	key, err := k.Create(ctx, "shop", []string{relay.ScopeSend}, []string{"shop.example"})
	if err != nil {
		t.Fatal(err)
	}
	k.Authenticate(ctx, relay.KeyUser, key)
	k.Authenticate(ctx, relay.KeyUser, key[:len(key)-1]+"2")
	k.Authenticate(ctx, "someone", key)
	if err := k.Revoke(ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	k.Authenticate(ctx, relay.KeyUser, key)
	secret := key[strings.LastIndexByte(key, '_')+1:]
	values, _ := kvValues(t, js, "opkeys")
	shown := map[string]string{
		"log":     logs.String(),
		"String":  k.String() + k.GoString() + fmt.Sprintf("%v %+v %#v", k, k, k),
		"options": fmt.Sprintf("%v %+v %#v %s", *opts, *opts, *opts, opts),
		"bucket":  string(bytes.Join(values, []byte("\n"))),
	}
	for where, text := range shown {
		for what, s := range map[string]string{
			"the secret":          secret[:20],
			"the hash key":        base64.StdEncoding.EncodeToString(hashKey)[:20],
			"the hash key in hex": fmt.Sprintf("%x", hashKey)[:20],
			"the hash key in url": base64.RawURLEncoding.EncodeToString(hashKey)[:20],
		} {
			if strings.Contains(text, s) {
				t.Errorf("%s shows in the %s:\n%s", what, where, text)
			}
		}
	}
	if !strings.Contains(logs.String(), "api key refused") || !strings.Contains(logs.String(), "wrong secret") {
		t.Errorf("the debug log has no record of the refusals:\n%s", logs.String())
	}

	// The default: the hash key in the bucket, shared by the next
	// instance.
	d1 := newKeys(t, js, &natsqueue.KeysOptions{Bucket: "defkeys"})
	dkey, err := d1.Create(ctx, "shop", []string{relay.ScopeSend}, []string{"shop.example"})
	if err != nil {
		t.Fatal(err)
	}
	d2 := newKeys(t, kvConnect(t, s), &natsqueue.KeysOptions{Bucket: "defkeys"})
	if err := authErr(d2, dkey); err != nil {
		t.Errorf("a second instance of the default hash key: %v", err)
	}
	dvalues, dsubjects := kvValues(t, js, "defkeys")
	i := slices.Index(dsubjects, "$KV.defkeys.hashkey")
	var rec struct{ ID, Key string }
	if i < 0 || json.Unmarshal(dvalues[i], &rec) != nil || rec.Key == "" || len(rec.ID) != 16 {
		t.Errorf("the default bucket's hash key record: %q in %q", dvalues, dsubjects)
	}
}

// TestKeysHashKeyMismatch: an instance given another hash key than the
// bucket's, or none when the operator keeps it, is refused at NewKeys
// rather than failing every key.
func TestKeysHashKeyMismatch(t *testing.T) {
	t.Parallel()
	s := kvServer(t, "", 0)
	js := kvConnect(t, s)
	ctx := context.Background()
	newKeys(t, js, &natsqueue.KeysOptions{Bucket: "op", HashKey: bytes.Repeat([]byte{1}, 32)})
	newKeys(t, js, &natsqueue.KeysOptions{Bucket: "op", HashKey: bytes.Repeat([]byte{1}, 32)}) // the same: fine
	if _, err := natsqueue.NewKeys(ctx, js, &natsqueue.KeysOptions{Bucket: "op", HashKey: bytes.Repeat([]byte{2}, 32)}); err == nil || !strings.Contains(err.Error(), "another hash key") {
		t.Errorf("another hash key: %v", err)
	}
	if _, err := natsqueue.NewKeys(ctx, js, &natsqueue.KeysOptions{Bucket: "op"}); err == nil || !strings.Contains(err.Error(), "operator keeps") {
		t.Errorf("no hash key for a bucket whose operator keeps it: %v", err)
	}
	newKeys(t, js, &natsqueue.KeysOptions{Bucket: "def"})
	if _, err := natsqueue.NewKeys(ctx, js, &natsqueue.KeysOptions{Bucket: "def", HashKey: bytes.Repeat([]byte{1}, 32)}); err == nil {
		t.Error("an operator's hash key for a bucket that keeps its own: no error")
	}
	if _, err := natsqueue.NewKeys(ctx, js, &natsqueue.KeysOptions{Bucket: "short", HashKey: []byte("short")}); err == nil {
		t.Error("a hash key of 5 octets: no error")
	}
}

// TestKeysCorruptValues: values in the bucket that are no valid record
// (not JSON, an unknown field, a record under another name's key, a
// name's record overwritten with junk) are ignored with an error in the
// log; the other keys go on working, and a key whose record was spoilt
// no longer authenticates.
func TestKeysCorruptValues(t *testing.T) {
	t.Parallel()
	s := kvServer(t, "", 0)
	js := kvConnect(t, s)
	var logs logBuffer
	k := newKeys(t, js, &natsqueue.KeysOptions{Logger: logs.logger()})
	ctx := context.Background()
	good, err := k.Create(ctx, "good", []string{relay.ScopeSend}, []string{"good.example"})
	if err != nil {
		t.Fatal(err)
	}
	spoilt, err := k.Create(ctx, "spoilt", []string{relay.ScopeSend}, []string{"spoilt.example"})
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, natsqueue.DefaultKeysBucket)
	if err != nil {
		t.Fatal(err)
	}
	goodRec, err := kv.Get(ctx, "key."+base64.RawURLEncoding.EncodeToString([]byte("good")))
	if err != nil {
		t.Fatal(err)
	}
	withField := bytes.Replace(goodRec.Value(), []byte(`{`), []byte(`{"admin":true,`), 1)
	puts := map[string][]byte{
		"key.bm90anNvbg":   []byte("not json {"),
		"key.b3RoZXI":      goodRec.Value(), // good's record under "other"
		"key.d2l0aGZpZWxk": withField,
		"key." + base64.RawURLEncoding.EncodeToString([]byte("spoilt")): []byte(`{"name":"spoilt"}`),
	}
	for key, v := range puts {
		if _, err := kv.Put(ctx, key, v); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the spoilt record refused", func() bool { return errors.Is(authErr(k, spoilt), relay.ErrAuthFailed) })
	if err := authErr(k, good); err != nil {
		t.Errorf("the good key beside corrupt values: %v", err)
	}
	for key := range puts {
		eventually(t, "an error logged for "+key, func() bool {
			return strings.Contains(logs.String(), "level=ERROR") && strings.Contains(logs.String(), "key="+key)
		})
	}
	list, err := k.List(ctx)
	if err != nil || len(list) != 1 || list[0].Name != "good" {
		t.Errorf("List = %+v, %v; want good alone", list, err)
	}
	// A new instance reads the same bucket, corrupt values and all.
	k2 := newKeys(t, kvConnect(t, s), nil)
	if authErr(k2, good) != nil || !errors.Is(authErr(k2, spoilt), relay.ErrAuthFailed) {
		t.Error("a new instance does not read the bucket as the first")
	}
}

// BenchmarkKeysAuthenticate: an AUTH against the instance's copy, a map
// access and an HMAC-SHA256 with no round trip to NATS, with 1,000 keys
// in the bucket.
func BenchmarkKeysAuthenticate(b *testing.B) {
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: b.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		b.Fatal(err)
	}
	go s.Start()
	defer s.Shutdown()
	if !s.ReadyForConnections(30 * time.Second) {
		b.Fatal("the NATS server did not start")
	}
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	k, err := natsqueue.NewKeys(ctx, js, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer k.Close()
	var key string
	for i := range 1000 {
		if key, err = k.Create(ctx, fmt.Sprint("key", i), []string{relay.ScopeSend}, []string{"shop.example"}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Authenticate(ctx, relay.KeyUser, key); err != nil {
			b.Fatal(err)
		}
	}
}
