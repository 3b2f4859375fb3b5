package queue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// DeadLetter is a message of the dead-letter queue as the operator sees it.
type DeadLetter struct {
	// MessageID of the rejected message.
	MessageID string
	// Reason in words: HeaderReason when ingest rejected the message, or
	// "rejected by broker: ..." when the broker dead-lettered it (for
	// example after the quorum queue's delivery limit).
	Reason string
	// OriginalRoutingKey is where a replay publishes the message.
	OriginalRoutingKey string
	// Producer is HeaderProducer, or the AppId without it.
	Producer string
	// RejectedAt is HeaderRejectedAt, or the broker's x-death time.
	RejectedAt time.Time
	// Body of the message.
	Body []byte
	// Headers of the message as stored.
	Headers amqp.Table
	// DeathCount is how many times the broker dead-lettered the message
	// (the x-death counts), 0 when only ingest rejected it.
	DeathCount int
	// ReplayCount is HeaderReplayCount: how many times it was replayed.
	ReplayCount int
}

// replayBatch is how many dead letters a replay publishes per confirm round.
const replayBatch = 100

// ListDeadLetters reads the dead-letter queue without consuming it: it gets
// every message present when it starts (basic.get without ack), then closes
// its channel, which returns them all to the queue (marked redelivered).
// total is the number of messages read, byReason counts them by Reason, and
// sample holds the first limit of them (none if limit <= 0).
// Reading counts as a delivery of each message (see Topology about the dead
// queue's delivery limit).
func ListDeadLetters(ctx context.Context, cfg Config, limit int) (total int, sample []DeadLetter, byReason map[string]int, err error) {
	conn, ch, ready, err := openDeadQueue(ctx, cfg, "mymonit dead-letter list")
	if err != nil {
		return 0, nil, nil, err
	}
	defer conn.Close()
	defer ch.Close() // returns every message read to the queue
	byReason = make(map[string]int)
	for total < ready {
		if err := ctx.Err(); err != nil {
			return total, sample, byReason, fmt.Errorf("queue: list dead letters: %w", err)
		}
		d, ok, err := ch.Get(cfg.DeadQueue, false)
		if err != nil {
			return total, sample, byReason, fmt.Errorf("queue: get from %q: %w", cfg.DeadQueue, err)
		}
		if !ok {
			break
		}
		dl := parseDeadLetter(d)
		total++
		byReason[dl.Reason]++
		if len(sample) < limit {
			sample = append(sample, dl)
		}
	}
	return total, sample, byReason, nil
}

// ReplayDeadLetters publishes dead letters again to their original routing
// key on cfg.Exchange, with HeaderReplayCount incremented and the rejection
// headers removed, and removes them from the dead-letter queue. It reads the
// messages present when it starts; those filter rejects (nil accepts all), those
// without an original routing key, and those beyond max (max <= 0: no limit)
// stay in the queue. A message is acked, so removed, only after pub confirmed
// its copy: an interruption may duplicate messages, never lose them.
// Messages whose routing key no queue is bound to stay too, and the error
// then wraps ErrUnroutable.
func ReplayDeadLetters(ctx context.Context, cfg Config, pub *Publisher, filter func(DeadLetter) bool, max int) (replayed int, err error) {
	conn, ch, ready, err := openDeadQueue(ctx, cfg, "mymonit dead-letter replay")
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	defer ch.Close() // returns the messages left unacked to the queue

	var (
		batch      []amqp.Delivery
		msgs       []Message
		unroutable int
	)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		skip := make(map[int]bool)
		if err := pub.Publish(ctx, msgs...); err != nil {
			var ue *UnroutableError
			if !errors.As(err, &ue) {
				return fmt.Errorf("queue: replay dead letters: %w", err)
			}
			for _, i := range ue.Indexes {
				skip[i] = true
			}
			unroutable += len(ue.Indexes)
		}
		for i, d := range batch {
			if skip[i] {
				continue
			}
			if err := d.Ack(false); err != nil {
				return fmt.Errorf("queue: ack replayed dead letter %q (it was replayed and may be again): %w", d.MessageId, err)
			}
			replayed++
		}
		batch, msgs = batch[:0], msgs[:0]
		return nil
	}
	for scanned := 0; scanned < ready && (max <= 0 || replayed+len(batch) < max); scanned++ {
		if err := ctx.Err(); err != nil {
			return replayed, fmt.Errorf("queue: replay dead letters: %w", err)
		}
		d, ok, err := ch.Get(cfg.DeadQueue, false)
		if err != nil {
			return replayed, fmt.Errorf("queue: get from %q: %w", cfg.DeadQueue, err)
		}
		if !ok {
			break
		}
		dl := parseDeadLetter(d)
		if dl.OriginalRoutingKey == "" || (filter != nil && !filter(dl)) {
			continue // stays unacked: back in the queue when ch closes
		}
		batch = append(batch, d)
		msgs = append(msgs, replayMessage(cfg, d, dl))
		if len(batch) >= replayBatch {
			if err := flush(); err != nil {
				return replayed, err
			}
		}
	}
	if err := flush(); err != nil {
		return replayed, err
	}
	if replayed > 0 {
		settle() // let the broker apply the acks before ch closes
	}
	if unroutable > 0 {
		return replayed, fmt.Errorf("queue: %d dead letters left in %q: %w", unroutable, cfg.DeadQueue, ErrUnroutable)
	}
	return replayed, nil
}

// Depth returns the number of messages ready in the named queue (those
// delivered and not yet acked are not counted), for operators and tests.
func Depth(ctx context.Context, cfg Config, name string) (int, error) {
	conn, err := dial(ctx, cfg.URL, "mymonit queue depth")
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return 0, fmt.Errorf("queue: open channel: %w", err)
	}
	q, err := ch.QueueDeclarePassive(name, true, false, false, false, nil)
	if err != nil {
		return 0, fmt.Errorf("queue: inspect queue %q: %w", name, err)
	}
	return q.Messages, nil
}

func openDeadQueue(ctx context.Context, cfg Config, name string) (*amqp.Connection, *amqp.Channel, int, error) {
	conn, err := dial(ctx, cfg.URL, name)
	if err != nil {
		return nil, nil, 0, err
	}
	ch, err := conn.Channel()
	if err != nil {
		_ = conn.Close()
		return nil, nil, 0, fmt.Errorf("queue: open channel: %w", err)
	}
	q, err := ch.QueueDeclarePassive(cfg.DeadQueue, true, false, false, false, nil)
	if err != nil {
		_ = conn.Close()
		return nil, nil, 0, fmt.Errorf("queue: dead-letter queue %q: %w", cfg.DeadQueue, err)
	}
	return conn, ch, q.Messages, nil
}

// replayMessage is the copy of a dead letter that goes back to the measures
// exchange.
func replayMessage(cfg Config, d amqp.Delivery, dl DeadLetter) Message {
	headers := make(amqp.Table, len(d.Headers))
	for k, v := range d.Headers {
		switch {
		case k == HeaderReason, k == HeaderRejectedAt, k == HeaderOriginalRoutingKey, k == HeaderOriginalMessageID,
			k == headerDeath, k == "x-delivery-count",
			strings.HasPrefix(k, "x-first-death-"), strings.HasPrefix(k, "x-last-death-"):
			continue
		}
		headers[k] = v
	}
	headers[HeaderReplayCount] = int64(dl.ReplayCount + 1)
	return Message{
		Exchange:    cfg.Exchange,
		RoutingKey:  dl.OriginalRoutingKey,
		Body:        d.Body,
		ContentType: d.ContentType,
		MessageID:   dl.MessageID,
		Timestamp:   d.Timestamp,
		Headers:     headers,
	}
}

// brokerReason words an x-death reason.
func brokerReason(r string) string {
	switch r {
	case "delivery_limit":
		return "rejected by broker: delivery limit exceeded"
	case "rejected":
		return "rejected by broker: nacked by a consumer without requeue"
	case "expired":
		return "rejected by broker: message TTL expired"
	case "maxlen":
		return "rejected by broker: queue length limit exceeded"
	}
	return "rejected by broker: " + r
}

func parseDeadLetter(d amqp.Delivery) DeadLetter {
	dl := DeadLetter{
		MessageID:          headerString(d.Headers, HeaderOriginalMessageID),
		Reason:             headerString(d.Headers, HeaderReason),
		OriginalRoutingKey: headerString(d.Headers, HeaderOriginalRoutingKey),
		Producer:           headerString(d.Headers, HeaderProducer),
		Body:               d.Body,
		Headers:            d.Headers,
	}
	if n, ok := tableInt(d.Headers[HeaderReplayCount]); ok {
		dl.ReplayCount = n
	}
	switch v := d.Headers[HeaderRejectedAt].(type) {
	case string:
		dl.RejectedAt, _ = time.Parse(time.RFC3339Nano, v)
	case time.Time:
		dl.RejectedAt = v
	}
	deaths, _ := d.Headers[headerDeath].([]any)
	for i, x := range deaths {
		death, ok := x.(amqp.Table)
		if !ok {
			continue
		}
		if n, ok := tableInt(death["count"]); ok {
			dl.DeathCount += n
		}
		if i > 0 { // the first entry is the latest death
			continue
		}
		if dl.Reason == "" {
			r, _ := death["reason"].(string)
			dl.Reason = brokerReason(r)
		}
		if dl.RejectedAt.IsZero() {
			dl.RejectedAt, _ = death["time"].(time.Time)
		}
		if keys, _ := death["routing-keys"].([]any); dl.OriginalRoutingKey == "" && len(keys) > 0 {
			dl.OriginalRoutingKey, _ = keys[0].(string)
		}
	}
	if dl.Reason == "" {
		dl.Reason = "unknown"
	}
	if dl.MessageID == "" {
		dl.MessageID = d.MessageId
	}
	if dl.Producer == "" {
		dl.Producer = d.AppId
	}
	if dl.OriginalRoutingKey == "" {
		dl.OriginalRoutingKey = d.RoutingKey
	}
	return dl
}

func headerString(t amqp.Table, key string) string {
	s, _ := t[key].(string)
	return s
}
