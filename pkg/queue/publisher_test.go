package queue_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/mymonit/mymonit/pkg/queue"
	"github.com/mymonit/mymonit/pkg/testenv"
)

// received is what a consumer sees of a message.
type received struct {
	ID, RoutingKey, ContentType, AppID, Producer, Body string
	DeliveryMode                                       uint8
	Timestamp                                          time.Time
	Seq                                                any
}

func toReceived(d amqp.Delivery) received {
	p, _ := d.Headers[queue.HeaderProducer].(string)
	return received{
		ID: d.MessageId, RoutingKey: d.RoutingKey, ContentType: d.ContentType, AppID: d.AppId,
		Producer: p, Body: string(d.Body), DeliveryMode: d.DeliveryMode, Timestamp: d.Timestamp.UTC(),
		Seq: d.Headers["x-seq"],
	}
}

func TestPublishConfirmed(t *testing.T) {
	for _, qt := range []string{"quorum", "classic"} {
		t.Run(qt, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(t, qt)
			pub := newPublisher(t, cfg, func(p *queue.PublisherParams) { p.DeclareTopology = true })
			ctx := testCtx(t, 30*time.Second)
			if err := pub.Connect(ctx); err != nil {
				t.Fatalf("Connect: %v", err)
			}

			const n = 300
			ts := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
			msgs := make([]queue.Message, n)
			want := make([]received, n)
			for i := range msgs {
				msgs[i] = queue.Message{
					RoutingKey:  queue.RoutingKey("e1"),
					Body:        fmt.Appendf(nil, `{"i":%d}`, i),
					ContentType: "application/json",
					MessageID:   fmt.Sprintf("m-%04d", i),
					Timestamp:   ts,
					Headers:     amqp.Table{"x-seq": int32(i)},
				}
				want[i] = received{
					ID: msgs[i].MessageID, RoutingKey: "experiment.e1", ContentType: "application/json",
					AppID: "test-producer", Producer: "test-producer", Body: string(msgs[i].Body),
					DeliveryMode: amqp.Persistent, Timestamp: ts, Seq: int32(i),
				}
			}
			// The caller's headers are not modified.
			if err := pub.Publish(ctx, msgs...); err != nil {
				t.Fatalf("Publish: %v", err)
			}
			if _, ok := msgs[0].Headers[queue.HeaderProducer]; ok {
				t.Errorf("Publish modified the caller's headers")
			}

			var got []received
			for _, d := range collect(t, cfg.URL, cfg.Queue, n) {
				got = append(got, toReceived(d))
			}
			sort.Slice(got, func(i, j int) bool { return got[i].ID < got[j].ID })
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("received messages mismatch (-want +got):\n%s", diff)
			}
			if d := depth(t, cfg.URL, cfg.Queue); d != 0 {
				t.Errorf("queue holds %d more messages (duplicates?)", d)
			}
		})
	}
}

func TestPublishDefaults(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "classic")
	declare(t, cfg)
	pub := newPublisher(t, cfg, nil)
	ctx := testCtx(t, 30*time.Second)
	before := time.Now().Add(-time.Second)
	// Lazy connection on first Publish; a message may name its producer.
	err := pub.Publish(ctx,
		queue.Message{RoutingKey: "experiment.a", Body: []byte("1")},
		queue.Message{RoutingKey: "experiment.a", Body: []byte("2"), Headers: amqp.Table{queue.HeaderProducer: "adapter-x"}},
	)
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	got := collect(t, cfg.URL, cfg.Queue, 2)
	sort.Slice(got, func(i, j int) bool { return string(got[i].Body) < string(got[j].Body) })
	for _, d := range got {
		if _, err := uuid.Parse(d.MessageId); err != nil {
			t.Errorf("default MessageId %q is not a UUID", d.MessageId)
		}
		if d.Timestamp.Before(before.Truncate(time.Second)) || d.Timestamp.After(time.Now()) {
			t.Errorf("default Timestamp %v is not now", d.Timestamp)
		}
		if d.DeliveryMode != amqp.Persistent || d.AppId != "test-producer" {
			t.Errorf("DeliveryMode %d AppId %q, want persistent, test-producer", d.DeliveryMode, d.AppId)
		}
	}
	if got[0].MessageId == got[1].MessageId {
		t.Errorf("two messages got the same default id %q", got[0].MessageId)
	}
	if p := got[1].Headers[queue.HeaderProducer]; p != "adapter-x" {
		t.Errorf("explicit producer header replaced: %v", p)
	}
}

func TestPublishConcurrent(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "quorum")
	declare(t, cfg)
	pub := newPublisher(t, cfg, nil)
	ctx := testCtx(t, 60*time.Second)

	const workers, calls = 16, 25
	want := map[string]bool{}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		batch := 1 + w%3*5 // 1, 6 or 11 messages per call
		for c := range calls {
			for i := range batch {
				want[fmt.Sprintf("w%d-c%d-%d", w, c, i)] = true
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range calls {
				msgs := make([]queue.Message, batch)
				for i := range msgs {
					msgs[i] = queue.Message{RoutingKey: queue.RoutingKey("e"), MessageID: fmt.Sprintf("w%d-c%d-%d", w, c, i)}
				}
				if err := pub.Publish(ctx, msgs...); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Publish: %v", err)
	}
	got := map[string]bool{}
	for _, d := range collect(t, cfg.URL, cfg.Queue, len(want)) {
		if got[d.MessageId] {
			t.Errorf("duplicate %s", d.MessageId)
		}
		got[d.MessageId] = true
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("received ids mismatch (-want +got):\n%s", diff)
	}
}

func TestPublishUnroutable(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "quorum")
	declare(t, cfg)
	reg := prometheus.NewRegistry()
	pub := newPublisher(t, cfg, func(p *queue.PublisherParams) { p.Registerer = reg })
	ctx := testCtx(t, 30*time.Second)

	err := pub.Publish(ctx,
		queue.Message{RoutingKey: "experiment.a", MessageID: "a"},
		queue.Message{RoutingKey: "nobody.listens", MessageID: "b"},
		queue.Message{RoutingKey: "experiment.c", MessageID: "c"},
		queue.Message{RoutingKey: "nobody.either", MessageID: "d"},
	)
	if !errors.Is(err, queue.ErrUnroutable) {
		t.Fatalf("Publish = %v, want ErrUnroutable", err)
	}
	var ue *queue.UnroutableError
	if !errors.As(err, &ue) {
		t.Fatalf("Publish = %T, want *UnroutableError", err)
	}
	want := &queue.UnroutableError{Indexes: []int{1, 3}, Exchange: cfg.Exchange, RoutingKey: "nobody.listens"}
	if diff := cmp.Diff(want, ue); diff != "" {
		t.Errorf("UnroutableError mismatch (-want +got):\n%s", diff)
	}
	var ids []string
	for _, d := range collect(t, cfg.URL, cfg.Queue, 2) {
		ids = append(ids, d.MessageId)
	}
	sort.Strings(ids)
	if diff := cmp.Diff([]string{"a", "c"}, ids); diff != "" {
		t.Errorf("routable messages (-want +got):\n%s", diff)
	}
	if got := counterValue(t, reg, "mymonit_queue_publish_unroutable_total"); got != 2 {
		t.Errorf("unroutable counter = %v, want 2", got)
	}
	if got := counterValue(t, reg, "mymonit_queue_published_total"); got != 2 {
		t.Errorf("published counter = %v, want 2", got)
	}

	// The publisher is still usable.
	if err := pub.Publish(ctx, queue.Message{RoutingKey: "experiment.a"}); err != nil {
		t.Errorf("Publish after unroutable: %v", err)
	}
}

func TestPublishMissingExchange(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "classic")
	declare(t, cfg)
	pub := newPublisher(t, cfg, nil)
	ctx := testCtx(t, 30*time.Second)

	// Concurrent publishing to the good exchange is not disturbed.
	done := make(chan error, 1)
	go func() {
		for range 50 {
			if err := pub.Publish(ctx, queue.Message{RoutingKey: "experiment.a"}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	err := pub.Publish(ctx, queue.Message{Exchange: cfg.Exchange + "_missing", RoutingKey: "experiment.a"})
	if !errors.Is(err, queue.ErrExchangeNotFound) {
		t.Errorf("Publish to a missing exchange = %v, want ErrExchangeNotFound", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("concurrent Publish: %v", err)
	}
	// The dead exchange exists: publishing to it works.
	if err := pub.Publish(ctx, queue.Message{Exchange: cfg.DeadExchange, RoutingKey: "x"}); err != nil {
		t.Errorf("Publish to the dead exchange: %v", err)
	}
	waitDepth(t, cfg.URL, cfg.Queue, 50)
	waitDepth(t, cfg.URL, cfg.DeadQueue, 1)
}

func TestPublishErrors(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "classic")
	declare(t, cfg)

	t.Run("closed", func(t *testing.T) {
		pub := newPublisher(t, cfg, nil)
		if err := pub.Publish(testCtx(t, 10*time.Second), queue.Message{RoutingKey: "experiment.a"}); err != nil {
			t.Fatalf("Publish: %v", err)
		}
		if err := pub.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := pub.Publish(testCtx(t, 10*time.Second), queue.Message{RoutingKey: "experiment.a"}); !errors.Is(err, queue.ErrClosed) {
			t.Errorf("Publish after Close = %v, want ErrClosed", err)
		}
	})
	t.Run("bad URL", func(t *testing.T) {
		bad := cfg
		bad.URL = "http://guest:secret@127.0.0.1:5672/"
		pub := newPublisher(t, bad, nil)
		err := pub.Publish(testCtx(t, 10*time.Second), queue.Message{RoutingKey: "experiment.a"})
		if err == nil || errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Publish with a bad URL = %v, want an immediate error", err)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		bad := cfg
		bad.URL = "amqp://guest:guest@127.0.0.1:1/"
		pub := newPublisher(t, bad, func(p *queue.PublisherParams) {
			p.Backoff = queue.Backoff{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond}
		})
		if err := pub.Connect(testCtx(t, 5*time.Second)); err == nil {
			t.Errorf("Connect to a closed port succeeded")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		err := pub.Publish(ctx, queue.Message{RoutingKey: "experiment.a"})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Publish to a closed port = %v, want it to retry until the deadline", err)
		}
	})
	t.Run("bad header", func(t *testing.T) {
		pub := newPublisher(t, cfg, nil)
		err := pub.Publish(testCtx(t, 10*time.Second), queue.Message{RoutingKey: "experiment.a", Headers: amqp.Table{"x": struct{}{}}})
		if err == nil {
			t.Errorf("Publish with an invalid header value succeeded")
		}
	})
}

// TestPublisherReconnect cuts the publisher's connection several times while
// it publishes: every Publish must succeed eventually and every confirmed
// message must be in the queue.
func TestPublisherReconnect(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "quorum")
	declare(t, cfg)
	px, viaProxy := testenv.StartProxy(t, cfg.URL)
	pcfg := cfg
	pcfg.URL = viaProxy
	reg := prometheus.NewRegistry()
	pub := newPublisher(t, pcfg, func(p *queue.PublisherParams) {
		p.Registerer = reg
		p.Backoff = queue.Backoff{Initial: 5 * time.Millisecond, Max: 100 * time.Millisecond}
	})
	ctx := testCtx(t, 50*time.Second)

	var (
		mu        sync.Mutex
		confirmed []string
	)
	progress := make(chan int, 1000)
	stop := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		for b := 0; ; b++ {
			select {
			case <-stop:
				errc <- nil
				return
			default:
			}
			msgs := make([]queue.Message, 20)
			for i := range msgs {
				msgs[i] = queue.Message{RoutingKey: queue.RoutingKey("e"), MessageID: fmt.Sprintf("b%d-%d", b, i)}
			}
			if err := pub.Publish(ctx, msgs...); err != nil {
				errc <- err
				return
			}
			mu.Lock()
			for _, m := range msgs {
				confirmed = append(confirmed, m.MessageID)
			}
			mu.Unlock()
			progress <- b
		}
	}()
	waitBatches := func(n int) {
		t.Helper()
		for range n {
			select {
			case <-progress:
			case err := <-errc:
				t.Fatalf("publisher stopped: %v", err)
			case <-ctx.Done():
				t.Fatalf("publisher made no progress")
			}
		}
	}
	const cuts = 3
	waitBatches(5)
	for range cuts {
		if px.Cut() == 0 {
			t.Fatalf("nothing to cut: publisher not connected through the proxy")
		}
		waitBatches(5) // progress after the cut means a reconnect
	}
	close(stop)
	for {
		select {
		case <-progress:
			continue
		case err := <-errc:
			if err != nil {
				t.Fatalf("Publish: %v", err)
			}
		}
		break
	}

	if got := counterValue(t, reg, "mymonit_queue_publisher_reconnects_total"); got < cuts {
		t.Errorf("reconnects = %v, want >= %d", got, cuts)
	}
	mu.Lock()
	defer mu.Unlock()
	total := depth(t, cfg.URL, cfg.Queue)
	if total < len(confirmed) {
		t.Fatalf("queue holds %d messages, %d were confirmed", total, len(confirmed))
	}
	seen := map[string]bool{}
	for _, d := range collect(t, cfg.URL, cfg.Queue, total) {
		seen[d.MessageId] = true
	}
	var lost []string
	for _, id := range confirmed {
		if !seen[id] {
			lost = append(lost, id)
		}
	}
	if len(lost) > 0 {
		t.Errorf("%d confirmed messages lost, e.g. %v", len(lost), lost[:min(5, len(lost))])
	}
	t.Logf("%d confirmed, %d in queue (duplicates from re-publishing: %d), %v messages re-published",
		len(confirmed), total, total-len(confirmed), counterValue(t, reg, "mymonit_queue_publish_retries_total"))
}

// TestPublishNackRetried fills a queue that rejects publishes when full
// (x-overflow reject-publish): the broker nacks, Publish retries until room
// is made or its context is done.
func TestPublishNackRetried(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "classic")
	ch := amqpChannel(t, cfg.URL)
	if err := cfg.Topology().DeclarePublishing(ch); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(cfg.Queue, true, false, false, false, amqp.Table{
		amqp.QueueMaxLenArg: 1, amqp.QueueOverflowArg: amqp.QueueOverflowRejectPublish,
	}); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(cfg.Queue, queue.BindingKey, cfg.Exchange, false, nil); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	pub := newPublisher(t, cfg, func(p *queue.PublisherParams) {
		p.Registerer = reg
		p.Backoff = queue.Backoff{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond}
	})
	if err := pub.Publish(testCtx(t, 10*time.Second), queue.Message{RoutingKey: "experiment.a", MessageID: "first"}); err != nil {
		t.Fatalf("Publish into an empty queue: %v", err)
	}

	// Full: nacked until the deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := pub.Publish(ctx, queue.Message{RoutingKey: "experiment.a", MessageID: "late"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish into a full queue = %v, want DeadlineExceeded", err)
	}
	if got := counterValue(t, reg, "mymonit_queue_publish_retries_total"); got < 1 {
		t.Errorf("retries = %v, want >= 1", got)
	}

	// Room is made while Publish retries: it succeeds.
	done := make(chan error, 1)
	go func() {
		done <- pub.Publish(testCtx(t, 20*time.Second), queue.Message{RoutingKey: "experiment.a", MessageID: "second"})
	}()
	retries := counterValue(t, reg, "mymonit_queue_publish_retries_total")
	for deadline := time.Now().Add(10 * time.Second); counterValue(t, reg, "mymonit_queue_publish_retries_total") == retries; {
		if time.Now().After(deadline) {
			t.Fatalf("Publish into a full queue was not nacked")
		}
		time.Sleep(5 * time.Millisecond)
	}
	d, ok, err := ch.Get(cfg.Queue, true)
	if err != nil || !ok || d.MessageId != "first" {
		t.Fatalf("get = %q, %v, %v; want first", d.MessageId, ok, err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Publish while room is made: %v", err)
	}
	if got := collect(t, cfg.URL, cfg.Queue, 1); got[0].MessageId != "second" {
		t.Errorf("second message = %q, want second", got[0].MessageId)
	}
}
