package mqtt_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mymonit/mymonit/adapters/internal/amqptest"
	"github.com/mymonit/mymonit/adapters/mqtt"
	"github.com/mymonit/mymonit/adapters/sink"
	"github.com/mymonit/mymonit/pkg/testenv"
)

// TestBridgeAcksOnlyAfterConfirm puts a proxy between the bridge and the
// real Mosquitto and checks, for every PUBACK the bridge sends, that the
// measure of that message was already confirmed by the real RabbitMQ when
// the PUBACK reached the wire. The sink flushes as in production (batches of
// 1000, 50 ms), so many messages wait for their confirms at once.
func TestBridgeAcksOnlyAfterConfirm(t *testing.T) {
	broker := mqttURL(t)
	q := amqptest.Config(t)
	prefix := testenv.Name("mymonit-test")
	id := session(t, broker)
	rules, err := mqtt.NewRules(mqtt.RuleSpec{Topic: prefix + "/+", Experiment: "exp", Sensor: "{1}"})
	if err != nil {
		t.Fatal(err)
	}
	set := sink.DefaultSettings()
	set.FlushInterval = 50 * time.Millisecond
	set.BatchSize = 1000
	s, err := sink.New(sink.Params{Settings: set, Publisher: realPublisher(t, q), Producer: "mqttbridge"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(t.Context()) })
	rs := &recordingSink{Sink: s, tickets: map[string]*sink.Ticket{}}

	var mu sync.Mutex
	inflight := map[uint16]string{} // packet id -> topic, PUBLISHed and not yet PUBACKed
	var publishes, pubacks, maxInflight int
	var early []string
	px := newProxy(t, broker, func(p packet, down bool) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case down && p.kind == packetPublish && p.qos == 1:
			publishes++
			inflight[p.id] = p.topic
			maxInflight = max(maxInflight, len(inflight))
		case !down && p.kind == packetPuback:
			pubacks++
			topic, ok := inflight[p.id]
			delete(inflight, p.id)
			if !ok {
				early = append(early, fmt.Sprintf("PUBACK of packet id %d, never delivered", p.id))
				return
			}
			confirmed, err := rs.confirmed(topic[strings.LastIndex(topic, "/")+1:])
			if err != nil || !confirmed {
				early = append(early, fmt.Sprintf("PUBACK of %s (packet id %d) before its confirm (%v)", topic, p.id, err))
			}
		}
	})

	reg := prometheus.NewRegistry()
	b := startBridge(t, mqtt.Params{Config: bridgeConfig(px.URL(), id), Rules: rules, Sink: rs, Registerer: reg})
	defer b.Stop(t.Context())
	pub := publisher(t, broker)
	const n = 1000
	for i := range n {
		publish(t, pub, fmt.Sprintf("%s/s%d", prefix, i), false, "1")
	}
	waitFor(t, "every message acknowledged", func() bool { return metric(t, reg, "mymonit_mqtt_messages_acked_total") == n })
	waitFor(t, "every PUBACK through the proxy", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return pubacks >= n
	})

	mu.Lock()
	defer mu.Unlock()
	if len(early) > 0 {
		t.Errorf("%d of %d PUBACKs were sent before the confirm, e.g. %s", len(early), pubacks, early[0])
	}
	if publishes < n || pubacks != n {
		t.Errorf("%d PUBLISH and %d PUBACK on the wire, want at least %d and exactly %d", publishes, pubacks, n, n)
	}
	t.Logf("at most %d messages delivered and not yet acknowledged at once", maxInflight)
}
