package promscrape

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/mymonit/mymonit/adapters/sink"
	"github.com/mymonit/mymonit/pkg/measure"
)

// Sink takes the measures of every scrape; *sink.Sink implements it.
type Sink interface {
	// Add queues measures and returns a ticket that settles when the
	// broker confirmed them (see package sink).
	Add(ctx context.Context, ms ...measure.Measure) (*sink.Ticket, error)
	// Reject counts items that never became measures.
	Reject(reason string, n int)
}

// Params configure a Scraper.
type Params struct {
	// Targets to scrape, as ParseTargets returns them.
	Targets []Target
	// Sink receives the measures.
	Sink Sink
	// Client makes the requests; nil uses a client of its own.
	Client *http.Client
	// MaxBodyBytes bounds an exposition; 0 means 16 MiB.
	MaxBodyBytes int64
	// Logger receives failed scrapes and rejected samples; nil logs nothing.
	Logger *zap.Logger
	// Registerer receives the scraper's metrics; nil registers none.
	Registerer prometheus.Registerer
	// Now tells the time of a scrape; nil means time.Now.
	Now func() time.Time
}

// Scraper scrapes its targets at their intervals and hands the measures to
// the sink.
type Scraper struct {
	targets []Target
	sink    Sink
	fetch   fetcher
	log     *zap.Logger
	now     func() time.Time
	m       *metrics
}

// New returns a Scraper; Run starts scraping.
func New(p Params) (*Scraper, error) {
	if len(p.Targets) == 0 {
		return nil, errors.New("promscrape: no targets")
	}
	if p.Sink == nil {
		return nil, errors.New("promscrape: no sink")
	}
	for i, t := range p.Targets {
		if errs := t.validate(); len(errs) > 0 {
			return nil, fmt.Errorf("promscrape: targets[%d]: %w", i, errors.Join(errs...))
		}
	}
	s := &Scraper{
		targets: p.Targets,
		sink:    p.Sink,
		fetch:   fetcher{client: p.Client, maxBody: p.MaxBodyBytes},
		log:     p.Logger,
		now:     p.Now,
	}
	if s.fetch.client == nil {
		s.fetch.client = defaultClient()
	}
	if s.fetch.maxBody <= 0 {
		s.fetch.maxBody = 16 << 20
	}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	if s.now == nil {
		s.now = time.Now
	}
	m, err := newMetrics(p.Registerer)
	if err != nil {
		return nil, fmt.Errorf("promscrape metrics: %w", err)
	}
	s.m = m
	return s, nil
}

// Scrape scrapes t once and maps its exposition, without publishing.
func (s *Scraper) Scrape(ctx context.Context, t Target) (Result, error) {
	at := s.now()
	fams, format, err := s.fetch.fetch(ctx, t)
	if err != nil {
		return Result{Format: format}, err
	}
	ms, rej := Map(t, fams, at)
	return Result{Format: format, Measures: ms, Rejected: rej}, nil
}

// Run scrapes every target at its interval, the first time at once, until
// ctx is done, and waits for the scrapes in progress; measures already added
// to the sink stay there (the sink's Close publishes them). A target's next
// scrape starts only once the broker confirmed the previous one's measures:
// when publishing is slow, intervals are skipped rather than piled up.
func (s *Scraper) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, t := range s.targets {
		wg.Go(func() { s.loop(ctx, t) })
	}
	wg.Wait()
	return nil
}

func (s *Scraper) loop(ctx context.Context, t Target) {
	tick := time.NewTicker(t.Interval)
	defer tick.Stop()
	for {
		s.once(ctx, t)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// once scrapes t, publishes its measures and waits for their confirms.
func (s *Scraper) once(ctx context.Context, t Target) {
	name := t.Name()
	log := s.log.With(zap.String("url.full", name), zap.String("experiment", t.Experiment))
	start := time.Now()
	res, err := s.Scrape(ctx, t)
	s.m.duration.WithLabelValues(name).Set(time.Since(start).Seconds())
	if err != nil {
		if ctx.Err() != nil {
			return // shutting down: not the target's fault
		}
		reason := FailConnect
		var se *ScrapeError
		if errors.As(err, &se) {
			reason = se.Reason
		}
		s.m.scrapes.WithLabelValues(name, "failure").Inc()
		s.m.failures.WithLabelValues(name, reason).Inc()
		s.m.up.WithLabelValues(name).Set(0)
		log.Warn("scrape failed", zap.String("reason", reason), zap.Error(err))
		return
	}
	s.m.scrapes.WithLabelValues(name, "success").Inc()
	s.m.up.WithLabelValues(name).Set(1)
	if n := len(res.Rejected); n > 0 {
		s.sink.Reject(sink.ReasonInvalid, n)
		byField := map[string]int{}
		for _, r := range res.Rejected {
			byField[r.Field]++
		}
		for f, c := range byField {
			s.m.rejected.WithLabelValues(name, f).Add(float64(c))
		}
		first := res.Rejected[0]
		log.Warn("samples rejected", zap.Int("count", n),
			zap.String("first.sensor", first.Sensor), zap.String("first.reason", first.Reason))
	}
	if len(res.Measures) == 0 {
		return
	}
	s.m.samples.WithLabelValues(name).Add(float64(len(res.Measures)))
	ticket, err := s.sink.Add(ctx, res.Measures...)
	if err != nil {
		log.Warn("measures of the scrape not all queued", zap.Int("queued", ticket.Queued()), zap.Int("measures", len(res.Measures)), zap.Error(err))
		return
	}
	if err := ticket.Wait(ctx); err != nil && ctx.Err() == nil {
		log.Error("measures of the scrape not published", zap.Int("measures", len(res.Measures)), zap.Error(err))
	}
}

type metrics struct {
	scrapes  *prometheus.CounterVec
	failures *prometheus.CounterVec
	samples  *prometheus.CounterVec
	rejected *prometheus.CounterVec
	up       *prometheus.GaugeVec
	duration *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		scrapes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mymonit_promscrape_scrapes_total",
			Help: "Scrapes by target and outcome (success, failure).",
		}, []string{"target", "outcome"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mymonit_promscrape_scrape_failures_total",
			Help: "Failed scrapes by target and reason (connect, timeout, http_status, too_large, parse).",
		}, []string{"target", "reason"}),
		samples: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mymonit_promscrape_samples_total",
			Help: "Samples mapped to measures and handed to the sink, by target.",
		}, []string{"target"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mymonit_promscrape_samples_rejected_total",
			Help: "Samples that break the v1 contract, by target and measure field at fault (value, sensor, tags, unit, time).",
		}, []string{"target", "field"}),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mymonit_promscrape_up",
			Help: "1 when the last scrape of the target succeeded, 0 when it failed.",
		}, []string{"target"}),
		duration: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mymonit_promscrape_scrape_duration_seconds",
			Help: "Duration of the last scrape of the target (fetch and parse).",
		}, []string{"target"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.scrapes, m.failures, m.samples, m.rejected, m.up, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register: %w", err)
		}
	}
	return m, nil
}
