package sink

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/sync/semaphore"

	"github.com/mymonit/mymonit/pkg/measure"
	"github.com/mymonit/mymonit/pkg/queue"
)

// Publisher publishes messages and returns once the broker confirmed them
// all; *queue.Publisher implements it. Publish must retry what was not
// confirmed until ctx is done, report unroutable messages by a
// *queue.UnroutableError while delivering the others, and may deliver a
// message more than once.
type Publisher interface {
	Publish(ctx context.Context, msgs ...queue.Message) error
}

// ErrClosed is returned by Add once Close has begun.
var ErrClosed = errors.New("sink: closed")

// Rejection is a measure Add refused, by its index in Add's arguments.
type Rejection struct {
	Index  int
	Reason string
}

// Params configure a Sink.
type Params struct {
	// Settings size the batches and the buffer.
	Settings Settings
	// Publisher sends the messages; the caller connects and closes it.
	Publisher Publisher
	// Producer names the adapter: the "adapter" label of the metrics.
	Producer string
	// Logger receives publishing failures and recoveries; nil logs nothing.
	Logger *zap.Logger
	// Registerer receives the metrics; nil registers none.
	Registerer prometheus.Registerer
}

// maxMessageBytes is where a batch closes by estimated size, well below
// measure.MaxMessageBytes; a batch that still encodes too large is split.
const maxMessageBytes = 3 << 20

// perPublish is the number of messages one Publish call may carry: about
// 4096 measures, between 4 and 256 messages, so that small messages are
// pipelined as deeply as large ones.
func perPublish(batchSize int) int {
	return min(max(4096/batchSize, 4), 256)
}

// Sink batches measures into v1 messages, one experiment per message, and
// publishes them with confirms. See the package documentation.
type Sink struct {
	set      Settings
	pub      Publisher
	log      *zap.Logger
	m        *metrics
	sem      *semaphore.Weighted
	buffered atomic.Int64

	mu      sync.Mutex
	pending map[string]*batch
	ready   []*batch
	closed  bool
	started bool

	wake        chan struct{}
	closeCtx    context.Context
	closeCancel context.CancelFunc
	runCtx      context.Context
	runCancel   context.CancelFunc
	wg          sync.WaitGroup

	health sync.Mutex
	failed error     // last publish failure, nil once a publish succeeds
	since  time.Time // when publishing started failing
}

// batch is one message in the making: measures of one experiment.
type batch struct {
	exp      string
	ms       []measure.Measure
	parts    []part
	bytes    int
	timer    *time.Timer
	closedAt time.Time
	body     []byte
	id       string
}

// part is a run of a batch's measures that belongs to one ticket.
type part struct {
	t *Ticket
	n int
}

// New returns a Sink; Start starts its publishing workers.
func New(p Params) (*Sink, error) {
	if err := p.Settings.Validate(); err != nil {
		return nil, fmt.Errorf("sink settings: %w", err)
	}
	if p.Publisher == nil {
		return nil, errors.New("sink: no publisher")
	}
	log := p.Logger
	if log == nil {
		log = zap.NewNop()
	}
	s := &Sink{
		set:     p.Settings,
		pub:     p.Publisher,
		log:     log,
		sem:     semaphore.NewWeighted(int64(p.Settings.Buffer)),
		pending: make(map[string]*batch),
		wake:    make(chan struct{}, 1),
	}
	m, err := newMetrics(p.Registerer, p.Producer, p.Settings.Buffer, func() float64 { return float64(s.buffered.Load()) })
	if err != nil {
		return nil, fmt.Errorf("sink metrics: %w", err)
	}
	s.m = m
	s.closeCtx, s.closeCancel = context.WithCancel(context.Background())
	s.runCtx, s.runCancel = context.WithCancel(context.Background())
	return s, nil
}

// Start starts the publishing workers (Settings.InFlight of them). Measures
// added before Start wait in the buffer.
func (s *Sink) Start(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.started {
		return errors.New("sink: already started")
	}
	s.started = true
	for range s.set.InFlight {
		s.wg.Add(1)
		go s.worker()
	}
	return nil
}

// Add validates ms and queues the valid ones for publishing; the returned
// Ticket reports when they are confirmed. Invalid measures are not queued:
// Ticket.Rejected lists them with their reasons (counted as rejected
// "invalid").
//
// Add waits while the buffer is full (backpressure). When ctx is done first,
// or Close begins (ErrClosed), Add returns the error together with a Ticket
// covering what it queued before: the first Ticket.Queued valid measures,
// in argument order, will still be published. The Ticket is never nil.
func (s *Sink) Add(ctx context.Context, ms ...measure.Measure) (*Ticket, error) {
	t := &Ticket{open: 1, done: make(chan struct{})}
	defer t.settle(1, nil)
	s.m.received.Add(float64(len(ms)))
	valid := ms
	for i := range ms {
		if err := ms[i].Validate(); err != nil {
			if len(t.rejected) == 0 {
				valid = make([]measure.Measure, 0, len(ms))
				valid = append(valid, ms[:i]...)
			}
			t.rejected = append(t.rejected, Rejection{Index: i, Reason: err.Error()})
			continue
		}
		if len(t.rejected) > 0 {
			valid = append(valid, ms[i])
		}
	}
	if len(t.rejected) > 0 {
		s.m.rejected.WithLabelValues(ReasonInvalid).Add(float64(len(t.rejected)))
	}
	for len(valid) > 0 {
		n := min(len(valid), s.set.BatchSize)
		if err := s.acquire(ctx, n); err != nil {
			return t, err
		}
		if err := s.enqueue(t, valid[:n]); err != nil {
			s.release(n)
			return t, err
		}
		valid = valid[n:]
	}
	return t, nil
}

// Reject counts n items the adapter read from its source but could not turn
// into measures (a line that does not parse, an unauthorized request), as
// received and rejected with the reason (a short snake_case word, such as
// "parse_error": it becomes a metric label, so keep the set small).
func (s *Sink) Reject(reason string, n int) {
	s.m.received.Add(float64(n))
	s.m.rejected.WithLabelValues(reason).Add(float64(n))
}

// Reasons of mymonit_adapter_measures_rejected_total set by the sink itself.
const (
	// ReasonInvalid: the measure broke the v1 contract (Measure.Validate).
	ReasonInvalid = "invalid"
	// ReasonUnroutable: the broker had no queue bound for the experiment.
	ReasonUnroutable = "unroutable"
	// ReasonNotPublished: the sink closed before the broker confirmed.
	ReasonNotPublished = "not_published"
)

func (s *Sink) acquire(ctx context.Context, n int) error {
	if !s.sem.TryAcquire(int64(n)) {
		actx, cancel := context.WithCancel(ctx)
		stop := context.AfterFunc(s.closeCtx, cancel)
		err := s.sem.Acquire(actx, int64(n))
		stop()
		cancel()
		if err != nil {
			if s.closeCtx.Err() != nil {
				return ErrClosed
			}
			return fmt.Errorf("sink: buffer full (%d measures waiting for confirms): %w", s.set.Buffer, ctx.Err())
		}
	}
	s.buffered.Add(int64(n))
	return nil
}

func (s *Sink) release(n int) {
	s.buffered.Add(-int64(n))
	s.sem.Release(int64(n))
}

func (s *Sink) enqueue(t *Ticket, ms []measure.Measure) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	t.mu.Lock()
	t.open += len(ms)
	t.queued += len(ms)
	t.mu.Unlock()
	for _, m := range ms {
		b := s.pending[m.Experiment]
		if b == nil {
			b = &batch{exp: m.Experiment, ms: make([]measure.Measure, 0, min(s.set.BatchSize, 64))}
			s.pending[m.Experiment] = b
			b.timer = time.AfterFunc(s.set.FlushInterval, func() { s.expire(b) })
		}
		b.ms = append(b.ms, m)
		b.bytes += estimate(m)
		if k := len(b.parts); k > 0 && b.parts[k-1].t == t {
			b.parts[k-1].n++
		} else {
			b.parts = append(b.parts, part{t: t, n: 1})
		}
		if len(b.ms) >= s.set.BatchSize || b.bytes >= maxMessageBytes {
			s.closeBatch(b)
		}
	}
	return nil
}

// estimate is an upper bound of a measure's encoded size, escapes aside.
func estimate(m measure.Measure) int {
	n := 110 + len(m.Experiment) + len(m.Sensor) + len(m.Unit)
	for k, v := range m.Tags {
		n += len(k) + len(v) + 6
	}
	return n
}

// closeBatch moves b from pending to ready; s.mu is held.
func (s *Sink) closeBatch(b *batch) {
	delete(s.pending, b.exp)
	b.timer.Stop()
	b.closedAt = time.Now()
	s.ready = append(s.ready, b)
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Sink) expire(b *batch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending[b.exp] == b {
		s.closeBatch(b)
	}
}

func (s *Sink) worker() {
	defer s.wg.Done()
	for {
		bs, ok := s.take()
		if !ok {
			return
		}
		s.publish(bs)
	}
}

// take waits for ready batches; it returns false once the sink is closed and
// nothing is left to publish.
func (s *Sink) take() ([]*batch, bool) {
	for {
		s.mu.Lock()
		if len(s.ready) > 0 {
			n := min(len(s.ready), perPublish(s.set.BatchSize))
			bs := append([]*batch(nil), s.ready[:n]...)
			clear(s.ready[:n])
			s.ready = s.ready[n:]
			if len(s.ready) == 0 {
				s.ready = nil
			} else {
				select {
				case s.wake <- struct{}{}:
				default:
				}
			}
			s.mu.Unlock()
			return bs, true
		}
		closed := s.closed
		s.mu.Unlock()
		if closed {
			return nil, false
		}
		select {
		case <-s.wake:
		case <-s.closeCtx.Done():
		}
	}
}

// encode sets the body of b, splitting it in halves while it is too large.
func encode(b *batch) ([]*batch, error) {
	body, err := measure.Encode(b.ms)
	if err == nil {
		b.body = body
		b.id = uuid.NewString()
		return []*batch{b}, nil
	}
	if len(b.ms) < 2 {
		return nil, err
	}
	h := len(b.ms) / 2
	lp, rp := splitParts(b.parts, h)
	l := &batch{exp: b.exp, ms: b.ms[:h], parts: lp, bytes: b.bytes / 2, closedAt: b.closedAt}
	r := &batch{exp: b.exp, ms: b.ms[h:], parts: rp, bytes: b.bytes / 2, closedAt: b.closedAt}
	lb, err := encode(l)
	if err != nil {
		return nil, err
	}
	rb, err := encode(r)
	if err != nil {
		return nil, err
	}
	return append(lb, rb...), nil
}

// splitParts splits parts after the first h measures.
func splitParts(ps []part, h int) (left, right []part) {
	for _, p := range ps {
		switch {
		case h <= 0:
			right = append(right, p)
		case p.n <= h:
			left = append(left, p)
			h -= p.n
		default:
			left = append(left, part{t: p.t, n: h})
			right = append(right, part{t: p.t, n: p.n - h})
			h = 0
		}
	}
	return left, right
}

// publish publishes the batches in one call, retrying attempts that time out,
// and settles their tickets.
func (s *Sink) publish(in []*batch) {
	var bs []*batch
	for _, b := range in {
		enc, err := encode(b)
		if err != nil {
			s.log.Error("cannot encode a batch of measures", zap.String("experiment", b.exp), zap.Int("measures", len(b.ms)), zap.Error(err))
			s.settle(b, fmt.Errorf("sink: encode: %w", err), "encode_error")
			continue
		}
		bs = append(bs, enc...)
	}
	if len(bs) == 0 {
		return
	}
	msgs := make([]queue.Message, len(bs))
	now := time.Now()
	for i, b := range bs {
		msgs[i] = queue.Message{
			RoutingKey:  measure.RoutingKey(b.exp),
			Body:        b.body,
			ContentType: measure.ContentType,
			MessageID:   b.id,
			Timestamp:   now,
		}
	}
	for {
		actx, cancel := context.WithTimeout(s.runCtx, s.set.PublishTimeout)
		err := s.pub.Publish(actx, msgs...)
		cancel()
		if err == nil {
			s.recovered()
			for _, b := range bs {
				s.confirmed(b)
			}
			return
		}
		var ue *queue.UnroutableError
		if errors.As(err, &ue) {
			s.recovered()
			bad := make(map[int]bool, len(ue.Indexes))
			for _, i := range ue.Indexes {
				bad[i] = true
			}
			for i, b := range bs {
				if bad[i] {
					s.log.Error("measures unroutable: no queue is bound to their routing key (is ingest running, or the topology declared?)",
						zap.String("routing_key", msgs[i].RoutingKey), zap.Int("measures", len(b.ms)))
					s.settle(b, fmt.Errorf("sink: %w: no queue bound for %s", queue.ErrUnroutable, msgs[i].RoutingKey), ReasonUnroutable)
				} else {
					s.confirmed(b)
				}
			}
			return
		}
		if s.runCtx.Err() != nil || errors.Is(err, queue.ErrClosed) || errors.Is(err, queue.ErrExchangeNotFound) {
			err = fmt.Errorf("sink: not confirmed: %w", err)
			for _, b := range bs {
				s.settle(b, err, ReasonNotPublished)
			}
			return
		}
		s.failing(err)
		s.m.retries.Inc()
	}
}

func (s *Sink) confirmed(b *batch) {
	s.m.messages.Inc()
	s.m.published.Add(float64(len(b.ms)))
	s.m.confirm.Observe(time.Since(b.closedAt).Seconds())
	s.settle(b, nil, "")
}

// settle releases b's measures from the buffer and reports the outcome to
// their tickets.
func (s *Sink) settle(b *batch, err error, reason string) {
	if err != nil {
		s.m.rejected.WithLabelValues(reason).Add(float64(len(b.ms)))
	}
	s.release(len(b.ms))
	for _, p := range b.parts {
		p.t.settle(p.n, err)
	}
}

func (s *Sink) failing(err error) {
	s.health.Lock()
	defer s.health.Unlock()
	if s.failed == nil {
		s.since = time.Now()
		s.log.Warn("publishing to RabbitMQ is failing; retrying", zap.Error(err))
	}
	s.failed = err
}

func (s *Sink) recovered() {
	s.health.Lock()
	defer s.health.Unlock()
	if s.failed != nil {
		s.log.Info("publishing to RabbitMQ recovered", zap.Duration("failing_for", time.Since(s.since)))
		s.failed = nil
	}
}

// Ready reports whether the sink can publish now: it is started, not closed,
// and its last publish attempt did not fail (a health.Check).
func (s *Sink) Ready(context.Context) error {
	s.mu.Lock()
	started, closed := s.started, s.closed
	s.mu.Unlock()
	switch {
	case closed:
		return errors.New("sink closed")
	case !started:
		return errors.New("sink not started")
	}
	s.health.Lock()
	defer s.health.Unlock()
	if s.failed != nil {
		return fmt.Errorf("publishing to RabbitMQ failing since %s: %w", s.since.UTC().Format(time.RFC3339), s.failed)
	}
	return nil
}

// Buffered returns the number of measures added and not yet settled.
func (s *Sink) Buffered() int { return int(s.buffered.Load()) }

// Close stops accepting measures (Add returns ErrClosed, also to callers
// waiting for room), publishes what is pending at once and waits for every
// confirm, or until ctx is done: then it abandons the retries, and the
// unconfirmed measures' tickets fail. It does not close the Publisher.
func (s *Sink) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	started := s.started
	for _, b := range s.pending {
		s.closeBatch(b)
	}
	s.mu.Unlock()
	s.closeCancel()
	if !started {
		s.mu.Lock()
		bs := s.ready
		s.ready = nil
		s.mu.Unlock()
		for _, b := range bs {
			s.settle(b, ErrClosed, ReasonNotPublished)
		}
		s.runCancel()
		return nil
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		n := s.buffered.Load()
		s.runCancel()
		<-done
		err = fmt.Errorf("sink: close: gave up waiting for the confirms of %d measures: %w", n, ctx.Err())
	}
	s.runCancel()
	return err
}

// Ticket follows the measures of one Add call until they are settled:
// confirmed by the broker, or failed.
type Ticket struct {
	rejected []Rejection

	mu     sync.Mutex
	queued int
	open   int
	err    error
	done   chan struct{}
}

func (t *Ticket) settle(n int, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil && t.err == nil {
		t.err = err
	}
	t.open -= n
	if t.open == 0 {
		close(t.done)
	}
}

// Rejected lists the measures Add refused as invalid, by argument index.
func (t *Ticket) Rejected() []Rejection { return t.rejected }

// Queued is the number of measures Add queued: the valid ones, or fewer when
// Add returned an error.
func (t *Ticket) Queued() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.queued
}

// Done is closed once every queued measure is settled.
func (t *Ticket) Done() <-chan struct{} { return t.done }

// Err is nil when every queued measure was confirmed, or the first failure
// (an unroutable message, the sink closing before a confirm). It is only
// final once Done is closed.
func (t *Ticket) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

// Wait waits until the queued measures are settled and returns Err, or
// returns ctx's error first. Measures stay queued when ctx ends.
func (t *Ticket) Wait(ctx context.Context) error {
	select {
	case <-t.done:
		return t.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}
