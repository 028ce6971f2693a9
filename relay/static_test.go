package relay_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/smarthost-go/smarthost/relay"
)

var _ relay.Authenticator = (*relay.StaticAuthenticator)(nil)

func TestStaticAuthenticator(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var s relay.StaticAuthenticator
	if _, err := s.Authenticate(ctx, "apikey", ""); !errors.Is(err, relay.ErrAuthFailed) {
		t.Fatalf("zero value: err = %v, want ErrAuthFailed", err)
	}
	shop := &relay.Account{Name: "shop", Scopes: []string{relay.ScopeSend}, Domains: []string{"shop.example"}}
	s.Set("apikey", "key-one", shop)
	s.Set("apikey", "key-two", &relay.Account{Name: "blog", Scopes: []string{relay.ScopeSend}, Domains: []string{"blog.example"}})
	s.Set("alice", "hunter2", &relay.Account{Name: "alice"})
	shop.Domains[0] = "changed.example" // Set took a copy

	for _, c := range []struct{ user, pass, want string }{
		{"apikey", "key-one", "shop"},
		{"apikey", "key-two", "blog"},
		{"alice", "hunter2", "alice"},
		{"apikey", "key-three", ""},
		{"apikey", "key-on", ""},
		{"apikey", "", ""},
		{"alice", "key-one", ""},
		{"apike", "ykey-one", ""}, // the same bytes split elsewhere
		{"Alice", "hunter2", ""},
		{"", "", ""},
	} {
		a, err := s.Authenticate(ctx, c.user, c.pass)
		switch {
		case c.want == "" && !errors.Is(err, relay.ErrAuthFailed):
			t.Errorf("%q %q: %v, %v; want ErrAuthFailed", c.user, c.pass, a, err)
		case c.want != "" && (err != nil || a.Name != c.want):
			t.Errorf("%q %q: %v, %v; want account %s", c.user, c.pass, a, err, c.want)
		}
	}
	a, _ := s.Authenticate(ctx, "apikey", "key-one")
	if a.Domains[0] != "shop.example" {
		t.Errorf("account domains %q: Set did not copy them", a.Domains)
	}
	a.Scopes[0] = "mutated"
	if b, _ := s.Authenticate(ctx, "apikey", "key-one"); !b.Can(relay.ScopeSend) {
		t.Error("changing a returned account changed the stored one")
	}

	s.Delete("apikey", "key-one")
	if _, err := s.Authenticate(ctx, "apikey", "key-one"); !errors.Is(err, relay.ErrAuthFailed) {
		t.Errorf("after Delete: err = %v, want ErrAuthFailed", err)
	}
	if _, err := s.Authenticate(ctx, "apikey", "key-two"); err != nil {
		t.Errorf("the other key after Delete: %v", err)
	}

	for _, out := range []string{fmt.Sprint(&s), fmt.Sprintf("%+v", &s), fmt.Sprintf("%#v", &s)} {
		if strings.Contains(out, "key-two") || strings.Contains(out, "hunter2") || strings.Contains(out, "[") {
			t.Errorf("formatted authenticator shows more than a count: %s", out)
		}
	}
}

func TestStaticAuthenticatorConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var s relay.StaticAuthenticator
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				pass := fmt.Sprint(i, "-", j)
				s.Set("apikey", pass, &relay.Account{Name: pass})
				if a, err := s.Authenticate(ctx, "apikey", pass); err != nil || a.Name != pass {
					t.Errorf("%s: %v, %v", pass, a, err)
				}
			}
		})
	}
	wg.Wait()
}
