package logging

import "github.com/prometheus/client_golang/prometheus"

// collector exposes the shipper's counters to Prometheus.
type collector struct {
	l                                     *Logging
	shipped, dropped, reconnects, connect *prometheus.Desc
}

func newCollector(l *Logging) *collector {
	return &collector{
		l: l,
		shipped: prometheus.NewDesc("mymonit_log_lines_shipped_total",
			"Log lines written to Logstash.", nil, nil),
		dropped: prometheus.NewDesc("mymonit_log_lines_dropped_total",
			"Log lines not shipped to Logstash (buffer full, connection failures, shutdown); they still went to stdout.", nil, nil),
		reconnects: prometheus.NewDesc("mymonit_log_shipper_reconnects_total",
			"Connections to Logstash re-established after the first one.", nil, nil),
		connect: prometheus.NewDesc("mymonit_log_shipper_connected",
			"1 while a connection to Logstash is open, else 0.", nil, nil),
	}
}

// Collector returns a prometheus.Collector of the shipper's counters:
// mymonit_log_lines_shipped_total, mymonit_log_lines_dropped_total,
// mymonit_log_shipper_reconnects_total and mymonit_log_shipper_connected.
// Register it once, on the service's registry.
func (l *Logging) Collector() prometheus.Collector { return l.collector }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.shipped
	ch <- c.dropped
	ch <- c.reconnects
	ch <- c.connect
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.l.Stats()
	connected := 0.0
	if st.Connected {
		connected = 1
	}
	for _, m := range [...]struct {
		desc *prometheus.Desc
		typ  prometheus.ValueType
		v    float64
	}{
		{c.shipped, prometheus.CounterValue, float64(st.Sent)},
		{c.dropped, prometheus.CounterValue, float64(st.Dropped)},
		{c.reconnects, prometheus.CounterValue, float64(st.Reconnects)},
		{c.connect, prometheus.GaugeValue, connected},
	} {
		metric, err := prometheus.NewConstMetric(m.desc, m.typ, m.v)
		if err != nil {
			metric = prometheus.NewInvalidMetric(m.desc, err)
		}
		ch <- metric
	}
}
