package relay

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckEnvelope(t *testing.T) {
	t.Parallel()
	ok := func(e *Envelope) *Envelope { return e }
	tests := []struct {
		name string
		env  *Envelope
		want string // in the error; "" for none
	}{
		{"plain", ok(&Envelope{From: "a@example.com", To: To("b@example.org")}), ""},
		{"null sender", &Envelope{To: To("b@example.org")}, ""},
		{"postmaster", &Envelope{From: "a@example.com", To: To("Postmaster")}, ""},
		{"quoted local part", &Envelope{From: `"john doe"@example.com`, To: To(`"a<b>"@example.org`)}, ""},
		{"UTF-8 with SMTPUTF8", &Envelope{From: "jöran@example.com", To: To("用户@例子.广告"), SMTPUTF8: true}, ""},
		{"DSN", &Envelope{From: "a@example.com", Return: ReturnHeaders, EnvID: "QQ 314159", To: []Recipient{
			{Addr: "b@example.org", Notify: []DSNNotify{NotifySuccess, NotifyFailure}, ORcpt: "rfc822;b+x=y@example.org"},
			{Addr: "c@example.org", Notify: []DSNNotify{NotifyNever}},
		}}, ""},

		{"nil", nil, "no envelope"},
		{"no recipients", &Envelope{From: "a@example.com"}, "no recipients"},
		{"empty recipient", &Envelope{To: To("")}, "recipient 1 is empty"},
		{"CR in sender", &Envelope{From: "a@example.com\rRCPT TO:<x@evil>", To: To("b@example.org")}, "holds a CR"},
		{"LF in recipient", &Envelope{To: To("b@example.org", "c@example.org>\nDATA")}, `recipient 2 "c@example.org>\nDATA": holds an LF`},
		{"CRLF in recipient", &Envelope{To: To("b@example.org\r\nRSET")}, "holds a CR"},
		{"NUL", &Envelope{To: To("b\x00@example.org")}, "holds a NUL"},
		{"control", &Envelope{To: To("b\x1b@example.org")}, "control character 0x1b"},
		{"DEL", &Envelope{To: To("b\x7f@example.org")}, "control character 0x7f"},
		{"angle bracket", &Envelope{To: To("b@example.org> NOTIFY=NEVER")}, `holds '>'`},
		{"space", &Envelope{To: To("b@example.org NOTIFY=NEVER")}, "space outside a quoted local part"},
		{"open quote", &Envelope{To: To(`"b@example.org`)}, "unterminated"},
		{"UTF-8 without SMTPUTF8", &Envelope{To: To("用户@例子.广告")}, "set Envelope.SMTPUTF8"},
		{"invalid UTF-8", &Envelope{To: To("b\xff@example.org"), SMTPUTF8: true}, "not valid UTF-8"},
		{"too long", &Envelope{To: To(strings.Repeat("b", 250) + "@example.org")}, "longer than 254"},
		{"body", &Envelope{To: To("b@example.org"), Body: "7BIT"}, "BODY="},
		{"ret", &Envelope{To: To("b@example.org"), Return: "ALL"}, "RET="},
		{"ENVID with LF", &Envelope{To: To("b@example.org"), EnvID: "x\ny"}, "ENVID \"x\\ny\": holds an LF"},
		{"ENVID not ASCII", &Envelope{To: To("b@example.org"), EnvID: "é"}, "not US-ASCII"},
		{"ENVID too long", &Envelope{To: To("b@example.org"), EnvID: strings.Repeat("+", 34)}, "over 100"},
		{"NOTIFY unknown", &Envelope{To: []Recipient{{Addr: "b@example.org", Notify: []DSNNotify{"ALWAYS"}}}}, "NOTIFY="},
		{"NOTIFY NEVER and more", &Envelope{To: []Recipient{{Addr: "b@example.org", Notify: []DSNNotify{NotifyNever, NotifyDelay}}}}, "NEVER goes alone"},
		{"ORCPT without type", &Envelope{To: []Recipient{{Addr: "b@example.org", ORcpt: "b@example.org"}}}, "addr-type;address"},
		{"ORCPT bad type", &Envelope{To: []Recipient{{Addr: "b@example.org", ORcpt: "rfc 822;b@example.org"}}}, "not an atom"},
		{"ORCPT with CR", &Envelope{To: []Recipient{{Addr: "b@example.org", ORcpt: "rfc822;b@example.org\r\nQUIT"}}}, "holds a CR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := checkEnvelope(tt.env)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("checkEnvelope = %v, want an ErrSyntax naming %q", err, tt.want)
			}
		})
	}
}

func TestXtext(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                    "",
		"QQ314159":            "QQ314159",
		"a+b=c d":             "a+2Bb+3Dc+20d",
		"bob@example.org":     "bob@example.org",
		"\x00\x7f~!":          "+00+7F~!",
		"<b+x=y@example.org>": "<b+2Bx+3Dy@example.org>",
	} {
		if got := xtext(in); got != want {
			t.Errorf("xtext(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCommands(t *testing.T) {
	t.Parallel()
	env := &Envelope{
		From: "a@example.com", SMTPUTF8: true, Body: BodyEightBit, RequireTLS: true,
		Return: ReturnFull, EnvID: "id 1",
		To: []Recipient{{Addr: "b@example.org", Notify: []DSNNotify{NotifySuccess, NotifyDelay}, ORcpt: "rfc822;b+1@example.org"}},
	}
	all := extensions{"SIZE": "1000", "DSN": ""}
	if got, want := mailCommand(env, all, 42), "MAIL FROM:<a@example.com> SIZE=42 BODY=8BITMIME SMTPUTF8 REQUIRETLS RET=FULL ENVID=id+201\r\n"; got != want {
		t.Errorf("MAIL = %q, want %q", got, want)
	}
	if got, want := rcptCommand(&env.To[0], all), "RCPT TO:<b@example.org> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;b+2B1@example.org\r\n"; got != want {
		t.Errorf("RCPT = %q, want %q", got, want)
	}
	// Without SIZE and DSN, their parameters are left out; a size
	// unknown is not sent.
	none := extensions{}
	if got, want := mailCommand(env, none, 42), "MAIL FROM:<a@example.com> BODY=8BITMIME SMTPUTF8 REQUIRETLS\r\n"; got != want {
		t.Errorf("MAIL = %q, want %q", got, want)
	}
	if got, want := mailCommand(&Envelope{}, all, -1), "MAIL FROM:<>\r\n"; got != want {
		t.Errorf("MAIL = %q, want %q", got, want)
	}
	if got, want := rcptCommand(&env.To[0], none), "RCPT TO:<b@example.org>\r\n"; got != want {
		t.Errorf("RCPT = %q, want %q", got, want)
	}
}
