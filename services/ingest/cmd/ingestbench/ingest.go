package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/mymonit/mymonit/pkg/benchkit"
	"github.com/mymonit/mymonit/pkg/config"
	"github.com/mymonit/mymonit/pkg/measure"
	"github.com/mymonit/mymonit/pkg/queue"
	"github.com/mymonit/mymonit/pkg/storage"
	"github.com/mymonit/mymonit/services/ingest/internal/pipeline"
	"github.com/mymonit/mymonit/services/ingest/internal/settings"
)

// ingestFigures are the results of one full-rate ingest phase.
type ingestFigures struct {
	rowsPerSec float64
	peakRSS    int64         // bytes; 0 when not measured (in-process, or not Linux)
	rssErr     error         // why peakRSS is 0 for a subprocess
	cpu        time.Duration // CPU time of the ingest process, start to end; 0 if unknown
	busy       float64       // fraction of the machine's CPUs busy while timed; -1 if unknown
	cost       cpuCost       // CPU time per measure of broker, database and ingest while timed

	// In-process runs only: how long the writers spent in UpsertMeasures
	// (summed over the writers), in how many calls, and the span from the
	// first commit to the last.
	upsertCalls int
	upsertTime  time.Duration
	commitSpan  time.Duration
}

// benchIngest measures ingest at full rate: a fresh quorum queue is
// prefilled (not timed) with measures [0, n) in messages of perMsg
// measures, then the real ingest binary bin drains it into the empty
// measures table. The rate is timed over the steady span (steadySpan) of
// its committed counter, polled every -poll; the phase ends when the
// counter reaches n.
// With -inprocess the pipeline runs in this process instead (bin unused).
func (w *world) benchIngest(ctx context.Context, phase, bin string, n, perMsg int) (_ ingestFigures, err error) {
	if err := w.emptyMeasures(ctx); err != nil {
		return ingestFigures{}, err
	}
	cfg, cleanup, err := w.newTopology()
	defer func() { err = errors.Join(err, cleanup()) }()
	if err != nil {
		return ingestFigures{}, err
	}
	if _, err := w.prefill(ctx, cfg, n, perMsg); err != nil {
		return ingestFigures{}, err
	}
	tctx, cancel := context.WithTimeout(ctx, w.opts.timeout)
	defer cancel()
	var f ingestFigures
	if w.opts.inProcess {
		f, err = w.ingestInProcess(tctx, phase, cfg, n)
	} else {
		f, err = w.ingestBinary(tctx, bin, cfg, n)
	}
	if err != nil {
		return ingestFigures{}, fmt.Errorf("%s: %w", phase, err)
	}
	return f, w.checkRows(ctx, phase, n)
}

// ingestBinary runs bin on cfg until it committed n measures.
func (w *world) ingestBinary(ctx context.Context, bin string, cfg queue.Config, n int) (_ ingestFigures, err error) {
	addr, err := freeAddr()
	if err != nil {
		return ingestFigures{}, err
	}
	p, err := startIngest(bin, processEnv(w.ingestVars(cfg, addr)), addr)
	if err != nil {
		return ingestFigures{}, err
	}
	defer func() { err = errors.Join(err, p.stop()) }()

	tick := time.NewTicker(w.opts.poll)
	defer tick.Stop()
	clock := newSpanClock(n, cpuMeter{servers: w.servers, client: p.cpuTime})
	for {
		select {
		case <-ctx.Done():
			return ingestFigures{}, fmt.Errorf("waiting for %d committed measures: %w%s", n, ctx.Err(), p.output())
		case <-p.done:
			err := p.exitError()
			if err == nil {
				err = fmt.Errorf("exit status 0%s", p.output())
			}
			return ingestFigures{}, fmt.Errorf("ingest stopped before committing %d measures: %w", n, err)
		case <-tick.C:
		}
		c, err := p.committed(ctx)
		if err != nil {
			continue // not listening yet
		}
		clock.observe(time.Now(), int(c))
		if c >= float64(n) {
			break
		}
	}
	rate, err := clock.rate()
	if err != nil {
		return ingestFigures{}, fmt.Errorf("%w (or lower -poll, now %v)", err, w.opts.poll)
	}
	f := ingestFigures{rowsPerSec: rate, busy: clock.busy, cost: clock.cost}
	f.peakRSS, f.rssErr = p.peakRSS()
	f.cpu, _ = p.cpuTime() // informative only
	return f, nil
}

// ingestInProcess runs the pipeline in this process on cfg until it
// committed n measures, timed over the steady span of its commits.
func (w *world) ingestInProcess(ctx context.Context, phase string, cfg queue.Config, n int) (ingestFigures, error) {
	set, err := w.settings(cfg)
	if err != nil {
		return ingestFigures{}, err
	}
	clock := &commitClock{total: n, done: make(chan struct{}), span: newSpanClock(n, w.selfMeter())}
	stopProf, err := benchkit.StartCPUProfile(w.opts.cpuProf, phase)
	if err != nil {
		return ingestFigures{}, err
	}
	ing, err := startInProcess(ctx, set, clock.observe, w.log)
	if err != nil {
		return ingestFigures{}, errors.Join(err, stopProf())
	}
	select {
	case <-clock.done:
	case <-ctx.Done():
	}
	err = errors.Join(ing.stop(), stopProf())
	if ctx.Err() != nil {
		return ingestFigures{}, fmt.Errorf("waiting for %d committed measures: %w", n, ctx.Err())
	}
	if err != nil {
		return ingestFigures{}, err
	}
	f := ingestFigures{busy: clock.span.busy, commitSpan: clock.commitSpan(), cost: clock.span.cost}
	f.upsertCalls, f.upsertTime = ing.store.stats()
	f.rowsPerSec, err = clock.span.rate()
	return f, err
}

// commitClock times commits reported by the pipeline's OnCommit hook: the
// steady span, and the time from the first commit to the total. Its span
// is read once done is closed.
type commitClock struct {
	total int
	done  chan struct{} // closed when total measures were committed
	span  *spanClock

	mu          sync.Mutex
	n           int
	first, last time.Time
}

func (c *commitClock) observe(ms []measure.Measure) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == 0 {
		c.first = now
	}
	before := c.n
	c.n += len(ms)
	c.span.observe(now, c.n)
	if before < c.total && c.n >= c.total {
		c.last = now
		close(c.done)
	}
}

// commitSpan is the time from the first commit to the one reaching the
// total.
func (c *commitClock) commitSpan() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last.Sub(c.first)
}

// settings returns the ingest settings an ingest process would load with
// ingestVars: the defaults and the -env overrides.
func (w *world) settings(cfg queue.Config) (settings.Config, error) {
	vars := make(map[string]string)
	for _, kv := range w.ingestVars(cfg, "127.0.0.1:0") {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	var set settings.Config
	lookup := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	if err := config.LoadFrom(lookup, os.ReadFile, &set); err != nil {
		return settings.Config{}, fmt.Errorf("ingest settings:\n%w", err)
	}
	return set, nil
}

// timedStore is the store of the in-process ingest; it times
// UpsertMeasures, the database part of each batch.
type timedStore struct {
	*storage.Store

	mu    sync.Mutex
	calls int
	busy  time.Duration
}

// UpsertMeasures times storage.Store.UpsertMeasures.
func (s *timedStore) UpsertMeasures(ctx context.Context, rows []storage.Row) error {
	start := time.Now()
	err := s.Store.UpsertMeasures(ctx, rows)
	d := time.Since(start)
	s.mu.Lock()
	s.calls++
	s.busy += d
	s.mu.Unlock()
	return err
}

func (s *timedStore) stats() (int, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls, s.busy
}

// inProcess is the ingest pipeline running in this process, wired as the
// service wires it: a storage store, a confirming publisher for dead
// letters, and a queue consumer running the pipeline's handler.
type inProcess struct {
	db       *sql.DB
	store    *timedStore
	pub      *queue.Publisher
	consumer *queue.Consumer
	cancel   context.CancelFunc
	done     chan struct{} // closed when the consumer's Run returned
	runErr   error         // of Run; read after done
}

// startInProcess connects and starts consuming; onCommit receives every
// committed batch. The caller must call stop.
func startInProcess(ctx context.Context, set settings.Config, onCommit func([]measure.Measure), log *zap.Logger) (*inProcess, error) {
	db, err := storage.Open(ctx, set.MySQL)
	if err != nil {
		return nil, err
	}
	p := &inProcess{
		db:    db,
		store: &timedStore{Store: storage.NewStore(storage.StoreParams{DB: db, Logger: log})},
		pub:   queue.NewPublisher(queue.PublisherParams{Config: set.AMQP, Logger: log, Producer: "ingest", DeclareTopology: true}),
		consumer: queue.NewConsumer(queue.ConsumerParams{
			Config: set.AMQP, Logger: log, Prefetch: set.Ingest.Prefetch, Tag: "ingestbench",
			DeclareTopology: true, DrainTimeout: set.Ingest.ShutdownTimeout,
		}),
		done: make(chan struct{}),
	}
	if err := p.consumer.Connect(ctx); err != nil {
		return nil, errors.Join(err, p.close())
	}
	pipe := pipeline.New(pipeline.Params{
		Store:     p.store,
		Publisher: p.pub,
		Window:    p.consumer,
		Logger:    log,
		Options: pipeline.Options{
			BatchSize:     set.Ingest.BatchSize,
			WindowBytes:   set.Ingest.WindowBytes(),
			Writers:       set.Ingest.Writers,
			FlushInterval: set.Ingest.FlushInterval,
			DrainTimeout:  set.Ingest.ShutdownTimeout,
			DeadExchange:  set.AMQP.DeadExchange,
			OnCommit:      onCommit,
		},
	})
	var rctx context.Context
	rctx, p.cancel = context.WithCancel(ctx)
	go func() {
		defer close(p.done)
		p.runErr = p.consumer.Run(rctx, pipe.Handle)
	}()
	return p, nil
}

// stop stops consuming (in-flight batches are committed and acked first)
// and releases the connections.
func (p *inProcess) stop() error {
	p.cancel()
	<-p.done
	return errors.Join(p.runErr, p.close())
}

func (p *inProcess) close() error {
	return errors.Join(p.consumer.Close(), p.pub.Close(), p.store.Close(), p.db.Close())
}
