package pipeline

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
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

// Window is the prefetch window of the consumer whose deliveries Handle
// gets: how many unacked messages the broker sends ahead. *queue.Consumer
// implements it; SetPrefetch ends the running session gracefully and the
// next one has the new window.
type Window interface {
	Prefetch() int
	SetPrefetch(n int)
}

// Options tune the pipeline. Zero values take the defaults.
type Options struct {
	// BatchSize is the number of measures that closes a batch (one database
	// transaction).
	BatchSize int
	// WindowBytes, with a Window, sizes the window by the messages: once a
	// session has seen SizeAfter messages, the window becomes WindowBytes
	// divided by their mean body size plus MessageOverhead, within
	// [MinPrefetch, MaxPrefetch], when that is over 1.5 times away from
	// the window in force (and no resize happened in the last minute).
	// Small messages get a window large enough for big batches; large ones
	// a window that bounds memory. 0 keeps the window as it is.
	WindowBytes              int
	MinPrefetch, MaxPrefetch int
	// FlushInterval closes a batch that is not full this long after its first
	// message arrived.
	FlushInterval time.Duration
	// Writers is the number of batches committed concurrently. Acks stay in
	// delivery order whatever order the commits finish in, and a batch
	// holding a measure of an uncommitted earlier batch (same experiment,
	// sensor and time) commits after it, so the later write still wins.
	Writers int
	// DrainTimeout bounds how long in-flight batches may take to commit
	// after shutdown began.
	DrainTimeout time.Duration
	// DeadExchange is where rejected messages and measures are published.
	DeadExchange string
	// RetryMin and RetryMax bound the backoff between retries of a batch
	// whose database or broker is unavailable.
	RetryMin, RetryMax time.Duration
	// OnCommit, when set, is called after every committed and acked batch
	// with its measures (benchmarks measure publish→commit latency with
	// it). It must not keep the slice, which is reused.
	OnCommit func(committed []measure.Measure)
}

// Defaults of Options.
const (
	DefaultBatchSize   = 5000
	DefaultWriters     = 2
	DefaultMinPrefetch = 32
	DefaultMaxPrefetch = 20000
)

// Window sizing (Options.WindowBytes).
const (
	// SizeAfter is how many messages of a session the window is sized by.
	SizeAfter = 1000
	// MessageOverhead is the memory a message in the window costs beyond
	// its body: the delivery, its headers and the decoded measures of a
	// small message (measured: ~2 KiB a single-measure message).
	MessageOverhead = 2 << 10
	// resizeEvery is the least time between two resizes, so that traffic
	// alternating between small and large messages does not restart the
	// consumer over and over.
	resizeEvery = time.Minute
)

func (o *Options) defaults() {
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = 25 * time.Millisecond
	}
	if o.Writers <= 0 {
		o.Writers = DefaultWriters
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
	if o.MinPrefetch <= 0 {
		o.MinPrefetch = DefaultMinPrefetch
	}
	if o.MaxPrefetch <= 0 {
		o.MaxPrefetch = DefaultMaxPrefetch
	}
	o.MaxPrefetch = max(o.MaxPrefetch, o.MinPrefetch)
}

// Params are the pipeline's dependencies.
type Params struct {
	Store     Store
	Publisher Publisher
	// Window, when set, is the consumer's prefetch window. A batch is acked
	// only after its commit, so the window must hold every batch in flight:
	// a batch also closes at the session's window divided by Writers+1
	// messages. Options.WindowBytes sizes the window. Without one, batches
	// close by size and time only.
	Window  Window
	Logger  *zap.Logger
	Metrics *Metrics
	Options Options
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
	seed    maphash.Seed
	window  Window
	resized time.Time // the last resize; Handle's sessions never overlap

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
		seed:    maphash.MakeSeed(),
		window:  p.Window,
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

// item is one delivery and what decoding made of it. The delivery's body is
// dropped once decoded: the measures and rejections hold what is needed.
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

// batch is the unit of one transaction and one ack. Batches are reused
// within a session (see freeList); the turn and fence are fresh for each.
type batch struct {
	items    []item
	measures int
	prev     *turn    // the predecessor's place in the ack order
	turn     *turn    // this batch's
	fence    *fence   // this batch's identities, for later batches
	before   []*fence // earlier batches not yet written when this one closed

	// Scratch reused by commit.
	rows      []storage.Row
	committed []measure.Measure
	slugs     []string
	keys      []storage.SeriesKey
	seen      map[storage.SeriesKey]struct{}
	seenSlugs map[string]struct{}
}

// reset empties b for reuse, dropping its references to deliveries and
// measures so that they can be collected.
func (b *batch) reset() {
	clear(b.items)
	b.items = b.items[:0]
	b.measures = 0
	b.prev, b.turn, b.fence = nil, nil, nil
	clear(b.before)
	b.before = b.before[:0]
	clear(b.rows)
	b.rows = b.rows[:0]
	clear(b.committed)
	b.committed = b.committed[:0]
	clear(b.slugs)
	b.slugs = b.slugs[:0]
	clear(b.keys)
	b.keys = b.keys[:0]
	clear(b.seen)
	clear(b.seenSlugs)
}

// freeList keeps settled batches of a session for reuse, so that a batch's
// slices are allocated once rather than grown again for every batch.
type freeList chan *batch

func (f freeList) get() *batch {
	select {
	case b := <-f:
		return b
	default:
		return &batch{}
	}
}

func (f freeList) put(b *batch) {
	b.reset()
	select {
	case f <- b:
	default:
	}
}

// Handle consumes one broker session's deliveries until the channel closes:
// it decodes each delivery, groups deliveries into batches closed by size or
// time, and hands them to Writers writers that commit, dead-letter and ack
// them. It returns when every batch it started has been acked (or abandoned
// after DrainTimeout past shutdown; unacked deliveries are redelivered).
func (p *Pipeline) Handle(ctx context.Context, deliveries <-chan amqp.Delivery) {
	// In-flight work outlives the shutdown signal by DrainTimeout at most.
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(p.opts.DrainTimeout, cancel)
		context.AfterFunc(wctx, func() { t.Stop() })
	})
	defer stop()

	free := make(freeList, p.opts.Writers+2)
	batches := make(chan *batch)
	var wg sync.WaitGroup
	for range p.opts.Writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				p.write(wctx, b)
				free.put(b)
			}
		}()
	}

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	prev := settledTurn()
	var pending []*fence // fences of batches not known to be written
	cur := free.get()
	var messages, measures int // consumed, added to the counters per batch
	batchMessages := 0         // no bound by messages
	var sizer *windowSizer
	if p.window != nil {
		batchMessages = max(1, p.window.Prefetch()/(p.opts.Writers+1))
		if p.opts.WindowBytes > 0 && time.Since(p.resized) >= resizeEvery {
			sizer = &windowSizer{}
		}
	}
	seal := func() {
		timer.Stop()
		if len(cur.items) == 0 {
			return
		}
		p.metrics.messages.Add(float64(messages))
		p.metrics.measures.Add(float64(measures))
		messages, measures = 0, 0
		cur.prev, cur.turn = prev, &turn{done: make(chan struct{})}
		prev = cur.turn
		cur.fence = p.newFence(cur)
		pending = written(pending)
		cur.before = append(cur.before, pending...)
		pending = append(pending, cur.fence)
		batches <- cur
		cur = free.get()
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
			if len(cur.items) == 0 {
				timer.Reset(p.opts.FlushInterval)
			}
			if sizer != nil && sizer.observe(len(d.Body)) {
				p.resize(sizer.mean())
				sizer = nil
			}
			cur.items = append(cur.items, item{})
			it := &cur.items[len(cur.items)-1]
			n := p.decode(d, it)
			messages++
			measures += n
			cur.measures += len(it.measures)
			if cur.measures >= p.opts.BatchSize || len(cur.items) == batchMessages {
				seal()
			}
		case <-timer.C:
			seal()
		}
	}
}

// windowSizer gathers the body sizes of a session's first SizeAfter
// messages.
type windowSizer struct{ n, bytes int }

// observe adds a body of n bytes and reports whether SizeAfter were seen.
func (s *windowSizer) observe(n int) bool {
	s.n++
	s.bytes += n
	return s.n == SizeAfter
}

func (s *windowSizer) mean() int { return s.bytes / max(s.n, 1) }

// windowFor is the window for messages of mean body size: WindowBytes of
// them, within [MinPrefetch, MaxPrefetch].
func (p *Pipeline) windowFor(mean int) int {
	return min(max(p.opts.WindowBytes/(mean+MessageOverhead), p.opts.MinPrefetch), p.opts.MaxPrefetch)
}

// resize asks for the window of messages of mean body size when it is over
// 1.5 times away from the window in force. The consumer then ends this
// session gracefully (Handle sees its deliveries close) and starts one with
// the new window.
func (p *Pipeline) resize(mean int) {
	cur, want := p.window.Prefetch(), p.windowFor(mean)
	if 2*want <= 3*cur && 2*cur <= 3*want {
		return
	}
	p.resized = time.Now()
	p.log.Info("resizing the prefetch window to the messages' size", zap.Int("queue.prefetch", want),
		zap.Int("queue.prefetch_before", cur), zap.Int("mymonit.message_mean_bytes", mean))
	p.window.SetPrefetch(want)
}

// decode fills it from d and returns how many measures the message held,
// valid or not.
func (p *Pipeline) decode(d amqp.Delivery, it *item) int {
	body := d.Body
	d.Body = nil
	it.d = d
	if d.ContentType != "" && d.ContentType != measure.ContentType {
		it.whole = &rejection{raw: body, kind: KindMalformed,
			reason: fmt.Sprintf("content type %q is not %s", d.ContentType, measure.ContentType)}
		return 0
	}
	dec, err := measure.Decode(body)
	if err != nil {
		it.whole = &rejection{raw: body, reason: err.Error(), kind: KindMalformed}
		return 0
	}
	it.measures = dec.Measures
	if len(dec.Rejected) == 0 {
		it.indexes = nil // every measure is at its own position
		return len(dec.Measures)
	}
	it.indexes = acceptedIndexes(len(dec.Measures), dec.Rejected)
	for _, r := range dec.Rejected {
		it.rejected = append(it.rejected, rejection{raw: r.Raw, reason: r.Reason, kind: KindInvalid})
	}
	return len(dec.Measures) + len(dec.Rejected)
}

// index is the position in its message of the j-th accepted measure.
func (it *item) index(j int) int {
	if it.indexes == nil {
		return j
	}
	return it.indexes[j]
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

// write commits a batch (after any earlier batch holding one of its
// measures), publishes its dead letters, then, once its predecessor
// settled, acks its deliveries. It retries what fails for want of the
// database or broker until ctx is done; then it gives up without acking,
// and the broker redelivers.
func (p *Pipeline) write(ctx context.Context, b *batch) {
	start := time.Now()
	committed, err := p.commitInOrder(ctx, b)
	switch {
	case err != nil:
		p.log.Warn("batch abandoned; its deliveries will be redelivered", zap.Error(err),
			zap.Int("messages", len(b.items)))
	default:
		p.metrics.batchSize.Observe(float64(committed))
		p.metrics.committed.Add(float64(committed))
		if err = p.deadLetter(ctx, b); err != nil {
			p.log.Warn("dead letters not confirmed; the deliveries will be redelivered", zap.Error(err))
		}
		p.metrics.commitSeconds.Observe(time.Since(start).Seconds())
	}
	<-b.prev.done
	acked := err == nil && p.ack(b)
	b.turn.settle(acked && b.prev.clean)
	if !acked {
		return
	}
	now := time.Now()
	for i := range b.items {
		if ts := b.items[i].d.Timestamp; !ts.IsZero() {
			p.metrics.lag.Observe(now.Sub(ts).Seconds())
		}
	}
	if p.opts.OnCommit != nil {
		p.opts.OnCommit(b.committed)
	}
}

// ack acks the deliveries of b, whose predecessor has settled, and reports
// whether the broker took the acks. When every earlier delivery of the
// session was acked, one ack(multiple) of the last delivery covers the
// batch. Otherwise an earlier batch was abandoned: its deliveries must stay
// unacked (the broker redelivers them), and an ack(multiple) would cover
// them, so each delivery is acked alone.
func (p *Pipeline) ack(b *batch) bool {
	var err error
	if b.prev.clean {
		err = b.items[len(b.items)-1].d.Ack(true)
	} else {
		for i := range b.items {
			if err = b.items[i].d.Ack(false); err != nil {
				break
			}
		}
	}
	if err != nil {
		// The session is gone: the broker redelivers these messages, and
		// writing them again changes nothing.
		p.log.Info("ack after commit failed; broker will redeliver", zap.Error(err))
		return false
	}
	return true
}

// commitInOrder commits b once every earlier uncommitted batch sharing a
// measure identity with it has been written, so that concurrent writers keep
// the last write of an identity the last one stored.
func (p *Pipeline) commitInOrder(ctx context.Context, b *batch) (int, error) {
	defer close(b.fence.written)
	for _, f := range b.before {
		if f.overlaps(b.fence) {
			<-f.written
		}
	}
	return p.commit(ctx, b)
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
// experiments, and upserts the rest. It returns how many measures it
// committed; with OnCommit, b.committed holds them.
func (p *Pipeline) commit(ctx context.Context, b *batch) (int, error) {
	if b.seen == nil {
		b.seen = make(map[storage.SeriesKey]struct{})
		b.seenSlugs = make(map[string]struct{})
	}
	slugs := b.slugs[:0]
	for i := range b.items {
		for _, m := range b.items[i].measures {
			if _, ok := b.seenSlugs[m.Experiment]; !ok {
				b.seenSlugs[m.Experiment] = struct{}{}
				slugs = append(slugs, m.Experiment)
			}
		}
	}
	b.slugs = slugs
	if len(slugs) == 0 {
		return 0, nil
	}
	var exps map[string]int64
	if err := p.retry(ctx, "resolve experiments", func() (err error) {
		exps, err = p.cache.experiments(ctx, slugs)
		return classify(err)
	}); err != nil {
		return 0, err
	}

	// Split off the measures of unregistered experiments, and list the
	// series of the others.
	keys := b.keys[:0]
	for i := range b.items {
		it := &b.items[i]
		if len(exps) < len(slugs) {
			p.rejectUnknown(it, exps)
		}
		for _, m := range it.measures {
			k := storage.SeriesKey{ExperimentID: exps[m.Experiment], Sensor: m.Sensor}
			if _, ok := b.seen[k]; !ok {
				b.seen[k] = struct{}{}
				keys = append(keys, k)
			}
		}
	}
	b.keys = keys
	if len(keys) == 0 {
		return 0, nil
	}
	var series map[storage.SeriesKey]int64
	if err := p.retry(ctx, "resolve series", func() (err error) {
		series, err = p.cache.series(ctx, keys)
		return classify(err)
	}); err != nil {
		return 0, err
	}

	rows := b.rows[:0]
	for i := range b.items {
		for _, m := range b.items[i].measures {
			rows = append(rows, toRow(series[storage.SeriesKey{ExperimentID: exps[m.Experiment], Sensor: m.Sensor}], m))
		}
		if p.opts.OnCommit != nil {
			b.committed = append(b.committed, b.items[i].measures...)
		}
	}
	b.rows = rows
	err := p.retry(ctx, "commit", func() error { return classify(p.store.UpsertMeasures(ctx, rows)) })
	var perm permanentError
	if errors.As(err, &perm) {
		// Something in the batch is refused by the database although it
		// passed validation: find it by committing smaller pieces.
		p.log.Warn("database refused a batch; isolating the offending measures", zap.Error(err))
		return p.isolate(ctx, b, exps, series)
	}
	if err != nil {
		return 0, err
	}
	return len(rows), nil
}

// rejectUnknown moves the measures of experiments missing from exps to the
// item's rejections.
func (p *Pipeline) rejectUnknown(it *item, exps map[string]int64) {
	kept, idx := it.measures[:0], make([]int, 0, len(it.measures))
	for j, m := range it.measures {
		if _, ok := exps[m.Experiment]; ok {
			kept, idx = append(kept, m), append(idx, it.index(j))
			continue
		}
		raw, err := measure.EncodeOne(m)
		if err != nil {
			raw = nil
		}
		it.rejected = append(it.rejected, rejection{raw: raw, kind: KindUnknownExperiment,
			reason: fmt.Sprintf("measure %d: experiment %q is not registered", it.index(j), m.Experiment)})
	}
	it.measures, it.indexes = kept, idx
}

// isolate commits measure by measure what a whole batch could not, and
// dead-letters the measures the database refuses.
func (p *Pipeline) isolate(ctx context.Context, b *batch, exps map[string]int64, series map[storage.SeriesKey]int64) (int, error) {
	b.committed = b.committed[:0]
	committed := 0
	for i := range b.items {
		it := &b.items[i]
		kept, idx := it.measures[:0], make([]int, 0, len(it.measures))
		for j, m := range it.measures {
			row := toRow(series[storage.SeriesKey{ExperimentID: exps[m.Experiment], Sensor: m.Sensor}], m)
			err := p.retry(ctx, "commit", func() error { return classify(p.store.UpsertMeasures(ctx, []storage.Row{row})) })
			var perm permanentError
			switch {
			case errors.As(err, &perm):
				raw, _ := measure.EncodeOne(m)
				it.rejected = append(it.rejected, rejection{raw: raw, kind: KindDatabaseRejected,
					reason: fmt.Sprintf("measure %d: refused by the database: %v", it.index(j), perm.err)})
			case err != nil:
				return 0, err
			default:
				kept, idx = append(kept, m), append(idx, it.index(j))
				committed++
				if p.opts.OnCommit != nil {
					b.committed = append(b.committed, m)
				}
			}
		}
		it.measures, it.indexes = kept, idx
	}
	return committed, nil
}

func toRow(seriesID int64, m measure.Measure) storage.Row {
	return storage.Row{SeriesID: seriesID, Time: m.Time, Value: m.Value, Unit: m.Unit, Tags: m.Tags}
}
