package queue_test

import (
	"context"
	"errors"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/mymonit/mymonit/pkg/queue"
)

var rejectedAt = time.Date(2024, 5, 1, 12, 30, 0, 123456789, time.UTC)

// deadLetter publishes a dead letter as ingest would: the original delivery
// re-published to the dead exchange with a reason.
func deadLetter(t testing.TB, pub *queue.Publisher, cfg queue.Config, id, routingKey, reason string) {
	t.Helper()
	original := amqp.Delivery{
		RoutingKey:  routingKey,
		MessageId:   id,
		ContentType: "application/json",
		Body:        []byte(`{"id":"` + id + `"}`),
		Headers:     amqp.Table{queue.HeaderProducer: "adapter-x"},
	}
	msg := queue.NewDeadLetter(cfg.DeadExchange, original, reason, rejectedAt)
	if err := pub.Publish(testCtx(t, 10*time.Second), msg); err != nil {
		t.Fatalf("publish dead letter: %v", err)
	}
}

// fillDeadQueue puts 3 "invalid JSON" and 2 "unknown experiment" dead
// letters in the dead queue.
func fillDeadQueue(t testing.TB, cfg queue.Config) *queue.Publisher {
	t.Helper()
	pub := newPublisher(t, cfg, func(p *queue.PublisherParams) { p.Producer = "ingest" })
	deadLetter(t, pub, cfg, "j1", "experiment.a", "invalid JSON")
	deadLetter(t, pub, cfg, "u1", "experiment.b", "unknown experiment")
	deadLetter(t, pub, cfg, "j2", "experiment.a", "invalid JSON")
	deadLetter(t, pub, cfg, "u2", "experiment.c", "unknown experiment")
	deadLetter(t, pub, cfg, "j3", "experiment.a", "invalid JSON")
	return pub
}

func TestListDeadLetters(t *testing.T) {
	for _, qt := range []string{"quorum", "classic"} {
		t.Run(qt, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(t, qt)
			declare(t, cfg)
			fillDeadQueue(t, cfg)
			// And one the broker dead-letters: a consumer rejects it.
			publishIDs(t, cfg, "r1")
			ch := amqpChannel(t, cfg.URL)
			d, ok, err := ch.Get(cfg.Queue, false)
			if err != nil || !ok {
				t.Fatalf("get: ok=%v err=%v", ok, err)
			}
			if err := d.Nack(false, false); err != nil {
				t.Fatalf("nack: %v", err)
			}
			waitDepth(t, cfg.URL, cfg.DeadQueue, 6)

			wantReasons := map[string]int{
				"invalid JSON":       3,
				"unknown experiment": 2,
				"rejected by broker: nacked by a consumer without requeue": 1,
			}
			for i := range 2 { // listing is not destructive: twice the same
				ctx := testCtx(t, 20*time.Second)
				total, sample, byReason, err := queue.ListDeadLetters(ctx, cfg, 2)
				if err != nil {
					t.Fatalf("ListDeadLetters #%d: %v", i+1, err)
				}
				if total != 6 {
					t.Errorf("#%d total = %d, want 6", i+1, total)
				}
				if diff := cmp.Diff(wantReasons, byReason); diff != "" {
					t.Errorf("#%d byReason (-want +got):\n%s", i+1, diff)
				}
				if len(sample) != 2 {
					t.Fatalf("#%d sample has %d, want 2", i+1, len(sample))
				}
				waitDepth(t, cfg.URL, cfg.DeadQueue, 6)
				if i > 0 {
					continue
				}
				want := queue.DeadLetter{
					MessageID: "j1", Reason: "invalid JSON", OriginalRoutingKey: "experiment.a",
					Producer: "adapter-x", RejectedAt: rejectedAt, Body: []byte(`{"id":"j1"}`),
				}
				if diff := cmp.Diff(want, sample[0], cmpopts.IgnoreFields(queue.DeadLetter{}, "Headers")); diff != "" {
					t.Errorf("sample[0] (-want +got):\n%s", diff)
				}
			}

			// The broker-dead-lettered one, in full.
			_, sample, _, err := queue.ListDeadLetters(testCtx(t, 20*time.Second), cfg, 10)
			if err != nil {
				t.Fatalf("ListDeadLetters: %v", err)
			}
			var broker *queue.DeadLetter
			for i := range sample {
				if sample[i].MessageID == "r1" {
					broker = &sample[i]
				}
			}
			if broker == nil {
				t.Fatalf("r1 not in sample")
			}
			if broker.DeathCount != 1 || broker.OriginalRoutingKey != "experiment.e" || broker.RejectedAt.IsZero() || broker.Producer != "test-producer" {
				t.Errorf("broker dead letter = %+v, want DeathCount 1, routing key experiment.e, a time, producer test-producer", *broker)
			}
		})
	}
}

func TestBrokerDeliveryLimit(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "quorum")
	cfg.DeliveryLimit = 2
	declare(t, cfg)
	publishIDs(t, cfg, "poison")

	// A consumer that keeps failing on the message: it goes back to the
	// queue until the broker gives up and dead-letters it.
	c := newConsumer(t, cfg, nil)
	deliveries := make(chan int, 10)
	stop := runConsumer(t, c, func(ctx context.Context, ds <-chan amqp.Delivery) {
		for d := range ds {
			deliveries <- 1
			_ = d.Nack(false, true)
		}
	})
	waitDepth(t, cfg.URL, cfg.DeadQueue, 1)
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n := len(deliveries); n != 3 {
		t.Errorf("delivered %d times, want 1 + delivery limit 2 = 3", n)
	}
	_, sample, byReason, err := queue.ListDeadLetters(testCtx(t, 20*time.Second), cfg, 1)
	if err != nil {
		t.Fatalf("ListDeadLetters: %v", err)
	}
	if diff := cmp.Diff(map[string]int{"rejected by broker: delivery limit exceeded": 1}, byReason); diff != "" {
		t.Errorf("byReason (-want +got):\n%s", diff)
	}
	if len(sample) != 1 || sample[0].MessageID != "poison" || sample[0].DeathCount != 1 {
		t.Errorf("sample = %+v", sample)
	}
}

func TestReplayDeadLetters(t *testing.T) {
	for _, qt := range []string{"quorum", "classic"} {
		t.Run(qt, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(t, qt)
			declare(t, cfg)
			pub := fillDeadQueue(t, cfg)
			ctx := testCtx(t, 30*time.Second)

			// Only the unknown experiments, now registered.
			n, err := queue.ReplayDeadLetters(ctx, cfg, pub, func(dl queue.DeadLetter) bool {
				return dl.Reason == "unknown experiment"
			}, 0)
			if err != nil || n != 2 {
				t.Fatalf("ReplayDeadLetters(filter) = %d, %v; want 2, nil", n, err)
			}
			waitDepth(t, cfg.URL, cfg.DeadQueue, 3)
			got := collect(t, cfg.URL, cfg.Queue, 2)
			sort.Slice(got, func(i, j int) bool { return got[i].MessageId < got[j].MessageId })
			type replayed struct {
				ID, RoutingKey, Body, Producer string
				Count                          any
				HasReason, HasRejectedAt       bool
			}
			var gotR []replayed
			for _, d := range got {
				_, hasReason := d.Headers[queue.HeaderReason]
				_, hasAt := d.Headers[queue.HeaderRejectedAt]
				gotR = append(gotR, replayed{
					ID: d.MessageId, RoutingKey: d.RoutingKey, Body: string(d.Body),
					Producer: d.Headers[queue.HeaderProducer].(string), Count: d.Headers[queue.HeaderReplayCount],
					HasReason: hasReason, HasRejectedAt: hasAt,
				})
			}
			want := []replayed{
				{ID: "u1", RoutingKey: "experiment.b", Body: `{"id":"u1"}`, Producer: "adapter-x", Count: int64(1)},
				{ID: "u2", RoutingKey: "experiment.c", Body: `{"id":"u2"}`, Producer: "adapter-x", Count: int64(1)},
			}
			if diff := cmp.Diff(want, gotR); diff != "" {
				t.Errorf("replayed messages (-want +got):\n%s", diff)
			}

			// max bounds a replay.
			if n, err := queue.ReplayDeadLetters(ctx, cfg, pub, nil, 1); err != nil || n != 1 {
				t.Fatalf("ReplayDeadLetters(max 1) = %d, %v; want 1, nil", n, err)
			}
			// The rest: the dead queue ends empty.
			if n, err := queue.ReplayDeadLetters(ctx, cfg, pub, nil, 0); err != nil || n != 2 {
				t.Fatalf("ReplayDeadLetters(all) = %d, %v; want 2, nil", n, err)
			}
			waitDepth(t, cfg.URL, cfg.DeadQueue, 0)
			waitDepth(t, cfg.URL, cfg.Queue, 3)
			if n, err := queue.ReplayDeadLetters(ctx, cfg, pub, nil, 0); err != nil || n != 0 {
				t.Errorf("ReplayDeadLetters(empty) = %d, %v; want 0, nil", n, err)
			}
		})
	}
}

func TestReplayUnroutableStays(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "quorum")
	declare(t, cfg)
	pub := newPublisher(t, cfg, nil)
	deadLetter(t, pub, cfg, "ok", "experiment.a", "unknown experiment")
	deadLetter(t, pub, cfg, "lost", "nowhere.a", "unknown experiment")

	n, err := queue.ReplayDeadLetters(testCtx(t, 20*time.Second), cfg, pub, nil, 0)
	if !errors.Is(err, queue.ErrUnroutable) || n != 1 {
		t.Errorf("ReplayDeadLetters = %d, %v; want 1, ErrUnroutable", n, err)
	}
	waitDepth(t, cfg.URL, cfg.Queue, 1)
	waitDepth(t, cfg.URL, cfg.DeadQueue, 1)
	_, sample, _, err := queue.ListDeadLetters(testCtx(t, 20*time.Second), cfg, 1)
	if err != nil || len(sample) != 1 || sample[0].MessageID != "lost" {
		t.Errorf("left in the dead queue: %+v, %v; want lost", sample, err)
	}
}

func TestNewDeadLetterKeepsFirstOrigin(t *testing.T) {
	d := amqp.Delivery{
		RoutingKey: "experiment.a",
		MessageId:  "m2",
		Headers:    amqp.Table{queue.HeaderOriginalRoutingKey: "experiment.first", queue.HeaderOriginalMessageID: "m1"},
	}
	got := queue.NewDeadLetter("dead", d, "again", rejectedAt)
	want := queue.Message{
		Exchange:   "dead",
		RoutingKey: "experiment.a",
		MessageID:  "m2",
		Headers: amqp.Table{
			queue.HeaderOriginalRoutingKey: "experiment.first",
			queue.HeaderOriginalMessageID:  "m1",
			queue.HeaderReason:             "again",
			queue.HeaderRejectedAt:         "2024-05-01T12:30:00.123456789Z",
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("NewDeadLetter (-want +got):\n%s", diff)
	}
	if len(d.Headers) != 2 {
		t.Errorf("NewDeadLetter modified the delivery's headers: %v", d.Headers)
	}
}

func TestDepth(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "classic")
	declare(t, cfg)
	publishIDs(t, cfg, "a", "b", "c")
	ctx := testCtx(t, 10*time.Second)
	for _, tt := range []struct {
		queue string
		want  int
	}{{cfg.Queue, 3}, {cfg.DeadQueue, 0}} {
		if got, err := queue.Depth(ctx, cfg, tt.queue); err != nil || got != tt.want {
			t.Errorf("Depth(%s) = %d, %v; want %d", tt.queue, got, err, tt.want)
		}
	}
	if _, err := queue.Depth(ctx, cfg, cfg.Queue+"_missing"); err == nil {
		t.Errorf("Depth of a missing queue: no error")
	}
}
