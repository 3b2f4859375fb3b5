package queue_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/mymonit/mymonit/pkg/queue"
)

func validConfig() queue.Config {
	return queue.Config{
		URL:           "amqp://guest:secret@127.0.0.1:5672/",
		Exchange:      "mymonit.measures",
		Queue:         "mymonit.ingest",
		DeadExchange:  "mymonit.dead",
		DeadQueue:     "mymonit.ingest.dead",
		QueueType:     "quorum",
		DeliveryLimit: 20,
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*queue.Config)
		want   []string // substrings of the error; none: valid
	}{
		{name: "valid quorum", modify: func(*queue.Config) {}},
		{name: "valid classic", modify: func(c *queue.Config) { c.QueueType = "classic"; c.DeliveryLimit = 0 }},
		{name: "bad scheme", modify: func(c *queue.Config) { c.URL = "http://guest:secret@host/" }, want: []string{"MYMONIT_AMQP_URL"}},
		{name: "empty queue", modify: func(c *queue.Config) { c.Queue = "" }, want: []string{"MYMONIT_AMQP_QUEUE: must not be empty"}},
		{name: "same exchanges", modify: func(c *queue.Config) { c.DeadExchange = c.Exchange }, want: []string{"MYMONIT_AMQP_DEAD_EXCHANGE"}},
		{name: "same queues", modify: func(c *queue.Config) { c.DeadQueue = c.Queue }, want: []string{"MYMONIT_AMQP_DEAD_QUEUE"}},
		{name: "bad type", modify: func(c *queue.Config) { c.QueueType = "stream" }, want: []string{"MYMONIT_AMQP_QUEUE_TYPE", `"stream"`}},
		{name: "negative limit", modify: func(c *queue.Config) { c.DeliveryLimit = -1 }, want: []string{"MYMONIT_AMQP_DELIVERY_LIMIT"}},
		{name: "several", modify: func(c *queue.Config) { c.Exchange = ""; c.QueueType = "" }, want: []string{"MYMONIT_AMQP_EXCHANGE", "MYMONIT_AMQP_QUEUE_TYPE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := validConfig()
			tt.modify(&cfg)
			err := cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error mentioning %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("Validate() = %q leaks the password", err)
			}
		})
	}
}

func TestConfigTopology(t *testing.T) {
	got := validConfig().Topology()
	want := queue.Topology{
		Exchange:      "mymonit.measures",
		Queue:         "mymonit.ingest",
		DeadExchange:  "mymonit.dead",
		DeadQueue:     "mymonit.ingest.dead",
		QueueType:     "quorum",
		DeliveryLimit: 20,
		BindingKey:    "experiment.#",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Topology() mismatch (-want +got):\n%s", diff)
	}
	if rk := queue.RoutingKey("lab-1"); rk != "experiment.lab-1" {
		t.Errorf("RoutingKey = %q", rk)
	}
}

func TestTopologyDeclare(t *testing.T) {
	for _, qt := range []string{"quorum", "classic"} {
		t.Run(qt, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(t, qt)
			ch := amqpChannel(t, cfg.URL)
			for i := range 2 {
				if err := cfg.Topology().Declare(ch); err != nil {
					t.Fatalf("Declare #%d: %v", i+1, err)
				}
			}
			if err := cfg.Topology().DeclarePublishing(ch); err != nil {
				t.Fatalf("DeclarePublishing after Declare: %v", err)
			}

			// Routing: measures go to the queue, anything to the dead queue.
			for _, p := range []struct{ exchange, key string }{
				{cfg.Exchange, queue.RoutingKey("e1")},
				{cfg.Exchange, "not-an-experiment"}, // not bound: dropped
				{cfg.DeadExchange, "whatever"},
			} {
				if err := ch.Publish(p.exchange, p.key, false, false, amqp.Publishing{Body: []byte("x")}); err != nil {
					t.Fatalf("publish: %v", err)
				}
			}
			waitDepth(t, cfg.URL, cfg.Queue, 1)
			waitDepth(t, cfg.URL, cfg.DeadQueue, 1)

			// The queues have the configured type: the other type conflicts.
			other := map[string]string{"quorum": "classic", "classic": "quorum"}[qt]
			for _, name := range []string{cfg.Queue, cfg.DeadQueue} {
				ch := amqpChannel(t, cfg.URL)
				_, err := ch.QueueDeclare(name, true, false, false, false, amqp.Table{amqp.QueueTypeArg: other})
				var ae *amqp.Error
				if !errors.As(err, &ae) || ae.Code != amqp.PreconditionFailed {
					t.Errorf("declaring %s as %s: err = %v, want PRECONDITION_FAILED", name, other, err)
				}
			}
		})
	}
}

func TestDeclarePublishingOnly(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "quorum")
	ch := amqpChannel(t, cfg.URL)
	if err := cfg.Topology().DeclarePublishing(ch); err != nil {
		t.Fatalf("DeclarePublishing: %v", err)
	}
	if err := ch.ExchangeDeclarePassive(cfg.Exchange, "topic", true, false, false, false, nil); err != nil {
		t.Errorf("exchange not declared: %v", err)
	}
	if _, err := ch.QueueDeclarePassive(cfg.Queue, true, false, false, false, nil); err == nil {
		t.Errorf("DeclarePublishing declared the queue too")
	}
}
