//go:build unix

package dkim_test

import (
	"syscall"
	"time"
)

// cpuNow is the CPU time of the process: benchmarks report it beside the
// wall time, which on a shared machine also counts time spent waiting.
func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
