package bounce_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"unicode/utf8"

	"github.com/smarthost-go/smarthost/relay/bounce"
)

var statusRE = regexp.MustCompile(`^[245]\.[0-9]{1,3}\.[0-9]{1,3}$`)

// FuzzParse feeds Parse arbitrary messages, seeded with the corpus of
// testdata and the messages of the tests. It must never panic, and what it
// returns must keep its promises: within the limits, valid status codes
// and reply codes, a hard bounce only of a permanent failure, valid UTF-8.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.eml")
	for _, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, msg := range []string{rfc3464Simple, rfc3464Multi, rfc3464Delayed, rfc6533Global, rfc5965Example, dsnHead} {
		f.Add([]byte(crlf(msg)))
	}
	opts := &bounce.Options{MaxBytes: 256 << 10, MaxParts: 20, MaxRecipients: 50}
	kinds := map[bounce.Kind]bool{bounce.KindUnknown: true, bounce.KindDSN: true, bounce.KindBounce: true, bounce.KindFeedback: true, bounce.KindAutoReply: true}
	f.Fuzz(func(t *testing.T, msg []byte) {
		rep, err := bounce.Parse(bytes.NewReader(msg), opts)
		if err != nil {
			if rep != nil || !errors.Is(err, bounce.ErrSyntax) {
				t.Fatalf("Parse: %v with report %v", err, rep)
			}
			return
		}
		if !kinds[rep.Kind] {
			t.Fatalf("Kind %q", rep.Kind)
		}
		if rep.Kind == bounce.KindUnknown && len(rep.Recipients) > 0 {
			t.Fatalf("unknown report with recipients %+v", rep.Recipients)
		}
		if len(rep.Recipients) > opts.MaxRecipients {
			t.Fatalf("%d recipients", len(rep.Recipients))
		}
		if (rep.Kind == bounce.KindFeedback) != (rep.Feedback != nil) {
			t.Fatalf("Kind %q with Feedback %v", rep.Kind, rep.Feedback)
		}
		for _, r := range rep.Recipients {
			if r.Status != "" && !statusRE.MatchString(r.Status) {
				t.Fatalf("status %q", r.Status)
			}
			if r.ReplyCode != 0 && (r.ReplyCode < 200 || r.ReplyCode > 599) {
				t.Fatalf("reply code %d", r.ReplyCode)
			}
			if r.Hard && (!r.Reason.Hard() || r.Status != "" && r.Status[0] != '5') {
				t.Fatalf("hard %+v", r)
			}
			if !utf8.ValidString(r.Diagnostic) || len(r.Diagnostic) > 2000 {
				t.Fatalf("diagnostic %q", r.Diagnostic)
			}
		}
	})
}
