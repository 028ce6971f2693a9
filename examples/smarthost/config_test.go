package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// runMain runs the program in this process with the environment env and
// returns its exit status, standard output and standard error.
func runMain(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb, func(k string) string { return env[k] })
	return code, out.String(), errb.String()
}

// checked runs the program with -check and args, and returns the settings
// it prints.
func checked(t *testing.T, env map[string]string, args ...string) *Config {
	t.Helper()
	code, out, errOut := runMain(t, env, append([]string{"-check"}, args...)...)
	if code != 0 || errOut != "" {
		t.Fatalf("-check %q: exit %d, stderr %q", args, code, errOut)
	}
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(out))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("-check printed what is not a configuration: %v\n%s", err, out)
	}
	return &c
}

// settingNames are the keys of the configuration file.
func settingNames() []string {
	var names []string
	ty := reflect.TypeFor[Config]()
	for i := range ty.NumField() {
		names = append(names, strings.Split(ty.Field(i).Tag.Get("yaml"), ",")[0])
	}
	return names
}

// TestNoFlags: without flags, the relay listens on 127.0.0.1:2525 and keeps
// its files under ./smarthost-data, and delivers by MX (no upstream).
func TestNoFlags(t *testing.T) {
	c := checked(t, nil)
	want := &Config{
		Data: "smarthost-data", Listen: "127.0.0.1:2525", Hostname: c.Hostname,
		TLSCert: "smarthost-data/tls-cert.pem", TLSKey: "smarthost-data/tls-key.pem",
		Keys: "smarthost-data/keys.json", Spool: "smarthost-data/spool",
		Suppressions: "smarthost-data/suppressions.json", Suppressed: "refuse",
		UpstreamTLS: "starttls", ShutdownTimeout: "30s", MaxConns: 1000, MaxConnsPerIP: 20,
	}
	if !reflect.DeepEqual(c, want) || c.Hostname == "" {
		t.Errorf("without flags:\n%+v\nwant\n%+v", c, want)
	}
}

// TestSample: the sample configuration loads, its relative paths taken
// from its own directory; it names every setting, and every key it
// mentions in a comment is one.
func TestSample(t *testing.T) {
	t.Parallel()
	path, err := filepath.Abs("smarthost.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(path)
	c := checked(t, nil, "-config", path)
	data := filepath.Join(dir, "smarthost-data")
	want := &Config{
		Data: data, Listen: "127.0.0.1:2525", Hostname: "relay.provider.example",
		TLSCert: filepath.Join(data, "tls-cert.pem"), TLSKey: filepath.Join(data, "tls-key.pem"),
		Keys: filepath.Join(data, "keys.json"), Spool: filepath.Join(data, "spool"),
		Suppressions: filepath.Join(data, "suppressions.json"), Suppressed: "refuse",
		UpstreamTLS: "starttls", ReturnPath: []string{"customer.example:em1234.customer.example"},
		SRSDomain: "srs.provider.example", SRSSecrets: filepath.Join(data, "srs-secrets"),
		Events: filepath.Join(data, "events.jsonl"), Trusted: []string{"10.0.0.0/8"}, ShutdownTimeout: "30s",
		MaxConns: 1000, MaxConnsPerIP: 20,
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("the sample:\n%+v\nwant\n%+v", c, want)
	}

	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	key := regexp.MustCompile(`^#?\s*([a-z][a-z-]*):(\s|$)`)
	names := settingNames()
	mentioned := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		m := key.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		if !slices.Contains(names, m[1]) {
			t.Errorf("the sample mentions %q, which is not a setting: %q", m[1], sc.Text())
		}
		mentioned[m[1]] = true
	}
	for _, n := range names {
		if !mentioned[n] {
			t.Errorf("the sample does not mention the setting %q", n)
		}
	}
}

// TestSettingsAreFlags: every key of the file is a flag of the same name.
func TestSettingsAreFlags(t *testing.T) {
	t.Parallel()
	c, _, _, _ := serveCommand(defaultConfig(), nil, nil)
	for _, n := range settingNames() {
		if c.Flags.Lookup(n) == nil {
			t.Errorf("the setting %q is no flag", n)
		}
	}
}

// TestFlagsOverrideFile: a flag overrides the file's key; a list flag
// replaces the file's list; the rest of the file stays. The password of
// the upstream is taken from the environment and printed nowhere.
func TestFlagsOverrideFile(t *testing.T) {
	t.Parallel()
	const password = "upstream-s3cret-password"
	dir := t.TempDir()
	c := checked(t, map[string]string{passwordVar: password}, "-config", "smarthost.yaml",
		"-listen", "127.0.0.1:2600", "-trusted", "127.0.0.0/8,::1/128", "-data", dir,
		"-return-path", "other.example:bounce.other.example", "-return-path", "third.example:third.example",
		"-upstream", "smtp.upstream.example:587", "-upstream-user", "relay")
	if c.Listen != "127.0.0.1:2600" || c.Data != dir || c.Keys != filepath.Join(dir, "keys.json") {
		t.Errorf("listen %q, data %q, keys %q: want the flags'", c.Listen, c.Data, c.Keys)
	}
	if want := []string{"127.0.0.0/8", "::1/128"}; !slices.Equal(c.Trusted, want) {
		t.Errorf("trusted %q, want %q (the flag's list in place of the file's)", c.Trusted, want)
	}
	if want := []string{"other.example:bounce.other.example", "third.example:third.example"}; !slices.Equal(c.ReturnPath, want) {
		t.Errorf("return-path %q, want %q", c.ReturnPath, want)
	}
	if c.Hostname != "relay.provider.example" || c.SRSDomain != "srs.provider.example" || c.Upstream != "smtp.upstream.example:587" {
		t.Errorf("hostname %q, srs-domain %q, upstream %q: want the file's and the flag's", c.Hostname, c.SRSDomain, c.Upstream)
	}
	if c.BounceListen != "" {
		t.Errorf("bounce-listen %q, want none: the sample does not set it", c.BounceListen)
	}
	if c = checked(t, nil, "-config", "smarthost.yaml", "-data", dir, "-bounce-listen", "127.0.0.1:0"); c.BounceListen != "127.0.0.1:0" {
		t.Errorf("bounce-listen %q, want the flag's", c.BounceListen)
	}
	yml := filepath.Join(dir, "bounce.yaml")
	if err := os.WriteFile(yml, []byte("bounce-listen: 0.0.0.0:25\nsrs-domain: srs.provider.example\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if c = checked(t, nil, "-config", yml, "-data", dir); c.BounceListen != "0.0.0.0:25" {
		t.Errorf("bounce-listen %q, want the file's 0.0.0.0:25", c.BounceListen)
	}
	code, out, errOut := runMain(t, map[string]string{passwordVar: password}, "-check", "-upstream", "h.example:587", "-upstream-user", "relay")
	if code != 0 || strings.Contains(out+errOut, password) {
		t.Errorf("exit %d; the password in the output:\n%s%s", code, out, errOut)
	}
}

// TestBadSettings: a bad value, in a flag or in the file, and a file that
// cannot be used are usage errors (exit 2) found before the relay
// listens, each one line naming the flag, or the file and its key.
func TestBadSettings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	missing := filepath.Join(dir, "missing")
	garbage := write("garbage.pem", "not a key\n")
	unknownKey := write("unknown.yaml", "listen: 127.0.0.1:2525\nlisen: 127.0.0.1:25\n")
	badListen := write("bad-listen.yaml", "listen: nowhere\n")
	badList := write("bad-list.yaml", "trusted: 10.0.0.0/8\n")
	keys := write("bad-keys.json", `{"version": 1, "keys": [}`)
	emptySecret := write("empty-secret", "\n\n")
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"-listen", "nowhere"}, nil, `-listen "nowhere": want HOST:PORT`},
		{[]string{"-listen-tls", "127.0.0.1:99999"}, nil, `-listen-tls "127.0.0.1:99999": want HOST:PORT`},
		{[]string{"-bounce-listen", "nowhere"}, nil, `-bounce-listen "nowhere": want HOST:PORT`},
		{[]string{"-bounce-listen", "127.0.0.1:2526"}, nil, "-bounce-listen needs -return-path or -srs-domain"},
		{[]string{"-abuse", "abuse"}, nil, `-abuse "abuse": not an address`},
		{[]string{"-abuse", "abuse@relay.example"}, nil, "-abuse needs -bounce-listen and -return-path"},
		{[]string{"-hostname", "a b"}, nil, `-hostname "a b": not a domain name`},
		{[]string{"-upstream", "smtp.example"}, nil, `-upstream "smtp.example": want HOST:PORT`},
		{[]string{"-upstream", "smtp.example:587", "-upstream-tls", "ssl"}, nil, `-upstream-tls "ssl": want starttls, implicit or none`},
		{[]string{"-upstream", "smtp.example:587", "-upstream-user", "u"}, nil, "-upstream-user needs the password in the environment variable " + passwordVar},
		{[]string{"-upstream", "smtp.example:587", "-upstream-tls", "none", "-upstream-user", "u"}, map[string]string{passwordVar: "pw"}, "-upstream-user with -upstream-tls none"},
		{[]string{"-upstream-user", "u"}, map[string]string{passwordVar: "pw"}, "-upstream-user needs -upstream"},
		{[]string{"-upstream", "smtp.example:587", "-upstream-ca", missing}, nil, "-upstream-ca: open " + missing},
		{[]string{"-upstream", "smtp.example:587", "-upstream-ca", garbage}, nil, "-upstream-ca " + garbage + ": no PEM certificate"},
		{[]string{"-dkim", "customer.example:s1"}, nil, `-dkim "customer.example:s1": want DOMAIN:SELECTOR:KEYFILE`},
		{[]string{"-dkim", "custo mer.example:s1:" + garbage}, nil, `-dkim "custo mer.example:s1:` + garbage + `": `},
		{[]string{"-dkim", "customer.example:s1:" + missing}, nil, "-dkim: open " + missing},
		{[]string{"-dkim", "customer.example:s1:" + garbage}, nil, "-dkim " + garbage + ": "},
		{[]string{"-provider-domain", "provider.example"}, nil, `-provider-domain "provider.example": no -dkim key of that domain`},
		{[]string{"-return-path", "customer.example"}, nil, `-return-path "customer.example": want DOMAIN:SUBDOMAIN`},
		{[]string{"-return-path", "customer.example:em1234.other.example"}, nil, "em1234.other.example is not customer.example or under it"},
		{[]string{"-return-path", "a.example:a.example", "-return-path", "A.example:b.a.example"}, nil, "a second return path for a.example"},
		{[]string{"-srs-domain", "srs..example"}, nil, `-srs-domain "srs..example": not a domain name`},
		{[]string{"-srs-secrets", garbage}, nil, "-srs-secrets needs -srs-domain"},
		{[]string{"-srs-domain", "srs.example", "-srs-secrets", missing}, nil, "-srs-secrets: open " + missing},
		{[]string{"-trusted", "10.0.0.0/33"}, nil, `-trusted "10.0.0.0/33": want CIDR`},
		{[]string{"-trusted", "10.0.0.1"}, nil, `-trusted "10.0.0.1": want CIDR`},
		{[]string{"-key-domains", "localhost"}, nil, `-key-domains "localhost": not a domain name`},
		{[]string{"-max-connections-per-ip", "0"}, nil, "-max-connections-per-ip 0: want a positive number, or -1 for no limit"},
		{[]string{"-max-connections", "many"}, nil, `invalid value "many" for flag -max-connections`},
		{[]string{"-suppressed", "bounce"}, nil, `-suppressed "bounce": want refuse or drop`},
		{[]string{"-shutdown-timeout", "soon"}, nil, `-shutdown-timeout "soon": want a positive duration`},
		{[]string{"-tls-cert", garbage}, nil, "-tls-cert and -tls-key go together"},
		{[]string{"-tls-cert", missing, "-tls-key", missing}, nil, "-tls-cert, -tls-key: open " + missing},
		{[]string{"-keys", keys}, nil, "-keys: "},
		{[]string{"-metrics", "9125"}, nil, `-metrics "9125": want HOST:PORT`},
		{[]string{"-webhook", "http://hooks.example/events", "-webhook-secret-file", garbage}, nil, `-webhook: webhook URL "http://hooks.example/events": plain http only to a loopback address`},
		{[]string{"-webhook", "https://hooks.example/events"}, nil, "-webhook needs -webhook-secret-file"},
		{[]string{"-webhook-secret-file", garbage}, nil, "-webhook-secret-file needs -webhook"},
		{[]string{"-webhook", "https://hooks.example/events", "-webhook-secret-file", missing}, nil, "-webhook-secret-file: open " + missing},
		{[]string{"-webhook", "https://hooks.example/events", "-webhook-secret-file", emptySecret}, nil, "-webhook-secret-file: " + emptySecret + ": no secret in file"},
		{[]string{"-config", missing}, nil, "-config: open " + missing},
		{[]string{"-config", unknownKey}, nil, "-config: " + unknownKey + ": line 2: field lisen not found"},
		{[]string{"-config", badListen}, nil, "-config " + badListen + `: listen "nowhere": want HOST:PORT`},
		{[]string{"-config", badList}, nil, "-config: " + badList + ": line 1: cannot unmarshal"},
		{[]string{"-config", badListen, "-listen", "127.0.0.1:0", "-trusted", "x"}, nil, `-trusted "x": want CIDR`},
		{[]string{"-bogus"}, nil, "flag provided but not defined: -bogus"},
		{[]string{"extra"}, nil, `unexpected argument "extra"`},
	} {
		args := append([]string{"-check", "-data", dir}, tc.args...)
		code, out, errOut := runMain(t, tc.env, args...)
		msg, ok := strings.CutPrefix(errOut, "smarthost: ")
		if code != 2 || out != "" || !ok || strings.Count(errOut, "\n") != 1 || !strings.Contains(msg, tc.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 2 and one line with %q", tc.args, code, out, errOut, tc.want)
		}
	}
	// -check made nothing.
	if _, err := os.Stat(filepath.Join(dir, "spool")); err == nil {
		t.Error("-check made the spool")
	}
}

// TestFirstKeyDomains: the first key may send from the customers' domains,
// those of the DKIM keys but the provider's and those of the return
// paths; from example.com (RFC 2606) when there are none; from
// -key-domains when it is given.
func TestFirstKeyDomains(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg  Config
		want []string
	}{
		{Config{}, []string{"example.com"}},
		{Config{DKIM: []string{"B.example:s1:k1", "provider.example:p1:k2", "a.example:s1:k3"}, ProviderDomain: "provider.example",
			ReturnPath: []string{"c.example:em1.c.example", "a.example:em2.a.example"}}, []string{"a.example", "b.example", "c.example"}},
		{Config{DKIM: []string{"provider.example:p1:k2"}, ProviderDomain: "provider.example"}, []string{"example.com"}},
		{Config{DKIM: []string{"a.example:s1:k1"}, KeyDomains: []string{"shop.example", "*.shop.example"}}, []string{"shop.example", "*.shop.example"}},
	} {
		c := defaultConfig()
		c.Hostname, c.DKIM, c.ProviderDomain, c.ReturnPath, c.KeyDomains = "relay.test", tc.cfg.DKIM, tc.cfg.ProviderDomain, tc.cfg.ReturnPath, tc.cfg.KeyDomains
		s, err := checkConfig(c, func(k string) string { return "-" + k }, func(string) string { return "" })
		if err != nil {
			t.Errorf("%+v: %v", tc.cfg, err)
		} else if !slices.Equal(s.keyDomains, tc.want) {
			t.Errorf("%+v: first key domains %q, want %q", tc.cfg, s.keyDomains, tc.want)
		}
	}
}

// TestWebhookMetricsSettings: the webhook, its secret file (taken from the
// configuration file's directory) and the metrics address are settings of
// the file, printed by -check.
func TestWebhookMetricsSettings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hook-secret"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "smarthost.yaml")
	if err := os.WriteFile(conf, []byte("webhook: http://[::1]:8080/events\nwebhook-secret-file: hook-secret\nmetrics: 127.0.0.1:9125\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := checked(t, nil, "-config", conf, "-data", dir)
	if c.Webhook != "http://[::1]:8080/events" || c.WebhookSecret != filepath.Join(dir, "hook-secret") || c.Metrics != "127.0.0.1:9125" {
		t.Errorf("webhook %q, webhook-secret-file %q, metrics %q", c.Webhook, c.WebhookSecret, c.Metrics)
	}
	code, out, errOut := runMain(t, nil, "-check", "-config", conf, "-data", dir)
	if code != 0 || strings.Contains(out+errOut, "s3cret") {
		t.Errorf("exit %d; the secret in the output:\n%s%s", code, out, errOut)
	}
}
