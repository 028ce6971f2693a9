//go:build !natsqueue

package main

import (
	"context"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/smarthost-go/smarthost/relay"
)

// openNATSQueue stands for the JetStream queue (queue_nats.go, built with
// the tag natsqueue) until package relay/natsqueue has its Queue: it
// returns none, and the relay keeps its queue in the spool under -data,
// while the keys and the suppression list are in NATS already.
func openNATSQueue(ctx context.Context, js jetstream.JetStream, replicas int, logger *slog.Logger) (relay.Queue, error) {
	logger.Warn("the JetStream queue is not in this build: the queue stays in the spool under -data; the API keys and the suppression list are in NATS")
	return nil, nil
}
