package benchcmp_test

import "github.com/smarthost-go/smarthost/internal/spfsuite"

// The suite loaders are the spf package's, from internal/spfsuite.
type (
	suiteCase = spfsuite.Case
	resolver  = spfsuite.Resolver
)

func loadSuiteFile(path string) ([]*suiteCase, error) { return spfsuite.LoadFile(path) }
