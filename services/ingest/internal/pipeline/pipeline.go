package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/zap"

	"github.com/mymonit/mymonit/pkg/measure"
	"github.com/mymonit/mymonit/pkg/queue"
	"github.com/mymonit/mymonit/pkg/storage"
)

// Store is what the pipeline needs from the database. *storage.Store
// implements it.
type Store interface {
	// ExperimentIDs returns the ids of the registered experiments among slugs.
	ExperimentIDs(ctx context.Context, slugs []string) (map[string]int64, error)
	// EnsureSeries returns the id of every (experiment, sensor), creating
	// missing series.
	EnsureSeries(ctx context.Context, keys []storage.SeriesKey) (map[storage.SeriesKey]int64, error)
	// UpsertMeasures writes rows in one transaction, last write wins.
	UpsertMeasures(ctx context.Context, rows []storage.Row) error
}

// Publisher publishes dead letters; it returns only once the broker confirmed
// every message. *queue.Publisher implements it.
type Publisher interface {
	Publish(ctx context.Context, msgs ...queue.Message) error
}

// Options tune the pipeline. Zero values take the defaults.
type Options struct {
	// BatchSize is the number of measures that closes a batch (one database
	// transaction).
	BatchSize int
	// FlushInterval closes a batch that is not full this long after its first
	// message arrived.
	FlushInterval time.Duration
	// DrainTimeout bounds how long in-flight batches may take to commit
	// after shutdown began.
	DrainTimeout time.Duration
	// DeadExchange is where rejected messages and measures are published.
	DeadExchange string
	// RetryMin and RetryMax bound the backoff between retries of a batch
	// whose database or broker is unavailable.
	RetryMin, RetryMax time.Duration
	// OnCommit, when set, is called after every committed batch with its
	// measures (benchmarks measure publish→commit latency with it).
	OnCommit func(committed []measure.Measure)
}

func (o *Options) defaults() {
	if o.BatchSize <= 0 {
		o.BatchSize = 1000
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = 25 * time.Millisecond
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 30 * time.Second
	}
	if o.DeadExchange == "" {
		o.DeadExchange = "mymonit.dead"
	}
	if o.RetryMin <= 0 {
		o.RetryMin = 100 * time.Millisecond
	}
	if o.RetryMax <= 0 {
		o.RetryMax = 5 * time.Second
	}
}

// Params are the pipeline's dependencies.
type Params struct {
	Store     Store
	Publisher Publisher
	Logger    *zap.Logger
	Metrics   *Metrics
	Options   Options
}

// Pipeline turns deliveries into committed rows. Its Handle method is the
// queue.Consumer session handler.
type Pipeline struct {
	store   Store
	pub     Publisher
	log     *zap.Logger
	metrics *Metrics
	opts    Options
	cache   *resolver

	mu      sync.Mutex
	healthy bool // false while the database or broker fails a batch
}

// New returns a pipeline. Metrics may be nil.
func New(p Params) *Pipeline {
	p.Options.defaults()
	if p.Metrics == nil {
		p.Metrics, _ = NewMetrics(nil) // cannot fail without a registerer
	}
	if p.Logger == nil {
		p.Logger = zap.NewNop()
	}
	return &Pipeline{
		store:   p.Store,
		pub:     p.Publisher,
		log:     p.Logger,
		metrics: p.Metrics,
		opts:    p.Options,
		cache:   newResolver(p.Store),
		healthy: true,
	}
}

// Healthy reports whether the last batch went through without waiting on an
// unavailable database or broker.
func (p *Pipeline) Healthy() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.healthy
}

func (p *Pipeline) setHealthy(v bool) {
	p.mu.Lock()
	p.healthy = v
	p.mu.Unlock()
}

// item is one delivery and what decoding made of it.
type item struct {
	d        amqp.Delivery
	measures []measure.Measure
	indexes  []int // position of each measure in its message
	rejected []rejection
	whole    *rejection // the message is rejected as a whole
}

type rejection struct {
	raw    []byte
	reason string
	kind   string // metric label
}

// Reason kinds, the label values of the dead-letter counter.
const (
	KindMalformed         = "malformed_message"
	KindInvalid           = "invalid_measure"
	KindUnknownExperiment = "unknown_experiment"
	KindDatabaseRejected  = "database_rejected"
)

type batch struct {
	items    []item
	measures int
}

// Handle consumes one broker session's deliveries until the channel closes:
// it decodes each delivery, groups deliveries into batches closed by size or
// time, and hands them to a writer that commits, dead-letters and acks. It
// returns when every batch it started has been acked (or abandoned after
// DrainTimeout past shutdown; unacked deliveries are redelivered).
func (p *Pipeline) Handle(ctx context.Context, deliveries <-chan amqp.Delivery) {
	// In-flight work outlives the shutdown signal by DrainTimeout at most.
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(p.opts.DrainTimeout, cancel)
		context.AfterFunc(wctx, func() { t.Stop() })
	})
	defer stop()

	batches := make(chan *batch, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for b := range batches {
			p.write(wctx, b)
		}
	}()

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	cur := &batch{}
	seal := func() {
		timer.Stop()
		if len(cur.items) == 0 {
			return
		}
		batches <- cur
		cur = &batch{}
	}
	for {
		select {
		case d, ok := <-deliveries:
			if !ok {
				seal()
				close(batches)
				wg.Wait()
				return
			}
			it := p.decode(d)
			if len(cur.items) == 0 {
				timer.Reset(p.opts.FlushInterval)
			}
			cur.items = append(cur.items, it)
			cur.measures += len(it.measures)
			if cur.measures >= p.opts.BatchSize {
				seal()
			}
		case <-timer.C:
			seal()
		}
	}
}

func (p *Pipeline) decode(d amqp.Delivery) item {
	p.metrics.messages.Inc()
	it := item{d: d}
	if d.ContentType != "" && d.ContentType != measure.ContentType {
		it.whole = &rejection{raw: d.Body, kind: KindMalformed,
			reason: fmt.Sprintf("content type %q is not %s", d.ContentType, measure.ContentType)}
		return it
	}
	dec, err := measure.Decode(d.Body)
	if err != nil {
		it.whole = &rejection{raw: d.Body, reason: err.Error(), kind: KindMalformed}
		return it
	}
	it.measures = dec.Measures
	it.indexes = acceptedIndexes(len(dec.Measures), dec.Rejected)
	for _, r := range dec.Rejected {
		it.rejected = append(it.rejected, rejection{raw: r.Raw, reason: r.Reason, kind: KindInvalid})
	}
	p.metrics.measures.Add(float64(len(dec.Measures) + len(dec.Rejected)))
	return it
}

// acceptedIndexes returns the message positions of the accepted measures:
// the positions not named by a rejection, in order.
func acceptedIndexes(n int, rejected []measure.Rejection) []int {
	bad := make(map[int]bool, len(rejected))
	for _, r := range rejected {
		bad[r.Index] = true
	}
	out := make([]int, 0, n)
	for i := 0; len(out) < n; i++ {
		if !bad[i] {
			out = append(out, i)
		}
	}
	return out
}

// write commits a batch, publishes its dead letters, then acks its
// deliveries. It retries what fails for want of the database or broker until
// ctx is done; then it returns without acking, and the broker redelivers.
func (p *Pipeline) write(ctx context.Context, b *batch) {
	start := time.Now()
	committed, err := p.commit(ctx, b)
	if err != nil {
		p.log.Warn("batch abandoned; its deliveries will be redelivered", zap.Error(err),
			zap.Int("messages", len(b.items)))
		return
	}
	p.metrics.commitSeconds.Observe(time.Since(start).Seconds())
	p.metrics.batchSize.Observe(float64(len(committed)))
	p.metrics.committed.Add(float64(len(committed)))

	if err := p.deadLetter(ctx, b); err != nil {
		p.log.Warn("dead letters not confirmed; the deliveries will be redelivered", zap.Error(err))
		return
	}
	last := b.items[len(b.items)-1].d
	if err := last.Ack(true); err != nil {
		// The session is gone: the broker redelivers these messages, and
		// writing them again changes nothing.
		p.log.Info("ack after commit failed; broker will redeliver", zap.Error(err))
		return
	}
	now := time.Now()
	for i := range b.items {
		if ts := b.items[i].d.Timestamp; !ts.IsZero() {
			p.metrics.lag.Observe(now.Sub(ts).Seconds())
		}
	}
	if p.opts.OnCommit != nil {
		p.opts.OnCommit(committed)
	}
}

// retry runs op until it succeeds, fails with an error that retrying will not
// cure, or ctx is done.
func (p *Pipeline) retry(ctx context.Context, what string, op func() error) error {
	wait := p.opts.RetryMin
	for {
		err := op()
		if err == nil {
			p.setHealthy(true)
			return nil
		}
		var perm permanentError
		if errors.As(err, &perm) {
			return err
		}
		p.setHealthy(false)
		p.metrics.retries.WithLabelValues(what).Inc()
		p.log.Warn("retrying", zap.String("operation", what), zap.Duration("backoff", wait), zap.Error(err))
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (last error: %w)", what, ctx.Err(), err)
		case <-time.After(wait):
		}
		wait = min(wait*2, p.opts.RetryMax)
	}
}

// permanentError marks a database error that retrying will not cure.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

func classify(err error) error {
	if err == nil || storage.IsRetryable(err) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return permanentError{err}
}

// commit resolves experiments and series, rejects measures of unregistered
// experiments, and upserts the rest. It returns the committed measures.
func (p *Pipeline) commit(ctx context.Context, b *batch) ([]measure.Measure, error) {
	slugs := make([]string, 0, 4)
	seen := make(map[string]bool)
	for i := range b.items {
		for _, m := range b.items[i].measures {
			if !seen[m.Experiment] {
				seen[m.Experiment] = true
				slugs = append(slugs, m.Experiment)
			}
		}
	}
	if len(slugs) == 0 {
		return nil, nil
	}
	var exps map[string]int64
	if err := p.retry(ctx, "resolve experiments", func() (err error) {
		exps, err = p.cache.experiments(ctx, slugs)
		return classify(err)
	}); err != nil {
		return nil, err
	}

	// Split off the measures of unregistered experiments.
	var keys []storage.SeriesKey
	keySeen := make(map[storage.SeriesKey]bool)
	for i := range b.items {
		it := &b.items[i]
		kept, idx := it.measures[:0], it.indexes[:0]
		for j, m := range it.measures {
			id, ok := exps[m.Experiment]
			if !ok {
				raw, err := measure.EncodeOne(m)
				if err != nil {
					raw = nil
				}
				it.rejected = append(it.rejected, rejection{raw: raw, kind: KindUnknownExperiment,
					reason: fmt.Sprintf("measure %d: experiment %q is not registered", it.indexes[j], m.Experiment)})
				continue
			}
			kept, idx = append(kept, m), append(idx, it.indexes[j])
			k := storage.SeriesKey{ExperimentID: id, Sensor: m.Sensor}
			if !keySeen[k] {
				keySeen[k] = true
				keys = append(keys, k)
			}
		}
		it.measures, it.indexes = kept, idx
	}
	if len(keys) == 0 {
		return nil, nil
	}
	var series map[storage.SeriesKey]int64
	if err := p.retry(ctx, "resolve series", func() (err error) {
		series, err = p.cache.series(ctx, keys)
		return classify(err)
	}); err != nil {
		return nil, err
	}

	rows := make([]storage.Row, 0, b.measures)
	committed := make([]measure.Measure, 0, b.measures)
	for i := range b.items {
		for _, m := range b.items[i].measures {
			rows = append(rows, toRow(series[storage.SeriesKey{ExperimentID: exps[m.Experiment], Sensor: m.Sensor}], m))
			committed = append(committed, m)
		}
	}
	err := p.retry(ctx, "commit", func() error { return classify(p.store.UpsertMeasures(ctx, rows)) })
	var perm permanentError
	if errors.As(err, &perm) {
		// Something in the batch is refused by the database although it
		// passed validation: find it by committing smaller pieces.
		p.log.Warn("database refused a batch; isolating the offending measures", zap.Error(err))
		return p.isolate(ctx, b, exps, series)
	}
	if err != nil {
		return nil, err
	}
	return committed, nil
}

// isolate commits measure by measure what a whole batch could not, and
// dead-letters the measures the database refuses.
func (p *Pipeline) isolate(ctx context.Context, b *batch, exps map[string]int64, series map[storage.SeriesKey]int64) ([]measure.Measure, error) {
	var committed []measure.Measure
	for i := range b.items {
		it := &b.items[i]
		kept, idx := it.measures[:0], it.indexes[:0]
		for j, m := range it.measures {
			row := toRow(series[storage.SeriesKey{ExperimentID: exps[m.Experiment], Sensor: m.Sensor}], m)
			err := p.retry(ctx, "commit", func() error { return classify(p.store.UpsertMeasures(ctx, []storage.Row{row})) })
			var perm permanentError
			switch {
			case errors.As(err, &perm):
				raw, _ := measure.EncodeOne(m)
				it.rejected = append(it.rejected, rejection{raw: raw, kind: KindDatabaseRejected,
					reason: fmt.Sprintf("measure %d: refused by the database: %v", it.indexes[j], perm.err)})
			case err != nil:
				return nil, err
			default:
				kept, idx = append(kept, m), append(idx, it.indexes[j])
				committed = append(committed, m)
			}
		}
		it.measures, it.indexes = kept, idx
	}
	return committed, nil
}

func toRow(seriesID int64, m measure.Measure) storage.Row {
	return storage.Row{SeriesID: seriesID, Time: m.Time, Value: m.Value, Unit: m.Unit, Tags: m.Tags}
}
