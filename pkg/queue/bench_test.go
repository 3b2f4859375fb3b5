package queue_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/zap"

	"github.com/mymonit/mymonit/pkg/queue"
)

// benchBody is a measure message of a typical size.
var benchBody = []byte(`{"experiment":"bench","sensor":"temperature/probe-1","time":"2024-05-01T12:00:00.123456Z","value":21.375,"unit":"degC"}`)

// BenchmarkPublish publishes persistent messages with confirms to one queue;
// b.N counts messages. -x16 runs 16 concurrent callers on one Publisher.
func BenchmarkPublish(b *testing.B) {
	cases := []struct {
		name             string
		perCall, callers int
	}{
		{"1-per-call", 1, 1},
		{"100-per-call", 100, 1},
		{"1-per-call-x16", 1, 16},
		{"100-per-call-x4", 100, 4},
	}
	for _, qt := range []string{"quorum", "classic"} {
		for _, bc := range cases {
			b.Run(qt+"/"+bc.name, func(b *testing.B) {
				cfg := testConfig(b, qt)
				declare(b, cfg)
				pub := queue.NewPublisher(queue.PublisherParams{Config: cfg, Logger: zap.NewNop(), Producer: "bench"})
				defer pub.Close()
				ctx := context.Background()
				if err := pub.Connect(ctx); err != nil {
					b.Fatal(err)
				}
				calls := (b.N + bc.perCall - 1) / bc.perCall
				var wg sync.WaitGroup
				errs := make(chan error, bc.callers)
				b.ResetTimer()
				start := time.Now()
				for w := range bc.callers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						msgs := make([]queue.Message, bc.perCall)
						for c := w; c < calls; c += bc.callers {
							for i := range msgs {
								msgs[i] = queue.Message{RoutingKey: "experiment.bench", Body: benchBody, ContentType: "application/json"}
							}
							if err := pub.Publish(ctx, msgs...); err != nil {
								errs <- err
								return
							}
						}
					}()
				}
				wg.Wait()
				elapsed := time.Since(start)
				b.StopTimer()
				close(errs)
				for err := range errs {
					b.Fatal(err)
				}
				b.ReportMetric(float64(calls*bc.perCall)/elapsed.Seconds(), "msgs/s")
			})
		}
	}
}

// BenchmarkDrain consumes a full queue with Consumer.Run, prefetch 1000,
// acking multiple every 100 deliveries; b.N counts messages.
func BenchmarkDrain(b *testing.B) {
	for _, qt := range []string{"quorum", "classic"} {
		b.Run(qt, func(b *testing.B) {
			cfg := testConfig(b, qt)
			declare(b, cfg)
			pub := queue.NewPublisher(queue.PublisherParams{Config: cfg, Logger: zap.NewNop(), Producer: "bench"})
			defer pub.Close()
			ctx := context.Background()
			msgs := make([]queue.Message, 0, 500)
			for i := 0; i < b.N; i += len(msgs) {
				msgs = msgs[:min(cap(msgs), b.N-i)]
				for j := range msgs {
					msgs[j] = queue.Message{RoutingKey: "experiment.bench", Body: benchBody, ContentType: "application/json"}
				}
				if err := pub.Publish(ctx, msgs...); err != nil {
					b.Fatal(err)
				}
			}
			waitDepth(b, cfg.URL, cfg.Queue, b.N)
			c := queue.NewConsumer(queue.ConsumerParams{Config: cfg, Logger: zap.NewNop(), Prefetch: 1000})

			done := make(chan struct{})
			runCtx, cancel := context.WithCancel(ctx)
			defer cancel()
			b.ResetTimer()
			start := time.Now()
			errc := make(chan error, 1)
			go func() {
				errc <- c.Run(runCtx, func(_ context.Context, deliveries <-chan amqp.Delivery) {
					n := 0
					for d := range deliveries {
						n++
						if n%100 == 0 || n == b.N {
							if err := d.Ack(true); err != nil {
								return
							}
						}
						if n == b.N {
							close(done)
						}
					}
				})
			}()
			select {
			case <-done:
			case err := <-errc:
				b.Fatalf("Run returned early: %v", err)
			case <-time.After(5 * time.Minute):
				b.Fatal("drain did not finish")
			}
			elapsed := time.Since(start)
			b.StopTimer()
			cancel()
			if err := <-errc; err != nil {
				b.Fatal(err)
			}
			if d := depth(b, cfg.URL, cfg.Queue); d != 0 {
				b.Errorf("%d messages left", d)
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
		})
	}
}

// BenchmarkPublishBaseline is the same load as BenchmarkPublish published
// with amqp091-go directly (one channel, deferred confirms, no mandatory
// flag, no message ID, app ID or headers), to tell the Publisher's cost from
// the broker's. Measured: given the same properties and flag, amqp091-go
// alone is as fast as the Publisher; the properties cost the broker ~15%.
func BenchmarkPublishBaseline(b *testing.B) {
	for _, qt := range []string{"quorum", "classic"} {
		for _, perCall := range []int{1, 100} {
			b.Run(fmt.Sprintf("%s/%d-per-call", qt, perCall), func(b *testing.B) {
				cfg := testConfig(b, qt)
				declare(b, cfg)
				ch := amqpChannel(b, cfg.URL)
				if err := ch.Confirm(false); err != nil {
					b.Fatal(err)
				}
				dcs := make([]*amqp.DeferredConfirmation, perCall)
				b.ResetTimer()
				start := time.Now()
				sent := 0
				for sent < b.N {
					for i := range dcs {
						dc, err := ch.PublishWithDeferredConfirm(cfg.Exchange, "experiment.bench", false, false, amqp.Publishing{
							Body: benchBody, ContentType: "application/json", DeliveryMode: amqp.Persistent,
						})
						if err != nil {
							b.Fatal(err)
						}
						dcs[i] = dc
					}
					for _, dc := range dcs {
						if !dc.Wait() {
							b.Fatal("nack")
						}
					}
					sent += perCall
				}
				b.ReportMetric(float64(sent)/time.Since(start).Seconds(), "msgs/s")
			})
		}
	}
}
