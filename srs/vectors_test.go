package srs_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/smarthost-go/smarthost/srs"
)

type vectorFile struct {
	Config struct {
		Secret     string `json:"secret"`
		Domain     string `json:"domain"`
		Faketime   int64  `json:"faketime"`
		HashLength int    `json:"hash_length"`
		Separator  string `json:"separator"`
	} `json:"config"`
	Stateless []vector `json:"stateless_queries"`
	Database  []vector `json:"database_queries"`
}

type vector struct {
	Query  string  `json:"query"`
	Op     *string `json:"op"`
	Input  string  `json:"input"`
	Status string  `json:"status"`
	Value  string  `json:"value"`
}

// postsrsdReasons maps postsrsd's NOTFOUND/PERM texts to our sentinels.
var postsrsdReasons = map[string]error{
	"Not an SRS address.":           srs.ErrNotSRS,
	"Time stamp out of date.":       srs.ErrExpired,
	"Hash invalid in SRS address.":  srs.ErrBadHash,
	"No hash in SRS0 address.":      srs.ErrSyntax,
	"No timestamp in SRS0 address.": srs.ErrSyntax,
	"No host in SRS0 address.":      srs.ErrSyntax,
	"No user in SRS0 address.":      srs.ErrSyntax,
	"No database for alias.":        srs.ErrNoStore,
	"Unknown alias.":                srs.ErrUnknownAlias,
	"Too big.":                      srs.ErrTooLong,
	"No domain.":                    srs.ErrSyntax,
}

func loadVectors(t *testing.T) *vectorFile {
	t.Helper()
	data, err := os.ReadFile("testdata/postsrsd-2.x-socketmap-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vf vectorFile
	if err := json.Unmarshal(data, &vf); err != nil {
		t.Fatal(err)
	}
	if len(vf.Stateless) != 29 || len(vf.Database) != 8 {
		t.Fatalf("vector file has %d+%d queries, want 29+8", len(vf.Stateless), len(vf.Database))
	}
	return &vf
}

func vectorRewriter(t *testing.T, vf *vectorFile, mod func(*testOpts)) *srs.Rewriter {
	t.Helper()
	now := time.Unix(vf.Config.Faketime, 0)
	return mustNew(t, testOpts{Domain: vf.Config.Domain, Secrets: []string{vf.Config.Secret}, Options: srs.Options{Separator: vf.Config.Separator[0], HashLength: vf.Config.HashLength, Now: func() time.Time { return now }}}, mod)
}

func runVector(t *testing.T, r *srs.Rewriter, v vector) {
	t.Helper()
	ctx := context.Background()
	var got string
	var err error
	switch *v.Op {
	case "forward":
		got, err = r.Forward(ctx, v.Input)
	case "reverse":
		got, err = r.Reverse(ctx, v.Input)
	default:
		t.Fatalf("unknown op %q", *v.Op)
	}
	switch {
	case v.Status == "OK":
		if err != nil || got != v.Value {
			t.Errorf("%s: got %q, %v; postsrsd says %q", v.Query, got, err, v.Value)
		}
	case *v.Op == "forward" && v.Value == "Need not rewrite local domain.":
		// NOTFOUND: the sender stays as it is.
		if err != nil || got != v.Input {
			t.Errorf("%s: got %q, %v; want the address unchanged", v.Query, got, err)
		}
	case *v.Op == "forward" && v.Input == "":
		// The null reverse-path is never rewritten (RFC 5321 4.5.5);
		// postsrsd's NOTFOUND means the same to Postfix.
		if err != nil || got != "" {
			t.Errorf("%s: got %q, %v; want the null sender unchanged", v.Query, got, err)
		}
	default:
		want, ok := postsrsdReasons[v.Value]
		if !ok {
			t.Fatalf("%s: no mapping for postsrsd reply %q", v.Query, v.Value)
		}
		if !errors.Is(err, want) || got != "" {
			t.Errorf("%s: got %q, %v; want %v (postsrsd: %s %s)", v.Query, got, err, want, v.Status, v.Value)
			return
		}
		var ae *srs.AddressError
		if !errors.As(err, &ae) || ae.Addr != truncated(v.Input) {
			t.Errorf("%s: error %v does not name the address", v.Query, err)
		}
		if want == srs.ErrSyntax && *v.Op == "reverse" &&
			!strings.EqualFold(ae.Reason+".", v.Value) {
			t.Errorf("%s: reason %q, postsrsd says %q", v.Query, ae.Reason, v.Value)
		}
	}
}

func truncated(s string) string {
	if len(s) > 128 {
		return s[:128] + "..."
	}
	return s
}

func TestPostsrsdStatelessVectors(t *testing.T) {
	t.Parallel()
	vf := loadVectors(t)
	// postsrsd writes over-long local parts when it has no database.
	r := vectorRewriter(t, vf, func(o *testOpts) { o.AllowLongLocalPart = true })
	n := 0
	for _, v := range vf.Stateless {
		if v.Op == nil {
			continue // "PERM Invalid map.": a socketmap protocol error, no API equivalent
		}
		runVector(t, r, v)
		n++
	}
	if n != 28 {
		t.Fatalf("ran %d vectors, want 28", n)
	}
	// Every address Forward writes reverses, even the 537-octet one made
	// of the 512-octet vector input (postsrsd 2.x itself would call it "Too
	// big" on the way back).
	for _, v := range vf.Stateless {
		if v.Op != nil && *v.Op == "forward" && v.Status == "OK" {
			back, err := r.Reverse(context.Background(), v.Value)
			if err != nil || !strings.EqualFold(back, v.Input) && !strings.HasPrefix(v.Input, "SRS") {
				t.Errorf("Reverse(%.60q...) = %.60q, %v", v.Value, back, err)
			}
		}
	}
}

func TestPostsrsdDatabaseVectors(t *testing.T) {
	t.Parallel()
	vf := loadVectors(t)
	store := &srs.MemoryStore{Now: func() time.Time { return time.Unix(vf.Config.Faketime, 0) }}
	r := vectorRewriter(t, vf, func(o *testOpts) {
		o.Store = store
		o.StoreMode = srs.StoreAll
	})
	for _, v := range vf.Database { // in order: the forward fills the store
		runVector(t, r, v)
	}
	if store.Len() != 1 {
		t.Errorf("store holds %d entries, want 1", store.Len())
	}
}

// Without AllowLongLocalPart and without a store, the vector whose SRS form
// has a 500-octet local part is refused rather than written.
func TestLongLocalPartRefusedByDefault(t *testing.T) {
	t.Parallel()
	vf := loadVectors(t)
	r := vectorRewriter(t, vf, nil)
	var long vector
	for _, v := range vf.Stateless {
		if v.Op != nil && *v.Op == "forward" && v.Status == "OK" && len(v.Value) > 300 {
			long = v
		}
	}
	if long.Input == "" {
		t.Fatal("no long forward vector")
	}
	_, err := r.Forward(context.Background(), long.Input)
	if !errors.Is(err, srs.ErrTooLong) {
		t.Fatalf("Forward(long) = %v, want ErrTooLong", err)
	}
	// With a store (StoreLong, the default mode) it becomes a short alias
	// that reverses to the original.
	store := &srs.MemoryStore{}
	r = vectorRewriter(t, vf, func(o *testOpts) { o.Store = store })
	out, err := r.Forward(context.Background(), long.Input)
	if err != nil {
		t.Fatal(err)
	}
	if at := strings.LastIndexByte(out, '@'); at > 64 || !strings.HasPrefix(out, "SRS0=") || !strings.Contains(out, "=1=") {
		t.Fatalf("Forward(long) with store = %q, want a database alias", out)
	}
	back, err := r.Reverse(context.Background(), out)
	if err != nil || back != long.Input {
		t.Fatalf("Reverse(%q) = %q, %v", out, back, err)
	}
	// Short addresses are not stored in StoreLong mode.
	out, err = r.Forward(context.Background(), "test@otherdomain.com")
	if err != nil || out != "SRS0=vmyz=2W=otherdomain.com=test@example.com" {
		t.Fatalf("short address with StoreLong: %q, %v", out, err)
	}
	if store.Len() != 1 {
		t.Fatalf("store has %d entries, want 1", store.Len())
	}
}
