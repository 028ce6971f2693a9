//go:build !unix

package dkim_test

import "time"

func cpuNow() time.Duration { return 0 }
