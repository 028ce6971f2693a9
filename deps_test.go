package smarthost_test

import (
	"go/build"
	"path"
	"strings"
	"testing"
)

const module = "github.com/smarthost-go/smarthost"

// TestLeafImports keeps the layout of the design: the leaf packages import
// none of each other and nothing of dnsauth, and do not pull in miekg/dns
// (the packages of the module they share, such as internal/dnsname, import
// only the standard library and each other).
func TestLeafImports(t *testing.T) {
	t.Parallel()
	leaves := []string{"spf", "dkim", "srs", "dmarc"}
	for _, leaf := range leaves {
		deps := map[string]bool{}
		imports(t, leaf, deps)
		for dep := range deps {
			rel, inModule := strings.CutPrefix(dep, module+"/")
			switch {
			case strings.HasPrefix(dep, "github.com/miekg/dns"):
				t.Errorf("%s imports %s", leaf, dep)
			case inModule && (rel == "dnsauth" || strings.HasPrefix(rel, "dnsauth/")):
				t.Errorf("%s imports %s", leaf, dep)
			case inModule:
				for _, other := range leaves {
					if rel == other {
						t.Errorf("%s imports the leaf %s", leaf, dep)
					}
				}
			}
		}
	}
}

// TestBounceImports keeps relay/bounce free of relay, so that relay can
// import it: it imports no package of the module.
func TestBounceImports(t *testing.T) {
	t.Parallel()
	deps := map[string]bool{}
	imports(t, "relay/bounce", deps)
	for dep := range deps {
		if dep == module || strings.HasPrefix(dep, module+"/") {
			t.Errorf("relay/bounce imports %s", dep)
		}
	}
}

// imports adds to deps every import path that the non-test files of the
// module's package at dir import, directly or through other packages of
// the module.
func imports(t *testing.T, dir string, deps map[string]bool) {
	t.Helper()
	p, err := build.ImportDir(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range p.Imports {
		if deps[imp] {
			continue
		}
		deps[imp] = true
		if rel, ok := strings.CutPrefix(imp, module+"/"); ok {
			imports(t, path.Clean(rel), deps)
		}
	}
}

// TestRelayNoPrometheus keeps Prometheus in the daemon: package relay
// exposes its counts through relay.Metrics, so that embedding programs
// choose their metrics library.
func TestRelayNoPrometheus(t *testing.T) {
	t.Parallel()
	deps := map[string]bool{}
	imports(t, "relay", deps)
	for dep := range deps {
		if strings.HasPrefix(dep, "github.com/prometheus/") {
			t.Errorf("relay imports %s", dep)
		}
	}
}
