package relay

import (
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smarthost-go/smarthost/internal/peertest"
)

// pyDSN is what Python's email package reads of a DSN: its parser knows
// message/delivery-status (RFC 3464 §2) and gives each of its blocks of
// fields (the per-message one, then one per recipient) as a message of its
// own.
type pyDSN struct {
	ContentType string              `json:"content_type"`
	ReportType  string              `json:"report_type"`
	To          string              `json:"to"`
	From        string              `json:"from"`
	Parts       []string            `json:"parts"`
	Defects     []string            `json:"defects"`
	Text        string              `json:"text"`
	Blocks      []map[string]string `json:"blocks"`
	// Returned is the third part: the returned header as text, or the
	// Subject of the message returned whole.
	Returned        string `json:"returned"`
	ReturnedSubject string `json:"returned_subject"`
	ReturnedBody    string `json:"returned_body"`
}

// readDSNWithPython parses a DSN with /usr/bin/python3's email package,
// or skips t.
func readDSNWithPython(t *testing.T, data []byte) *pyDSN {
	t.Helper()
	py := peertest.Python(t)
	const script = `
import email, json, re, sys
m = email.message_from_bytes(sys.stdin.buffer.read())
def unfold(v):
    return re.sub(r"\r?\n", "", str(v))
out = {
    "content_type": m.get_content_type(),
    "report_type": m.get_param("report-type") or "",
    "to": unfold(m["To"]), "from": unfold(m["From"]),
    "parts": [], "defects": [], "blocks": [],
    "returned": "", "returned_subject": "", "returned_body": "",
}
for part in m.walk():
    out["defects"] += [type(d).__name__ for d in part.defects]
parts = m.get_payload()
out["parts"] = [p.get_content_type() for p in parts]
out["text"] = parts[0].get_payload(decode=True).decode()
for block in parts[1].get_payload():
    out["blocks"].append({k: unfold(v) for k, v in block.items()})
ret = parts[2]
if ret.get_content_type() == "message/rfc822":
    inner = ret.get_payload()[0]
    out["returned_subject"] = inner["Subject"]
    out["returned_body"] = inner.get_payload()
else:
    out["returned"] = ret.get_payload()
json.dump(out, sys.stdout)
`
	cmd := exec.Command(py, "-c", script)
	cmd.Stdin = bytes.NewReader(data)
	var got pyDSN
	peertest.RunJSON(t, cmd, nil, &got)
	return &got
}

// A DSN as Python's email package reads it: a multipart/report of
// report-type delivery-status (RFC 3462 §2, RFC 3464 §2), whose
// message/delivery-status holds one block of per-message fields and one
// block per recipient reported, with the fields of RFC 3464 §2.2 and §2.3
// unfolded to the values written; the message returned as its header
// (RET=HDRS, the default) or whole (RET=FULL, RFC 3461 §4.3) unless it is
// larger than MaxFull.
func TestDSNInteropPython(t *testing.T) {
	t.Parallel()
	original := "From: alice@example.com\r\nTo: bob@example.org\r\nSubject: the report\r\nMessage-ID: <m1@example.com>\r\n\r\nHello, Bob.\r\n"
	long := "mailbox unavailable: " + strings.Repeat("the mailbox of this user is not there any more ", 3) + "(end)"
	entry := func(ret DSNReturn) *Entry {
		return &Entry{
			ID: "Q1",
			Envelope: Envelope{From: "srs@relay.example", To: []Recipient{
				{Addr: "bob@example.org", ORcpt: "rfc822;robert@example.org"},
				{Addr: "carol@example.org"},
				{Addr: "dave@example.org"},
			}, EnvID: "ENV-42", Return: ret},
			Sender:    "alice@example.com",
			MessageID: "<m1@example.com>",
			Rcpts: []RcptState{
				{Addr: "bob@example.org", Status: RcptBounced, Host: "mx.example.org:25", Reply: &Reply{Code: 550, Enhanced: EnhancedCode{5, 1, 1}, Message: long}},
				{Addr: "carol@example.org", Status: RcptDelivered, Host: "mx.example.org:25", Reply: &Reply{Code: 250, Message: "OK"}},
				{Addr: "dave@example.org", Status: RcptBounced, Expired: true, Host: "[192.0.2.7]:25", Reply: &Reply{Code: 451, Enhanced: EnhancedCode{4, 3, 0}, Message: "try later"}},
			},
			Created: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC),
		}
	}
	for _, tt := range []struct {
		name     string
		ret      DSNReturn
		maxFull  int64
		wantPart string
	}{
		{"RET=HDRS", ReturnHeaders, 1 << 20, "text/rfc822-headers"},
		{"no RET", "", 1 << 20, "text/rfc822-headers"},
		{"RET=FULL", ReturnFull, 1 << 20, "message/rfc822"},
		{"RET=FULL too large", ReturnFull, 10, "text/rfc822-headers"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := &dsn{Hostname: "relay.example", MessageID: "dsn1@relay.example", Date: time.Date(2030, 1, 7, 3, 4, 5, 0, time.UTC),
				Entry: entry(tt.ret), Rcpts: []int{0, 2}, MaxFull: tt.maxFull}
			var b bytes.Buffer
			if err := d.write(&b, Bytes(original)); err != nil {
				t.Fatal(err)
			}
			got := readDSNWithPython(t, b.Bytes())
			if got.ContentType != "multipart/report" || got.ReportType != "delivery-status" {
				t.Errorf("Content-Type %s; report-type=%s", got.ContentType, got.ReportType)
			}
			if len(got.Defects) != 0 {
				t.Errorf("Python found defects %v in\n%s", got.Defects, b.Bytes())
			}
			if got.To != "<alice@example.com>" || got.From != "Mail Delivery System <MAILER-DAEMON@relay.example>" {
				t.Errorf("To %q, From %q", got.To, got.From)
			}
			if want := []string{"text/plain", "message/delivery-status", tt.wantPart}; !slices.Equal(got.Parts, want) {
				t.Fatalf("parts %v, want %v", got.Parts, want)
			}
			want := []map[string]string{
				{
					"Reporting-MTA":        "dns; relay.example",
					"Original-Envelope-Id": "ENV-42",
					"Arrival-Date":         "Wed, 02 Jan 2030 03:04:05 +0000",
				},
				{
					"Original-Recipient": "rfc822;robert@example.org",
					"Final-Recipient":    "rfc822; bob@example.org",
					"Action":             "failed",
					"Status":             "5.1.1",
					"Remote-MTA":         "dns; mx.example.org",
					"Diagnostic-Code":    "smtp; 550 5.1.1 " + long,
				},
				{
					"Final-Recipient": "rfc822; dave@example.org",
					"Action":          "failed",
					"Status":          "4.4.7",
					"Remote-MTA":      "dns; [192.0.2.7]",
					"Diagnostic-Code": "smtp; 451 4.3.0 try later",
				},
			}
			if len(got.Blocks) != len(want) {
				t.Fatalf("%d blocks of fields, want %d: %v", len(got.Blocks), len(want), got.Blocks)
			}
			for i := range want {
				for k, v := range want[i] {
					if got.Blocks[i][k] != v {
						t.Errorf("block %d: %s %q, want %q", i, k, got.Blocks[i][k], v)
					}
				}
				if len(got.Blocks[i]) != len(want[i]) {
					t.Errorf("block %d has fields %v, want those of %v", i, got.Blocks[i], want[i])
				}
			}
			for _, s := range []string{"<bob@example.org>:", "<dave@example.org>:", "delivery time expired"} {
				if !strings.Contains(got.Text, s) {
					t.Errorf("text part lacks %q:\n%s", s, got.Text)
				}
			}
			if strings.Contains(got.Text, "carol@") {
				t.Errorf("text part names a recipient delivered:\n%s", got.Text)
			}
			switch tt.wantPart {
			case "message/rfc822":
				if got.ReturnedSubject != "the report" || got.ReturnedBody != "Hello, Bob.\r\n" {
					t.Errorf("returned message: Subject %q, body %q", got.ReturnedSubject, got.ReturnedBody)
				}
			default:
				if want := original[:strings.Index(original, "\r\n\r\n")+4]; got.Returned != want {
					t.Errorf("returned header %q, want %q", got.Returned, want)
				}
			}
		})
	}
}
