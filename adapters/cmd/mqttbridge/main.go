// Command mqttbridge subscribes to MQTT topics with QoS 1 in a persistent
// session and publishes the messages as MyMONIT measures, acknowledging each
// message to the MQTT broker only once RabbitMQ confirmed its measures. Run
// it with -help for the mapping rules and the configuration.
package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/mymonit/mymonit/adapters/internal/command"
	"github.com/mymonit/mymonit/adapters/mqtt"
	"github.com/mymonit/mymonit/adapters/sink"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(command.Exit("mqttbridge", err, os.Stderr))
}

// settings is everything mqttbridge reads from the environment.
type settings struct {
	Adapter sink.Config
	MQTT    mqtt.Config
}

const usageHead = `usage: mqttbridge [flags]

Subscribes to MQTT topic filters with QoS 1 in a persistent session (clean
session off, fixed client id) and publishes every message as measures to the
MyMONIT measures exchange, in batches, with publisher confirms. A message is
acknowledged to the MQTT broker only after RabbitMQ confirmed its measures: if
the bridge stops or crashes first, the broker delivers it again.

Rules file (-rules, MYMONIT_MQTT_RULES), YAML or JSON; the first rule whose
topic filter matches a message applies, and every filter is subscribed:

  rules:
    - topic: lab/+/+/temperature    # + one level, # the rest (last level)
      experiment: "{1}"             # {1}, {2}...: levels matched by the +
      sensor: "{2}/temperature"     # {#}: levels matched by #; {topic}
      unit: degC                    # optional
      tags: {room: "{2}"}           # optional, templates too
      payload: auto                 # auto (default), number, json, measure
    - topic: plant/#
      experiment: plant
      sensor: "{#}"

Payloads (auto):
  21.5                             a plain number: the value, time = receipt
  {"value": 21.5, "time": "2026-11-23T10:00:00Z", "unit": "K", "tags": {"p": "1"}}
                                   time: RFC 3339 or Unix seconds; all but
                                   value optional; other fields refused
  {"experiment": ..., "sensor": ..., "time": ..., "value": ...}
  {"measures": [...]}              a v1 contract measure or batch, published
                                   as it is (the rule's templates unused)
Send the time in the payload when you can: a message delivered twice (after
a crash) then overwrites itself instead of making two measures.

Bad messages (no rule, unreadable payload, too large, every measure invalid)
are logged with the topic and the reason, counted in
mymonit_mqtt_messages_rejected_total{reason} and acknowledged, so they are not
delivered again. Retained messages replayed at subscription are skipped
(-accept-retained uses them).
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg settings
	fs := flag.NewFlagSet("mqttbridge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	u := command.Usage{Head: usageHead, Hint: "the flags, the rules file and the payloads"}
	err := command.Parse(fs, args, stdout, u, &cfg, func(fs *flag.FlagSet) {
		cfg.Adapter.BindFlags(fs)
		cfg.MQTT.BindFlags(fs)
	}, func() error {
		return errors.Join(cfg.Adapter.Check(), cfg.MQTT.Check())
	})
	if err != nil {
		return err
	}
	rules, err := mqtt.LoadRules(cfg.MQTT)
	if err != nil {
		return err
	}

	srv := command.Server{
		Stdout:   stdout,
		Started:  []zap.Field{zap.Strings("mqtt.filters", rules.Filters())},
		Stopping: "shutting down: acknowledging what RabbitMQ confirms",
	}
	return srv.Serve(ctx, cfg.Adapter, cfg, "mqttbridge",
		fx.Supply(cfg.MQTT, rules),
		mqtt.Module,
	)
}
