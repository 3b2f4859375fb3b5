package pipeline

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the pipeline's Prometheus instruments.
type Metrics struct {
	messages      prometheus.Counter
	measures      prometheus.Counter
	committed     prometheus.Counter
	deadLettered  *prometheus.CounterVec
	retries       *prometheus.CounterVec
	batchSize     prometheus.Histogram
	commitSeconds prometheus.Histogram
	lag           prometheus.Histogram
}

// NewMetrics creates the instruments and registers them with reg (nil: not
// registered).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		messages: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mymonit_ingest_messages_consumed_total",
			Help: "Messages received from the queue.",
		}),
		measures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mymonit_ingest_measures_consumed_total",
			Help: "Measures found in decodable messages, valid or not.",
		}),
		committed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mymonit_ingest_measures_committed_total",
			Help: "Measures written to the database (an upsert of a redelivered measure counts again).",
		}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mymonit_ingest_dead_lettered_total",
			Help: "Rejected items published to the dead-letter queue, by reason: malformed_message (whole message), invalid_measure, unknown_experiment, database_rejected.",
		}, []string{"reason"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mymonit_ingest_retries_total",
			Help: "Retries of an operation that failed for want of the database or broker.",
		}, []string{"operation"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "mymonit_ingest_batch_measures",
			Help:    "Measures committed per batch (one transaction).",
			Buckets: prometheus.ExponentialBuckets(1, 4, 9),
		}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "mymonit_ingest_commit_seconds",
			Help:    "Time to resolve, commit and dead-letter one batch.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "mymonit_ingest_lag_seconds",
			Help:    "Time from publish (the message's AMQP timestamp, one-second resolution) to ack after commit.",
			Buckets: []float64{0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600},
		}),
	}
	for _, l := range []string{KindMalformed, KindInvalid, KindUnknownExperiment, KindDatabaseRejected} {
		m.deadLettered.WithLabelValues(l)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.messages, m.measures, m.committed, m.deadLettered, m.retries, m.batchSize, m.commitSeconds, m.lag} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register ingest metrics: %w", err)
			}
		}
	}
	return m, nil
}
