package queue

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/zap"
)

// Handler processes the deliveries of one consumer session. Run calls it once
// per (re)established session, in a goroutine of its own, and waits for it
// to return before it opens the next session or returns itself.
//
// The contract between Run and a Handler:
//
//   - Read deliveries until the channel is closed, then return. Run closes
//     it (through the AMQP library) when the session ends: on connection or
//     channel loss, and on shutdown once the broker stopped delivering.
//   - Ack a delivery only after its work is durable (the database
//     transaction holding its measures committed). d.Ack(true) acks every
//     delivery of the session up to d, which is how batches are acked.
//     Acking the same delivery twice is a channel error that ends the
//     session (and its unacked deliveries are redelivered).
//   - Never requeue poison: a message that cannot be processed is published
//     to the dead exchange (NewDeadLetter and a Publisher), and acked once
//     that publish is confirmed. d.Nack(false, true) is for transient
//     failures only; with a quorum queue each return counts towards the
//     delivery limit, after which the broker dead-letters the message. A
//     message that crashes the process is returned the same way.
//   - Deliveries not acked when the session ends are redelivered (with
//     Redelivered set) to some consumer. Their late acks fail with
//     amqp.ErrClosed: ignore that error, never retry it.
//   - ctx is done when the session is lost (acks can no longer succeed, so
//     in-flight work may be abandoned), or when a graceful shutdown has
//     waited the drain timeout. It is NOT done at the start of a graceful
//     shutdown: the handler finishes its in-flight batch, acks it, and sees
//     deliveries closed.
//
// Handler is an alias, so that Run's signature spells the plain func type
// and interfaces declared elsewhere with that type match *Consumer.
type Handler = func(ctx context.Context, deliveries <-chan amqp.Delivery)

// ConsumerParams configure a Consumer.
type ConsumerParams struct {
	// Config names the broker and the queue to consume (Config.Queue).
	Config Config
	// Logger receives connection events; nil logs nothing.
	Logger *zap.Logger
	// Prefetch is how many unacked deliveries the broker sends ahead; it
	// must exceed the handler's batch size. 0 means 1000. SetPrefetch
	// changes it while the consumer runs.
	Prefetch int
	// Tag is the consumer tag; empty gets a random one.
	Tag string
	// DeclareTopology declares the whole Topology on every (re)connection;
	// otherwise the queue must exist already.
	DeclareTopology bool
	// Backoff bounds the delays between reconnect attempts.
	Backoff Backoff
	// DrainTimeout bounds how long a graceful shutdown waits for the
	// handler before it cancels the handler's context and closes the
	// channel, which returns the unacked deliveries to the queue. 0 means 30s.
	DrainTimeout time.Duration
	// Registerer receives the consumer's counters; nil registers none.
	Registerer prometheus.Registerer
}

// Consumer consumes the measures queue with manual acks, reconnecting and
// re-declaring after a loss. See Handler for the ack contract.
type Consumer struct {
	cfg          Config
	log          *zap.Logger
	tag          string
	prefetch     atomic.Int64  // the window of the next session
	session      atomic.Int64  // the window of the running session, 0 between sessions
	resize       chan struct{} // SetPrefetch's signal to the running session
	declare      bool
	backoff      Backoff
	drainTimeout time.Duration
	reconnects   counter

	connected atomic.Bool
	running   atomic.Bool

	mu   sync.Mutex
	idle *conSession // opened by Connect, handed to Run
}

// NewConsumer returns a Consumer; it does not connect yet (see Connect and
// Run).
func NewConsumer(p ConsumerParams) *Consumer {
	log := p.Logger
	if log == nil {
		log = zap.NewNop()
	}
	c := &Consumer{
		cfg:          p.Config,
		tag:          p.Tag,
		resize:       make(chan struct{}, 1),
		declare:      p.DeclareTopology,
		backoff:      p.Backoff.withDefaults(),
		drainTimeout: p.DrainTimeout,
	}
	if c.tag == "" {
		c.tag = "mymonit-" + uuid.NewString()
	}
	if p.Prefetch <= 0 {
		p.Prefetch = 1000
	}
	c.prefetch.Store(int64(p.Prefetch))
	if c.drainTimeout <= 0 {
		c.drainTimeout = 30 * time.Second
	}
	c.log = log.With(zap.String("queue.name", p.Config.Queue), zap.String("queue.consumer_tag", c.tag))
	c.reconnects = newCounter(p.Registerer, c.log, "consumer_reconnects_total", "Consumer sessions re-established after a loss.")
	return c
}

// Prefetch returns the prefetch window of the running session, or of the
// next one between sessions.
func (c *Consumer) Prefetch() int {
	if n := c.session.Load(); n > 0 {
		return int(n)
	}
	return int(c.prefetch.Load())
}

// SetPrefetch sets the prefetch window to n (n ≤ 0 is ignored). The broker
// applies a window to a consumer when the consumer starts, so a running
// session with another window is ended gracefully: the consumer is
// cancelled, the handler receives what the broker sent already, sees its
// deliveries close and returns (having acked what it handled, as at
// shutdown), and Run starts a new session with the new window at once. It
// returns without waiting for that.
func (c *Consumer) SetPrefetch(n int) {
	if n <= 0 {
		return
	}
	c.prefetch.Store(int64(n))
	select {
	case c.resize <- struct{}{}:
	default: // a signal is pending already; it reads the latest window
	}
}

// Connected reports whether a session is consuming now (for /readyz).
func (c *Consumer) Connected() bool { return c.connected.Load() }

// Connect connects, sets up the channel and declares the topology (or checks
// the queue exists) now, so that a bad URL, an unreachable broker or a
// conflicting queue is reported at start. It makes one attempt. Run uses the
// connection it opened; Close closes it if Run never does.
func (c *Consumer) Connect(ctx context.Context) error {
	s, err := c.dial(ctx)
	if err != nil {
		return err
	}
	c.mu.Lock()
	old := c.idle
	c.idle = s
	c.mu.Unlock()
	if old != nil {
		old.close()
	}
	return nil
}

// Close closes the connection opened by Connect if Run has not taken it.
// It does not stop Run: cancel Run's context for that.
func (c *Consumer) Close() error {
	c.mu.Lock()
	s := c.idle
	c.idle = nil
	c.mu.Unlock()
	if s != nil {
		s.close()
	}
	return nil
}

// Run consumes cfg.Queue until ctx is done. For every (re)established
// session it calls handle with that session's delivery channel; handle must
// return when deliveries is closed (see Handler).
//
// When ctx is done, Run cancels the consumer (basic.cancel) so the broker
// stops delivering, but keeps the channel open until handle has returned, so
// handle can finish in-flight work and ack it; then it closes channel and
// connection and returns nil. On connection or channel loss the delivery
// channel closes; deliveries not yet acked are redelivered by the broker, so
// acks of a dead session fail and must be ignored. Run then reconnects with
// backoff and re-declares. Run returns an error only if reconnecting is
// impossible by configuration (a malformed URL), or if it is already
// running.
func (c *Consumer) Run(ctx context.Context, handle Handler) error {
	if handle == nil {
		return errors.New("queue: Run: nil handler")
	}
	if err := checkURL(c.cfg.URL); err != nil {
		return err
	}
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("queue: Run: consumer already running")
	}
	defer c.running.Store(false)

	bo := c.backoff.policy()
	sessions := 0
	resized := false
	for {
		s := c.takeIdle()
		var err error
		if s == nil {
			s, err = c.dial(ctx)
		}
		var deliveries <-chan amqp.Delivery
		if err == nil {
			deliveries, err = s.ch.Consume(c.cfg.Queue, c.tag, false, false, false, false, nil)
			if err != nil {
				err = fmt.Errorf("queue: consume %q: %w", c.cfg.Queue, err)
				s.close()
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			d := bo.NextBackOff()
			c.log.Warn("queue: consumer cannot connect, retrying", zap.Error(err), zap.Duration("queue.retry_in", d))
			if !sleep(ctx, d) {
				return nil
			}
			continue
		}
		switch {
		case resized:
			c.log.Info("queue: consumer restarted with a new prefetch", zap.Int("queue.prefetch", s.prefetch))
		case sessions > 0:
			c.reconnects.Add(1)
			c.log.Info("queue: consumer reconnected")
		default:
			c.log.Info("queue: consumer started", zap.String("queue.url", redactURL(c.cfg.URL)), zap.Int("queue.prefetch", s.prefetch))
		}
		sessions++
		start := time.Now()
		end := c.serve(ctx, s, deliveries, handle)
		resized = end == endResized
		switch end {
		case endStopped:
			c.log.Info("queue: consumer stopped")
			return nil
		case endResized:
			continue // at once: nothing was lost
		}
		if time.Since(start) > c.backoff.Max {
			bo.Reset()
		}
		if !sleep(ctx, bo.NextBackOff()) {
			return nil
		}
	}
}

// How a session ended.
type sessionEnd int

const (
	endStopped sessionEnd = iota // ctx is done: a graceful stop
	endLost                      // the session broke: reconnect with backoff
	endResized                   // SetPrefetch: start again at once
)

// serve runs handle on one session until ctx is done, the prefetch window
// changes, or the session ends otherwise.
func (c *Consumer) serve(ctx context.Context, s *conSession, deliveries <-chan amqp.Delivery, handle Handler) sessionEnd {
	hctx, hcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer hcancel()
	c.session.Store(int64(s.prefetch))
	defer c.session.Store(0)
	c.connected.Store(true)
	defer c.connected.Store(false)
	handled := make(chan struct{})
	go func() {
		defer close(handled)
		handle(hctx, deliveries)
	}()

	// drain ends the session gracefully: the broker stops delivering, what
	// it sent already still reaches the handler, then the library closes
	// deliveries and the handler returns once it acked its work.
	drain := func() {
		if err := s.ch.Cancel(c.tag, false); err != nil {
			c.log.Warn("queue: cancel consumer", zap.Error(err))
		}
		t := time.NewTimer(c.drainTimeout)
		defer t.Stop()
		select {
		case <-handled:
			settle()
		case <-t.C:
			c.log.Warn("queue: handler still busy after the drain timeout; its unacked deliveries return to the queue",
				zap.Duration("queue.drain_timeout", c.drainTimeout))
			hcancel()
			s.close()
			<-handled
		}
		s.close()
	}
	for lost := false; !lost; {
		select {
		case <-ctx.Done():
			drain()
			return endStopped
		case <-c.resize:
			if int(c.prefetch.Load()) == s.prefetch {
				continue // set back before this session saw it
			}
			drain()
			if ctx.Err() != nil {
				return endStopped
			}
			return endResized
		case e := <-s.chClosed:
			c.log.Warn("queue: consumer channel lost", zap.Error(errOrClosed(e)))
			lost = true
		case e := <-s.connClosed:
			c.log.Warn("queue: consumer connection lost", zap.Error(errOrClosed(e)))
			lost = true
		case <-handled:
			// The broker cancelled the consumer (queue deleted) or the
			// handler broke the contract. Either way start afresh; closing
			// returns the unacked deliveries to the queue.
			c.log.Warn("queue: handler returned while the session was open; reconnecting")
			lost = true
		}
	}
	hcancel()
	s.close() // closes deliveries if the library has not yet
	<-handled
	if ctx.Err() != nil {
		return endStopped
	}
	return endLost
}

// settleGrace is how long a channel stays open after its last acks. A quorum
// queue channel in RabbitMQ 3.10 buffers settlements inside the broker when
// many are in flight, and drops the buffered ones if the channel closes at
// once: those messages are then redelivered although they were acked. A
// short wait before closing lets the broker apply them.
const settleGrace = 200 * time.Millisecond

func settle() { time.Sleep(settleGrace) }

func errOrClosed(e *amqp.Error) error {
	if e == nil {
		return amqp.ErrClosed
	}
	return e
}

func (c *Consumer) takeIdle() *conSession {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.idle
	c.idle = nil
	return s
}

// conSession is one connection and its consuming channel.
type conSession struct {
	prefetch   int // the window set on ch
	conn       *amqp.Connection
	ch         *amqp.Channel
	chClosed   <-chan *amqp.Error
	connClosed <-chan *amqp.Error
}

func (c *Consumer) dial(ctx context.Context) (*conSession, error) {
	conn, err := dial(ctx, c.cfg.URL, "mymonit consumer "+c.tag)
	if err != nil {
		return nil, err
	}
	s := &conSession{conn: conn, connClosed: conn.NotifyClose(make(chan *amqp.Error, 1))}
	s.ch, err = conn.Channel()
	if err != nil {
		s.close()
		return nil, fmt.Errorf("queue: open channel: %w", err)
	}
	if c.declare {
		err = c.cfg.Topology().Declare(s.ch)
	} else if _, qerr := s.ch.QueueDeclarePassive(c.cfg.Queue, true, false, false, false, nil); qerr != nil {
		err = fmt.Errorf("queue: queue %q: %w", c.cfg.Queue, qerr)
	}
	if err != nil {
		s.close()
		return nil, err
	}
	s.prefetch = int(c.prefetch.Load())
	if err := s.ch.Qos(s.prefetch, 0, false); err != nil {
		s.close()
		return nil, fmt.Errorf("queue: set prefetch %d: %w", s.prefetch, err)
	}
	s.chClosed = s.ch.NotifyClose(make(chan *amqp.Error, 1))
	return s, nil
}

// close closes channel and connection; the broker requeues unacked
// deliveries.
func (s *conSession) close() {
	if s.ch != nil {
		_ = s.ch.Close()
	}
	_ = s.conn.CloseDeadline(time.Now().Add(dialTimeout))
}
