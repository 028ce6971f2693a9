package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/smarthost-go/smarthost/relay/smtptest"
)

// crashSize is the size of TestCrash: messages and SIGKILLs. The full one
// runs by default; -short runs a smaller one; SMARTHOST_CRASH_MESSAGES
// and SMARTHOST_CRASH_KILLS set either.
func crashSize(t *testing.T) (messages, kills int) {
	messages, kills = 1000, 5
	if testing.Short() {
		messages, kills = 200, 2
	}
	for _, v := range []struct {
		name string
		p    *int
	}{{"SMARTHOST_CRASH_MESSAGES", &messages}, {"SMARTHOST_CRASH_KILLS", &kills}} {
		if s := os.Getenv(v.name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 {
				t.Fatalf("%s=%q: want a positive number", v.name, s)
			}
			*v.p = n
		}
	}
	return messages, kills
}

// TestCrash runs the relay as a process, has concurrent clients submit
// messages with distinct Message-IDs (each sent again until it gets a 250,
// as a client does), and kills the relay with SIGKILL at random moments
// while they do, restarting it each time on the same spool; once every
// message has had its 250, it kills it once more, restarts it, and waits
// for the spool to empty into the sink. Every message that got a 250
// must be at the sink, with the DKIM signature the relay made before the
// 250 (none lost); a message at the sink twice (one whose 250 the client
// did not get, or a delivery the kill cut short) is counted and reported.
func TestCrash(t *testing.T) {
	t.Parallel()
	messages, kills := crashSize(t)
	seed := rand.Uint64()
	rnd := rand.New(rand.NewPCG(seed, 0))
	t.Logf("%d messages, %d kills, seed %d", messages, kills, seed)

	dir := t.TempDir()
	sink := newSink(t, &smtptest.Options{TLS: smtptest.NoTLS})
	providerKey, _ := writeDKIMKey(t, dir, "provider.pem", "ed25519")
	args := []string{"-listen", "127.0.0.1:0", "-hostname", "relay.test", "-trusted", "127.0.0.0/8",
		"-upstream", sink.Addr, "-upstream-tls", "none", "-key-domains", "client.example",
		"-dkim", "relay.test:p1:" + providerKey, "-provider-domain", "relay.test"}
	spool := filepath.Join(dir, "smarthost-data", "spool")

	d := startDaemon(t, dir, nil, args...)
	var addr atomic.Pointer[string]
	addr.Store(&d.addr)

	// The clients: each takes the next message and sends it until it
	// gets a 250, through whichever relay is up.
	const clients = 8
	var (
		next     atomic.Int64
		acked    atomic.Int64
		attempts atomic.Int64
		wg       sync.WaitGroup
	)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for range clients {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(messages) {
					return
				}
				for {
					attempts.Add(1)
					if err := sendPlain(ctx, *addr.Load(), crashID(int(i))); err == nil {
						acked.Add(1)
						break
					}
					if ctx.Err() != nil {
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}

	// The kills: each at a random point of its share of the messages,
	// then a random moment later.
	restarts := 0
	syncArgs := [2][]string{nil, {"-spool-syncfs"}}
	kill := func() {
		t.Helper()
		d.cmd.Process.Kill()
		if code := d.wait(); code != -1 {
			t.Fatalf("the relay ended with %d, not by SIGKILL\n%s", code, d.stderr)
		}
		restarts++
		// Every other start syncs the spool's file system rather than
		// each file (-spool-syncfs); the spool is the same.
		d = startDaemon(t, dir, nil, append(args[:len(args):len(args)], syncArgs[restarts%2]...)...)
		addr.Store(&d.addr)
	}
	share := messages / (kills + 1)
	for k := range kills {
		at := int64(k*share + 1 + rnd.IntN(share))
		waitFor(t, 5*time.Minute, fmt.Sprintf("%d messages accepted", at), func() bool { return acked.Load() >= at })
		time.Sleep(time.Duration(rnd.IntN(20)) * time.Millisecond)
		kill()
	}
	wg.Wait()
	if n := acked.Load(); n != int64(messages) {
		t.Fatalf("%d of %d messages had their 250 before the deadline", n, messages)
	}
	// Once more while the spool drains, if it has not yet.
	if len(spoolEntries(t, spool)) > 0 {
		time.Sleep(time.Duration(rnd.IntN(20)) * time.Millisecond)
		kill()
	}

	waitFor(t, 5*time.Minute, "an empty spool", func() bool { return len(spoolEntries(t, spool)) == 0 })
	if q, _ := filepath.Glob(filepath.Join(spool, "quarantine", "*")); len(q) > 0 {
		t.Errorf("quarantined: %q", q)
	}
	count := map[string]int{}
	signed := regexp.MustCompile(`(^|;)\s*d=relay\.test\s*;`)
	for _, m := range sink.Messages() {
		ids := headerFields(t, m.Data, "Message-ID")
		sigs := headerFields(t, m.Data, "DKIM-Signature")
		if len(ids) != 1 || len(sigs) != 1 || !signed.MatchString(sigs[0]) {
			t.Errorf("a message at the sink with Message-ID %q and DKIM-Signature %q", ids, sigs)
			continue
		}
		count[ids[0]]++
	}
	lost, dups := 0, 0
	for i := range messages {
		switch n := count[crashID(i)]; {
		case n == 0:
			lost++
			if lost <= 10 {
				t.Errorf("message %d got its 250 and was not delivered", i)
			}
		case n > 1:
			dups += n - 1
		}
		delete(count, crashID(i))
	}
	if len(count) > 0 {
		t.Errorf("%d messages at the sink that no client sent: %v", len(count), count)
	}
	if lost > 0 {
		t.Errorf("%d of %d messages lost", lost, messages)
	}
	t.Logf("%d messages with %d attempts and %d restarts after SIGKILL: %d at the sink, %d lost, %d duplicates",
		messages, attempts.Load(), restarts, len(sink.Messages()), lost, dups)
	if code := d.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("exit %d after SIGTERM\n%s", code, d.stderr)
	}
}

func crashID(i int) string { return fmt.Sprintf("<crash-%d@client.example>", i) }
