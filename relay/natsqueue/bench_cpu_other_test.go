//go:build !unix

package natsqueue_test

import (
	"testing"
	"time"
)

// cpuTime is 0 where the process's CPU time is not at hand.
func cpuTime(*testing.B) time.Duration { return 0 }
