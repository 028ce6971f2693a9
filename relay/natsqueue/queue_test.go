package natsqueue_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/relay/natsqueue"
	"github.com/smarthost-go/smarthost/relay/queuetest"
)

func TestQueue(t *testing.T) {
	t.Parallel()
	s := runServer(t)
	var n atomic.Int32
	queuetest.Run(t, func(t *testing.T, now func() time.Time) (relay.Queue, func() relay.Queue) {
		prefix := fmt.Sprintf("T%d", n.Add(1))
		open := func() relay.Queue {
			_, js := connect(t, s.ClientURL())
			q, err := natsqueue.New(context.Background(), js, &natsqueue.Options{
				Prefix:   prefix,
				AckWait:  time.Second,
				MaxDelay: -1,
				Peek:     8,
				Now:      now,
			})
			if err != nil {
				t.Fatal(err)
			}
			return q
		}
		return open(), open
	})
}
