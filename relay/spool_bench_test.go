package relay

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// BenchmarkSpoolCommit commits 10 KiB messages in rounds of N at once, as
// N SMTP sessions ending their DATA together would, alternately to a
// spool that groups its directory syncs (each shared by the commits whose
// renames it covers) and to one that syncs the directory once per commit.
// The rounds alternate so that both see the same disk, however its speed
// drifts; each reports its own commits/s and directory syncs per commit,
// and "speedup" is the ratio of their times.
func BenchmarkSpoolCommit(b *testing.B) {
	for _, writers := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			benchmarkSpoolCommit(b, writers)
		})
	}
}

func benchmarkSpoolCommit(b *testing.B, writers int) {
	b.ReportAllocs()
	spools := map[string]*Spool{}
	for name, noGroup := range map[string]bool{"grouped": false, "ungrouped": true} {
		s, err := NewSpool(b.TempDir(), &SpoolOptions{noGroup: noGroup})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		spools[name] = s
	}
	round := func(s *Spool) time.Duration {
		start := time.Now()
		var wg sync.WaitGroup
		for i := range writers {
			wg.Go(func() {
				if _, err := commitOne(b.Context(), s, fmt.Sprintf("rcpt%d@example.org", i)); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
		return time.Since(start)
	}
	// Each iteration commits a round to each spool.
	b.SetBytes(int64(2 * writers * len(commitContent)))
	elapsed := map[string]time.Duration{}
	for i := 0; b.Loop(); i++ {
		order := []string{"grouped", "ungrouped"}
		if i%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		for _, name := range order {
			elapsed[name] += round(spools[name])
		}
	}
	commits := float64(b.N * writers)
	for name, s := range spools {
		b.ReportMetric(commits/elapsed[name].Seconds(), name+"-commits/s")
		b.ReportMetric(float64(s.syncer.syncs.Load())/commits, name+"-dirsyncs/commit")
	}
	b.ReportMetric(elapsed["ungrouped"].Seconds()/elapsed["grouped"].Seconds(), "speedup")
}
