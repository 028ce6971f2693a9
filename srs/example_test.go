package srs_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/smarthost-go/smarthost/srs"
)

// exampleClock is fixed so the examples' output is stable: the clock of
// postsrsd's own tests, 2020-01-01 00:01:00 UTC.
func exampleClock() time.Time { return time.Unix(1577836860, 0) }

func ExampleRewriter_Forward() {
	r, err := srs.NewRewriter("example.com", []string{"tops3cr3t"}, &srs.Options{Now: exampleClock})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	for _, sender := range []string{
		"test@otherdomain.com",               // a customer's sender
		"SRS0=opaque+string@otherdomain.com", // already rewritten by a first hop
		"postmaster@example.com",             // our own domain
	} {
		out, err := r.Forward(ctx, sender)
		fmt.Println(out, err)
	}
	// Output:
	// SRS0=vmyz=2W=otherdomain.com=test@example.com <nil>
	// SRS1=chaI=otherdomain.com==opaque+string@example.com <nil>
	// postmaster@example.com <nil>
}

func ExampleRewriter_Reverse() {
	r, err := srs.NewRewriter("example.com", []string{"tops3cr3t"}, &srs.Options{Now: exampleClock})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	for _, rcpt := range []string{
		"SRS0=XjO9=2V=otherdomain.com=test@example.com",
		"srs0=xjo9=2v=otherdomain.com=test@example.com", // case does not matter
		"SRS0=FAKE=2V=otherdomain.com=test@example.com",
		"SRS0=te87=T7=otherdomain.com=test@example.com",
		"bob@example.com",
	} {
		orig, err := r.Reverse(ctx, rcpt)
		switch {
		case errors.Is(err, srs.ErrNotSRS):
			fmt.Println("not SRS, deliver locally")
		case errors.Is(err, srs.ErrBadHash), errors.Is(err, srs.ErrExpired):
			fmt.Println("refuse:", err)
		case err != nil:
			fmt.Println("error:", err)
		default:
			fmt.Println("bounce to", orig)
		}
	}
	// Output:
	// bounce to test@otherdomain.com
	// bounce to test@otherdomain.com
	// refuse: srs: reverse "SRS0=FAKE=2V=otherdomain.com=test@example.com": hash invalid in SRS address
	// refuse: srs: reverse "SRS0=te87=T7=otherdomain.com=test@example.com": timestamp out of date
	// not SRS, deliver locally
}

// Rotating secrets: the new secret signs, the old one still verifies the
// addresses already handed out.
func ExampleNew_rotation() {
	ctx := context.Background()
	before, _ := srs.NewRewriter("example.com", []string{"tops3cr3t"}, &srs.Options{Now: exampleClock})
	after, _ := srs.NewRewriter("example.com", []string{"n3w s3cr3t", "tops3cr3t"}, &srs.Options{Now: exampleClock})
	old, _ := before.Forward(ctx, "test@otherdomain.com")
	orig, err := after.Reverse(ctx, old)
	fmt.Println(orig, err)
	fmt.Println(after) // secrets are never printed
	// Output:
	// test@otherdomain.com <nil>
	// srs.Rewriter{domain=example.com secrets=2 separator== hash=4 min=4 max-age=21d alphabet=base64url always-rewrite=false store=none}
}

// postsrsd 2.x database mode: the address is kept in a Store and the SRS
// address carries only its key.
func ExampleMemoryStore() {
	ctx := context.Background()
	r, _ := srs.NewRewriter("example.com", []string{"tops3cr3t"}, &srs.Options{Now: exampleClock, Store: &srs.MemoryStore{Now: exampleClock}, StoreMode: srs.StoreAll})
	alias, _ := r.Forward(ctx, "test@otherdomain.com")
	orig, _ := r.Reverse(ctx, alias)
	fmt.Println(alias)
	fmt.Println(orig)
	// Output:
	// SRS0=bxzH=2W=1=DCJGDE6N24LCRT41A4T0G1UIF0DTKKQJ@example.com
	// test@otherdomain.com
}
