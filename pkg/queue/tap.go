package queue

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/zap"
)

// TapParams configure a Tap.
type TapParams struct {
	// Config names the broker and the measures exchange (Config.Exchange).
	Config Config
	// Logger receives connection events; nil logs nothing.
	Logger *zap.Logger
	// MaxLength bounds the tap's queue on the broker: when the tap falls
	// behind, the oldest copies are dropped (x-overflow drop-head). 0 means
	// 10000.
	MaxLength int
	// Backoff bounds the delays between reconnect attempts.
	Backoff Backoff
}

// Tap receives copies of the measure messages of chosen experiments, for
// live views. It is not a way to process measures: the measures queue and
// its consumer stay the only durable path.
//
// Each connection declares a server-named, exclusive, auto-delete classic
// queue and binds it to the exchange with the routing key of every
// experiment in the tap's set (Bind, Unbind), so the broker sends a process
// only the experiments someone is watching there. Deliveries are acked as
// they are handed over, with a small prefetch, so memory is bounded in the
// process; the queue's length is bounded on the broker (MaxLength, dropping
// the oldest). What was published while the tap was disconnected is not
// seen: a tap is best-effort by design.
type Tap struct {
	cfg     Config
	log     *zap.Logger
	maxLen  int
	backoff Backoff

	connected atomic.Bool

	mu    sync.Mutex
	keys  map[string]struct{} // experiments bound, kept across reconnects
	ch    *amqp.Channel       // the live session's channel, nil between sessions
	queue string              // its server-named queue
}

// NewTap returns a Tap; Run connects it.
func NewTap(p TapParams) *Tap {
	log := p.Logger
	if log == nil {
		log = zap.NewNop()
	}
	t := &Tap{
		cfg:     p.Config,
		log:     log.With(zap.String("queue.exchange", p.Config.Exchange)),
		maxLen:  p.MaxLength,
		backoff: p.Backoff.withDefaults(),
		keys:    map[string]struct{}{},
	}
	if t.maxLen <= 0 {
		t.maxLen = 10000
	}
	return t
}

// tapPrefetch is how many deliveries the broker sends ahead of the acks.
const tapPrefetch = 256

// Connected reports whether the tap has a live session.
func (t *Tap) Connected() bool { return t.connected.Load() }

// Bind adds an experiment to the tap's set and, when connected, binds it at
// once. The experiment stays in the set (and is bound on the next
// connection) even if the bind fails; the error is for the caller to report.
func (t *Tap) Bind(experiment string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.keys[experiment] = struct{}{}
	if t.ch == nil {
		return nil
	}
	if err := t.ch.QueueBind(t.queue, RoutingKey(experiment), t.cfg.Exchange, false, nil); err != nil {
		return fmt.Errorf("queue: bind tap to %q: %w", experiment, err)
	}
	return nil
}

// Unbind removes an experiment from the tap's set and, when connected,
// unbinds it.
func (t *Tap) Unbind(experiment string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.keys, experiment)
	if t.ch == nil {
		return nil
	}
	if err := t.ch.QueueUnbind(t.queue, RoutingKey(experiment), t.cfg.Exchange, nil); err != nil {
		return fmt.Errorf("queue: unbind tap from %q: %w", experiment, err)
	}
	return nil
}

// Run connects, hands every delivered message to fn, and reconnects with
// backoff after a loss, until ctx is done; it then returns nil. fn runs in
// Run's goroutine and must not block: a slow fn holds back the tap (the
// broker then drops the oldest copies). A bad URL is returned at once.
func (t *Tap) Run(ctx context.Context, fn func(routingKey string, body []byte)) error {
	policy := t.backoff.policy()
	for {
		err := t.session(ctx, fn)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errBadURL) {
			return err
		}
		if err == nil {
			policy.Reset()
		}
		d := policy.NextBackOff()
		t.log.Warn("live tap disconnected; reconnecting", zap.Error(err), zap.Duration("event.duration", d))
		if !sleep(ctx, d) {
			return nil
		}
	}
}

// session runs one connection until it is lost or ctx is done.
func (t *Tap) session(ctx context.Context, fn func(string, []byte)) error {
	conn, err := dial(ctx, t.cfg.URL, "mymonit-tap")
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("queue: open tap channel: %w", err)
	}
	topo := Topology{Exchange: t.cfg.Exchange}
	if err := topo.DeclarePublishing(ch); err != nil {
		return err
	}
	q, err := ch.QueueDeclare("", false, true, true, false, amqp.Table{
		amqp.QueueTypeArg:       QueueTypeClassic,
		amqp.QueueMaxLenArg:     int64(t.maxLen),
		amqp.QueueOverflowArg:   amqp.QueueOverflowDropHead,
		amqp.QueueMessageTTLArg: int64(60_000),
	})
	if err != nil {
		return fmt.Errorf("queue: declare tap queue: %w", err)
	}
	if err := ch.Qos(tapPrefetch, 0, false); err != nil {
		return fmt.Errorf("queue: set tap prefetch: %w", err)
	}
	tag := "mymonit-tap-" + uuid.NewString()
	deliveries, err := ch.Consume(q.Name, tag, false, true, false, false, nil)
	if err != nil {
		return fmt.Errorf("queue: consume tap queue: %w", err)
	}
	if err := t.attach(ch, q.Name); err != nil {
		return err
	}
	defer t.detach()
	t.log.Info("live tap connected", zap.String("queue.name", q.Name))

	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	for {
		select {
		case <-ctx.Done():
			return nil
		case e := <-closed:
			if e == nil {
				return errors.New("queue: tap connection closed")
			}
			return e
		case d, ok := <-deliveries:
			if !ok {
				return errors.New("queue: tap deliveries closed")
			}
			fn(d.RoutingKey, d.Body)
			if err := d.Ack(false); err != nil {
				return fmt.Errorf("queue: ack tap delivery: %w", err)
			}
		}
	}
}

// attach binds the set on a new session's channel and publishes it.
func (t *Tap) attach(ch *amqp.Channel, queue string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	keys := make([]string, 0, len(t.keys))
	for k := range t.keys {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := ch.QueueBind(queue, RoutingKey(k), t.cfg.Exchange, false, nil); err != nil {
			return fmt.Errorf("queue: bind tap to %q: %w", k, err)
		}
	}
	t.ch, t.queue = ch, queue
	t.connected.Store(true)
	return nil
}

func (t *Tap) detach() {
	t.mu.Lock()
	t.ch, t.queue = nil, ""
	t.mu.Unlock()
	t.connected.Store(false)
}
