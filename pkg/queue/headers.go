package queue

import (
	"strconv"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Header names MyMONIT sets on messages.
const (
	// HeaderProducer names the program that produced the measures (an
	// adapter); Publisher sets it from PublisherParams.Producer when the
	// message has none, so a dead letter keeps the original producer.
	HeaderProducer = "x-mymonit-producer"
	// HeaderReason says in words why a message was dead-lettered.
	HeaderReason = "x-mymonit-reason"
	// HeaderOriginalRoutingKey is the routing key a dead letter was first
	// published with; replay publishes it there again.
	HeaderOriginalRoutingKey = "x-mymonit-original-routing-key"
	// HeaderOriginalMessageID is the message ID of the rejected message.
	HeaderOriginalMessageID = "x-mymonit-original-message-id"
	// HeaderRejectedAt is when the message was rejected, RFC 3339 in UTC.
	HeaderRejectedAt = "x-mymonit-rejected-at"
	// HeaderReplayCount counts how many times a dead letter was replayed.
	HeaderReplayCount = "x-mymonit-replay-count"
)

// Headers the broker adds when it dead-letters a message itself.
const (
	headerDeath = "x-death"
)

// NewDeadLetter returns the message that dead-letters d: d's body,
// properties and headers, published to deadExchange with the same routing key,
// plus HeaderReason, HeaderOriginalRoutingKey, HeaderOriginalMessageID and
// HeaderRejectedAt (at). The caller publishes it with a Publisher and acks d
// only once Publish returned nil. To dead-letter only the bad part of a batch,
// replace Body.
func NewDeadLetter(deadExchange string, d amqp.Delivery, reason string, at time.Time) Message {
	headers := make(amqp.Table, len(d.Headers)+4)
	for k, v := range d.Headers {
		headers[k] = v
	}
	// A replayed message keeps its first origin.
	if s, _ := headers[HeaderOriginalRoutingKey].(string); s == "" {
		headers[HeaderOriginalRoutingKey] = d.RoutingKey
	}
	if s, _ := headers[HeaderOriginalMessageID].(string); s == "" {
		headers[HeaderOriginalMessageID] = d.MessageId
	}
	headers[HeaderReason] = reason
	headers[HeaderRejectedAt] = at.UTC().Format(time.RFC3339Nano)
	return Message{
		Exchange:    deadExchange,
		RoutingKey:  d.RoutingKey,
		Body:        d.Body,
		ContentType: d.ContentType,
		MessageID:   d.MessageId,
		Timestamp:   d.Timestamp,
		Headers:     headers,
	}
}

// tableInt reads an integer header of any AMQP integer type.
func tableInt(v any) (int, bool) {
	switch n := v.(type) {
	case int:
		return n, true
	case int8:
		return int(n), true
	case int16:
		return int(n), true
	case int32:
		return int(n), true
	case int64:
		return int(n), true
	case uint8:
		return int(n), true
	case uint16:
		return int(n), true
	case uint32:
		return int(n), true
	case string:
		i, err := strconv.Atoi(n)
		return i, err == nil
	}
	return 0, false
}
