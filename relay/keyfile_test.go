package relay_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smarthost-go/smarthost/relay"
)

var _ relay.Authenticator = (*relay.KeyFile)(nil)

// openKeys opens a new key file in a temporary directory and returns it
// with its path.
func openKeys(t testing.TB, opts *relay.KeyFileOptions) (*relay.KeyFile, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys.json")
	return openKeysAt(t, path, opts), path
}

func openKeysAt(t testing.TB, path string, opts *relay.KeyFileOptions) *relay.KeyFile {
	t.Helper()
	k, err := relay.OpenKeyFile(context.Background(), path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	return k
}

func create(t testing.TB, k *relay.KeyFile, name string, domains ...string) string {
	t.Helper()
	key, err := k.Create(context.Background(), name, []string{relay.ScopeSend}, domains)
	if err != nil {
		t.Fatalf("Create(%q): %v", name, err)
	}
	return key
}

func authOK(t testing.TB, k *relay.KeyFile, key, wantName string) *relay.Account {
	t.Helper()
	a, err := k.Authenticate(context.Background(), relay.KeyUser, key)
	if err != nil {
		t.Fatalf("Authenticate(%s): %v, want account %s", wantName, err, wantName)
	}
	if a.Name != wantName {
		t.Fatalf("Authenticate: account %q, want %q", a.Name, wantName)
	}
	return a
}

func authFails(t testing.TB, k *relay.KeyFile, user, password, what string) {
	t.Helper()
	a, err := k.Authenticate(context.Background(), user, password)
	if !errors.Is(err, relay.ErrAuthFailed) || a != nil {
		t.Errorf("%s: Authenticate = %v, %v; want ErrAuthFailed", what, a, err)
	}
}

// flip changes the character at i of a key to another of its alphabet.
func flip(key string, i int) string {
	c := byte('a')
	if key[i] == 'a' {
		c = 'b'
	}
	return key[:i] + string(c) + key[i+1:]
}

func TestKeyFileCreateAuthenticate(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 4, 5, 6, 7, 800, time.FixedZone("x", 3600))
	k, _ := openKeys(t, &relay.KeyFileOptions{Now: func() time.Time { return now }})
	key, err := k.Create(context.Background(), "shop", []string{relay.ScopeSend, relay.ScopeSend}, []string{"Shop.Example.", "*.mail.shop.example"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(key, relay.KeyPrefix) || len(key) != 77 {
		t.Errorf("key %q: want %s and 73 more characters", key, relay.KeyPrefix)
	}
	other := create(t, k, "blog", "blog.example")
	if other == key {
		t.Fatal("two keys alike")
	}

	a := authOK(t, k, key, "shop")
	if !slices.Equal(a.Scopes, []string{relay.ScopeSend}) || !slices.Equal(a.Domains, []string{"*.mail.shop.example", "shop.example"}) {
		t.Errorf("account %+v: want scope mail.send and the domains in lower case, sorted", a)
	}
	if !a.Can(relay.ScopeSend) || !a.MaySendFrom("SHOP.example") || !a.MaySendFrom("eu.mail.shop.example") || a.MaySendFrom("blog.example") {
		t.Errorf("account %+v: wrong Can or MaySendFrom", a)
	}
	a.Domains[0] = "evil.example"
	if b := authOK(t, k, key, "shop"); b.Domains[0] != "*.mail.shop.example" {
		t.Error("changing a returned account changed the stored one")
	}
	authOK(t, k, other, "blog")

	list, err := k.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "blog" || list[1].Name != "shop" {
		t.Fatalf("List = %+v, want blog and shop", list)
	}
	if s := list[1]; s.ID != key[4:20] || !s.Created.Equal(now.Truncate(time.Second)) || s.Created.Location() != time.UTC {
		t.Errorf("KeyInfo %+v: want ID %s, created %v in UTC", s, key[4:20], now.Truncate(time.Second))
	}
	if a := list[1].Account(); a.Name != "shop" || len(a.Domains) != 2 {
		t.Errorf("KeyInfo.Account() = %+v", a)
	}
}

func TestKeyFileRefuses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	k, _ := openKeys(t, nil)
	key := create(t, k, "shop", "shop.example")
	other := create(t, k, "blog", "blog.example")
	revoked := create(t, k, "old", "old.example")
	if err := k.Revoke(ctx, "old"); err != nil {
		t.Fatal(err)
	}

	authFails(t, k, relay.KeyUser, flip(key, 76), "last secret character changed")
	authFails(t, k, relay.KeyUser, flip(key, 21), "first secret character changed")
	authFails(t, k, relay.KeyUser, flip(key, 10), "ID changed")
	authFails(t, k, relay.KeyUser, key[:21]+other[21:], "the ID of one key with the secret of another")
	authFails(t, k, relay.KeyUser, other[:21]+key[21:], "the ID of the other key with the secret of the first")
	authFails(t, k, relay.KeyUser, revoked, "revoked key")
	for name, bad := range map[string]string{
		"empty": "", "prefix": "shk_", "upper case": strings.ToUpper(key), "short": key[:76],
		"long": key + "a", "space": key + " ", "newline": key + "\r\n", "no prefix": key[4:],
		"other prefix": "sk_" + key[3:], "base64": base64.StdEncoding.EncodeToString([]byte(key)),
	} {
		authFails(t, k, relay.KeyUser, bad, "malformed key: "+name)
	}
	for _, user := range []string{"", "APIKEY", "ApiKey", "apikey ", "shop", key} {
		authFails(t, k, user, key, fmt.Sprintf("user %q", user))
	}
	authOK(t, k, key, "shop")
	authOK(t, k, other, "blog")
}

func TestKeyFileCreateErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	k, path := openKeys(t, nil)
	create(t, k, "shop", "shop.example")
	before, _ := os.ReadFile(path)

	if _, err := k.Create(ctx, "shop", []string{relay.ScopeSend}, []string{"other.example"}); !errors.Is(err, relay.ErrKeyExists) {
		t.Errorf("Create of a taken name: %v, want ErrKeyExists", err)
	}
	for _, c := range []struct {
		name            string
		scopes, domains []string
	}{
		{"", []string{"mail.send"}, []string{"a.example"}},
		{"new\nline", []string{"mail.send"}, []string{"a.example"}},
		{"bidi\u202e", []string{"mail.send"}, []string{"a.example"}},
		{"ok", nil, []string{"a.example"}},
		{"ok", []string{"mail.send", "admin"}, []string{"a.example"}},
		{"ok", []string{"mail.send"}, nil},
		{"ok", []string{"mail.send"}, []string{"*"}},
		{"ok", []string{"mail.send"}, []string{"com"}},
		{"ok", []string{"mail.send"}, []string{"a.example", "bad_domain.example"}},
		{"ok", []string{"mail.send"}, []string{"user@a.example"}},
	} {
		if key, err := k.Create(ctx, c.name, c.scopes, c.domains); err == nil {
			t.Errorf("Create(%q, %q, %q) = %q, want an error", c.name, c.scopes, c.domains, key)
		}
	}
	if err := k.Revoke(ctx, "nobody"); !errors.Is(err, relay.ErrKeyNotFound) {
		t.Errorf("Revoke of an unknown name: %v, want ErrKeyNotFound", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("refused changes changed the file")
	}
}

// TestKeyFileHoldsNoSecret looks for every key, its secret part and the
// secret's octets in the key file, the hash key file, the debug log, the
// errors, and KeyInfo as text and JSON; and checks the files' modes.
func TestKeyFileHoldsNoSecret(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	k, path := openKeys(t, &relay.KeyFileOptions{Logger: log})
	var keys []string
	for i := range 5 {
		keys = append(keys, create(t, k, fmt.Sprint("key", i), "a.example"))
	}
	var errs []string
	for _, key := range keys {
		authOK(t, k, key, keyName(t, k, key))
		_, err := k.Authenticate(ctx, relay.KeyUser, flip(key, 76)) // a wrong secret
		errs = append(errs, err.Error())
		_, err = k.Authenticate(ctx, "someone", key)
		errs = append(errs, err.Error())
	}
	if err := k.Revoke(ctx, "key0"); err != nil {
		t.Fatal(err)
	}
	_, err := k.Authenticate(ctx, relay.KeyUser, keys[0])
	errs = append(errs, err.Error())
	list, _ := k.List(ctx)
	listJSON, _ := json.Marshal(list)

	keyFile, _ := os.ReadFile(path)
	hashKeyFile, _ := os.ReadFile(path + ".hashkey")
	places := map[string][]byte{
		"key file": keyFile, "hash key file": hashKeyFile, "log": logs.Bytes(),
		"errors": []byte(strings.Join(errs, "\n")), "KeyInfo JSON": listJSON,
		"KeyInfo text": fmt.Appendf(nil, "%v %+v %#v", list, list, list),
	}
	enc := base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)
	for _, key := range keys {
		secretText := key[21:]
		secret, err := enc.DecodeString(secretText)
		if err != nil {
			t.Fatal(err)
		}
		for place, b := range places {
			if bytes.Contains(b, []byte(secretText)) || bytes.Contains(b, secret) || bytes.Contains(bytes.ToLower(b), []byte(strings.ToLower(base64.RawStdEncoding.EncodeToString(secret)))) {
				t.Errorf("the %s holds a secret", place)
			}
		}
	}
	if !bytes.Contains(logs.Bytes(), []byte(`"id":"`+keys[1][4:20]+`"`)) {
		t.Errorf("the log does not name the key's ID:\n%s", logs.Bytes())
	}
	for _, p := range []string{path, path + ".hashkey"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", filepath.Base(p), fi.Mode())
		}
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".keys.json.tmp*")); len(m) > 0 {
		t.Errorf("temporary files left: %q", m)
	}
}

func keyName(t testing.TB, k *relay.KeyFile, key string) string {
	list, err := k.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, info := range list {
		if info.ID == key[4:20] {
			return info.Name
		}
	}
	t.Fatalf("no key of ID %s", key[4:20])
	return ""
}

func TestKeyFileStrings(t *testing.T) {
	t.Parallel()
	hashKey := bytes.Repeat([]byte{0xab}, 32)
	opts := &relay.KeyFileOptions{HashKey: hashKey, HashKeyFile: "x"}
	k, path := openKeys(t, opts)
	optsJSON, err := json.Marshal(struct {
		Opts *relay.KeyFileOptions
		Keys *relay.KeyFile
	}{opts, k})
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{
		fmt.Sprint(opts, *opts, k), fmt.Sprintf("%+v %+v", opts, k), fmt.Sprintf("%#v %#v", opts, k), string(optsJSON),
	} {
		if strings.Contains(out, "171 171") || strings.Contains(strings.ToLower(out), "abab") || strings.Contains(out, "q6ur") {
			t.Errorf("the hash key shows: %s", out)
		}
	}
	if s := k.String(); s != "relay.KeyFile("+path+")" {
		t.Errorf("String() = %q", s)
	}
}

func TestKeyFileSeesOtherWriters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, path := openKeys(t, nil)
	b := openKeysAt(t, path, nil)

	key := create(t, a, "shop", "shop.example")
	authOK(t, b, key, "shop") // created by a, seen by b at once
	if err := b.Revoke(ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	authFails(t, a, relay.KeyUser, key, "revoked by another KeyFile")

	// Many turns, so that two versions within one timestamp tick are
	// told apart too (by their inodes).
	for i := range 20 {
		name := fmt.Sprint("k", i)
		key := create(t, b, name, "shop.example")
		authOK(t, a, key, name)
		if err := a.Revoke(ctx, name); err != nil {
			t.Fatal(err)
		}
		authFails(t, b, relay.KeyUser, key, "revoked by another KeyFile, turn "+name)
	}

	// A hand edit in place (same inode) that removes a key.
	key2 := create(t, a, "blog", "blog.example")
	authOK(t, b, key2, "blog")
	var d map[string]any
	text, _ := os.ReadFile(path)
	if err := json.Unmarshal(text, &d); err != nil {
		t.Fatal(err)
	}
	d["keys"] = []any{}
	text, _ = json.Marshal(d)
	if err := os.WriteFile(path, text, 0o600); err != nil {
		t.Fatal(err)
	}
	authFails(t, b, relay.KeyUser, key2, "removed by an edit in place")
	if list, err := a.List(ctx); err != nil || len(list) != 0 {
		t.Errorf("List after the edit = %v, %v; want none", list, err)
	}
}

// TestKeyFileConcurrentCreate has two KeyFiles of one file, each with two
// goroutines, create 50 keys per goroutine at once: none is lost.
func TestKeyFileConcurrentCreate(t *testing.T) {
	t.Parallel()
	a, path := openKeys(t, nil)
	b := openKeysAt(t, path, nil)
	var mu sync.Mutex
	keys := map[string]string{}
	var wg sync.WaitGroup
	for i, k := range []*relay.KeyFile{a, a, b, b} {
		wg.Go(func() {
			for j := range 50 {
				name := fmt.Sprintf("g%d-%d", i, j)
				key, err := k.Create(context.Background(), name, []string{relay.ScopeSend}, []string{"a.example"})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				keys[name] = key
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	checkAll(t, keys, a, b, openKeysAt(t, path, nil))
}

func checkAll(t *testing.T, keys map[string]string, files ...*relay.KeyFile) {
	t.Helper()
	for _, k := range files {
		list, err := k.List(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != len(keys) {
			t.Errorf("%d keys in the file, want %d", len(list), len(keys))
		}
		for name, key := range keys {
			authOK(t, k, key, name)
		}
	}
}

// TestKeyFileOtherProcess creates keys in this process and in another at
// once: none is lost.
func TestKeyFileOtherProcess(t *testing.T) {
	t.Parallel()
	a, path := openKeys(t, nil)
	cmd := exec.Command(os.Args[0], "-test.run=^TestKeyFileHelperProcess$")
	cmd.Env = append(os.Environ(), "RELAY_KEYFILE_HELPER="+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The helper says when it has the file open, and starts on our word,
	// so that the two processes create their keys at the same time.
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || lines.Text() != "ready" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper process did not start: %q\n%s", lines.Text(), stderr.Bytes())
	}
	fmt.Fprintln(stdin, "go")
	keys := map[string]string{}
	for i := range 50 {
		name := fmt.Sprint("parent", i)
		keys[name] = create(t, a, name, "a.example")
	}
	for lines.Scan() {
		if name, key, ok := strings.Cut(lines.Text(), " "); ok && strings.HasPrefix(name, "child") {
			keys[name] = key
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper process: %v\n%s", err, stderr.Bytes())
	}
	if len(keys) != 100 {
		t.Fatalf("%d keys made, want 100; helper said:\n%s", len(keys), stderr.Bytes())
	}
	checkAll(t, keys, a)
}

// TestKeyFileHelperProcess is the other process of TestKeyFileOtherProcess.
func TestKeyFileHelperProcess(t *testing.T) {
	path := os.Getenv("RELAY_KEYFILE_HELPER")
	if path == "" {
		t.Skip("the other process of TestKeyFileOtherProcess")
	}
	k := openKeysAt(t, path, nil)
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		name := fmt.Sprint("child", i)
		fmt.Println(name, create(t, k, name, "a.example"))
	}
}

func TestKeyFileRefusedAtOpen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, goodPath := openKeys(t, nil)
	good, _ := os.ReadFile(goodPath)
	hashKey, _ := os.ReadFile(goodPath + ".hashkey")
	var d struct {
		HashKeyID string `json:"hash_key_id"`
	}
	json.Unmarshal(good, &d)
	rec := `{"name":"shop","id":"aaaaaaaaaaaaaaaa","scopes":["mail.send"],"domains":["shop.example"],"created":"2026-01-01T00:00:00Z","hash":"` + strings.Repeat("A", 43) + `"}`
	head := `{"version":1,"hash_key_id":"` + d.HashKeyID + `","keys":[`
	for _, c := range []struct{ name, text, want string }{
		{"not JSON", "{keys", "invalid character"},
		{"empty", "", "EOF"},
		{"truncated", head + rec, "unexpected EOF"},
		{"two objects", head + "]}{}", "data after"},
		{"version 2", `{"version":2,"hash_key_id":"` + d.HashKeyID + `","keys":[]}`, "version 2"},
		{"no version", `{"hash_key_id":"` + d.HashKeyID + `","keys":[]}`, "version 0"},
		{"unknown field", `{"version":1,"hash_key_id":"` + d.HashKeyID + `","keys":[],"comment":"x"}`, "unknown field"},
		{"another hash key", `{"version":1,"hash_key_id":"0123456789abcdef","keys":[]}`, "another hash key"},
		{"unknown scope", head + strings.Replace(rec, "mail.send", "mail.read", 1) + "]}", "unknown scope"},
		{"bad domain", head + strings.Replace(rec, "shop.example", "shop", 1) + "]}", "single label"},
		{"no domain", head + strings.Replace(rec, `"shop.example"`, "", 1) + "]}", "at least one sender domain"},
		{"bad name", head + strings.Replace(rec, `"shop"`, `"a\nb"`, 1) + "]}", "control character"},
		{"bad ID", head + strings.Replace(rec, "aaaaaaaaaaaaaaaa", "aaaa", 1) + "]}", "base32"},
		{"short hash", head + strings.Replace(rec, strings.Repeat("A", 43), "AAAA", 1) + "]}", "hash"},
		{"name twice", head + rec + "," + strings.Replace(rec, "aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb", 1) + "]}", "twice"},
		{"ID twice", head + rec + "," + strings.Replace(rec, `"shop"`, `"blog"`, 1) + "]}", "twice"},
	} {
		dir := t.TempDir()
		path := filepath.Join(dir, "keys.json")
		os.WriteFile(path+".hashkey", hashKey, 0o600)
		os.WriteFile(path, []byte(c.text), 0o600)
		k, err := relay.OpenKeyFile(ctx, path, nil)
		if err == nil {
			k.Close()
			t.Errorf("%s: opened, want an error", c.name)
			continue
		}
		if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q, want the path and %q", c.name, err, c.want)
		}
	}
	if err := os.WriteFile(goodPath, []byte(head+rec+"]}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if k, err := relay.OpenKeyFile(ctx, goodPath, nil); err != nil {
		t.Errorf("the valid record of the cases above: %v", err)
	} else {
		k.Close()
	}
}

// TestKeyFileUnreadableChange: when the file changes and cannot be read,
// the keys last read keep serving, the error is logged once and List
// returns it, and Create leaves the file alone; once the file is right
// again, it is read.
func TestKeyFileUnreadableChange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelError}))
	k, path := openKeys(t, &relay.KeyFileOptions{Logger: log})
	key := create(t, k, "shop", "shop.example")
	good, _ := os.ReadFile(path)

	bad := []byte(`{"version":1,"keys":[`)
	if err := os.WriteFile(path, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		authOK(t, k, key, "shop")
	}
	if _, err := k.List(ctx); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("List of an unreadable file: %v, want its error", err)
	}
	if n := strings.Count(logs.String(), "level=ERROR"); n != 1 {
		t.Errorf("%d error records, want 1:\n%s", n, logs.Bytes())
	}
	if _, err := k.Create(ctx, "blog", []string{relay.ScopeSend}, []string{"blog.example"}); err == nil {
		t.Error("Create over an unreadable file succeeded")
	}
	if err := k.Revoke(ctx, "shop"); err == nil {
		t.Error("Revoke over an unreadable file succeeded")
	}
	if now, _ := os.ReadFile(path); !bytes.Equal(now, bad) {
		t.Error("the unreadable file was changed")
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	authOK(t, k, key, "shop")
	if _, err := k.List(ctx); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("List of a removed file: %v, want ErrNotExist", err)
	}

	if err := os.WriteFile(path, good, 0o600); err != nil {
		t.Fatal(err)
	}
	if list, err := k.List(ctx); err != nil || len(list) != 1 {
		t.Errorf("List once the file is right again: %v, %v", list, err)
	}
	authOK(t, k, key, "shop")
	if err := k.Revoke(ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	authFails(t, k, relay.KeyUser, key, "revoked after the file was mended")
}

func TestKeyFileHashKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	// The default: a hash key file beside the key file, made once.
	k, path := openKeys(t, nil)
	key := create(t, k, "shop", "shop.example")
	hashKey, err := os.ReadFile(path + ".hashkey")
	if err != nil {
		t.Fatal(err)
	}
	if raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(hashKey))); err != nil || len(raw) != 32 {
		t.Errorf("hash key file: %d octets, %v; want 32 in base64", len(raw), err)
	}
	authOK(t, openKeysAt(t, path, nil), key, "shop")

	// Without its hash key file, the key file is refused.
	moved := filepath.Join(t.TempDir(), "hashkey")
	if err := os.Rename(path+".hashkey", moved); err != nil {
		t.Fatal(err)
	}
	if _, err := relay.OpenKeyFile(ctx, path, nil); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("open without the hash key file: %v", err)
	}
	// Elsewhere, it serves.
	authOK(t, openKeysAt(t, path, &relay.KeyFileOptions{HashKeyFile: moved}), key, "shop")
	if _, err := os.Stat(path + ".hashkey"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a hash key file was made beside the key file: %v", err)
	}
	// Another hash key is refused.
	if _, err := relay.OpenKeyFile(ctx, path, &relay.KeyFileOptions{HashKey: bytes.Repeat([]byte{7}, 32)}); err == nil || !strings.Contains(err.Error(), "another hash key") {
		t.Errorf("open with another hash key: %v", err)
	}
	os.WriteFile(moved, []byte("not base64!\n"), 0o600)
	if _, err := relay.OpenKeyFile(ctx, path, &relay.KeyFileOptions{HashKeyFile: moved}); err == nil || strings.Contains(err.Error(), "not base64!") {
		t.Errorf("open with a malformed hash key file: %v (want an error without its content)", err)
	}

	// A hash key given as an option: no hash key file.
	opts := &relay.KeyFileOptions{HashKey: bytes.Repeat([]byte{9}, 32)}
	k2, path2 := openKeys(t, opts)
	key2 := create(t, k2, "blog", "blog.example")
	authOK(t, openKeysAt(t, path2, opts), key2, "blog")
	if _, err := os.Stat(path2 + ".hashkey"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a hash key file was made: %v", err)
	}
	if _, err := relay.OpenKeyFile(ctx, filepath.Join(t.TempDir(), "k"), &relay.KeyFileOptions{HashKey: make([]byte, 31)}); err == nil {
		t.Error("a hash key of 31 octets was taken")
	}
}

func TestKeyFileClose(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	k, _ := openKeys(t, nil)
	key := create(t, k, "shop", "shop.example")
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	if a, err := k.Authenticate(ctx, relay.KeyUser, key); a != nil || err == nil {
		t.Errorf("Authenticate after Close = %v, %v", a, err)
	}
	if _, err := k.Create(ctx, "blog", []string{relay.ScopeSend}, []string{"blog.example"}); err == nil {
		t.Error("Create after Close succeeded")
	}
	if _, err := k.List(ctx); err == nil {
		t.Error("List after Close succeeded")
	}
	if err := k.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// FuzzKeyFileAuthenticate checks that exactly the key authenticates.
func FuzzKeyFileAuthenticate(f *testing.F) {
	k, _ := openKeys(f, nil)
	key := create(f, k, "shop", "shop.example")
	other := create(f, k, "blog", "blog.example")
	f.Add(relay.KeyUser, key)
	f.Add(relay.KeyUser, other)
	f.Add(relay.KeyUser, flip(key, 76))
	f.Add(relay.KeyUser, key[:21]+other[21:])
	f.Add(relay.KeyUser, "")
	f.Add("", key)
	f.Fuzz(func(t *testing.T, user, password string) {
		a, err := k.Authenticate(context.Background(), user, password)
		switch {
		case user == relay.KeyUser && (password == key || password == other):
			if err != nil {
				t.Fatalf("the key failed: %v", err)
			}
		case err == nil:
			t.Fatalf("user %q, password %q authenticated as %s", user, password, a.Name)
		case !errors.Is(err, relay.ErrAuthFailed):
			t.Fatalf("error %v, want ErrAuthFailed", err)
		}
	})
}

func BenchmarkKeyFileAuthenticate(b *testing.B) {
	k, _ := openKeys(b, nil)
	key := create(b, k, "shop", "shop.example")
	for i := range 100 {
		create(b, k, fmt.Sprint("k", i), "a.example")
	}
	unknown := key[:4] + "aaaaaaaaaaaaaaaa" + key[20:]
	for _, c := range []struct{ name, password string }{
		{"ok", key}, {"wrong", flip(key, 76)}, {"unknown", unknown}, {"malformed", "hunter2"},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				k.Authenticate(context.Background(), relay.KeyUser, c.password)
			}
		})
	}
	b.Run("ok-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := k.Authenticate(context.Background(), relay.KeyUser, key); err != nil {
					b.Error(err)
				}
			}
		})
	})
}
