package bounce_test

import (
	"testing"

	"github.com/smarthost-go/smarthost/relay/bounce"
)

// TestClassifyReply: the statuses about the address itself (RFC 3463
// §3.2: X.1.1 bad mailbox, X.1.2 bad system, X.1.6 moved; RFC 7505 §4.2:
// X.1.10 null MX) are hard when permanent; a policy refusal, a full
// mailbox and any 4xx are not.
func TestClassifyReply(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		code         int
		status, text string
		reason       bounce.Reason
		hard         bool
	}{
		{550, "5.1.1", "<bob@example.org>: Recipient address rejected: User unknown in local recipient table", bounce.ReasonUserUnknown, true},
		{550, "5.1.2", "Host or domain name not found", bounce.ReasonHostUnknown, true},
		{551, "5.1.6", "User has moved; please try <bob@example.net>", bounce.ReasonHasMoved, true},
		{556, "5.1.10", "Recipient address has null MX", bounce.ReasonNotAccept, true},
		{550, "", "No such user here", bounce.ReasonUserUnknown, true},
		{550, "5.7.1", "Delivery not authorized, message refused", bounce.ReasonPolicy, false},
		{552, "5.2.2", "Mailbox full", bounce.ReasonMailboxFull, false},
		{450, "4.1.1", "Recipient address rejected: User unknown, try again", bounce.ReasonUserUnknown, false},
		{554, "5.7.1", "Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org", bounce.ReasonBlocked, false},
	} {
		reason, hard := bounce.ClassifyReply(tt.code, tt.status, tt.text)
		if reason != tt.reason || hard != tt.hard {
			t.Errorf("ClassifyReply(%d, %q, %q) = %s, %v; want %s, %v", tt.code, tt.status, tt.text, reason, hard, tt.reason, tt.hard)
		}
	}
}
