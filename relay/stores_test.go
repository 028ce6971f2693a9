package relay_test

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smarthost-go/smarthost/relay"
)

// TestKeyHasherMatchesKeyFile: a KeyHasher of a key file's hash key names
// it with the file's hash_key_id, hashes the file's keys to the hashes in
// the file, and makes keys the file's format: another store built on it
// shares keys with a KeyFile.
func TestKeyHasherMatchesKeyFile(t *testing.T) {
	t.Parallel()
	hashKey := make([]byte, 32)
	rand.Read(hashKey)
	path := filepath.Join(t.TempDir(), "keys.json")
	kf := openKeysAt(t, path, &relay.KeyFileOptions{HashKey: hashKey})
	key := create(t, kf, "shop", "shop.example")

	var file struct {
		HashKeyID string `json:"hash_key_id"`
		Keys      []struct{ ID, Hash string }
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &file); err != nil || len(file.Keys) != 1 {
		t.Fatalf("key file %s: %v", b, err)
	}
	h, err := relay.NewKeyHasher(hashKey)
	if err != nil {
		t.Fatal(err)
	}
	if h.ID() != file.HashKeyID {
		t.Errorf("ID() = %s, the file's hash_key_id %s", h.ID(), file.HashKeyID)
	}
	id, hash, ok := h.Hash(key)
	if !ok || id != file.Keys[0].ID || base64.RawURLEncoding.EncodeToString(hash[:]) != file.Keys[0].Hash {
		t.Errorf("Hash(key) = %s, %x, %v; the file has %s, %s", id, hash, ok, file.Keys[0].ID, file.Keys[0].Hash)
	}

	// A key of NewKey: the KeyFile's format, its own hash, and a secret
	// that matters.
	newKey, newID, newHash, err := h.NewKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(newKey, relay.KeyPrefix+newID+"_") || len(newKey) != len(key) {
		t.Errorf("NewKey = %q, ID %q; want the format of %q", newKey, newID, key)
	}
	if gotID, got, ok := h.Hash(newKey); !ok || gotID != newID || got != newHash {
		t.Errorf("Hash(NewKey) = %s, %x, %v; want %s, %x", gotID, got, ok, newID, newHash)
	}
	wrong := newKey[:len(newKey)-1] + map[bool]string{true: "b", false: "a"}[strings.HasSuffix(newKey, "a")]
	if _, got, ok := h.Hash(wrong); !ok || subtle.ConstantTimeCompare(got[:], newHash[:]) == 1 {
		t.Errorf("Hash of a key with another secret: %x, %v; want a parsed key of another hash", got, ok)
	}
	if _, _, ok := h.Hash("apikey"); ok {
		t.Error("Hash of a string that is no key: ok")
	}
	other, _ := relay.NewKeyHasher(bytes.Repeat([]byte{1}, 32))
	if _, got, _ := other.Hash(newKey); got == newHash || other.ID() == h.ID() {
		t.Error("another hash key gives the same hash or ID")
	}
	for _, s := range []string{h.String(), h.GoString(), fmt.Sprintf("%v %+v %#v", h, h, h)} {
		if strings.Contains(s, base64.StdEncoding.EncodeToString(hashKey)) || bytes.Contains([]byte(s), hashKey) ||
			strings.Contains(s, fmt.Sprintf("%x", hashKey[:8])) || strings.Contains(s, fmt.Sprint(hashKey[:4])) {
			t.Errorf("the hash key shows in %q", s)
		}
	}
	if _, err := relay.NewKeyHasher(hashKey[:31]); err == nil {
		t.Error("NewKeyHasher took a hash key of 31 octets")
	}
}

// TestKeyInfoCheck: Check refuses what Create refuses and sorts what it
// takes.
func TestKeyInfoCheck(t *testing.T) {
	t.Parallel()
	h, _ := relay.NewKeyHasher(bytes.Repeat([]byte{7}, 32))
	_, id, _, _ := h.NewKey(rand.Reader)
	ok := relay.KeyInfo{Name: "shop", ID: id, Scopes: []string{relay.ScopeSend, relay.ScopeSend}, Domains: []string{"Shop.Example.", "*.a.example"}}
	if err := ok.Check(); err != nil {
		t.Fatal(err)
	}
	if strings.Join(ok.Domains, ",") != "*.a.example,shop.example" || len(ok.Scopes) != 1 {
		t.Errorf("Check left %v %v", ok.Scopes, ok.Domains)
	}
	for _, bad := range []relay.KeyInfo{
		{Name: "", ID: id, Scopes: []string{relay.ScopeSend}, Domains: []string{"a.example"}},
		{Name: "a\nb", ID: id, Scopes: []string{relay.ScopeSend}, Domains: []string{"a.example"}},
		{Name: "shop", ID: "short", Scopes: []string{relay.ScopeSend}, Domains: []string{"a.example"}},
		{Name: "shop", ID: id, Scopes: []string{"mail.admin"}, Domains: []string{"a.example"}},
		{Name: "shop", ID: id, Scopes: []string{relay.ScopeSend}},
		{Name: "shop", ID: id, Scopes: []string{relay.ScopeSend}, Domains: []string{"example"}},
	} {
		if err := bad.Check(); err == nil {
			t.Errorf("Check(%+v) = nil", bad)
		}
	}
}

// TestSuppressionKeyAndCheck: the key folds the case of the domain only;
// Check refuses what SuppressionFile's Add refuses.
func TestSuppressionKeyAndCheck(t *testing.T) {
	t.Parallel()
	if relay.SuppressionKey("shop", "Bob@Example.ORG") != relay.SuppressionKey("shop", "Bob@example.org") ||
		relay.SuppressionKey("shop", "Bob@example.org") == relay.SuppressionKey("shop", "bob@example.org") ||
		relay.SuppressionKey("shop", "b@example.org") == relay.SuppressionKey("news", "b@example.org") {
		t.Error("SuppressionKey folds the wrong parts")
	}
	good := relay.Suppression{Account: "shop", Recipient: "b@example.org", Source: relay.SuppressedByHand}
	if err := good.Check(); err != nil {
		t.Error(err)
	}
	for _, bad := range []relay.Suppression{
		{Recipient: "b@example.org", Source: relay.SuppressedByHand},
		{Account: "shop", Recipient: "b", Source: relay.SuppressedByHand},
		{Account: "shop", Recipient: "b@example.org\r\n", Source: relay.SuppressedByHand},
		{Account: "shop", Recipient: "b@example.org", Source: "whim"},
	} {
		if err := bad.Check(); err == nil || !strings.HasPrefix(err.Error(), "relay: suppression: ") {
			t.Errorf("Check(%+v) = %v", bad, err)
		}
	}
}
