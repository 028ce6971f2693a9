package relay_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/smarthost-go/smarthost/relay"
)

// FuzzVerifyWebhook: VerifyWebhook parses any header without panicking,
// accepts a header only with a signature of the body, and always accepts
// the signature it should.
func FuzzVerifyWebhook(f *testing.F) {
	f.Add("1700000000", "v1=33f36f729c71d754c7857414d03ad1f798e59cf2d0fc5f32cf60dc06c15e8731", []byte(`[{"event":"delivered","queue_id":"q1"}]`))
	f.Add("", "", []byte{})
	f.Add("-1", "v1=,v1=zz, v0=00", []byte("[]"))
	f.Add("99999999999999999999", "v1=00", []byte("x"))
	secret := []byte("whsec_test")
	now := time.Unix(1700000000, 0)
	f.Fuzz(func(t *testing.T, ts, sig string, body []byte) {
		h := http.Header{}
		h.Set(relay.WebhookTimestampHeader, ts)
		h.Set(relay.WebhookSignatureHeader, sig)
		if relay.VerifyWebhook(secret, h, body, now, 5*time.Minute) == nil {
			// Accepted: one of its v1 values is the HMAC of the body.
			m := hmac.New(sha256.New, secret)
			m.Write([]byte(ts + "." + string(body)))
			if want := hex.EncodeToString(m.Sum(nil)); !containsFold(sig, want) {
				t.Fatalf("accepted %q for %q without its signature %s", sig, body, want)
			}
		}
		// The right signature, with the timestamp of now, verifies.
		good := strconv.FormatInt(now.Unix(), 10)
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(good + "." + string(body)))
		h.Set(relay.WebhookTimestampHeader, good)
		h.Set(relay.WebhookSignatureHeader, sig+",v1="+hex.EncodeToString(m.Sum(nil)))
		if err := relay.VerifyWebhook(secret, h, body, now, 5*time.Minute); err != nil {
			t.Fatalf("the right signature after %q: %v", sig, err)
		}
	})
}

// containsFold reports whether s contains sub, without regard to the case
// of hex digits.
func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if hexEqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

func hexEqualFold(a, b string) bool {
	x, err1 := hex.DecodeString(a)
	y, err2 := hex.DecodeString(b)
	return err1 == nil && err2 == nil && hmac.Equal(x, y)
}
