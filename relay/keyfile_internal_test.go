package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// TestKeyFileLockWait: a writer waits while another holds the file lock,
// for as long as its context lets it.
func TestKeyFileLockWait(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "keys.json")
	k, err := OpenKeyFile(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	unlock, err := lockFile(context.Background(), path+".lock")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := k.Create(ctx, "shop", []string{ScopeSend}, []string{"shop.example"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Create while the lock is held: %v, want context.DeadlineExceeded", err)
	}
	unlock()
	if _, err := k.Create(context.Background(), "shop", []string{ScopeSend}, []string{"shop.example"}); err != nil {
		t.Errorf("Create once the lock is free: %v", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if _, err := k.Create(ctx, "blog", []string{ScopeSend}, []string{"blog.example"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Create with an ended context: %v, want context.Canceled", err)
	}
}

// FuzzParseKeyFile checks that a key file parseKeyFile accepts is written
// back as one it reads the same.
func FuzzParseKeyFile(f *testing.F) {
	rec := `{"name":"shop","id":"aaaaaaaaaaaaaaaa","scopes":["mail.send"],"domains":["Shop.Example.","*.shop.example"],"created":"2026-01-01T00:00:00Z","hash":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`
	f.Add([]byte(`{"version":1,"hash_key_id":"0123456789abcdef","keys":[]}`))
	f.Add([]byte(`{"version":1,"hash_key_id":"0123456789abcdef","keys":[` + rec + `]}`))
	f.Add([]byte(`{"version":1,"hash_key_id":"0123456789abcdef","keys":null}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`{"version":1,"hash_key_id":"0123456789abcdef","keys":[` + rec + `,` + rec + `]}`))
	f.Add([]byte(`{}{}`))
	f.Fuzz(func(t *testing.T, text []byte) {
		d, err := parseKeyFile(text)
		if err != nil {
			return
		}
		out, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		d2, err := parseKeyFile(out)
		if err != nil {
			t.Fatalf("written back as %s, which is refused: %v", out, err)
		}
		out2, _ := json.Marshal(d2)
		if !bytes.Equal(out, out2) {
			t.Fatalf("read back differently:\n%s\n%s", out, out2)
		}
	})
}
