package main

import (
	"context"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/smarthost-go/smarthost/relay"
	"github.com/smarthost-go/smarthost/relay/natsqueue"
)

// openNATSQueue opens the JetStream queue of -queue, on the connection of
// the fleet's key and suppression buckets, its stream created with
// replicas copies (-nats-replicas).
func openNATSQueue(ctx context.Context, js jetstream.JetStream, replicas int, logger *slog.Logger) (relay.Queue, error) {
	ctx, cancel := context.WithTimeout(ctx, natsTimeout)
	defer cancel()
	q, err := natsqueue.New(ctx, js, &natsqueue.Options{Replicas: replicas, Logger: logger})
	if err != nil {
		return nil, err
	}
	return q, nil
}
