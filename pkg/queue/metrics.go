package queue

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// counter is a Prometheus counter that may be absent (no Registerer given).
type counter struct{ c prometheus.Counter }

func (c counter) Add(n int) {
	if c.c != nil && n > 0 {
		c.c.Add(float64(n))
	}
}

// newCounter registers a counter on reg, reusing one already registered under
// the same name (several publishers may share a registry). A nil reg gives a
// counter that counts nothing.
func newCounter(reg prometheus.Registerer, log *zap.Logger, name, help string) counter {
	if reg == nil {
		return counter{}
	}
	c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: "mymonit", Subsystem: "queue", Name: name, Help: help})
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(prometheus.Counter); ok {
				return counter{existing}
			}
		}
		log.Warn("queue: metric not registered", zap.String("metric", name), zap.Error(err))
		return counter{}
	}
	return counter{c}
}
