// Package live fans the measure messages of the measures exchange out to the
// clients watching an experiment, for the API's Server-Sent Events stream.
//
// A Hub subscribes to the exchange through a Source (a *queue.Tap), binding
// an experiment when its first watcher arrives and unbinding it when the
// last one leaves, so a replica receives only what someone there watches.
// Each Subscription has a bounded buffer: a watcher that cannot keep up
// loses measures, and Dropped tells it how many, rather than slowing the
// hub or the other watchers down. Live data is what was published, before
// ingest stored it: a measure seen live may still be dead-lettered later.
package live

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/mymonit/mymonit/pkg/measure"
	"github.com/mymonit/mymonit/pkg/queue"
)

// Source delivers the measure messages of the bound experiments;
// *queue.Tap implements it.
type Source interface {
	Bind(experiment string) error
	Unbind(experiment string) error
	Connected() bool
}

// ErrUnavailable is returned by Subscribe while the Source has no
// connection to the broker.
var ErrUnavailable = errors.New("live: the message broker is not connected")

// Params configure a Hub.
type Params struct {
	Source Source
	Logger *zap.Logger
	// Buffer is how many messages a Subscription holds before it drops;
	// 0 means 64.
	Buffer int
	// Registerer receives the hub's metrics; nil registers none.
	Registerer prometheus.Registerer
}

// Hub fans messages out to subscriptions by experiment.
type Hub struct {
	src    Source
	log    *zap.Logger
	buffer int

	watchers prometheus.Gauge
	dropped  prometheus.Counter
	rejected prometheus.Counter

	mu   sync.Mutex
	subs map[string]map[*Subscription]struct{}
}

// NewHub returns a Hub. Feed it the Source's messages with Deliver.
func NewHub(p Params) (*Hub, error) {
	if p.Source == nil {
		return nil, errors.New("live: a Source is required")
	}
	h := &Hub{
		src:    p.Source,
		log:    p.Logger,
		buffer: p.Buffer,
		subs:   map[string]map[*Subscription]struct{}{},
		watchers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mymonit_api_live_watchers", Help: "Live measure streams open.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mymonit_api_live_dropped_total", Help: "Live messages dropped because a watcher was too slow.",
		}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mymonit_api_live_undecodable_total", Help: "Messages of the exchange the live hub could not decode.",
		}),
	}
	if h.log == nil {
		h.log = zap.NewNop()
	}
	if h.buffer <= 0 {
		h.buffer = 64
	}
	if p.Registerer != nil {
		for _, c := range []prometheus.Collector{h.watchers, h.dropped, h.rejected} {
			if err := p.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("live: register metrics: %w", err)
			}
		}
	}
	return h, nil
}

// Subscription receives the valid measures of one experiment, one slice per
// message, until Close.
type Subscription struct {
	hub        *Hub
	experiment string
	c          chan []measure.Measure
	dropped    atomic.Int64
	once       sync.Once
}

// C delivers the measures; it is never closed.
func (s *Subscription) C() <-chan []measure.Measure { return s.c }

// Dropped returns how many messages were dropped since the last call.
func (s *Subscription) Dropped() int64 { return s.dropped.Swap(0) }

// Close ends the subscription; the experiment is unbound when it was the
// last. It is safe to call more than once.
func (s *Subscription) Close() {
	s.once.Do(func() { s.hub.remove(s) })
}

// Subscribe watches an experiment (a slug, validated by the caller).
func (h *Hub) Subscribe(experiment string) (*Subscription, error) {
	if !h.src.Connected() {
		return nil, ErrUnavailable
	}
	s := &Subscription{hub: h, experiment: experiment, c: make(chan []measure.Measure, h.buffer)}
	h.mu.Lock()
	defer h.mu.Unlock()
	set := h.subs[experiment]
	if set == nil {
		if err := h.src.Bind(experiment); err != nil {
			return nil, fmt.Errorf("live: watch %q: %w", experiment, err)
		}
		set = map[*Subscription]struct{}{}
		h.subs[experiment] = set
	}
	set[s] = struct{}{}
	h.watchers.Inc()
	return s, nil
}

func (h *Hub) remove(s *Subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	set := h.subs[s.experiment]
	if _, ok := set[s]; !ok {
		return
	}
	delete(set, s)
	h.watchers.Dec()
	if len(set) > 0 {
		return
	}
	delete(h.subs, s.experiment)
	if err := h.src.Unbind(s.experiment); err != nil {
		// The binding goes with the tap's queue at the next reconnect; until
		// then the hub ignores the experiment's messages.
		h.log.Warn("live: unbind failed", zap.String("mymonit.experiment", s.experiment), zap.Error(err))
	}
}

// Deliver hands a message of the exchange to the watchers of its
// experiment. It never blocks: a full subscription drops the message and
// counts it. Only valid measures of the routing key's experiment are
// passed on, so a message that names another experiment in its body shows
// nothing to the wrong watchers.
func (h *Hub) Deliver(routingKey string, body []byte) {
	experiment, ok := experimentOf(routingKey)
	if !ok {
		return
	}
	h.mu.Lock()
	n := len(h.subs[experiment])
	h.mu.Unlock()
	if n == 0 {
		return
	}
	d, err := measure.Decode(body)
	if err != nil {
		h.rejected.Inc()
		return
	}
	ms := d.Measures[:0:0]
	for _, m := range d.Measures {
		if m.Experiment == experiment {
			ms = append(ms, m)
		}
	}
	if len(ms) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs[experiment] {
		select {
		case s.c <- ms:
		default:
			s.dropped.Add(1)
			h.dropped.Inc()
		}
	}
}

func experimentOf(routingKey string) (string, bool) {
	if len(routingKey) <= len(queue.RoutingKeyPrefix) || routingKey[:len(queue.RoutingKeyPrefix)] != queue.RoutingKeyPrefix {
		return "", false
	}
	return routingKey[len(queue.RoutingKeyPrefix):], true
}
