package natsqueue

import (
	"encoding/json"
	"strings"
	"testing"
)

const (
	seedKeyRecord   = `{"name":"shop","id":"aaaaaaaaaaaaaaaa","scopes":["mail.send"],"domains":["shop.example"],"created":"2026-01-02T15:04:05Z","hash":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`
	seedSuppression = `{"account":"shop","recipient":"Bob@Example.org","source":"bounce","reason":"550 5.1.1","queue_id":"Q1","created":"2026-01-02T15:04:05Z"}`
)

// TestDecodeSeeds: the valid seeds of the fuzz targets are taken, so that
// the fuzzers start from the decoders' whole path.
func TestDecodeSeeds(t *testing.T) {
	if _, err := decodeKeyRecord(recordKey("shop"), []byte(seedKeyRecord)); err != nil {
		t.Error(err)
	}
	if _, err := decodeSuppression(suppressionKVKey("shop", "Bob@example.ORG"), []byte(seedSuppression)); err != nil {
		t.Error(err)
	}
}

// FuzzDecodeKeyRecord: the decoder of the keys bucket's values never
// panics, and what it takes is a record that encodes and decodes to
// itself under the same key.
func FuzzDecodeKeyRecord(f *testing.F) {
	valid := seedKeyRecord
	f.Add(recordKey("shop"), []byte(valid))
	f.Add(recordKey("other"), []byte(valid))
	f.Add(recordKey("shop"), []byte(`{"name":"shop"}`))
	f.Add(recordKey("shop"), []byte(valid+" {}"))
	f.Add(recordKey("shop"), []byte(`{"name":"shop","id":"aaaaaaaaaaaaaaaa","scopes":["mail.send"],"domains":[],"created":"2026-01-02T15:04:05Z","hash":"AA"}`))
	f.Add("hashkey", []byte(`{"id":"0011223344556677"}`))
	f.Add(recordKey("shop"), []byte("\x00\xff"))
	f.Fuzz(func(t *testing.T, key string, value []byte) {
		r, err := decodeKeyRecord(key, value)
		if err != nil {
			return
		}
		again, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := decodeKeyRecord(key, again)
		if err != nil {
			t.Fatalf("a record taken, encoded again, is refused: %v\n%s", err, again)
		}
		if r2.Name != r.Name || r2.ID != r.ID || r2.hash != r.hash || !r2.Created.Equal(r.Created) || recordKey(r.Name) != key {
			t.Fatalf("%+v became %+v", r, r2)
		}
	})
}

// FuzzDecodeSuppression: the decoder of the suppressions bucket's values
// never panics, and what it takes is under its own key and encodes and
// decodes to itself.
func FuzzDecodeSuppression(f *testing.F) {
	valid := seedSuppression
	f.Add(suppressionKVKey("shop", "Bob@example.ORG"), []byte(valid))
	f.Add(suppressionKVKey("shop", "bob@example.org"), []byte(valid))
	f.Add("s.x", []byte(`{"account":"","recipient":"@","source":"manual"}`))
	f.Add(suppressionKVKey("a", "b@c"), []byte(`{"account":"a","recipient":"b@c","source":"manual","created":"2026-01-02T15:04:05Z","extra":1}`))
	f.Add("s.", []byte("null"))
	f.Fuzz(func(t *testing.T, key string, value []byte) {
		s, err := decodeSuppression(key, value)
		if err != nil {
			return
		}
		if suppressionKVKey(s.Account, s.Recipient) != key {
			t.Fatalf("%+v taken under the key %q", s, key)
		}
		again, err := json.Marshal(&s)
		if err != nil {
			t.Fatal(err)
		}
		s2, err := decodeSuppression(key, again)
		if err != nil || s2.Account != s.Account || s2.Recipient != s.Recipient || !s2.Created.Equal(s.Created) {
			t.Fatalf("%+v became %+v, %v", s, s2, err)
		}
	})
}

// FuzzCheckURLs: CheckURLs never panics, and what it returns it takes
// again unchanged.
func FuzzCheckURLs(f *testing.F) {
	for _, s := range []string{"nats://127.0.0.1:4222", "nats://a:1,tls://b", "nats://u:p@h:1", "http://h:1", "nats://[::1]:4222/", " , ", "nats://h:0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		urls, err := CheckURLs(s)
		if err != nil {
			return
		}
		again, err := CheckURLs(strings.Join(urls, ","))
		if err != nil || strings.Join(again, ",") != strings.Join(urls, ",") {
			t.Fatalf("%q gave %q, which gives %q, %v", s, urls, again, err)
		}
	})
}
