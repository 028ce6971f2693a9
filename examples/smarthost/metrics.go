package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/smarthost-go/smarthost/relay"
)

// promMetrics is relay.Metrics on Prometheus counters, in a registry of
// its own (no global state), with the queue's depth and oldest age read
// from the spool at each scrape.
type promMetrics struct {
	reg       *prometheus.Registry
	accepted  prometheus.Counter
	refused   *prometheus.CounterVec
	authFails prometheus.Counter
	rcpts     *prometheus.CounterVec
	latency   prometheus.Histogram
}

// newPromMetrics registers the relay's metrics, and the Go runtime's and
// the process's; the queue's depth and age with a spool only (nil with
// -queue, whose stream NATS's own monitoring shows).
func newPromMetrics(spool *relay.Spool) *promMetrics {
	m := &promMetrics{
		reg: prometheus.NewRegistry(),
		accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "smarthost_messages_accepted_total",
			Help: "Messages answered 250 after DATA: in the spool, synced.",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smarthost_messages_refused_total",
			Help: "MAIL, RCPT and DATA commands refused, by the enhanced status code of the reply (RFC 3463).",
		}, []string{"reason"}),
		authFails: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "smarthost_auth_failures_total",
			Help: "Failed AUTH attempts: a wrong user or API key.",
		}),
		rcpts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smarthost_recipients_total",
			Help: "Outcomes of recipients' delivery attempts (delivered, deferred, bounced, dropped), and the bounces that came back to the return paths, by the enhanced status code of the remote reply, \"expired\", or \"no reply\".",
		}, []string{"outcome", "reason"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "smarthost_delivery_latency_seconds",
			Help:    "Time from a message's acceptance to the delivery of a recipient.",
			Buckets: []float64{0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600},
		}),
	}
	m.reg.MustRegister(m.accepted, m.refused, m.authFails, m.rcpts, m.latency,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	if spool != nil {
		m.reg.MustRegister(newQueueCollector(spool))
	}
	return m
}

// queueCollector reads the queue's depth and oldest age from one
// Spool.Stats, so that a scrape sees the two of the same moment.
type queueCollector struct {
	spool      *relay.Spool
	depth, age *prometheus.Desc
}

func newQueueCollector(spool *relay.Spool) *queueCollector {
	return &queueCollector{
		spool: spool,
		depth: prometheus.NewDesc("smarthost_queue_messages",
			"Messages in the spool, waiting or being delivered.", nil, nil),
		age: prometheus.NewDesc("smarthost_queue_oldest_age_seconds",
			"Age of the oldest message in the spool; 0 when it is empty.", nil, nil),
	}
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.depth
	ch <- c.age
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	n, oldest := c.spool.Stats()
	age := 0.0
	if !oldest.IsZero() {
		age = time.Since(oldest).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(c.age, prometheus.GaugeValue, age)
}

func (m *promMetrics) MessageAccepted(string, int)  { m.accepted.Inc() }
func (m *promMetrics) MessageRefused(reason string) { m.refused.WithLabelValues(reason).Inc() }
func (m *promMetrics) AuthFailed()                  { m.authFails.Inc() }

func (m *promMetrics) Recipient(outcome relay.EventType, reason string, latency time.Duration) {
	m.rcpts.WithLabelValues(string(outcome), reason).Inc()
	if outcome == relay.EventDelivered {
		m.latency.Observe(latency.Seconds())
	}
}

// serveMetrics serves /metrics and /healthz on ln until ctx ends.
func serveMetrics(ctx context.Context, ln net.Listener, m *promMetrics, logger *slog.Logger) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Error("the metrics server failed", "err", err)
	}
}

// multiEvents sends each event to every one of its Events.
type multiEvents []relay.Events

func (m multiEvents) Emit(ctx context.Context, e *relay.Event) {
	for _, ev := range m {
		ev.Emit(ctx, e)
	}
}
