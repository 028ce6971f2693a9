package relay_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/smarthost-go/smarthost/relay"
)

// A suppression list in a file, as the relay and the command that manages
// it share it: a recipient suppressed for one account after a hard bounce
// is not suppressed for another, and the domain is compared without case.
func ExampleSuppressionFile() {
	dir, err := os.MkdirTemp("", "suppressions")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	path := filepath.Join(dir, "suppressions.json")

	admin, err := relay.OpenSuppressionFile(ctx, path, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer admin.Close()
	err = admin.Add(ctx, relay.Suppression{Account: "shop", Recipient: "bob@example.org", Source: relay.SuppressedByBounce,
		Reason: "550 5.1.1 user unknown", Created: time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)})
	if err != nil {
		log.Fatal(err)
	}

	// The relay's own SuppressionFile of the same file sees it at once.
	served, err := relay.OpenSuppressionFile(ctx, path, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer served.Close()
	for _, q := range [][2]string{{"shop", "bob@EXAMPLE.org"}, {"news", "bob@example.org"}} {
		s, err := served.Suppressed(ctx, q[0], q[1])
		if err != nil {
			log.Fatal(err)
		}
		if s == nil {
			fmt.Printf("%s %s: not suppressed\n", q[0], q[1])
			continue
		}
		fmt.Printf("%s %s: %s since %s (%s)\n", q[0], q[1], s.Source, s.Created.Format(time.DateOnly), s.Reason)
	}
	// Output:
	// shop bob@EXAMPLE.org: bounce since 2026-12-03 (550 5.1.1 user unknown)
	// news bob@example.org: not suppressed
}
