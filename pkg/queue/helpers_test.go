package queue_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/zap/zaptest"

	"github.com/mymonit/mymonit/pkg/queue"
	"github.com/mymonit/mymonit/pkg/testenv"
)

// testConfig returns a configuration with random names on the test broker,
// deleted when the test ends.
func testConfig(t testing.TB, queueType string) queue.Config {
	t.Helper()
	url := testenv.AMQP(t)
	cfg := queue.Config{
		URL:           url,
		Exchange:      testenv.Name("qt_measures"),
		Queue:         testenv.Name("qt_ingest"),
		DeadExchange:  testenv.Name("qt_dead"),
		DeadQueue:     testenv.Name("qt_ingest_dead"),
		QueueType:     queueType,
		DeliveryLimit: 20,
	}
	testenv.Cleanup(t, url, []string{cfg.Queue, cfg.DeadQueue}, []string{cfg.Exchange, cfg.DeadExchange})
	return cfg
}

// amqpConn dials the test broker directly and closes the connection when the
// test ends.
func amqpConn(t testing.TB, url string) *amqp.Connection {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func amqpChannel(t testing.TB, url string) *amqp.Channel {
	t.Helper()
	ch, err := amqpConn(t, url).Channel()
	if err != nil {
		t.Fatalf("channel: %v", err)
	}
	return ch
}

func declare(t testing.TB, cfg queue.Config) {
	t.Helper()
	if err := cfg.Topology().Declare(amqpChannel(t, cfg.URL)); err != nil {
		t.Fatalf("declare: %v", err)
	}
}

// depth returns the number of ready messages in a queue.
func depth(t testing.TB, url, name string) int {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("channel: %v", err)
	}
	q, err := ch.QueueDeclarePassive(name, true, false, false, false, nil)
	if err != nil {
		t.Fatalf("inspect queue %s: %v", name, err)
	}
	return q.Messages
}

// waitDepth waits until a queue holds n ready messages.
func waitDepth(t testing.TB, url, name string, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := depth(t, url, name)
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue %s holds %d messages, want %d", name, got, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// collect takes (basic.get, auto-ack) exactly n messages, waiting for them
// while the queue does not stay empty too long.
func collect(t testing.TB, url, name string, n int) []amqp.Delivery {
	t.Helper()
	ch := amqpChannel(t, url)
	defer ch.Close()
	var got []amqp.Delivery
	quiet := time.Now().Add(5 * time.Second)
	for len(got) < n {
		d, ok, err := ch.Get(name, true)
		if err != nil {
			t.Fatalf("get from %s: %v", name, err)
		}
		if ok {
			got = append(got, d)
			quiet = time.Now().Add(5 * time.Second)
			continue
		}
		if time.Now().After(quiet) {
			t.Fatalf("queue %s: got %d messages, want %d", name, len(got), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return got
}

// counterValue reads a counter from a registry.
func counterValue(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func newPublisher(t testing.TB, cfg queue.Config, mod func(*queue.PublisherParams)) *queue.Publisher {
	t.Helper()
	p := queue.PublisherParams{Config: cfg, Logger: zaptest.NewLogger(t), Producer: "test-producer"}
	if mod != nil {
		mod(&p)
	}
	pub := queue.NewPublisher(p)
	t.Cleanup(func() {
		if err := pub.Close(); err != nil {
			t.Errorf("close publisher: %v", err)
		}
	})
	return pub
}
