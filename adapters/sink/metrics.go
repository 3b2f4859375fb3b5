package sink

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the sink's Prometheus metrics, labelled with the adapter.
type metrics struct {
	received  prometheus.Counter
	published prometheus.Counter
	messages  prometheus.Counter
	rejected  *prometheus.CounterVec
	retries   prometheus.Counter
	confirm   prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer, adapter string, capacity int, depth func() float64) (*metrics, error) {
	labels := prometheus.Labels{"adapter": adapter}
	m := &metrics{
		received: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mymonit_adapter_measures_received_total", ConstLabels: labels,
			Help: "Items the adapter read from its source: measures handed to the sink plus those it could not parse.",
		}),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mymonit_adapter_measures_published_total", ConstLabels: labels,
			Help: "Measures confirmed by the broker.",
		}),
		messages: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mymonit_adapter_messages_published_total", ConstLabels: labels,
			Help: "Messages (batches of measures) confirmed by the broker.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mymonit_adapter_measures_rejected_total", ConstLabels: labels,
			Help: "Items refused or not published, by reason.",
		}, []string{"reason"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mymonit_adapter_publish_retries_total", ConstLabels: labels,
			Help: "Publish attempts that timed out waiting for confirms and were made again.",
		}),
		confirm: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "mymonit_adapter_confirm_seconds", ConstLabels: labels,
			Help:    "Time from a message closing (full or flush interval) to its confirm.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 14),
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{
		m.received, m.published, m.messages, m.rejected, m.retries, m.confirm,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mymonit_adapter_buffer_measures", ConstLabels: labels,
			Help: "Measures held from receipt until confirmed (bounded by mymonit_adapter_buffer_capacity).",
		}, depth),
		prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mymonit_adapter_buffer_capacity", ConstLabels: labels,
			Help: "MYMONIT_ADAPTER_BUFFER: measures the buffer holds before sources wait.",
		}),
	} {
		if g, ok := c.(prometheus.Gauge); ok {
			g.Set(float64(capacity))
		}
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register: %w", err)
		}
	}
	return m, nil
}
