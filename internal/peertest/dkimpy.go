package peertest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// dkimpyVerify verifies every DKIM-Signature of each message file with
// dkimpy, its keys from the "name TXT-value" lines of a zone file given as
// the first argument (dkimpy's dnsfunc), and prints a JSON list per message
// of true or the error, for each signature from the top.
const dkimpyVerify = `
import sys, json, dkim
zone = {}
for line in open(sys.argv[1]):
    n, v = line.rstrip('\n').split(' ', 1)
    zone[n.rstrip('.').lower()] = v.encode()
def dnsfunc(name, timeout=5):
    if isinstance(name, bytes):
        name = name.decode()
    return zone.get(name.rstrip('.').lower())
out = []
for path in sys.argv[2:]:
    msg = open(path, 'rb').read()
    d = dkim.DKIM(msg)
    n = len([h for h in d.headers if h[0].lower() == b'dkim-signature'])
    res = []
    for i in range(n):
        try:
            res.append(bool(d.verify(idx=i, dnsfunc=dnsfunc)))
        except Exception as e:
            res.append(str(e))
    out.append(res)
print(json.dumps(out))
`

// DkimpyVerify verifies every DKIM-Signature of each of msgs with dkimpy
// run by py (from Python(t, "dkim", "nacl")), the keys looked up in zone,
// lines of "name TXT-value". It returns, per message, one entry per
// signature from the top: true, false, or dkimpy's error text.
func DkimpyVerify(t testing.TB, py, zone string, msgs ...[]byte) [][]any {
	t.Helper()
	dir := t.TempDir()
	files := map[string][]byte{"keys.zone": []byte(zone), "verify.py": []byte(dkimpyVerify)}
	args := []string{filepath.Join(dir, "verify.py"), filepath.Join(dir, "keys.zone")}
	for i, m := range msgs {
		name := fmt.Sprintf("m%d.eml", i)
		files[name] = m
		args = append(args, filepath.Join(dir, name))
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var got [][]any
	RunJSON(t, exec.Command(py, args...), nil, &got)
	if len(got) != len(msgs) {
		t.Fatalf("dkimpy gave %d results for %d messages", len(got), len(msgs))
	}
	return got
}
