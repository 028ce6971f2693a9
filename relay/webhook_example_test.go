package relay_test

import (
	"fmt"
	"net/http"
	"time"

	"github.com/smarthost-go/smarthost/relay"
)

// A receiver checks each request before it trusts the events in it. The
// signature here was made with OpenSSL:
//
//	printf '%s' '1700000000.[{"event":"delivered","queue_id":"q1"}]' | openssl dgst -sha256 -hmac whsec_test
func ExampleVerifyWebhook() {
	secret := []byte("whsec_test")
	body := []byte(`[{"event":"delivered","queue_id":"q1"}]`)
	header := http.Header{}
	header.Set(relay.WebhookTimestampHeader, "1700000000")
	header.Set(relay.WebhookSignatureHeader, "v1=33f36f729c71d754c7857414d03ad1f798e59cf2d0fc5f32cf60dc06c15e8731")

	received := time.Unix(1700000030, 0) // 30 seconds after it was signed
	fmt.Println(relay.VerifyWebhook(secret, header, body, received, 5*time.Minute))
	fmt.Println(relay.VerifyWebhook(secret, header, []byte(`[{"event":"bounced","queue_id":"q1"}]`), received, 5*time.Minute))
	fmt.Println(relay.VerifyWebhook(secret, header, body, received.Add(time.Hour), 5*time.Minute))
	// Output:
	// <nil>
	// relay: webhook signature does not verify: no v1 signature matches
	// relay: webhook signature does not verify: timestamp 1700000000 is 1h0m30s away
}
