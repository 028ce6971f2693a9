package sasl_test

import (
	"testing"

	"github.com/smarthost-go/smarthost/relay/sasl"
)

// The examples of RFC 4013 §3, and a few more of each step.
func TestSASLprep(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, want string
		stored   bool
		fails    bool
	}{
		{in: "I\u00adX", want: "IX"},                           // RFC 4013 §3 #1: SOFT HYPHEN mapped to nothing
		{in: "user", want: "user"},                             // #2
		{in: "USER", want: "USER"},                             // #3: case preserved
		{in: "\u00aa", want: "a"},                              // #4: NFKC
		{in: "\u2168", want: "IX"},                             // #5: NFKC
		{in: "\u0007", fails: true},                            // #6: prohibited
		{in: "\u0627\u0031", fails: true},                      // #7: bidi check
		{in: "\u0627\u0031\u0628", want: "\u0627\u0031\u0628"}, // RandALCat at both ends
		{in: "a\u00a0b", want: "a b"},                          // non-ASCII space mapped to space
		{in: "a\u200bb", want: "ab"},                           // ZERO WIDTH SPACE: mapped to nothing
		{in: "pass word", want: "pass word"},                   // ASCII space allowed
		{in: "a\x7fb", fails: true},                            // DEL
		{in: "a\u0085b", fails: true},                          // C.2.2 control
		{in: "a\ue000b", fails: true},                          // private use
		{in: "a\ufdd0b", fails: true},                          // non-character
		{in: "a\u200eb", fails: true},                          // LEFT-TO-RIGHT MARK
		{in: "a\U000e0041b", fails: true},                      // tag
		{in: "a\u2ff0b", fails: true},                          // ideographic description
		{in: "\xff", fails: true},                              // not UTF-8
		{in: "a\u0378b", want: "a\u0378b"},                     // unassigned: a query may hold it
		{in: "a\u0378b", stored: true, fails: true},            // a stored string may not
		{in: "\u00e9t\u00e9", want: "\u00e9t\u00e9"},           // already NFKC
		{in: "e\u0301", want: "\u00e9"},                        // composed
	} {
		got, err := sasl.SASLprep(tc.in, tc.stored)
		if tc.fails {
			if err == nil {
				t.Errorf("SASLprep(%+q, %v) = %+q, want an error", tc.in, tc.stored, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("SASLprep(%+q, %v) = %+q, %v; want %+q", tc.in, tc.stored, got, err, tc.want)
		}
	}
}
