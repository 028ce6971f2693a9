package relay_test

import (
	"context"
	"encoding/base64"
	"path/filepath"
	"testing"

	"github.com/smarthost-go/smarthost/relay"
)

// TestServerKeyRevocation runs the server on a KeyFile while another
// KeyFile of the same file, as the command that manages the keys would,
// creates and revokes keys: a revoked key fails in the next session at
// once, with 535 and no relay, and a new key works at once. A session
// that authenticated before the revocation keeps its authentication
// (RFC 4954 §4 authenticates a session, not each message).
func TestServerKeyRevocation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keys.json")
	served, err := relay.OpenKeyFile(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { served.Close() })
	admin, err := relay.OpenKeyFile(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	key, err := admin.Create(ctx, "shop", []string{relay.ScopeSend}, []string{"customer.example"})
	if err != nil {
		t.Fatal(err)
	}
	fx := srvStart(t, func(o *relay.ServerOptions) { o.Authenticator = served })

	// A session authenticated with the key, its transaction begun.
	before := srvDial(t, fx.addr, "", 220)
	before.login(fx.client, key)
	before.cmd(250, "MAIL FROM:<orders@customer.example>")

	if err := admin.Revoke(ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	// A new session: the key fails, PLAIN and LOGIN alike, and the client
	// cannot relay.
	c := srvDial(t, fx.addr, "", 220)
	c.cmd(250, "EHLO client.test")
	c.startTLS(fx.client)
	c.cmd(250, "EHLO client.test")
	c.write("AUTH PLAIN " + srvPlain(key) + "\r\n")
	c.expectText("535 5.7.8")
	c.write("AUTH LOGIN\r\n")
	c.expect(334)
	c.write(srvBase64("apikey") + "\r\n")
	c.expect(334)
	c.write(srvBase64(key) + "\r\n")
	c.expectText("535 5.7.8")
	c.cmd(250, "MAIL FROM:<orders@customer.example>")
	c.write("RCPT TO:<buyer@example.net>\r\n")
	c.expectText("530 5.7.0")
	fx.nothingQueued()

	// The session from before goes on.
	before.cmd(250, "RCPT TO:<buyer@example.net>")
	before.cmd(354, "DATA")
	before.write(srvMessage + ".\r\n")
	before.expectText("250 2.0.0 OK: queued as Q0001")

	// A key created now works in the next session.
	key2, err := admin.Create(ctx, "shop-2", []string{relay.ScopeSend}, []string{"customer.example"})
	if err != nil {
		t.Fatal(err)
	}
	n := srvDial(t, fx.addr, "", 220)
	n.login(fx.client, key2)
	n.cmd(250, "MAIL FROM:<orders@customer.example>")
	n.cmd(250, "RCPT TO:<buyer@example.net>")
	n.cmd(354, "DATA")
	n.write(srvMessage + ".\r\n")
	n.expectText("250 2.0.0 OK: queued as Q0002")

	entries, _ := fx.q.stored()
	if len(entries) != 2 || entries[0].Account != "shop" || entries[1].Account != "shop-2" {
		t.Errorf("queued %d messages, accounts %v", len(entries), accounts(entries))
	}
}

func accounts(es []*relay.Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Account)
	}
	return out
}

func srvBase64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
