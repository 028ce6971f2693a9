// Package natsqueue puts the relay's queue (relay.Queue) on NATS
// JetStream, so that a fleet of relays shares one queue.
package natsqueue
