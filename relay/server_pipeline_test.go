package relay_test

import (
	"bytes"
	"context"
	"crypto"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smarthost-go/smarthost/dkim"
	"github.com/smarthost-go/smarthost/internal/peertest"
	"github.com/smarthost-go/smarthost/relay"
)

// TestServerAddedFields: Message-ID and Date are added only when the
// message lacks them (RFC 6409 §8.2, §8.3), each on its own.
func TestServerAddedFields(t *testing.T) {
	t.Parallel()
	fx := srvStart(t, func(o *relay.ServerOptions) { o.Now = func() time.Time { return srvNow } })
	const (
		id   = "Message-ID: <order-42@shop.customer.example>\r\n"
		date = "Date: Mon, 13 Apr 2026 18:00:00 -0400\r\n"
		head = "From: Shop <orders@customer.example>\r\nTo: buyer@example.net\r\nSubject: order\r\n"
	)
	for _, tc := range []struct {
		name, hdr, wantID, wantDate string
	}{
		{"neither", head, "", srvNowText},
		{"Message-ID only", head + id, "<order-42@shop.customer.example>", srvNowText},
		{"Date only", head + date, "", "Mon, 13 Apr 2026 18:00:00 -0400"},
		{"both", head + id + date, "<order-42@shop.customer.example>", "Mon, 13 Apr 2026 18:00:00 -0400"},
		{"both, lower case", head + strings.ToLower(id[:11]) + id[11:] + "DATE:" + date[5:],
			"<order-42@shop.customer.example>", "Mon, 13 Apr 2026 18:00:00 -0400"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := fx.q.stored()
			if _, err := srvSend(t, fx, srvKey, "orders@customer.example", []string{"buyer@example.net"}, tc.hdr+"\r\nbody\r\n"); err != nil {
				t.Fatal(err)
			}
			entries, msgs := fx.q.stored()
			if len(entries) != len(before)+1 {
				t.Fatalf("%d messages queued, want %d", len(entries), len(before)+1)
			}
			e, content := entries[len(entries)-1], msgs[len(msgs)-1][len(entries[len(entries)-1].Header):]
			ids, dates := srvField(content, "Message-ID"), srvField(content, "Date")
			if len(ids) != 1 || len(dates) != 1 {
				t.Fatalf("%d Message-ID and %d Date fields, want one each:\n%s", len(ids), len(dates), content)
			}
			gotID, gotDate := strings.TrimSpace(ids[0]), strings.TrimSpace(dates[0])
			if tc.wantID != "" && gotID != tc.wantID {
				t.Errorf("Message-ID %q, want %q", gotID, tc.wantID)
			}
			// RFC 5322 §3.6.4: msg-id = "<" id-left "@" id-right ">".
			if tc.wantID == "" && !regexp.MustCompile(`^<[a-z2-7]+@relay\.test>$`).MatchString(gotID) {
				t.Errorf("added Message-ID %q", gotID)
			}
			if e.MessageID != gotID {
				t.Errorf("Entry.MessageID %q, the field %q", e.MessageID, gotID)
			}
			if gotDate != tc.wantDate {
				t.Errorf("Date %q, want %q", gotDate, tc.wantDate)
			}
			// What was added goes at the end of the header, after the
			// client's fields, which are kept as sent.
			hdr, body, _ := bytes.Cut(content, []byte("\r\n\r\n"))
			if !bytes.Contains(hdr, []byte("\r\n"+strings.TrimSuffix(tc.hdr, "\r\n"))) || string(body) != "body\r\n" {
				t.Errorf("the client's header or body changed:\n%s", content)
			}
		})
	}
}

// TestServerDKIMSignatures: two DKIM-Signature fields, the customer's for
// the From domain first, then the provider's, both verified by our
// Verifier over the DNS fixture.
func TestServerDKIMSignatures(t *testing.T) {
	t.Parallel()
	fx := srvStart(t, nil)
	if _, err := srvSend(t, fx, srvKey, "orders@customer.example", []string{"buyer@example.net"}, srvMessage); err != nil {
		t.Fatal(err)
	}
	entries, msgs := fx.q.stored()
	if len(entries) != 1 {
		t.Fatalf("%d messages queued, want 1", len(entries))
	}
	// The signatures are in Entry.Header, not in the content.
	if bytes.Contains(msgs[0][len(entries[0].Header):], []byte("DKIM-Signature:")) {
		t.Error("a DKIM-Signature field in the content")
	}
	sigs := srvField(entries[0].Header, "DKIM-Signature")
	if len(sigs) != 2 {
		t.Fatalf("%d DKIM-Signature fields, want 2:\n%s", len(sigs), entries[0].Header)
	}
	res, err := fx.verifier.Verify(context.Background(), bytes.NewReader(msgs[0]))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ d, s, a string }{
		{"customer.example", "s1", "ed25519-sha256"},
		{"relay.test", "p1", "rsa-sha256"},
	}
	if len(res) != 2 {
		t.Fatalf("%d results, want 2", len(res))
	}
	for i, w := range want {
		r := res[i]
		if r.Status != dkim.Pass || r.Domain != w.d || r.Selector != w.s || r.Algorithm != w.a {
			t.Errorf("signature %d: %s d=%s s=%s a=%s (%v), want pass d=%s s=%s a=%s",
				i, r.Status, r.Domain, r.Selector, r.Algorithm, r.Err, w.d, w.s, w.a)
		}
		for _, h := range []string{"from", "to", "subject", "date", "message-id"} {
			if !slices.ContainsFunc(r.HeaderKeys, func(k string) bool { return strings.EqualFold(k, h) }) {
				t.Errorf("signature %d does not cover %s: h=%v", i, h, r.HeaderKeys)
			}
		}
	}
	// A change to the body after signing breaks both.
	bad := bytes.Replace(msgs[0], []byte("Thank you"), []byte("Thank You"), 1)
	res, err = fx.verifier.Verify(context.Background(), bytes.NewReader(bad))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Status != dkim.Fail {
			t.Errorf("altered body, signature %d: %s", i, r.Status)
		}
	}
}

// TestServerDKIMInteropDkimpy: dkimpy (python3-dkim, the verifier of
// many receivers) verifies both signatures of messages the relay queued,
// and fails them once the body is changed.
func TestServerDKIMInteropDkimpy(t *testing.T) {
	t.Parallel()
	py := peertest.Python(t, "dkim", "nacl")
	fx := srvStart(t, nil)
	for _, m := range []string{
		srvMessage,
		// Folded fields, white space that relaxed canonicalization
		// rewrites, a long body without a final CRLF.
		"From: Shop\r\n <orders@customer.example>\r\nTo:  buyer@example.net \r\nSubject: a\r\n\tfolded  subject\r\n" +
			"Message-ID: <x1@customer.example>\r\n\r\n" + strings.Repeat("line \t with  spaces \r\n", 500) + "\r\n\r\nlast",
	} {
		if _, err := srvSend(t, fx, srvKey, "orders@customer.example", []string{"buyer@example.net"}, m); err != nil {
			t.Fatal(err)
		}
	}
	_, msgs := fx.q.stored()
	keys, err := srvKeys()
	if err != nil {
		t.Fatal(err)
	}
	var zone strings.Builder
	for _, k := range []struct {
		name string
		key  crypto.Signer
	}{{dkim.RecordName("s1", "customer.example"), keys.customer}, {dkim.RecordName("p1", "relay.test"), keys.provider}} {
		txt, err := dkim.KeyRecordText(k.key.Public(), nil)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&zone, "%s %s\n", k.name, txt)
	}
	// The first message with its body changed: both must fail.
	altered := bytes.Replace(msgs[0], []byte("Thank you"), []byte("Thank You"), 1)
	got := peertest.DkimpyVerify(t, py, zone.String(), append(msgs, altered)...)
	for i := range msgs {
		if len(got[i]) != 2 || got[i][0] != true || got[i][1] != true {
			t.Errorf("dkimpy on message %d: %v, want [true true]", i, got[i])
		}
	}
	if a := got[len(got)-1]; len(a) != 2 || a[0] == true || a[1] == true {
		t.Errorf("dkimpy on the altered message: %v, want two failures", a)
	}
}
