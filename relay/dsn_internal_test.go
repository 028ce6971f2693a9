package relay

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
)

func TestHeaderReader(t *testing.T) {
	t.Parallel()
	long := "X-Long: " + strings.Repeat("a", 5000) + "\r\n"
	for _, tt := range []struct{ in, want string }{
		{"Subject: a\r\nFrom: b\r\n\r\nbody\r\n\r\nmore\r\n", "Subject: a\r\nFrom: b\r\n\r\n"},
		{"Subject: a\r\n", "Subject: a\r\n"},
		{"Subject: a", "Subject: a"},
		{"\r\nbody", "\r\n"},
		{"Subject: a\nFrom: b\n\nbody\n", "Subject: a\nFrom: b\n\n"},
		// A line longer than the buffer whose rest is a bare CRLF is not the
		// end of the header.
		{strings.Repeat("b", 16) + "\r\nX: y\r\n\r\nbody", strings.Repeat("b", 16) + "\r\nX: y\r\n\r\n"},
		{long + "X: y\r\n\r\nbody", long + "X: y\r\n\r\n"},
	} {
		r := &headerReader{r: bufio.NewReaderSize(strings.NewReader(tt.in), 16)}
		got, err := io.ReadAll(iotest.OneByteReader(r))
		if err != nil || string(got) != tt.want {
			t.Errorf("header of %.40q: %.60q, %v; want %.60q", tt.in, got, err, tt.want)
		}
	}
}

func TestDSNField(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	dsnField(&b, "Diagnostic-Code", "smtp; 550 5.1.1 "+strings.Repeat("word ", 30)+"end\nof\rline")
	for line := range strings.SplitSeq(strings.TrimSuffix(b.String(), "\r\n"), "\r\n") {
		if len(line) > 78 {
			t.Errorf("line of %d octets: %q", len(line), line)
		}
	}
	if got := strings.ReplaceAll(b.String(), "\r\n ", " "); got != "Diagnostic-Code: smtp; 550 5.1.1 "+strings.Repeat("word ", 30)+"end of line\r\n" {
		t.Errorf("unfolded: %q", got)
	}
}

// The notification parses as a multipart/report with its three parts, and
// its delivery-status fields, with go-message.
func TestDSNWrite(t *testing.T) {
	t.Parallel()
	e := &Entry{
		ID: "Q1",
		Envelope: Envelope{From: "srs@relay.example", To: []Recipient{
			{Addr: "bob@example.org", ORcpt: "rfc822;robert@example.org"},
			{Addr: "carol@example.org"},
		}, EnvID: "ENV1"},
		Sender:    "alice@example.com",
		MessageID: "<m1@example.com>",
		Rcpts: []RcptState{
			{Addr: "bob@example.org", Status: RcptBounced, Host: "mx.example.org:25", Reply: &Reply{Code: 550, Enhanced: EnhancedCode{5, 1, 1}, Message: "no such user"}},
			{Addr: "carol@example.org", Status: RcptBounced, Expired: true, Reply: &Reply{Code: 451, Message: "try later"}},
		},
		Created: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC),
	}
	d := &dsn{Hostname: "relay.example", MessageID: "dsn1@relay.example", Date: e.Created.Add(time.Hour), Entry: e, Rcpts: []int{0, 1}, MaxFull: 1 << 20}
	original := "Subject: hi\r\nFrom: alice@example.com\r\n\r\nbody\r\n"
	var b bytes.Buffer
	if err := d.write(&b, Bytes(original)); err != nil {
		t.Fatal(err)
	}
	m, err := message.Read(&b)
	if err != nil {
		t.Fatal(err)
	}
	if ct, p, _ := m.Header.ContentType(); ct != "multipart/report" || p["report-type"] != "delivery-status" {
		t.Errorf("Content-Type %s %v", ct, p)
	}
	if got := m.Header.Get("To"); got != "<alice@example.com>" {
		t.Errorf("To %q", got)
	}
	mr := m.MultipartReader()
	var types []string
	var parts [][]byte
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ct, _, _ := p.Header.ContentType()
		types = append(types, ct)
		body, _ := io.ReadAll(p.Body)
		parts = append(parts, body)
	}
	if strings.Join(types, " ") != "text/plain message/delivery-status text/rfc822-headers" {
		t.Fatalf("parts %v", types)
	}
	if string(parts[2]) != "Subject: hi\r\nFrom: alice@example.com\r\n\r\n" {
		t.Errorf("returned header %q", parts[2])
	}
	br := bufio.NewReader(bytes.NewReader(parts[1]))
	var groups []textproto.Header
	for {
		h, err := textproto.ReadHeader(br)
		if err != nil {
			t.Fatal(err)
		}
		groups = append(groups, h)
		if _, err := br.Peek(1); err == io.EOF {
			break
		}
	}
	if len(groups) != 3 {
		t.Fatalf("%d groups of fields, want 3:\n%s", len(groups), parts[1])
	}
	for _, c := range []struct {
		group       int
		field, want string
	}{
		{0, "Reporting-MTA", "dns; relay.example"},
		{0, "Original-Envelope-Id", "ENV1"},
		{0, "Arrival-Date", "Wed, 02 Jan 2030 03:04:05 +0000"},
		{1, "Original-Recipient", "rfc822;robert@example.org"},
		{1, "Final-Recipient", "rfc822; bob@example.org"},
		{1, "Action", "failed"},
		{1, "Status", "5.1.1"},
		{1, "Remote-MTA", "dns; mx.example.org"},
		{1, "Diagnostic-Code", "smtp; 550 5.1.1 no such user"},
		{2, "Final-Recipient", "rfc822; carol@example.org"},
		{2, "Status", "4.4.7"},
		{2, "Diagnostic-Code", "smtp; 451 try later"},
		{2, "Remote-MTA", ""},
	} {
		if got := groups[c.group].Get(c.field); got != c.want {
			t.Errorf("group %d %s: %q, want %q", c.group, c.field, got, c.want)
		}
	}
}

func TestRemoteHost(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"mx.example.org:25":              "mx.example.org",
		"192.0.2.7:25":                   "[192.0.2.7]",
		"[2001:db8::1]:25":               "[2001:db8::1]",
		"mx.example.org":                 "mx.example.org",
		"":                               "",
		"mx1.example:25, mx2.example:25": "",
	} {
		if got := remoteHost(in); got != want {
			t.Errorf("remoteHost(%q) = %q, want %q", in, got, want)
		}
	}
}

// RFC 3461 §4.1: a DSN of failure is due unless NOTIFY is NEVER or names
// other conditions only.
func TestWantsFailureDSN(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		notify []DSNNotify
		want   bool
	}{
		{nil, true},
		{[]DSNNotify{NotifyFailure}, true},
		{[]DSNNotify{NotifySuccess, NotifyFailure, NotifyDelay}, true},
		{[]DSNNotify{NotifyNever}, false},
		{[]DSNNotify{NotifySuccess}, false},
		{[]DSNNotify{NotifyDelay, NotifySuccess}, false},
	} {
		if got := wantsFailureDSN(Recipient{Addr: "a@example.org", Notify: tt.notify}); got != tt.want {
			t.Errorf("NOTIFY=%v: %v, want %v", tt.notify, got, tt.want)
		}
	}
}

// A reply of many lines, joined, is wrapped in the part in words: no line
// there is longer than 78 octets (RFC 5322 §2.1.1 allows 998), and the
// words are all there, in order.
func TestDSNTextWraps(t *testing.T) {
	t.Parallel()
	var lines []string
	for i := range 30 {
		lines = append(lines, fmt.Sprintf("line %d of a long explanation from the receiving server", i))
	}
	reply := &Reply{Code: 550, Enhanced: EnhancedCode{5, 7, 1}, Message: strings.Join(lines, "\n")}
	e := &Entry{
		Envelope: Envelope{To: To("bob@example.org")},
		Rcpts:    []RcptState{{Addr: "bob@example.org", Status: RcptBounced, Host: "mx.example.org:25", Reply: reply}},
	}
	text := (&dsn{Hostname: "relay.example", Entry: e, Rcpts: []int{0}}).text(false)
	for line := range strings.SplitSeq(text, "\r\n") {
		if len(line) > 78 {
			t.Errorf("line of %d octets: %q", len(line), line)
		}
	}
	_, after, _ := strings.Cut(text, "<bob@example.org>:\r\n")
	want := "host mx.example.org said: " + reply.Error()
	if got := strings.Join(strings.Fields(after), " "); got != want {
		t.Errorf("words of the reason:\n%s\nwant\n%s", got, want)
	}
}
