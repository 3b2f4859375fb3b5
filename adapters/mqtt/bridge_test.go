package mqtt_test

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/mymonit/mymonit/adapters/internal/amqptest"
	"github.com/mymonit/mymonit/adapters/mqtt"
	"github.com/mymonit/mymonit/adapters/sink"
	"github.com/mymonit/mymonit/pkg/measure"
	"github.com/mymonit/mymonit/pkg/queue"
	"github.com/mymonit/mymonit/pkg/testenv"
)

// mqttURL is the test MQTT broker: MYMONIT_TEST_MQTT_URL, by default the
// local Mosquitto. A broker that cannot be reached fails the test.
func mqttURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("MYMONIT_TEST_MQTT_URL")
	if u == "" {
		u = "tcp://127.0.0.1:1883"
	}
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatalf("MYMONIT_TEST_MQTT_URL: %v", err)
	}
	conn, err := net.DialTimeout("tcp", parsed.Host, 5*time.Second)
	if err != nil {
		t.Fatalf("MQTT broker at %s is not reachable (start Mosquitto with `make services`): %v", u, err)
	}
	_ = conn.Close()
	return u
}

// session returns a client id for a persistent session and removes the
// session from the broker when the test ends.
func session(t *testing.T, broker string) string {
	t.Helper()
	id := testenv.Name("mymonit-test")
	t.Cleanup(func() {
		c := paho.NewClient(paho.NewClientOptions().AddBroker(broker).SetClientID(id).SetCleanSession(true))
		if tok := c.Connect(); tok.Wait() && tok.Error() == nil {
			c.Disconnect(0)
		}
	})
	return id
}

// publisher is an MQTT client publishing with QoS 1.
func publisher(t *testing.T, broker string) paho.Client {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker(broker).SetClientID(testenv.Name("mymonit-test-pub")))
	if tok := c.Connect(); tok.Wait() && tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

func publish(t *testing.T, c paho.Client, topic string, retained bool, payload string) {
	t.Helper()
	if tok := c.Publish(topic, 1, retained, payload); tok.Wait() && tok.Error() != nil {
		t.Fatal(tok.Error())
	}
}

// newSink returns a started sink publishing through pub (a real
// *queue.Publisher unless the test wants otherwise); it closes at the end.
func newSink(t *testing.T, pub sink.Publisher) *sink.Sink {
	t.Helper()
	set := sink.DefaultSettings()
	set.FlushInterval = 5 * time.Millisecond
	s, err := sink.New(sink.Params{Settings: set, Publisher: pub, Producer: "mqttbridge"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s
}

func realPublisher(t *testing.T, q queue.Config) *queue.Publisher {
	t.Helper()
	p := queue.NewPublisher(queue.PublisherParams{Config: q, Producer: "mqttbridge"})
	if err := p.Connect(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func bridgeConfig(broker, clientID string) mqtt.Config {
	return mqtt.Config{Broker: broker, ClientID: clientID, KeepAlive: 30 * time.Second, MaxReconnectInterval: time.Second, MaxPayload: 1 << 20, MaxPending: 1000}
}

func startBridge(t *testing.T, p mqtt.Params) *mqtt.Bridge {
	t.Helper()
	b, err := mqtt.New(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	return b
}

func metric(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			got := []string{}
			for _, l := range m.GetLabel() {
				got = append(got, l.GetName(), l.GetValue())
			}
			if len(labels) == 0 || cmp.Equal(got, labels) {
				return m.GetCounter().GetValue() + m.GetGauge().GetValue() + m.GetUntyped().GetValue()
			}
		}
	}
	return 0
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		if t.Context().Err() != nil {
			t.Fatalf("never happened: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestBridge publishes good and malformed QoS 1 messages to the real
// Mosquitto: exactly the good measures arrive on the RabbitMQ queue, every
// bad message is logged with its topic and reason and counted, and every
// message is acknowledged.
func TestBridge(t *testing.T) {
	broker := mqttURL(t)
	q := amqptest.Config(t)
	prefix := testenv.Name("mymonit-test")
	rules, err := mqtt.NewRules(
		mqtt.RuleSpec{Topic: prefix + "/+/+", Experiment: "{1}", Sensor: "{2}", Unit: "V"},
		mqtt.RuleSpec{Topic: prefix + "/contract/#", Experiment: "unused", Sensor: "unused", Payload: mqtt.PayloadMeasure},
	)
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.InfoLevel)
	reg := prometheus.NewRegistry()
	b := startBridge(t, mqtt.Params{
		Config: bridgeConfig(broker, session(t, broker)), Rules: rules,
		Sink: newSink(t, realPublisher(t, q)), Logger: zap.New(core), Registerer: reg,
	})

	pub := publisher(t, broker)
	ts := "2026-11-23T10:00:00Z"
	messages := []struct{ topic, payload string }{
		{prefix + "/exp-a/hv1", fmt.Sprintf(`{"value": 1.5, "time": %q}`, ts)},
		{prefix + "/exp-a/hv2", "not a number"}, // bad payload
		{prefix + "/exp-a/hv3", fmt.Sprintf(`{"value": 3, "time": %q, "unit": "kV"}`, ts)},
		{prefix + "/Bad_Exp/hv4", "4"},                                       // experiment breaks the contract
		{prefix + "/exp-b/hv5", fmt.Sprintf(`{"valeu": 5, "time": %q}`, ts)}, // unknown field
		{prefix + "/contract/x", `{"measures":[{"experiment":"exp-c","sensor":"hv7","time":"` + ts + `","value":7},{"experiment":"exp-c","sensor":"hv8","time":"` + ts + `","value":"NaN"}]}`},
		{prefix + "/exp-b/hv9", fmt.Sprintf(`{"value": 9, "time": %q, "tags": {"rack": "r3"}}`, ts)},
	}
	for _, m := range messages {
		publish(t, pub, m.topic, false, m.payload)
	}
	at, _ := time.Parse(time.RFC3339, ts)
	want := []measure.Measure{
		{Experiment: "exp-a", Sensor: "hv1", Time: at, Value: 1.5, Unit: "V"},
		{Experiment: "exp-a", Sensor: "hv3", Time: at, Value: 3, Unit: "kV"},
		{Experiment: "exp-c", Sensor: "hv7", Time: at, Value: 7},
		{Experiment: "exp-b", Sensor: "hv9", Time: at, Value: 9, Unit: "V", Tags: map[string]string{"rack": "r3"}},
	}
	got := amqptest.CollectMeasures(t, q, len(want))
	if diff := cmp.Diff(amqptest.Sort(want), got); diff != "" {
		t.Errorf("measures on the queue (-want +got):\n%s", diff)
	}
	waitFor(t, "every message acknowledged", func() bool {
		return metric(t, reg, "mymonit_mqtt_messages_acked_total") == float64(len(messages))
	})
	if err := b.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	for reason, n := range map[string]float64{mqtt.ReasonBadPayload: 2, mqtt.ReasonInvalid: 1} {
		if got := metric(t, reg, "mymonit_mqtt_messages_rejected_total", "reason", reason); got != n {
			t.Errorf("rejected %s: %v, want %v", reason, got, n)
		}
	}
	if n, err := queue.Depth(context.Background(), q, q.Queue); err != nil || n != 0 {
		t.Errorf("queue holds %d more messages (err %v)", n, err)
	}
	for _, w := range []struct{ topic, reason string }{
		{prefix + "/exp-a/hv2", `payload: "not a number" is not a number`},
		{prefix + "/exp-b/hv5", `unknown field "valeu"`},
		{prefix + "/Bad_Exp/hv4", `experiment: "Bad_Exp" must match`},
		{prefix + "/contract/x", `measure 1: value: must be a finite number, got "NaN"`},
	} {
		found := false
		for _, e := range logs.All() {
			ctx := e.ContextMap()
			if ctx["mqtt.topic"] == w.topic && strings.Contains(fmt.Sprint(ctx["reason"]), w.reason) {
				found = true
			}
		}
		if !found {
			t.Errorf("no log line names topic %s and reason %q", w.topic, w.reason)
		}
	}
}

// TestBridgeSkipsRetained: a retained message replayed at subscription is
// skipped, a live one published.
func TestBridgeSkipsRetained(t *testing.T) {
	broker := mqttURL(t)
	q := amqptest.Config(t)
	prefix := testenv.Name("mymonit-test")
	pub := publisher(t, broker)
	publish(t, pub, prefix+"/old", true, `{"value": 1, "time": "2026-01-01T00:00:00Z"}`)
	t.Cleanup(func() { publish(t, pub, prefix+"/old", true, "") }) // clears the retained message
	rules, err := mqtt.NewRules(mqtt.RuleSpec{Topic: prefix + "/+", Experiment: "exp", Sensor: "{1}"})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	b := startBridge(t, mqtt.Params{Config: bridgeConfig(broker, session(t, broker)), Rules: rules, Sink: newSink(t, realPublisher(t, q)), Registerer: reg})
	defer b.Stop(context.Background())
	publish(t, pub, prefix+"/new", false, `{"value": 2, "time": "2026-01-01T00:00:00Z"}`)
	got := amqptest.CollectMeasures(t, q, 1)
	if got[0].Sensor != "new" {
		t.Errorf("published %+v, want the live message only", got)
	}
	waitFor(t, "the retained message counted", func() bool {
		return metric(t, reg, "mymonit_mqtt_messages_rejected_total", "reason", mqtt.ReasonRetained) == 1
	})
}

// blockingPublisher never confirms: it tells when a publish started and
// blocks until its context ends, like a broker that went silent.
type blockingPublisher struct {
	once    sync.Once
	started chan struct{}
}

func (p *blockingPublisher) Publish(ctx context.Context, _ ...queue.Message) error {
	p.once.Do(func() { close(p.started) })
	<-ctx.Done()
	return ctx.Err()
}

// TestBridgeRedeliversUnconfirmed stops a bridge whose measures were never
// confirmed: the message is not acknowledged, and a new bridge with the same
// client id (the persistent session) receives it again from Mosquitto and
// publishes it.
func TestBridgeRedeliversUnconfirmed(t *testing.T) {
	broker := mqttURL(t)
	q := amqptest.Config(t)
	prefix := testenv.Name("mymonit-test")
	id := session(t, broker)
	rules, err := mqtt.NewRules(mqtt.RuleSpec{Topic: prefix + "/+", Experiment: "exp", Sensor: "{1}"})
	if err != nil {
		t.Fatal(err)
	}

	blocked := &blockingPublisher{started: make(chan struct{})}
	regA := prometheus.NewRegistry()
	a := startBridge(t, mqtt.Params{Config: bridgeConfig(broker, id), Rules: rules, Sink: newSink(t, blocked), Registerer: regA})
	pub := publisher(t, broker)
	publish(t, pub, prefix+"/hv1", false, `{"value": 42, "time": "2026-11-23T10:00:00Z"}`)
	<-blocked.started // the bridge has the message and is publishing it
	crashed, cancel := context.WithCancel(context.Background())
	cancel() // no time to wait for confirms: as good as a crash
	if err := a.Stop(crashed); err == nil {
		t.Error("Stop gave no error although confirms were pending")
	}
	if got := metric(t, regA, "mymonit_mqtt_messages_acked_total"); got != 0 {
		t.Fatalf("the first bridge acknowledged %v messages, want 0", got)
	}

	b := startBridge(t, mqtt.Params{Config: bridgeConfig(broker, id), Rules: rules, Sink: newSink(t, realPublisher(t, q))})
	defer b.Stop(context.Background())
	at, _ := time.Parse(time.RFC3339, "2026-11-23T10:00:00Z")
	want := []measure.Measure{{Experiment: "exp", Sensor: "hv1", Time: at, Value: 42}}
	if diff := cmp.Diff(want, amqptest.CollectMeasures(t, q, 1)); diff != "" {
		t.Errorf("measures after the restart (-want +got):\n%s", diff)
	}
}

func TestBridgeStartFailsWithoutBroker(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	rules, err := mqtt.NewRules(mqtt.RuleSpec{Topic: "x/+", Experiment: "exp", Sensor: "{1}"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := mqtt.New(mqtt.Params{Config: bridgeConfig("tcp://"+addr, "id"), Rules: rules, Sink: newSink(t, &blockingPublisher{started: make(chan struct{})})})
	if err != nil {
		t.Fatal(err)
	}
	err = b.Start(t.Context())
	if err == nil || !strings.Contains(err.Error(), "connect to MQTT broker tcp://"+addr) {
		t.Errorf("Start: %v, want a connection error naming the broker", err)
	}
}
