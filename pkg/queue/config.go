package queue

import (
	"errors"
	"fmt"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Queue types accepted by Config.QueueType.
const (
	QueueTypeQuorum  = "quorum"
	QueueTypeClassic = "classic"
)

// BindingKey binds the measures queue to every experiment's routing key.
const BindingKey = RoutingKeyPrefix + "#"

// RoutingKeyPrefix starts the routing key of every measure message; the rest
// is the experiment slug (see RoutingKey).
const RoutingKeyPrefix = "experiment."

// RoutingKey returns the routing key of the measure messages of an experiment.
func RoutingKey(experiment string) string { return RoutingKeyPrefix + experiment }

// Config names the broker and the topology. It is parsed from the environment
// by pkg/config, which reads the struct tags.
type Config struct {
	// URL of the broker, amqp:// or amqps://.
	URL string `env:"MYMONIT_AMQP_URL" default:"amqp://guest:guest@127.0.0.1:5672/" secret:"true" help:"RabbitMQ URL (amqp:// or amqps://)"`
	// Exchange receives the measure messages (topic, routing key experiment.<slug>).
	Exchange string `env:"MYMONIT_AMQP_EXCHANGE" default:"mymonit.measures" help:"topic exchange the adapters publish measures to"`
	// Queue is the measures queue ingest consumes.
	Queue string `env:"MYMONIT_AMQP_QUEUE" default:"mymonit.ingest" help:"durable queue ingest consumes, bound to the exchange with experiment.#"`
	// DeadExchange receives rejected messages (fanout).
	DeadExchange string `env:"MYMONIT_AMQP_DEAD_EXCHANGE" default:"mymonit.dead" help:"fanout exchange for rejected messages (dead letters)"`
	// DeadQueue keeps the dead letters for inspection and replay.
	DeadQueue string `env:"MYMONIT_AMQP_DEAD_QUEUE" default:"mymonit.ingest.dead" help:"durable queue holding dead letters for inspection and replay"`
	// QueueType is the type of both queues: quorum or classic.
	QueueType string `env:"MYMONIT_AMQP_QUEUE_TYPE" default:"quorum" oneof:"quorum classic" help:"type of the measures and dead-letter queues"`
	// DeliveryLimit is the quorum queue's x-delivery-limit: a message
	// delivered (and returned unacknowledged) this many times, typically
	// because it keeps crashing consumers, is dead-lettered by the broker.
	// 0 means no limit. Classic queues ignore it.
	DeliveryLimit int `env:"MYMONIT_AMQP_DELIVERY_LIMIT" default:"20" min:"0" help:"quorum only: deliveries before the broker dead-letters a message that keeps crashing consumers (0 = unlimited)"`
}

// Validate checks the configuration; its errors name the environment
// variable at fault.
func (c Config) Validate() error {
	var errs []error
	if _, err := amqp.ParseURI(c.URL); err != nil {
		// The parse error may quote the URL, credentials included.
		errs = append(errs, errors.New("MYMONIT_AMQP_URL: not a valid amqp:// or amqps:// URL"))
	}
	for _, f := range []struct{ env, v string }{
		{"MYMONIT_AMQP_EXCHANGE", c.Exchange},
		{"MYMONIT_AMQP_QUEUE", c.Queue},
		{"MYMONIT_AMQP_DEAD_EXCHANGE", c.DeadExchange},
		{"MYMONIT_AMQP_DEAD_QUEUE", c.DeadQueue},
	} {
		switch {
		case f.v == "":
			errs = append(errs, fmt.Errorf("%s: must not be empty", f.env))
		case len(f.v) > 255:
			errs = append(errs, fmt.Errorf("%s: longer than 255 bytes", f.env))
		}
	}
	if c.Exchange != "" && c.Exchange == c.DeadExchange {
		errs = append(errs, fmt.Errorf("MYMONIT_AMQP_DEAD_EXCHANGE: must differ from MYMONIT_AMQP_EXCHANGE (%q)", c.Exchange))
	}
	if c.Queue != "" && c.Queue == c.DeadQueue {
		errs = append(errs, fmt.Errorf("MYMONIT_AMQP_DEAD_QUEUE: must differ from MYMONIT_AMQP_QUEUE (%q)", c.Queue))
	}
	if c.QueueType != QueueTypeQuorum && c.QueueType != QueueTypeClassic {
		errs = append(errs, fmt.Errorf("MYMONIT_AMQP_QUEUE_TYPE: must be %q or %q, got %q", QueueTypeQuorum, QueueTypeClassic, c.QueueType))
	}
	if c.DeliveryLimit < 0 {
		errs = append(errs, fmt.Errorf("MYMONIT_AMQP_DELIVERY_LIMIT: must be >= 0, got %d", c.DeliveryLimit))
	}
	return errors.Join(errs...)
}

// Topology returns the exchanges and queues the configuration names.
func (c Config) Topology() Topology {
	return Topology{
		Exchange:      c.Exchange,
		Queue:         c.Queue,
		DeadExchange:  c.DeadExchange,
		DeadQueue:     c.DeadQueue,
		QueueType:     c.QueueType,
		DeliveryLimit: c.DeliveryLimit,
		BindingKey:    BindingKey,
	}
}

// Topology is the set of exchanges, queues and bindings of the measure flow:
//
//	Exchange (topic) --BindingKey--> Queue --(broker or ingest rejects)--> DeadExchange (fanout) --> DeadQueue
//
// Both queues are durable and of QueueType. Queue dead-letters to
// DeadExchange; as a quorum queue it does so at-least-once
// (x-dead-letter-strategy, which needs x-overflow=reject-publish) and after
// DeliveryLimit deliveries of the same message. A quorum DeadQueue gets a
// delivery limit too high to reach, so that inspecting it never drops
// anything whatever the broker's default.
type Topology struct {
	Exchange      string
	Queue         string
	DeadExchange  string
	DeadQueue     string
	QueueType     string
	DeliveryLimit int
	BindingKey    string
}

// Declare declares the whole topology on ch. Declaring is idempotent;
// it fails with a PRECONDITION_FAILED channel error (and ch is closed) when
// a queue already exists with other arguments, for example another type.
func (t Topology) Declare(ch *amqp.Channel) error {
	if err := t.DeclarePublishing(ch); err != nil {
		return err
	}
	if err := ch.ExchangeDeclare(t.DeadExchange, amqp.ExchangeFanout, true, false, false, false, nil); err != nil {
		return fmt.Errorf("queue: declare dead exchange %q: %w", t.DeadExchange, err)
	}
	// The dead queue first, so the main queue never dead-letters into a void.
	if _, err := ch.QueueDeclare(t.DeadQueue, true, false, false, false, t.deadQueueArgs()); err != nil {
		return fmt.Errorf("queue: declare dead queue %q: %w", t.DeadQueue, err)
	}
	if err := ch.QueueBind(t.DeadQueue, "", t.DeadExchange, false, nil); err != nil {
		return fmt.Errorf("queue: bind dead queue %q to %q: %w", t.DeadQueue, t.DeadExchange, err)
	}
	if _, err := ch.QueueDeclare(t.Queue, true, false, false, false, t.queueArgs()); err != nil {
		return fmt.Errorf("queue: declare queue %q: %w", t.Queue, err)
	}
	key := t.BindingKey
	if key == "" {
		key = BindingKey
	}
	if err := ch.QueueBind(t.Queue, key, t.Exchange, false, nil); err != nil {
		return fmt.Errorf("queue: bind queue %q to %q with %q: %w", t.Queue, t.Exchange, key, err)
	}
	return nil
}

// DeclarePublishing declares only the measures exchange: what a publisher
// (an adapter) needs and may be allowed to configure.
func (t Topology) DeclarePublishing(ch *amqp.Channel) error {
	if err := ch.ExchangeDeclare(t.Exchange, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
		return fmt.Errorf("queue: declare exchange %q: %w", t.Exchange, err)
	}
	return nil
}

func (t Topology) queueType() string {
	if t.QueueType == "" {
		return QueueTypeQuorum
	}
	return t.QueueType
}

// deadQueueDeliveryLimit is the dead queue's x-delivery-limit as a quorum
// queue: high enough never to be reached. Listing dead letters returns them
// to the queue, which counts as a delivery; RabbitMQ 4 gives quorum queues a
// default limit of 20, past which a message without a dead-letter target is
// dropped.
const deadQueueDeliveryLimit = 1 << 30

func (t Topology) deadQueueArgs() amqp.Table {
	args := amqp.Table{amqp.QueueTypeArg: t.queueType()}
	if t.queueType() == QueueTypeQuorum {
		args["x-delivery-limit"] = int64(deadQueueDeliveryLimit)
	}
	return args
}

func (t Topology) queueArgs() amqp.Table {
	args := amqp.Table{
		amqp.QueueTypeArg:        t.queueType(),
		"x-dead-letter-exchange": t.DeadExchange,
	}
	if t.queueType() == QueueTypeQuorum {
		args["x-dead-letter-strategy"] = "at-least-once"
		args[amqp.QueueOverflowArg] = amqp.QueueOverflowRejectPublish
		if t.DeliveryLimit > 0 {
			args["x-delivery-limit"] = int64(t.DeliveryLimit)
		}
	}
	return args
}
