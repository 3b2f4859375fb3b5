package mqtt

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/mymonit/mymonit/adapters/sink"
	"github.com/mymonit/mymonit/pkg/config"
	"github.com/mymonit/mymonit/pkg/measure"
)

// Sink takes the measures of every message; *sink.Sink implements it.
type Sink interface {
	// Add queues measures and returns a ticket that settles when the
	// broker confirmed them (see package sink).
	Add(ctx context.Context, ms ...measure.Measure) (*sink.Ticket, error)
	// Reject counts items that never became measures.
	Reject(reason string, n int)
}

// Reasons a message is rejected: the reason label of
// mymonit_mqtt_messages_rejected_total (and of the sink's rejected count).
const (
	ReasonNoRule     = "no_rule"     // no rule matches the topic
	ReasonBadPayload = "bad_payload" // the payload cannot be read
	ReasonTooLarge   = "too_large"   // the payload exceeds MaxPayload
	ReasonRetained   = "retained"    // a retained message, skipped
	ReasonInvalid    = "invalid"     // every measure of it breaks the v1 contract
)

// Params configure a Bridge.
type Params struct {
	// Config names the broker and the session.
	Config Config
	// Rules map topics and payloads to measures; their filters are
	// subscribed.
	Rules *Rules
	// Sink receives the measures.
	Sink Sink
	// Logger receives connection events and rejected messages; nil logs
	// nothing.
	Logger *zap.Logger
	// Registerer receives the bridge's metrics; nil registers none.
	Registerer prometheus.Registerer
	// Now tells the time a message is received; nil means time.Now.
	Now func() time.Time
}

// Bridge subscribes to the rules' topic filters with QoS 1 in a persistent
// session and publishes what it receives through the sink. A message is
// acknowledged to the MQTT broker only once the measures it carries are
// confirmed by RabbitMQ, or once it is found unusable; a message that was
// not acknowledged is delivered again by the broker in the next session.
type Bridge struct {
	cfg   Config
	rules *Rules
	sink  Sink
	log   *zap.Logger
	now   func() time.Time
	m     *metrics

	client paho.Client

	// mu is held for reading while a message is handled, and for writing by
	// Stop, which so waits for handlers in progress.
	mu       sync.RWMutex
	stopping bool

	addCtx    context.Context // ends Add calls blocked on a full buffer at Stop
	addCancel context.CancelFunc
	ackCtx    context.Context // ends the acker when Stop gives up waiting
	ackCancel context.CancelFunc
	pending   chan pendingAck
	ackerDone chan struct{}

	subscribed chan error
	connected  atomic.Bool
	started    atomic.Bool
}

// pendingAck is a message waiting for its measures' confirms.
type pendingAck struct {
	msg    paho.Message
	ticket *sink.Ticket
	n      int
}

// New returns a Bridge; Start connects it.
func New(p Params) (*Bridge, error) {
	if p.Rules == nil {
		return nil, errors.New("mqtt: no rules")
	}
	if p.Sink == nil {
		return nil, errors.New("mqtt: no sink")
	}
	if p.Config.Broker == "" || p.Config.ClientID == "" {
		return nil, errors.New("mqtt: the broker URL and the client id are required")
	}
	b := &Bridge{
		cfg:        p.Config,
		rules:      p.Rules,
		sink:       p.Sink,
		log:        p.Logger,
		now:        p.Now,
		pending:    make(chan pendingAck, max(p.Config.MaxPending, 1)),
		ackerDone:  make(chan struct{}),
		subscribed: make(chan error, 1),
	}
	if b.log == nil {
		b.log = zap.NewNop()
	}
	if b.now == nil {
		b.now = time.Now
	}
	if b.cfg.MaxPayload <= 0 {
		b.cfg.MaxPayload = 1 << 20
	}
	b.addCtx, b.addCancel = context.WithCancel(context.Background())
	b.ackCtx, b.ackCancel = context.WithCancel(context.Background())
	m, err := newMetrics(p.Registerer, func() float64 { return float64(len(b.pending)) }, func() float64 {
		if b.connected.Load() {
			return 1
		}
		return 0
	})
	if err != nil {
		return nil, fmt.Errorf("mqtt metrics: %w", err)
	}
	b.m = m
	opts := paho.NewClientOptions().
		AddBroker(b.cfg.Broker).
		SetClientID(b.cfg.ClientID).
		SetCleanSession(false).
		SetAutoAckDisabled(true).
		SetOrderMatters(true).
		SetKeepAlive(b.cfg.KeepAlive).
		SetConnectTimeout(10 * time.Second).
		SetAutoReconnect(true).
		SetConnectRetry(false).
		SetMaxReconnectInterval(b.cfg.MaxReconnectInterval).
		SetResumeSubs(false).
		SetDefaultPublishHandler(b.handle).
		SetOnConnectHandler(b.onConnect).
		SetConnectionLostHandler(b.onLost).
		SetReconnectingHandler(func(paho.Client, *paho.ClientOptions) {
			b.log.Info("reconnecting to the MQTT broker")
		})
	if b.cfg.Username != "" {
		opts.SetUsername(b.cfg.Username)
	}
	if b.cfg.Password != "" {
		opts.SetPassword(b.cfg.Password)
	}
	b.client = paho.NewClient(opts)
	return b, nil
}

// Start connects to the broker and subscribes to the rules' filters with QoS
// 1, failing when either does not succeed before ctx ends; then the
// client reconnects on its own after a loss, and subscribes again. Messages
// the broker kept for the session are delivered from the start.
func (b *Bridge) Start(ctx context.Context) error {
	if !b.started.CompareAndSwap(false, true) {
		return errors.New("mqtt: bridge already started")
	}
	go b.acker()
	tok := b.client.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		b.abort()
		return fmt.Errorf("connect to MQTT broker %s: %w", config.MaskCredentials(b.cfg.Broker), ctx.Err())
	}
	if err := tok.Error(); err != nil {
		b.abort()
		return fmt.Errorf("connect to MQTT broker %s: %w", config.MaskCredentials(b.cfg.Broker), err)
	}
	select {
	case err := <-b.subscribed:
		if err != nil {
			b.abort()
			return err
		}
	case <-ctx.Done():
		b.abort()
		return fmt.Errorf("subscribe: %w", ctx.Err())
	}
	return nil
}

// abort undoes a failed Start.
func (b *Bridge) abort() {
	b.addCancel()
	b.mu.Lock()
	b.stopping = true
	close(b.pending)
	b.mu.Unlock()
	b.ackCancel()
	b.client.Disconnect(0)
	<-b.ackerDone
}

func (b *Bridge) onConnect(c paho.Client) {
	b.connected.Store(true)
	filters := map[string]byte{}
	for _, f := range b.rules.Filters() {
		filters[f] = 1
	}
	tok := c.SubscribeMultiple(filters, nil)
	tok.Wait()
	err := tok.Error()
	if err == nil {
		if st, ok := tok.(*paho.SubscribeToken); ok {
			for f, q := range st.Result() {
				if q == 0x80 {
					err = errors.Join(err, fmt.Errorf("subscribe to %q: refused by the broker", f))
				}
			}
		}
	}
	if err != nil {
		err = fmt.Errorf("subscribe: %w", err)
		b.log.Error("MQTT subscription failed", zap.Error(err))
	} else {
		b.log.Info("connected to the MQTT broker", zap.String("server.address", config.MaskCredentials(b.cfg.Broker)),
			zap.String("mqtt.client_id", b.cfg.ClientID), zap.Strings("mqtt.filters", b.rules.Filters()))
	}
	select {
	case b.subscribed <- err:
	default:
	}
}

func (b *Bridge) onLost(_ paho.Client, err error) {
	b.connected.Store(false)
	b.m.lost.Inc()
	b.log.Warn("MQTT connection lost: unacknowledged messages will be delivered again after the reconnection", zap.Error(err))
}

// Connected reports whether the bridge is connected to the MQTT broker.
func (b *Bridge) Connected() bool { return b.connected.Load() && b.client.IsConnectionOpen() }

// Ready is a health.Check: nil while connected to the MQTT broker.
func (b *Bridge) Ready(context.Context) error {
	if !b.Connected() {
		return fmt.Errorf("not connected to the MQTT broker %s", config.MaskCredentials(b.cfg.Broker))
	}
	return nil
}

// handle is the paho message handler: it runs on paho's router goroutine,
// one message at a time, so a full sink pauses reading from the broker.
func (b *Bridge) handle(_ paho.Client, msg paho.Message) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.stopping {
		return // not acknowledged: delivered again in the next session
	}
	b.m.received.Inc()
	topic, payload := msg.Topic(), msg.Payload()
	log := func() *zap.Logger {
		return b.log.With(zap.String("mqtt.topic", topic), zap.Uint16("mqtt.message_id", msg.MessageID()),
			zap.Bool("mqtt.duplicate", msg.Duplicate()))
	}
	switch {
	case msg.Retained() && !b.cfg.AcceptRetained:
		b.reject(msg, ReasonRetained, 1)
		log().Debug("retained message skipped")
		return
	case len(payload) > b.cfg.MaxPayload:
		b.reject(msg, ReasonTooLarge, 1)
		log().Warn("message rejected", zap.String("reason", fmt.Sprintf("payload: %d bytes, more than %d", len(payload), b.cfg.MaxPayload)))
		return
	}
	mapped, err := b.rules.Map(topic, payload, b.now())
	if err != nil {
		reason := ReasonBadPayload
		if errors.Is(err, ErrNoRule) {
			reason = ReasonNoRule
		}
		b.reject(msg, reason, 1)
		log().Warn("message rejected", zap.String("reason", err.Error()), zap.String("mqtt.payload", quote(string(payload))))
		return
	}
	if n := len(mapped.Rejected); n > 0 {
		b.sink.Reject(sink.ReasonInvalid, n)
		for _, r := range mapped.Rejected {
			log().Warn("measure rejected", zap.Int("rule", mapped.Rule), zap.String("reason", r.Reason))
		}
	}
	if len(mapped.Measures) == 0 {
		b.m.rejected.WithLabelValues(ReasonInvalid).Inc()
		msg.Ack()
		b.m.acked.Inc()
		return
	}
	ticket, err := b.sink.Add(b.addCtx, mapped.Measures...)
	for _, r := range ticket.Rejected() {
		log().Warn("measure rejected", zap.Int("rule", mapped.Rule), zap.String("reason", measureReason(mapped, r)))
	}
	if err != nil {
		// Stopping: the queued measures may still be published, but the
		// message is not acknowledged and comes back in the next session.
		b.m.unacked.WithLabelValues("shutdown").Inc()
		return
	}
	if ticket.Queued() == 0 {
		b.m.rejected.WithLabelValues(ReasonInvalid).Inc()
		msg.Ack()
		b.m.acked.Inc()
		return
	}
	select {
	case b.pending <- pendingAck{msg: msg, ticket: ticket, n: ticket.Queued()}:
	case <-b.addCtx.Done():
		b.m.unacked.WithLabelValues("shutdown").Inc()
	}
}

// measureReason names the measure of a sink rejection.
func measureReason(mapped Mapped, r sink.Rejection) string {
	if r.Index >= 0 && r.Index < len(mapped.Measures) {
		m := mapped.Measures[r.Index]
		return fmt.Sprintf("experiment %s sensor %s: %s", strconv.Quote(m.Experiment), strconv.Quote(m.Sensor), r.Reason)
	}
	return r.Reason
}

func (b *Bridge) reject(msg paho.Message, reason string, n int) {
	b.sink.Reject(reason, n)
	b.m.rejected.WithLabelValues(reason).Inc()
	msg.Ack()
	b.m.acked.Inc()
}

// acker acknowledges messages in the order they arrived, each once its
// measures are confirmed. A message whose measures failed (unroutable, sink
// closed) is left unacknowledged: the broker delivers it again in the next
// session.
func (b *Bridge) acker() {
	defer close(b.ackerDone)
	for p := range b.pending {
		select {
		case <-p.ticket.Done():
		case <-b.ackCtx.Done():
			b.m.unacked.WithLabelValues("shutdown").Add(float64(1 + len(b.pending)))
			return
		}
		if err := p.ticket.Err(); err != nil {
			b.m.unacked.WithLabelValues("publish_failed").Inc()
			b.log.Error("message not acknowledged: its measures were not all confirmed; the broker delivers it again in the next session",
				zap.String("mqtt.topic", p.msg.Topic()), zap.Uint16("mqtt.message_id", p.msg.MessageID()), zap.Error(err))
			continue
		}
		p.msg.Ack()
		b.m.acked.Inc()
	}
}

// Stop stops taking messages, waits until the messages received are
// acknowledged (their measures confirmed) or ctx ends, then disconnects.
// Messages not acknowledged by then are delivered again by the broker when
// the session resumes. The sink must still be running: stop the bridge
// first.
func (b *Bridge) Stop(ctx context.Context) error {
	if !b.started.Load() {
		return nil
	}
	b.addCancel() // free a handler waiting for room in the sink
	b.mu.Lock()
	if b.stopping {
		b.mu.Unlock()
		return nil
	}
	b.stopping = true
	close(b.pending)
	b.mu.Unlock()
	var err error
	select {
	case <-b.ackerDone:
	case <-ctx.Done():
		b.ackCancel()
		<-b.ackerDone
		err = fmt.Errorf("mqtt: stop: gave up waiting for confirms: %w", ctx.Err())
	}
	b.ackCancel()
	b.client.Disconnect(250)
	b.connected.Store(false)
	return err
}

type metrics struct {
	received prometheus.Counter
	rejected *prometheus.CounterVec
	acked    prometheus.Counter
	unacked  *prometheus.CounterVec
	lost     prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, pending, connected func() float64) (*metrics, error) {
	m := &metrics{
		received: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mymonit_mqtt_messages_received_total",
			Help: "MQTT messages received.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mymonit_mqtt_messages_rejected_total",
			Help: "MQTT messages not published, by reason (no_rule, bad_payload, too_large, retained, invalid); they are acknowledged.",
		}, []string{"reason"}),
		acked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mymonit_mqtt_messages_acked_total",
			Help: "MQTT messages acknowledged to the broker: confirmed by RabbitMQ, or rejected.",
		}),
		unacked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mymonit_mqtt_messages_unacked_total",
			Help: "MQTT messages left unacknowledged, delivered again in the next session, by reason (publish_failed, shutdown).",
		}, []string{"reason"}),
		lost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mymonit_mqtt_connections_lost_total",
			Help: "Connections to the MQTT broker lost (and then re-established).",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{
		m.received, m.rejected, m.acked, m.unacked, m.lost,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mymonit_mqtt_pending_acks",
			Help: "MQTT messages received and waiting for their confirms before their acknowledgement.",
		}, pending),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mymonit_mqtt_connected",
			Help: "1 while connected to the MQTT broker.",
		}, connected),
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register: %w", err)
		}
	}
	return m, nil
}
