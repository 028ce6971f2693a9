package relay

import "testing"

func TestSyncfsReportsErrors(t *testing.T) {
	t.Parallel()
	for release, want := range map[string]bool{
		"6.18.44-fc-v1252": true,
		"6.1.0-18-amd64":   true,
		"5.8.0":            true,
		"5.8-rc1":          true,
		"5.10":             true,
		"10.0":             true,
		"5.7.19":           false,
		"4.19.0-18-amd64":  false,
		"5":                false,
		"":                 false,
		"x.y":              false,
	} {
		if got := syncfsReportsErrors(release); got != want {
			t.Errorf("syncfsReportsErrors(%q) = %v, want %v", release, got, want)
		}
	}
}
