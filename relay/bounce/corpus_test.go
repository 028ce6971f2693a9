package bounce_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/smarthost-go/smarthost/relay/bounce"
)

var (
	corpusVerbose = flag.Bool("corpus.v", false, "log every message of the corpus whose result differs from expected.json")
	corpusFloors  = flag.Bool("corpus.floors", false, "print the floors of TestCorpus for what the parser reaches now")
)

// expectation is one recipient of expected.json: what Sisimai reports.
type expectation struct {
	Index      int    `json:"index"`
	Status     string `json:"status"`
	ReplyCode  string `json:"reply_code"`
	Reason     string `json:"reason"`
	HardBounce bool   `json:"hard_bounce"`
}

// agreement counts, for one family, the messages whose recipient count,
// status codes and hard/soft decisions agree with expected.json.
type agreement struct {
	messages, count, status, hard int
}

func (a agreement) pct(n int) float64 { return 100 * float64(n) / float64(a.messages) }

var familyRE = regexp.MustCompile(`^(.*)-[0-9]+\.eml$`)

// statusAgrees compares a status with the expected one: exactly, except
// that an expected pseudo-code (a detail of 900 or more: no code in the
// bounce) accepts any status of its class, and an expected "" (feedback,
// auto-replies) wants "".
func statusAgrees(want, got string) bool {
	parts := strings.Split(want, ".")
	if len(parts) == 3 && len(parts[2]) == 3 && parts[2] >= "900" {
		return got != "" && got[0] == want[0]
	}
	return want == got
}

// corpusAgreement parses every message of testdata and compares it with
// expected.json, per family (the file name without its number).
func corpusAgreement(t *testing.T) (map[string]*agreement, []string) {
	t.Helper()
	b, err := os.ReadFile("testdata/expected.json")
	if err != nil {
		t.Fatal(err)
	}
	var expected map[string][]expectation
	if err := json.Unmarshal(b, &expected); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("testdata/*.eml")
	if len(files) != len(expected) {
		t.Fatalf("%d messages, %d in expected.json", len(files), len(expected))
	}
	fams := map[string]*agreement{}
	var diffs []string
	for _, path := range files {
		name := filepath.Base(path)
		want, ok := expected[name]
		if !ok {
			t.Fatalf("%s is not in expected.json", name)
		}
		fam := familyRE.FindStringSubmatch(name)[1]
		a := fams[fam]
		if a == nil {
			a = &agreement{}
			fams[fam] = a
		}
		a.messages++
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := bounce.Parse(f, nil)
		f.Close()
		if err != nil {
			diffs = append(diffs, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		got := rep.Recipients
		countOK := len(got) == len(want)
		statusOK, hardOK := true, true
		for i, w := range want {
			if i >= len(got) {
				statusOK, hardOK = false, false
				break
			}
			statusOK = statusOK && statusAgrees(w.Status, got[i].Status)
			hardOK = hardOK && w.HardBounce == got[i].Hard
		}
		if countOK {
			a.count++
		}
		if statusOK {
			a.status++
		}
		if hardOK {
			a.hard++
		}
		if !countOK || !statusOK || !hardOK {
			var g, w []string
			for _, r := range got {
				g = append(g, fmt.Sprintf("%s %s/%d/%s/%v %.90q", r.Address, r.Status, r.ReplyCode, r.Reason, r.Hard, r.Diagnostic))
			}
			for _, r := range want {
				w = append(w, fmt.Sprintf("%s/%s/%s/%v", r.Status, r.ReplyCode, r.Reason, r.HardBounce))
			}
			diffs = append(diffs, fmt.Sprintf("%s [%s %s]\n    want %s\n    got  %s", name, rep.Kind, rep.Format, strings.Join(w, "; "), strings.Join(g, "\n         ")))
		}
	}
	return fams, diffs
}

// corpusTable writes the agreement per family and in total, as in doc.go.
func corpusTable(fams map[string]*agreement) string {
	names := make([]string, 0, len(fams))
	for n := range fams {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	var total agreement
	fmt.Fprintf(&b, "%-24s %4s %7s %7s %7s\n", "family", "msgs", "rcpts", "status", "hard")
	for _, n := range names {
		a := fams[n]
		fmt.Fprintf(&b, "%-24s %4d %6.0f%% %6.0f%% %6.0f%%\n", n, a.messages, a.pct(a.count), a.pct(a.status), a.pct(a.hard))
		total.messages += a.messages
		total.count += a.count
		total.status += a.status
		total.hard += a.hard
	}
	fmt.Fprintf(&b, "%-24s %4d %6.1f%% %6.1f%% %6.1f%%\n", "total", total.messages, total.pct(total.count), total.pct(total.status), total.pct(total.hard))
	return b.String()
}

// TestCorpus parses the 469 messages of testdata and measures, per family
// and in total, the share whose recipient count, status codes and
// hard/soft decisions agree with what Sisimai reports (expected.json). The
// floors are a little under what the parser reaches (a family of ten or
// more messages may lose one), so that a regression fails; run with
// -corpus.v to see each disagreement, -corpus.floors to print new floors.
func TestCorpus(t *testing.T) {
	fams, diffs := corpusAgreement(t)
	t.Logf("agreement with expected.json (go test ./relay/bounce -run TestCorpus -v):\n%s", corpusTable(fams))
	if *corpusVerbose {
		for _, d := range diffs {
			t.Log(d)
		}
	}
	if *corpusFloors {
		names := make([]string, 0, len(fams))
		for n := range fams {
			names = append(names, n)
		}
		sort.Strings(names)
		var b strings.Builder
		for _, n := range names {
			a, slack := fams[n], 0
			if a.messages >= 10 {
				slack = 1
			}
			fmt.Fprintf(&b, "\t%q: {%d, %d, %d, %d},\n", n, a.messages, max(a.count-slack, 0), max(a.status-slack, 0), max(a.hard-slack, 0))
		}
		t.Logf("floors:\n%s", b.String())
	}
	var total agreement
	for name, a := range fams {
		f, ok := corpusFloorsByFamily[name]
		if !ok {
			t.Errorf("family %s has no floor", name)
			continue
		}
		if a.messages != f.messages {
			t.Errorf("%s: %d messages, the floors are for %d", name, a.messages, f.messages)
		}
		if a.count < f.count || a.status < f.status || a.hard < f.hard {
			t.Errorf("%s: %d/%d/%d of %d messages agree on recipients/status/hard, floor %d/%d/%d",
				name, a.count, a.status, a.hard, a.messages, f.count, f.status, f.hard)
		}
		total.messages += a.messages
		total.count += a.count
		total.status += a.status
		total.hard += a.hard
	}
	for _, c := range []struct {
		what  string
		got   float64
		floor float64
	}{
		{"recipients", total.pct(total.count), totalFloors.count},
		{"status", total.pct(total.status), totalFloors.status},
		{"hard", total.pct(total.hard), totalFloors.hard},
	} {
		if c.got < c.floor {
			t.Errorf("total agreement on %s %.1f%%, floor %.1f%%", c.what, c.got, c.floor)
		}
	}
}

// totalFloors are the floors of the total agreement, in percent.
var totalFloors = struct{ count, status, hard float64 }{98.5, 96.0, 89.0}

// corpusFloorsByFamily: messages, then the fewest that must agree on the
// recipient count, the status codes and the hard/soft decisions.
var corpusFloorsByFamily = map[string]agreement{
	"arf":                   {12, 11, 11, 11},
	"lhost-activehunter":    {1, 1, 1, 0},
	"lhost-amavis":          {3, 3, 3, 3},
	"lhost-amazonses":       {16, 15, 15, 13},
	"lhost-amazonworkmail":  {5, 5, 4, 4},
	"lhost-apachejames":     {1, 1, 1, 0},
	"lhost-barracuda":       {2, 2, 2, 2},
	"lhost-biglobe":         {1, 1, 1, 1},
	"lhost-courier":         {3, 3, 3, 2},
	"lhost-domino":          {3, 3, 3, 3},
	"lhost-dragonfly":       {24, 23, 23, 22},
	"lhost-einsundeins":     {1, 1, 1, 1},
	"lhost-exchange2003":    {5, 5, 5, 4},
	"lhost-exchange2007":    {6, 6, 5, 6},
	"lhost-exim":            {32, 31, 30, 30},
	"lhost-ezweb":           {5, 5, 5, 4},
	"lhost-fml":             {2, 0, 0, 0},
	"lhost-gmail":           {12, 11, 10, 11},
	"lhost-gmx":             {3, 3, 3, 3},
	"lhost-googlegroups":    {11, 10, 10, 10},
	"lhost-googleworkspace": {1, 1, 1, 1},
	"lhost-imailserver":     {4, 4, 4, 4},
	"lhost-kddi":            {3, 3, 3, 3},
	"lhost-mailfoundry":     {1, 1, 1, 1},
	"lhost-mailru":          {8, 8, 7, 7},
	"lhost-mcafee":          {4, 4, 4, 3},
	"lhost-messagingserver": {10, 9, 9, 6},
	"lhost-mfilter":         {3, 3, 3, 1},
	"lhost-mxlogic":         {2, 2, 2, 2},
	"lhost-notes":           {3, 3, 3, 3},
	"lhost-opensmtpd":       {11, 10, 6, 9},
	"lhost-outlook":         {6, 6, 6, 6},
	"lhost-postfix":         {54, 53, 53, 48},
	"lhost-powermta":        {2, 2, 2, 1},
	"lhost-qmail":           {20, 19, 19, 19},
	"lhost-receivingses":    {7, 7, 7, 7},
	"lhost-sendgrid":        {2, 2, 2, 2},
	"lhost-sendmail":        {47, 46, 44, 42},
	"lhost-surfcontrol":     {3, 3, 3, 2},
	"lhost-v5sendmail":      {5, 5, 5, 5},
	"lhost-verizon":         {2, 2, 2, 2},
	"lhost-x1":              {2, 2, 2, 0},
	"lhost-x2":              {4, 4, 4, 3},
	"lhost-x3":              {4, 4, 4, 4},
	"lhost-x4":              {1, 1, 1, 1},
	"lhost-x5":              {1, 1, 1, 1},
	"lhost-x6":              {2, 2, 2, 2},
	"lhost-yahoo":           {11, 10, 10, 10},
	"lhost-yandex":          {2, 2, 2, 2},
	"lhost-zoho":            {4, 4, 4, 2},
	"rfc3464":               {25, 22, 22, 19},
	"rfc3834":               {4, 4, 4, 4},
	"rhost-aol":             {5, 5, 5, 4},
	"rhost-apple":           {3, 3, 3, 3},
	"rhost-cox":             {1, 0, 0, 0},
	"rhost-facebook":        {1, 1, 1, 1},
	"rhost-franceptt":       {9, 9, 9, 9},
	"rhost-godaddy":         {2, 2, 2, 2},
	"rhost-google":          {6, 6, 6, 5},
	"rhost-gsuite":          {11, 10, 10, 9},
	"rhost-iua":             {1, 1, 1, 1},
	"rhost-kddi":            {2, 2, 2, 1},
	"rhost-messagelabs":     {2, 2, 2, 1},
	"rhost-microsoft":       {4, 4, 4, 4},
	"rhost-mimecast":        {2, 2, 2, 2},
	"rhost-nttdocomo":       {2, 2, 2, 0},
	"rhost-outlook":         {7, 7, 7, 7},
	"rhost-tencent":         {3, 3, 3, 3},
	"rhost-yahooinc":        {2, 2, 2, 2},
}
