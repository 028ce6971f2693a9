package bounce

import (
	"io"
	"strings"
	"testing"
	"time"
)

// smtpCodes must find the server's codes, and not take IP addresses,
// IPv6 groups, years, message sizes or exit statuses for them.
func TestSMTPCodes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in       string
		reply    int
		enhanced string
	}{
		{"550 5.1.1 <a@example.net>... User Unknown", 550, "5.1.1"},
		{"550-5.7.26 Unauthenticated email from example.com is not accepted", 550, "5.7.26"},
		{"5.1.0 - Unknown address error 550-'5.2.2 <a@example.net>... Mailbox Full'", 550, "5.2.2"},
		{"host mx.example.net [192.0.2.222]: 553 5.3.0 <a@example.net>... No such user", 553, "5.3.0"},
		{"Sorry, I couldn't find any host named nxdomain.example. (#5.1.2)", 0, "5.1.2"},
		{"Invalid Address, ERROR_CODE :550, ERROR_CODE :5.2.1 <a@example.net>", 550, "5.2.1"},
		{"[(0) example.com. [2606:2800:220:6d:26bf:1447:1097:aa7]:25: socket error]", 0, ""},
		{"Out: 250 2.1.5 Ok\nIn: DATA\nOut: 451 4.3.0 Error: queue file write error", 451, "4.3.0"},
		{"Remote host said: 421 4.7.0 [TSS04] Messages from 192.0.2.25 deferred - 4.16.55.1", 421, "4.7.0"},
		{"Thu, 29 Apr 2010 23:34:45 +0900 in 2010", 0, ""},
		{"Size (in bytes): 222", 222, ""},
	} {
		reply, enhanced := smtpCodes(tc.in)
		if reply != tc.reply || enhanced != tc.enhanced {
			t.Errorf("smtpCodes(%q) = %d %q, want %d %q", tc.in, reply, enhanced, tc.reply, tc.enhanced)
		}
	}
	// A failure report takes no code of success for its answer.
	if reply, enhanced := failureCodes("Size (in bytes): 222, 250 2.0.0 Ok"); reply != 0 || enhanced != "" {
		t.Errorf("failureCodes: %d %q", reply, enhanced)
	}
}

// classify: the text says more than the code; hard needs a hard reason
// and a permanent failure.
func TestClassify(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		diag, status string
		action       Action
		reason       Reason
		hard         bool
	}{
		{"550 5.1.1 <a@example.net>: Recipient address rejected: User unknown in virtual mailbox table", "5.1.1", ActionFailed, ReasonUserUnknown, true},
		{"450 4.1.1 <a@example.net>: Recipient address rejected: User unknown", "4.1.1", ActionDelayed, ReasonUserUnknown, false},
		{"550 5.1.1 <a@example.net> - 203.0.113.1 has sent too many messages: rate limit", "5.1.1", ActionFailed, ReasonRateLimited, false},
		{"552 5.2.2 <a@example.net>... Mailbox Full", "5.2.2", ActionFailed, ReasonMailboxFull, false},
		{"Invalid Address, ERROR_CODE :550, ERROR_CODE :5.2.2 <a@example.net>... Mailbox Full", "5.2.2", ActionFailed, ReasonMailboxFull, false},
		{"554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org", "5.7.1", ActionFailed, ReasonBlocked, false},
		{"550 5.7.1 Message rejected as spam by Content Filtering", "5.7.1", ActionFailed, ReasonSpamDetected, false},
		{"550-5.7.26 This mail has been blocked because the sender is unauthenticated. DMARC", "5.7.26", ActionFailed, ReasonAuthFailure, false},
		{"554 5.7.1 <a@example.net>: Relay access denied", "5.7.1", ActionFailed, ReasonNoRelaying, false},
		{"550 5.1.6 recipient no longer on server: a@example.net", "5.1.6", ActionFailed, ReasonHasMoved, true},
		{"550 5.2.1 The email account that you tried to reach is disabled.", "5.2.1", ActionFailed, ReasonDisabled, true},
		{"550 Mailbox is frozen.", "5.0.0", ActionFailed, ReasonSuspended, false},
		{"556 5.1.10 <a@example.net>: Recipient address has null MX", "5.1.10", ActionFailed, ReasonNotAccept, true},
		{"Host or domain name not found. Name service error for name=example.invalid type=A: Host not found", "5.4.4", ActionFailed, ReasonHostUnknown, true},
		{"Name service error for domain example.com: Host not found, try again", "5.0.0", ActionFailed, ReasonNetworkError, false},
		{"retry timeout exceeded", "5.0.0", ActionFailed, ReasonExpired, false},
		{"552 5.3.4 Message size exceeds fixed maximum message size", "5.3.4", ActionFailed, ReasonTooBig, false},
		{"SMTP error from remote mail server after MAIL FROM:<s@example.com>: 553 5.1.0 example.com does not exist", "5.1.0", ActionFailed, ReasonRejected, false},
		{"", "5.1.1", ActionFailed, ReasonUserUnknown, true},
		{"", "5.0.0", ActionFailed, ReasonUndefined, false},
		{"250 2.1.5 Ok", "2.1.5", ActionDelivered, ReasonDelivered, false},
		// The help page named after a reason is not the answer.
		{"550 5.7.25 Reverse DNS validation failed: See https://example.org/reason/#userunknown", "5.7.25", ActionFailed, ReasonBlocked, false},
	} {
		rc := Recipient{Diagnostic: tc.diag, Status: tc.status, Action: tc.action}
		classify(&rc, tc.diag)
		if rc.Reason != tc.reason || rc.Hard != tc.hard {
			t.Errorf("classify(%q, %s) = %s hard %v, want %s hard %v", tc.diag, tc.status, rc.Reason, rc.Hard, tc.reason, tc.hard)
		}
	}
}

// parseDate reads RFC 5322 dates with the obsolete zone names of §4.3 and
// trailing comments.
func TestParseDate(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"Thu, 8 Mar 2005 14:00:00 EDT":          "2005-03-08T14:00:00-04:00",
		"Thu, 29 Apr 1999 23:34:45 -0500 (CDT)": "1999-04-29T23:34:45-05:00",
		"Mon, 11 May 2013 00:00:00 PST":         "2013-05-11T00:00:00-08:00",
		"29 Apr 2013 23:45:50 GMT":              "2013-04-29T23:45:50Z",
		"2016-11-25T01:49:01.207Z":              "2016-11-25T01:49:01.207Z",
		"Thu,  2 Jul 2020 06:04:42 -0400 (EDT)": "2020-07-02T06:04:42-04:00",
		"yesterday":                             "",
		"":                                      "",
	} {
		got := parseDate(in)
		if want == "" {
			if !got.IsZero() {
				t.Errorf("parseDate(%q) = %v, want zero", in, got)
			}
			continue
		}
		w, _ := time.Parse(time.RFC3339Nano, want)
		if !got.Equal(w) {
			t.Errorf("parseDate(%q) = %v, want %v", in, got, w)
		}
	}
}

// The multipart reader follows RFC 2046 §5.1.1: the line ending before a
// delimiter belongs to it, transport padding after a delimiter is allowed,
// a line that merely starts with the boundary is content, and a missing
// boundary parameter is found in the body.
func TestMultipartReader(t *testing.T) {
	t.Parallel()
	read := func(body, boundary string) (parts []string, preamble string) {
		m := newMultipartReader(strings.NewReader(body), boundary)
		for p := m.next(); p != nil; p = m.next() {
			b, _ := io.ReadAll(p)
			parts = append(parts, string(b))
		}
		return parts, string(m.preamble)
	}
	parts, pre := read("preamble\r\n--b \t\r\nA\r\n--bc\r\nB\r\n\r\n--b\r\nC--b\r\n--b--\r\nepilogue\r\n", "b")
	if want := []string{"A\r\n--bc\r\nB\r\n", "C--b"}; !equal(parts, want) || pre != "preamble\r\n" {
		t.Errorf("parts %q preamble %q", parts, pre)
	}
	parts, _ = read("This is a MIME message.\n\n--guessed.boundary/mx\nX\n--guessed.boundary/mx\nY\n--guessed.boundary/mx--\n", "")
	if want := []string{"X", "Y"}; !equal(parts, want) {
		t.Errorf("guessed boundary: parts %q", parts)
	}
	// No delimiter at all: no part, the text is the preamble.
	parts, pre = read("just text\n", "b")
	if len(parts) != 0 || pre != "just text\n" {
		t.Errorf("no delimiter: parts %q preamble %q", parts, pre)
	}
	// A long line is read in pieces, none of them taken for a delimiter.
	long := strings.Repeat("x", 3*lineBuffer) + "--b"
	parts, _ = read("--b\n"+long+"\n--b--\n", "b")
	if len(parts) != 1 || parts[0] != long {
		t.Errorf("long line: %d parts, %d bytes", len(parts), len(parts[0]))
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
