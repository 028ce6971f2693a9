package dkim_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/smarthost-go/smarthost/dkim"
	"github.com/smarthost-go/smarthost/internal/peertest"
)

// mailauthScript drives mailauth (Node.js): "verify ZONE FILE..." prints, per
// file, a JSON list with one result per signature; "sign ZONE KEY SELECTOR
// DOMAIN ALG CANON FILE..." writes FILE.signed. Keys come from the zone
// file, through mailauth's resolver option.
const mailauthScript = `
const fs = require('fs');
const { dkimVerify } = require('mailauth/lib/dkim/verify');
const { dkimSign } = require('mailauth/lib/dkim/sign');
const [mode, zoneFile, ...rest] = process.argv.slice(2);
const zone = {};
for (const line of fs.readFileSync(zoneFile, 'utf8').split('\n')) {
    const l = line.replace(/\r$/, '');
    if (!l.trim()) continue;
    const i = l.indexOf(' ');
    zone[l.slice(0, i).replace(/\.$/, '').toLowerCase()] = l.slice(i + 1);
}
const resolver = async (name, type) => {
    const v = zone[name.replace(/\.$/, '').toLowerCase()];
    if (type !== 'TXT' || !v) {
        const e = new Error('not found: ' + name);
        e.code = 'ENOTFOUND';
        throw e;
    }
    return [[v]];
};
(async () => {
    if (mode === 'verify') {
        const out = [];
        for (const f of rest) {
            const r = await dkimVerify(fs.readFileSync(f), { resolver });
            out.push(r.results.map(x => x.status.result + (x.status.comment ? ' (' + x.status.comment + ')' : '')));
        }
        console.log(JSON.stringify(out));
        return;
    }
    const [keyFile, selector, domain, algorithm, canonicalization, ...files] = rest;
    const privateKey = fs.readFileSync(keyFile);
    for (const f of files) {
        const msg = fs.readFileSync(f);
        // signTime is given: without it, mailauth 4.9.5 reads the clock
        // once for the field it signs and again for the field it writes,
        // and when a second passes between the two its own verifier
        // rejects the result ("bad signature").
        const signTime = new Date();
        const r = await dkimSign(msg, { signTime, signatureData: [{ signingDomain: domain, selector, privateKey, algorithm, canonicalization }] });
        if (r.errors && r.errors.length) throw new Error(JSON.stringify(r.errors));
        fs.writeFileSync(f + '.signed', Buffer.concat([Buffer.from(r.signatures), msg]));
    }
})().catch(e => { console.error(e); process.exit(1); });
`

func runMailauth(t *testing.T, script string, args ...string) {
	t.Helper()
	if out, err := peertest.Node(t, script, args...).CombinedOutput(); err != nil {
		t.Fatalf("mailauth: %v\n%s", err, out)
	}
}

// TestInteropMailauth: what we sign (two signatures, four
// canonicalizations) mailauth verifies, and what mailauth signs we verify.
func TestInteropMailauth(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	script := filepath.Join(dir, "peer.js")
	os.WriteFile(script, []byte(mailauthScript), 0o600)
	zoneFile, _ := filepath.Abs("testdata/rfc8463/keys.zone")
	msgs := interopMessages(t, false)
	signers := interopSigners(t)

	files := signedByUs(t, dir, msgs, signers)
	// A control: the same signatures over an altered body must not pass.
	tampered := filepath.Join(dir, "tampered.eml")
	signed := signOurs(t, msgs["rfc8463"], signers[0].s(dkim.Relaxed, dkim.Relaxed))
	os.WriteFile(tampered, append(signed, "appended\r\n"...), 0o600)
	var got [][]string
	peertest.RunJSON(t, peertest.Node(t, script, append([]string{"verify", zoneFile, tampered}, files...)...), nil, &got)
	if len(got) != len(files)+1 {
		t.Fatalf("mailauth gave %d results for %d files", len(got), len(files)+1)
	}
	if len(got[0]) != 1 || got[0][0] == "pass" {
		t.Errorf("mailauth passes an altered body: %v", got[0])
	}
	got = got[1:]
	for i, f := range files {
		if len(got[i]) != 2 || got[i][0] != "pass" || got[i][1] != "pass" {
			t.Errorf("mailauth does not verify our %s: %v", filepath.Base(f), got[i])
		}
	}

	checkPeerSigned(t, dir, "mailauth", msgs, signers, func(k interopSigner, c [2]dkim.Canonicalization, files []string) {
		runMailauth(t, script, append([]string{"sign", zoneFile, k.pem, k.sel, "football.example.com", k.alg, string(c[0]) + "/" + string(c[1])}, files...)...)
	})
}
