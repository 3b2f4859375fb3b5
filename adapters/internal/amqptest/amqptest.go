// Package amqptest gives the adapters' integration tests an isolated
// topology on the real RabbitMQ (pkg/testenv) and a way to read back the
// measures that arrived. The proxy a test cuts or freezes is testenv.Proxy.
package amqptest

import (
	"sort"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/mymonit/mymonit/pkg/measure"
	"github.com/mymonit/mymonit/pkg/queue"
	"github.com/mymonit/mymonit/pkg/testenv"
)

// Config returns a queue configuration with random names on the test broker,
// declares its topology (classic queues) and deletes it when the test ends.
func Config(t testing.TB) queue.Config {
	t.Helper()
	u := testenv.AMQP(t)
	cfg := queue.Config{
		URL:          u,
		Exchange:     testenv.Name("at_measures"),
		Queue:        testenv.Name("at_ingest"),
		DeadExchange: testenv.Name("at_dead"),
		DeadQueue:    testenv.Name("at_dead"),
		QueueType:    queue.QueueTypeClassic,
	}
	testenv.Cleanup(t, u, []string{cfg.Queue, cfg.DeadQueue}, []string{cfg.Exchange, cfg.DeadExchange})
	conn, err := amqp.Dial(u)
	if err != nil {
		t.Fatalf("dial %s: %v", u, err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("channel: %v", err)
	}
	if err := cfg.Topology().Declare(ch); err != nil {
		t.Fatalf("declare topology: %v", err)
	}
	return cfg
}

// Message is a measure message read back from the queue.
type Message struct {
	RoutingKey  string
	ContentType string
	MessageID   string
	Producer    string
	Persistent  bool
	Decoded     measure.Decoded
}

// Collect reads messages from the queue (auto-ack) until it has seen want
// measures, then waits a short while to catch any extra one. It fails the
// test when the queue stays empty for 10 seconds before that, or when a
// message does not decode.
func Collect(t testing.TB, cfg queue.Config, want int) []Message {
	t.Helper()
	conn, err := amqp.Dial(cfg.URL)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("channel: %v", err)
	}
	var got []Message
	n := 0
	quiet := time.Now().Add(10 * time.Second)
	extra := time.Time{}
	for {
		d, ok, err := ch.Get(cfg.Queue, true)
		if err != nil {
			t.Fatalf("get from %s: %v", cfg.Queue, err)
		}
		if ok {
			dec, err := measure.Decode(d.Body)
			if err != nil {
				t.Fatalf("message %s does not decode: %v", d.MessageId, err)
			}
			producer, _ := d.Headers[queue.HeaderProducer].(string)
			got = append(got, Message{
				RoutingKey: d.RoutingKey, ContentType: d.ContentType, MessageID: d.MessageId,
				Producer: producer, Persistent: d.DeliveryMode == amqp.Persistent, Decoded: dec,
			})
			n += len(dec.Measures) + len(dec.Rejected)
			quiet = time.Now().Add(10 * time.Second)
			continue
		}
		if n >= want {
			if extra.IsZero() {
				extra = time.Now().Add(300 * time.Millisecond)
			}
			if time.Now().After(extra) {
				return got
			}
		} else if time.Now().After(quiet) {
			t.Fatalf("queue %s: got %d measures, want %d", cfg.Queue, n, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Measures flattens the messages' measures and checks each message's
// envelope: routing key of its experiment, JSON content type, persistent,
// one experiment per message, no rejected item.
func Measures(t testing.TB, msgs []Message) []measure.Measure {
	t.Helper()
	var out []measure.Measure
	for _, m := range msgs {
		if m.ContentType != measure.ContentType || !m.Persistent {
			t.Errorf("message %s: content type %q persistent %v", m.MessageID, m.ContentType, m.Persistent)
		}
		if len(m.Decoded.Rejected) > 0 {
			t.Errorf("message %s carries invalid items: %v", m.MessageID, m.Decoded.Rejected)
		}
		for _, ms := range m.Decoded.Measures {
			if rk := measure.RoutingKey(ms.Experiment); rk != m.RoutingKey {
				t.Errorf("message %s: routing key %q holds a measure of %q", m.MessageID, m.RoutingKey, ms.Experiment)
			}
			out = append(out, ms)
		}
	}
	return out
}

// CollectMeasures is Collect and Measures for exactly want measures,
// sorted by identity (Sort): more than want fails the test.
func CollectMeasures(t testing.TB, cfg queue.Config, want int) []measure.Measure {
	t.Helper()
	ms := Measures(t, Collect(t, cfg, want))
	if len(ms) != want {
		t.Fatalf("queue %s: %d measures, want %d: %+v", cfg.Queue, len(ms), want, ms)
	}
	return Sort(ms)
}

// Key is a measure's identity as a string.
func Key(m measure.Measure) string {
	return m.Experiment + "|" + m.Sensor + "|" + m.Time.UTC().Format(time.RFC3339Nano)
}

// Sort orders measures by identity, for comparisons.
func Sort(ms []measure.Measure) []measure.Measure {
	sort.SliceStable(ms, func(i, j int) bool { return Key(ms[i]) < Key(ms[j]) })
	return ms
}
