package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"go.uber.org/zap"

	"github.com/mymonit/mymonit/pkg/logging"
	"github.com/mymonit/mymonit/pkg/measure"
	"github.com/mymonit/mymonit/pkg/queue"
)

// maxReasons bounds how many per-measure reasons the reason header lists.
const maxReasons = 20

// deadLetter publishes, with confirms, one dead letter per delivery that had
// anything rejected: the whole original body when the message was unusable,
// otherwise a batch of just the rejected measures. Good measures of the same
// message were committed before; they are not in the dead letter.
func (p *Pipeline) deadLetter(ctx context.Context, b *batch) error {
	var msgs []queue.Message
	var logs [][]zap.Field // one line per dead letter, once confirmed
	for i := range b.items {
		it := &b.items[i]
		var body []byte
		var reasons []string
		kinds := make(map[string]int)
		switch {
		case it.whole != nil:
			body = it.whole.raw
			reasons = []string{it.whole.reason}
			kinds[it.whole.kind]++
		case len(it.rejected) > 0:
			raws := make([]json.RawMessage, 0, len(it.rejected))
			for _, r := range it.rejected {
				raws = append(raws, r.raw)
				reasons = append(reasons, r.reason)
				kinds[r.kind]++
			}
			body = measure.EncodeRaw(raws)
		default:
			continue
		}
		msgs = append(msgs, deadMessage(p.opts.DeadExchange, it.d, body, reasons))
		main := ""
		for k, n := range kinds {
			p.metrics.deadLettered.WithLabelValues(k).Add(float64(n))
			if main == "" || n > kinds[main] || (n == kinds[main] && k < main) {
				main = k
			}
		}
		logs = append(logs, []zap.Field{
			logging.Event("", "measure.dead_letter", logging.OutcomeFailure),
			zap.String("event.reason", Reason(reasons)),
			zap.String("mymonit.dead_letter.kind", main),
			zap.String("mymonit.experiment", strings.TrimPrefix(it.d.RoutingKey, queue.RoutingKeyPrefix)),
			zap.String("mymonit.dead_letter.routing_key", it.d.RoutingKey),
			zap.String("mymonit.dead_letter.message_id", it.d.MessageId),
			zap.Int("mymonit.dead_letter.items", len(reasons)),
		})
	}
	if len(msgs) == 0 {
		return nil
	}
	if err := p.retry(ctx, "dead-letter", func() error { return p.pub.Publish(ctx, msgs...) }); err != nil {
		return err
	}
	for _, f := range logs {
		p.log.Warn("dead letter", f...)
	}
	return nil
}

// Reason summarises reasons for the reason header: all of them up to
// maxReasons, then a count of the rest.
func Reason(reasons []string) string {
	if len(reasons) <= maxReasons {
		return strings.Join(reasons, "; ")
	}
	return fmt.Sprintf("%s; and %d more", strings.Join(reasons[:maxReasons], "; "), len(reasons)-maxReasons)
}

func deadMessage(exchange string, d amqp.Delivery, body []byte, reasons []string) queue.Message {
	h := amqp.Table{}
	for k, v := range d.Headers {
		h[k] = v
	}
	h[queue.HeaderReason] = Reason(reasons)
	h[queue.HeaderOriginalRoutingKey] = d.RoutingKey
	h[queue.HeaderOriginalMessageID] = d.MessageId
	h[queue.HeaderRejectedAt] = time.Now().UTC().Format(time.RFC3339Nano)
	return queue.Message{
		Exchange:    exchange,
		RoutingKey:  d.RoutingKey,
		Body:        body,
		ContentType: measure.ContentType,
		Headers:     h,
	}
}
