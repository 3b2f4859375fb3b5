package queue

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/zap"
)

// Errors of Publish. Errors not listed (a lost connection, a nack) are
// retried until the context is done.
var (
	// ErrClosed is returned by Publish and Connect once Close was called.
	ErrClosed = errors.New("queue: publisher closed")
	// ErrUnroutable is wrapped by *UnroutableError: the broker accepted a
	// message but no queue was bound for its routing key, so it was dropped.
	ErrUnroutable = errors.New("queue: message unroutable")
	// ErrExchangeNotFound: a Message named an exchange that does not exist.
	ErrExchangeNotFound = errors.New("queue: exchange not found")
)

// UnroutableError reports the messages of a Publish call that the broker
// returned because no queue is bound for their routing key. The other
// messages of the call were delivered and confirmed. errors.Is(err,
// ErrUnroutable) holds.
type UnroutableError struct {
	// Indexes are the positions, in Publish's arguments, of the returned
	// messages, in increasing order.
	Indexes []int
	// Exchange and RoutingKey are those of the first returned message.
	Exchange, RoutingKey string
}

// Error implements error.
func (e *UnroutableError) Error() string {
	return fmt.Sprintf("queue: %d message(s) unroutable: no queue bound to exchange %q for routing key %q",
		len(e.Indexes), e.Exchange, e.RoutingKey)
}

// Unwrap returns ErrUnroutable.
func (e *UnroutableError) Unwrap() error { return ErrUnroutable }

// Message is one message to publish.
type Message struct {
	// Exchange to publish to; "" is the configured measures exchange.
	Exchange string
	// RoutingKey, for measures RoutingKey(experiment).
	RoutingKey string
	// Body is the payload, sent as is.
	Body []byte
	// ContentType of Body, "application/json" for measures.
	ContentType string
	// MessageID identifies the message; empty gets a random UUID.
	MessageID string
	// Timestamp of the message (the broker keeps seconds); zero means now.
	Timestamp time.Time
	// Headers are sent as is, plus HeaderProducer when absent.
	Headers amqp.Table
}

// PublisherParams configure a Publisher.
type PublisherParams struct {
	// Config names the broker and the measures exchange.
	Config Config
	// Logger receives connection events; nil logs nothing.
	Logger *zap.Logger
	// Producer names the publishing program: it is the AppId of every
	// message and its HeaderProducer unless the message has one.
	Producer string
	// DeclareTopology declares the whole Topology on every (re)connection;
	// otherwise only the measures exchange is declared (DeclarePublishing).
	DeclareTopology bool
	// Backoff bounds the delays between attempts.
	Backoff Backoff
	// Registerer receives the publisher's counters; nil registers none.
	Registerer prometheus.Registerer
}

// Publisher publishes persistent messages and waits for the broker's
// confirms. It holds one connection with one confirm-mode channel, opened on
// first use (or by Connect) and reopened after a loss. It is safe for
// concurrent use: concurrent Publish calls share the channel and their
// messages are pipelined, each call waiting only for its own confirms.
//
// Delivery is at-least-once: a message that was not confirmed (the
// connection dropped, the broker nacked) is published again, so a consumer
// may see it twice. Messages carry a MessageID so consumers can tell.
type Publisher struct {
	cfg      Config
	log      *zap.Logger
	producer string
	declare  bool
	backoff  Backoff

	published, retries, unroutable, reconnects counter

	dialSem chan struct{} // one dialer at a time

	mu        sync.Mutex
	closed    bool
	sess      *pubSession
	connected bool // a session was established once: later ones are reconnects
}

// NewPublisher returns a Publisher; it does not connect yet (see Connect).
func NewPublisher(p PublisherParams) *Publisher {
	log := p.Logger
	if log == nil {
		log = zap.NewNop()
	}
	log = log.With(zap.String("queue.producer", p.Producer))
	return &Publisher{
		cfg:        p.Config,
		log:        log,
		producer:   p.Producer,
		declare:    p.DeclareTopology,
		backoff:    p.Backoff.withDefaults(),
		published:  newCounter(p.Registerer, log, "published_total", "Messages published and confirmed by the broker."),
		retries:    newCounter(p.Registerer, log, "publish_retries_total", "Messages published again after a nack or a lost connection."),
		unroutable: newCounter(p.Registerer, log, "publish_unroutable_total", "Messages returned by the broker because no queue was bound for them."),
		reconnects: newCounter(p.Registerer, log, "publisher_reconnects_total", "Publisher connections re-established after a loss."),
		dialSem:    make(chan struct{}, 1),
	}
}

// Connect connects and declares now rather than on the first Publish, so a
// bad URL or an unreachable broker is reported at start. It makes one
// attempt.
func (p *Publisher) Connect(ctx context.Context) error {
	_, err := p.session(ctx)
	return err
}

// Publish publishes msgs as persistent messages, with the mandatory flag, and
// returns once the broker has confirmed all of them, which for a durable
// queue means they are on disk (quorum: on a majority).
//
// Messages the broker did not confirm are published again, after a
// reconnection if the connection was lost, with exponential backoff, until
// ctx is done; Publish then returns an error wrapping ctx.Err(): some of the
// messages may have been delivered anyway. Messages that reached the broker
// but no queue (nothing bound for their routing key) are not retried: they
// are reported by an *UnroutableError while the others are delivered.
// A message naming a missing exchange fails the call with
// ErrExchangeNotFound. After Close, Publish returns ErrClosed.
func (p *Publisher) Publish(ctx context.Context, msgs ...Message) error {
	if len(msgs) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return notConfirmed(ctx, len(msgs), len(msgs), nil)
	}
	out := make([]outgoing, len(msgs))
	for i, m := range msgs {
		o, err := p.outgoing(m)
		if err != nil {
			return fmt.Errorf("queue: publish message %d: %w", i, err)
		}
		out[i] = o
	}
	pending := make([]int, len(msgs))
	for i := range pending {
		pending[i] = i
	}
	var (
		unroutable []int
		lastErr    error
		bo         = p.backoff.policy()
	)
	for {
		s, err := p.session(ctx)
		switch {
		case errors.Is(err, ErrClosed) || errors.Is(err, errBadURL):
			return err
		case err != nil:
			lastErr = err
		default:
			if err := s.verifyExchanges(out, pending); err != nil {
				if errors.Is(err, ErrExchangeNotFound) {
					return err
				}
				lastErr = err
				break
			}
			retry, unr, err := s.publish(ctx, out, pending)
			unroutable = append(unroutable, unr...)
			p.published.Add(len(pending) - len(retry) - len(unr))
			p.unroutable.Add(len(unr))
			if len(retry) == 0 {
				return unroutableError(out, unroutable)
			}
			pending, lastErr = retry, err
			if ctx.Err() == nil {
				p.retries.Add(len(retry))
				p.log.Debug("queue: messages not confirmed, publishing again",
					zap.Int("count", len(retry)), zap.Error(err))
			}
		}
		if ctx.Err() != nil || !sleep(ctx, bo.NextBackOff()) {
			return notConfirmed(ctx, len(pending), len(msgs), lastErr)
		}
	}
}

// Close closes the connection. Publish calls in progress return an error
// wrapping ErrClosed; their unconfirmed messages may or may not have been
// delivered.
func (p *Publisher) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	s := p.sess
	p.sess = nil
	p.mu.Unlock()
	// Wait for a dial in progress: it sees closed and closes its session.
	p.dialSem <- struct{}{}
	<-p.dialSem
	if s == nil {
		return nil
	}
	return s.close()
}

func notConfirmed(ctx context.Context, pending, total int, last error) error {
	if last == nil || errors.Is(last, ctx.Err()) {
		return fmt.Errorf("queue: publish: %d of %d messages not confirmed: %w", pending, total, ctx.Err())
	}
	return fmt.Errorf("queue: publish: %d of %d messages not confirmed: %w (last error: %v)", pending, total, ctx.Err(), last)
}

func unroutableError(out []outgoing, idx []int) error {
	if len(idx) == 0 {
		return nil
	}
	sorted := append([]int(nil), idx...)
	for i := 1; i < len(sorted); i++ { // insertion sort: short, nearly sorted
		for j := i; j > 0 && sorted[j] < sorted[j-1]; j-- {
			sorted[j], sorted[j-1] = sorted[j-1], sorted[j]
		}
	}
	first := out[sorted[0]]
	return &UnroutableError{Indexes: sorted, Exchange: first.exchange, RoutingKey: first.key}
}

// outgoing is a Message ready for the wire.
type outgoing struct {
	exchange, key string
	msg           amqp.Publishing
}

func (p *Publisher) outgoing(m Message) (outgoing, error) {
	exchange := m.Exchange
	if exchange == "" {
		exchange = p.cfg.Exchange
	}
	for _, f := range []struct{ name, v string }{
		{"exchange", exchange}, {"routing key", m.RoutingKey}, {"message ID", m.MessageID}, {"content type", m.ContentType},
	} {
		if len(f.v) > 255 { // AMQP short strings
			return outgoing{}, fmt.Errorf("%s longer than 255 bytes", f.name)
		}
	}
	headers := make(amqp.Table, len(m.Headers)+1)
	for k, v := range m.Headers {
		headers[k] = v
	}
	if _, ok := headers[HeaderProducer]; !ok && p.producer != "" {
		headers[HeaderProducer] = p.producer
	}
	if err := headers.Validate(); err != nil {
		return outgoing{}, fmt.Errorf("headers: %w", err)
	}
	id := m.MessageID
	if id == "" {
		id = uuid.NewString()
	}
	ts := m.Timestamp
	if ts.IsZero() {
		ts = time.Now()
	}
	return outgoing{exchange: exchange, key: m.RoutingKey, msg: amqp.Publishing{
		Headers:      headers,
		ContentType:  m.ContentType,
		DeliveryMode: amqp.Persistent,
		MessageId:    id,
		Timestamp:    ts.UTC(),
		AppId:        p.producer,
		Body:         m.Body,
	}}, nil
}

// session returns the live session, dialling a new one (one attempt) when
// there is none or it died.
func (p *Publisher) session(ctx context.Context) (*pubSession, error) {
	p.mu.Lock()
	closed, s := p.closed, p.sess
	p.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	if s != nil && s.alive() {
		return s, nil
	}
	select {
	case p.dialSem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-p.dialSem }()

	p.mu.Lock()
	closed, s = p.closed, p.sess
	if s != nil && s.alive() {
		p.mu.Unlock()
		return s, nil
	}
	p.sess = nil
	p.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	if s != nil {
		p.log.Warn("queue: publisher connection lost, reconnecting", zap.Error(s.cause()))
		_ = s.close()
	}
	ns, err := p.dial(ctx)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		_ = ns.close()
		return nil, ErrClosed
	}
	p.sess = ns
	reconnect := p.connected
	p.connected = true
	p.mu.Unlock()
	if reconnect {
		p.reconnects.Add(1)
		p.log.Info("queue: publisher reconnected")
	} else {
		p.log.Info("queue: publisher connected", zap.String("queue.url", redactURL(p.cfg.URL)))
	}
	return ns, nil
}

func (p *Publisher) dial(ctx context.Context) (*pubSession, error) {
	name := "mymonit publisher"
	if p.producer != "" {
		name += " " + p.producer
	}
	conn, err := dial(ctx, p.cfg.URL, name)
	if err != nil {
		return nil, err
	}
	ch, err := conn.Channel()
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("queue: open channel: %w", err)
	}
	topo := p.cfg.Topology()
	if p.declare {
		err = topo.Declare(ch)
	} else {
		err = topo.DeclarePublishing(ch)
	}
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	if err := ch.Confirm(false); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("queue: enable publisher confirms: %w", err)
	}
	s := &pubSession{
		conn:      conn,
		ch:        ch,
		log:       p.log,
		returns:   ch.NotifyReturn(make(chan amqp.Return)), // unbuffered: see watch
		chClosed:  ch.NotifyClose(make(chan *amqp.Error, 1)),
		connClose: conn.NotifyClose(make(chan *amqp.Error, 1)),
		blocks:    conn.NotifyBlocked(make(chan amqp.Blocking, 1)),
		sync:      make(chan struct{}),
		done:      make(chan struct{}),
		expect:    make(map[returnKey]*returnCount),
		exchanges: map[string]bool{p.cfg.Exchange: true},
	}
	go s.watch()
	return s, nil
}

// pubSession is one connection and its confirm-mode channel.
type pubSession struct {
	conn      *amqp.Connection
	ch        *amqp.Channel
	log       *zap.Logger
	returns   <-chan amqp.Return
	chClosed  <-chan *amqp.Error
	connClose <-chan *amqp.Error
	blocks    <-chan amqp.Blocking
	sync      chan struct{}
	done      chan struct{} // closed once the channel is closed and every return recorded

	mu        sync.Mutex
	err       *amqp.Error
	unblocked chan struct{} // non-nil while the broker blocks the connection
	expect    map[returnKey]*returnCount
	exchanges map[string]bool // known to exist on this connection
}

type returnKey struct{ exchange, key, id string }

type returnCount struct{ expected, returned int }

// watch records basic.return frames until the library closes the returns
// channel, which it does when the channel or connection closes.
//
// The broker sends a message's basic.return before its basic.ack, and the
// library hands both over from one goroutine. The returns channel is
// unbuffered, so by the time a confirm is visible this goroutine holds the
// return; a publisher that sends on sync (which this goroutine only receives
// between two returns) knows every return preceding its confirms is recorded.
func (s *pubSession) watch() {
	defer close(s.done)
	defer s.setBlocked(amqp.Blocking{}) // release waiters
	returns, chClosed, connClosed, blocks := s.returns, s.chClosed, s.connClose, s.blocks
	for returns != nil {
		select {
		case r, ok := <-returns:
			if !ok {
				returns = nil
				continue
			}
			s.mu.Lock()
			if c := s.expect[returnKey{r.Exchange, r.RoutingKey, r.MessageId}]; c != nil {
				c.returned++
			}
			s.mu.Unlock()
		case <-s.sync:
		case e, ok := <-chClosed:
			s.setErr(e)
			if !ok {
				chClosed = nil
			}
		case e, ok := <-connClosed:
			s.setErr(e)
			if !ok {
				connClosed = nil
			}
		case b, ok := <-blocks:
			if !ok {
				blocks = nil
				continue
			}
			s.setBlocked(b)
		}
	}
}

// setBlocked records connection.blocked / unblocked. While the broker
// blocks a connection (memory or disk alarm) it stops reading from it, so a
// publish could block in a socket write that no context can interrupt;
// Publish waits for the unblock instead, until its context is done.
func (s *pubSession) setBlocked(b amqp.Blocking) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case b.Active && s.unblocked == nil:
		s.unblocked = make(chan struct{})
		s.log.Warn("queue: broker blocks publishing", zap.String("queue.reason", b.Reason))
	case !b.Active && s.unblocked != nil:
		close(s.unblocked)
		s.unblocked = nil
		s.log.Info("queue: broker unblocked publishing")
	}
}

// waitUnblocked waits while the broker blocks the connection.
func (s *pubSession) waitUnblocked(ctx context.Context) error {
	s.mu.Lock()
	unblocked := s.unblocked
	s.mu.Unlock()
	if unblocked == nil {
		return nil
	}
	select {
	case <-unblocked:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *pubSession) setErr(e *amqp.Error) {
	if e == nil {
		return
	}
	s.mu.Lock()
	if s.err == nil {
		s.err = e
	}
	s.mu.Unlock()
}

// cause returns why the session died, as far as the broker said.
func (s *pubSession) cause() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		return amqp.ErrClosed
	}
	return s.err
}

func (s *pubSession) alive() bool {
	select {
	case <-s.done:
		return false
	default:
		return !s.ch.IsClosed() && !s.conn.IsClosed()
	}
}

// close closes the connection and waits for the watcher.
func (s *pubSession) close() error {
	err := s.conn.CloseDeadline(time.Now().Add(dialTimeout))
	<-s.done
	if errors.Is(err, amqp.ErrClosed) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("queue: close publisher connection: %w", err)
	}
	return nil
}

// verifyExchanges checks, once per connection, that the exchanges other than
// the declared one exist. Publishing to a missing exchange would close the
// channel shared by every caller; a passive declare on a channel of its own
// fails alone.
func (s *pubSession) verifyExchanges(out []outgoing, idx []int) error {
	for _, k := range idx {
		name := out[k].exchange
		s.mu.Lock()
		known := s.exchanges[name]
		s.mu.Unlock()
		if known {
			continue
		}
		ch, err := s.conn.Channel()
		if err != nil {
			return fmt.Errorf("queue: open channel: %w", err)
		}
		// The kind is ignored by a passive declare.
		err = ch.ExchangeDeclarePassive(name, amqp.ExchangeTopic, true, false, false, false, nil)
		_ = ch.Close() // a no-op if the broker closed it
		if err != nil {
			if isNotFound(err) {
				return fmt.Errorf("%w: %q", ErrExchangeNotFound, name)
			}
			return fmt.Errorf("queue: check exchange %q: %w", name, err)
		}
		s.mu.Lock()
		s.exchanges[name] = true
		s.mu.Unlock()
	}
	return nil
}

// errNacked reports messages the broker refused to take responsibility for.
var errNacked = errors.New("queue: broker nacked messages")

// publish publishes out[idx...] and waits for their confirms. It returns the
// indexes to publish again (nacked, or lost with the channel) and those the
// broker returned as unroutable. err says why retry is not empty.
func (s *pubSession) publish(ctx context.Context, out []outgoing, idx []int) (retry, unroutable []int, err error) {
	keys := make([]returnKey, len(idx))
	s.mu.Lock()
	for i, k := range idx {
		o := out[k]
		keys[i] = returnKey{o.exchange, o.key, o.msg.MessageId}
		c := s.expect[keys[i]]
		if c == nil {
			c = &returnCount{}
			s.expect[keys[i]] = c
		}
		c.expected++
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		for _, key := range keys {
			if c := s.expect[key]; c != nil {
				if c.expected--; c.expected <= 0 {
					delete(s.expect, key)
				}
			}
		}
		s.mu.Unlock()
	}()

	dcs := make([]*amqp.DeferredConfirmation, 0, len(idx))
	var pubErr error
	for _, k := range idx {
		if err := s.waitUnblocked(ctx); err != nil {
			return idx, nil, err
		}
		o := out[k]
		dc, err := s.ch.PublishWithDeferredConfirm(o.exchange, o.key, true, false, o.msg)
		if err != nil {
			pubErr = fmt.Errorf("queue: publish: %w", err)
			break
		}
		dcs = append(dcs, dc)
	}
	for _, dc := range dcs {
		select {
		case <-dc.Done():
		case <-ctx.Done():
			return idx, nil, ctx.Err()
		}
	}
	select {
	case s.sync <- struct{}{}:
	case <-s.done:
	}
	s.mu.Lock()
	for i, k := range idx {
		if i >= len(dcs) || !dcs[i].Acked() {
			retry = append(retry, k)
			continue
		}
		if c := s.expect[keys[i]]; c != nil && c.returned > 0 {
			c.returned--
			unroutable = append(unroutable, k)
		}
	}
	s.mu.Unlock()
	switch {
	case len(retry) == 0:
	case pubErr != nil:
		err = pubErr
	case !s.alive():
		err = fmt.Errorf("queue: publisher channel closed: %w", s.cause())
	default:
		err = errNacked
	}
	return retry, unroutable, err
}
