// Command lineproto receives InfluxDB line protocol, as Telegraf, collectd
// or any InfluxDB client writes it, and publishes it as MyMONIT measures.
// Run it with -h for the mapping and the configuration.
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

	"github.com/mymonit/mymonit/adapters/internal/command"
	"github.com/mymonit/mymonit/adapters/lineproto"
	"github.com/mymonit/mymonit/adapters/sink"
)

const usage = `usage: lineproto [flags]

Receives InfluxDB line protocol and publishes it to RabbitMQ as MyMONIT
measures (batched v1 messages, with publisher confirms).

Endpoints (-listen, default :8186):
  POST /write?db=EXP&precision=n|u|ms|s|m|h      InfluxDB v1
  POST /api/v2/write?bucket=EXP&precision=ns|us|ms|s   InfluxDB v2 (org is ignored)
  GET  /ping                                      204
Bodies may be gzip-compressed (Content-Encoding: gzip). UDP (-udp) takes one
or more lines per datagram, with no answer.

Mapping, for each line  <measurement>[,<tag>=<v>...] <field>=<v>[,...] [<time>]:
  measure per field   each numeric field (float, integer, unsigned) is one
                      measure; string and boolean fields are refused (400)
                      unless -ignore-non-numeric
  sensor              <measurement>.<field> then ,<tag>=<value> for each tag
                      named by -sensor-tags, in tag-key order (default *: all
                      tags, the InfluxDB series identity)
                      cpu,host=a,cpu=cpu0 usage_idle=97 → cpu.usage_idle,cpu=cpu0,host=a
  tags                every tag of the line except "experiment"
  experiment          the line's "experiment" tag, else db= (v1) or bucket=
                      (v2), else -experiment; a line with none is refused
  time                the timestamp in the request's precision (default ns),
                      or the time of receipt when the line has none

Answers: 204 when every line was published (after RabbitMQ confirmed it).
400 when some lines were refused: the good lines of the same request ARE
published (the answer comes after their confirms) and the JSON body lists
each refused line with its number and reason, so do not resend the request.
503 when the measures could not be confirmed (resend: a repeat overwrites
itself). 413 for a body over -max-body, 415 for an encoding other than gzip.
`

// Config is everything lineproto reads from the environment.
type Config struct {
	Adapter   sink.Config
	LineProto lineproto.Settings
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(command.Exit("lineproto", err, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg Config
	fs := flag.NewFlagSet("lineproto", flag.ContinueOnError)
	fs.SetOutput(stderr)
	u := command.Usage{Head: usage, Hint: "the flags, the endpoints and the mapping"}
	err := command.Parse(fs, args, stdout, u, &cfg, func(fs *flag.FlagSet) {
		cfg.Adapter.BindFlags(fs)
		cfg.LineProto.BindFlags(fs)
	}, func() error {
		return errors.Join(cfg.Adapter.Check(), cfg.LineProto.Validate())
	})
	if err != nil {
		return err
	}
	return command.Serve(ctx, cfg.Adapter, cfg, "lineproto",
		fx.Supply(cfg.LineProto),
		lineproto.Module,
		fx.Invoke(func(*lineproto.Server) {}),
	)
}
