package queue_test

import (
	"context"
	"fmt"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/mymonit/mymonit/pkg/queue"
)

// Example_consume shows the shape of an ingest handler: batch, commit, ack
// multiple; dead-letter poison, then ack it.
func Example_consume() {
	cfg := queue.Config{ /* from the environment */ }
	pub := queue.NewPublisher(queue.PublisherParams{Config: cfg, Producer: "ingest"})
	defer pub.Close()
	c := queue.NewConsumer(queue.ConsumerParams{Config: cfg, Prefetch: 2000, DeclareTopology: true})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_ = c.Run(ctx, func(ctx context.Context, deliveries <-chan amqp.Delivery) {
		var batch []amqp.Delivery
		flush := func() {
			if len(batch) == 0 {
				return
			}
			// ... insert the measures of batch in one transaction, commit ...
			_ = batch[len(batch)-1].Ack(true) // ErrClosed after a loss: ignore
			batch = batch[:0]
		}
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case d, ok := <-deliveries:
				if !ok {
					flush()
					return
				}
				if len(d.Body) == 0 { // poison
					dl := queue.NewDeadLetter(cfg.DeadExchange, d, "empty body", time.Now())
					if err := pub.Publish(ctx, dl); err != nil {
						return // not acked: redelivered later
					}
					// Ack d alone: the batch before it is not committed yet.
					_ = d.Ack(false)
					continue
				}
				if batch = append(batch, d); len(batch) == 1000 {
					flush()
				}
			case <-tick.C:
				flush()
			}
		}
	})
	fmt.Println("stopped")
}
