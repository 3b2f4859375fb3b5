package sink_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap/zaptest"

	"github.com/mymonit/mymonit/adapters/internal/amqptest"
	"github.com/mymonit/mymonit/adapters/sink"
	"github.com/mymonit/mymonit/pkg/measure"
	"github.com/mymonit/mymonit/pkg/queue"
	"github.com/mymonit/mymonit/pkg/testenv"
)

func realSink(t *testing.T, cfg queue.Config, set sink.Settings) *sink.Sink {
	t.Helper()
	pub := queue.NewPublisher(queue.PublisherParams{
		Config: cfg, Logger: zaptest.NewLogger(t), Producer: "sinktest",
		Backoff: queue.Backoff{Initial: 5 * time.Millisecond, Max: 100 * time.Millisecond},
	})
	t.Cleanup(func() { _ = pub.Close() })
	if err := pub.Connect(ctxT(t)); err != nil {
		t.Fatalf("connect: %v", err)
	}
	return newSink(t, set, pub, nil)
}

// TestPublishToRabbitMQ sends measures of three experiments through the sink
// and reads exactly them back from a queue bound to the exchange.
func TestPublishToRabbitMQ(t *testing.T) {
	t.Parallel()
	cfg := amqptest.Config(t)
	set := sink.DefaultSettings()
	set.BatchSize = 100
	s := realSink(t, cfg, set)
	var want []measure.Measure
	var tickets []*sink.Ticket
	for i := range 1000 {
		m := mk([]string{"a", "b.c", "d-e"}[i%3], i)
		m.Unit = "V"
		m.Tags = map[string]string{"rack": fmt.Sprint(i % 7)}
		want = append(want, m)
		if i%50 == 49 {
			tk, err := s.Add(ctxT(t), want[len(want)-50:]...)
			if err != nil {
				t.Fatal(err)
			}
			tickets = append(tickets, tk)
		}
	}
	for _, tk := range tickets {
		if err := tk.Wait(ctxT(t)); err != nil {
			t.Fatalf("ticket: %v", err)
		}
	}
	msgs := amqptest.Collect(t, cfg, len(want))
	got := amqptest.Measures(t, msgs)
	if diff := cmp.Diff(amqptest.Sort(want), amqptest.Sort(got)); diff != "" {
		t.Errorf("measures on the queue (-want +got):\n%s", diff)
	}
	for _, m := range msgs {
		if m.Producer != "sinktest" {
			t.Errorf("producer header %q", m.Producer)
		}
		if n := len(m.Decoded.Measures); n > 100 {
			t.Errorf("message of %d measures, batch size is 100", n)
		}
	}
	if len(msgs) >= len(want)/2 {
		t.Errorf("%d messages for %d measures: not batched", len(msgs), len(want))
	}
}

// TestNothingConfirmedLostOnConnectionDrop publishes a stream while the
// broker connection is cut (network failure) and closed by the broker
// (rabbitmqctl close_connection, the proxied connection only): every measure
// whose ticket succeeded is on the queue afterwards.
func TestNothingConfirmedLostOnConnectionDrop(t *testing.T) {
	t.Parallel()
	cfg := amqptest.Config(t)
	px, via := testenv.StartProxy(t, cfg.URL)
	pcfg := cfg
	pcfg.URL = via
	set := sink.DefaultSettings()
	set.BatchSize = 20
	set.FlushInterval = 2 * time.Millisecond
	set.Buffer = 200
	set.PublishTimeout = 2 * time.Second
	s := realSink(t, pcfg, set)
	ctx := ctxT(t)

	var (
		mu        sync.Mutex
		confirmed []measure.Measure
		failed    int
	)
	progress := make(chan struct{}, 10000)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ms := []measure.Measure{mk(fmt.Sprintf("w%d", w), 2*i), mk(fmt.Sprintf("w%d", w), 2*i+1)}
				tk, err := s.Add(ctx, ms...)
				if err != nil {
					t.Errorf("Add: %v", err)
					return
				}
				go func() { // waits for this ticket; ends with it
					err := tk.Wait(ctx)
					mu.Lock()
					if err == nil {
						confirmed = append(confirmed, ms...)
					} else {
						failed++
					}
					mu.Unlock()
					progress <- struct{}{}
				}()
			}
		})
	}
	waitProgress := func(n int) {
		t.Helper()
		for range n {
			select {
			case <-progress:
			case <-ctx.Done():
				t.Fatal("no progress")
			}
		}
	}
	waitProgress(200)
	if px.Cut() == 0 {
		t.Fatal("nothing to cut: the sink is not connected through the proxy")
	}
	waitProgress(200)
	n, err := px.CloseAtBroker(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("the broker found no connection to close")
	}
	waitProgress(200)
	close(stop)
	wg.Wait()
	if err := s.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if failed > 0 {
		t.Errorf("%d tickets failed", failed)
	}
	got := map[string]int{}
	for _, m := range amqptest.Measures(t, amqptest.Collect(t, cfg, len(confirmed))) {
		got[amqptest.Key(m)]++
	}
	lost := 0
	for _, m := range confirmed {
		if got[amqptest.Key(m)] == 0 {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d confirmed measures lost", lost, len(confirmed))
	}
	dups := 0
	for _, c := range got {
		dups += c - 1
	}
	t.Logf("%d measures confirmed across a cut and a broker-side close; %d duplicates from re-publishing", len(confirmed), dups)
}
