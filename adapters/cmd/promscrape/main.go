// Command promscrape scrapes Prometheus exposition endpoints at an interval
// and publishes every sample as a MyMONIT measure of the experiment
// configured for its target. Run it with -help for the mapping and the
// configuration.
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
	"github.com/mymonit/mymonit/adapters/promscrape"
	"github.com/mymonit/mymonit/adapters/sink"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(command.Exit("promscrape", err, os.Stderr))
}

// settings is everything promscrape reads from the environment.
type settings struct {
	Adapter sink.Config
	Scrape  promscrape.Config
}

const usageHead = `usage: promscrape [flags]

Scrapes Prometheus exposition endpoints (text format, or OpenMetrics 1.0 for
targets that speak nothing else) at an interval and publishes every sample as
a measure to the MyMONIT measures exchange, in batches, with publisher
confirms.

Targets file (-config, MYMONIT_PROMSCRAPE_CONFIG), YAML or JSON:

  targets:
    - url: http://127.0.0.1:9100/metrics   # http or https
      experiment: lab-node                  # registered experiment
      labels: {instance: node1}             # optional, added to every sample
      drop_labels: [job]                    # optional, exposed labels left out
      interval: 30s                         # optional, else -interval
      timeout: 5s                           # optional, else -timeout

Mapping: every sample becomes one measure of the target's experiment.
  sensor  the series in Prometheus notation, labels sorted by name:
            http_requests_total{code="200",method="get"}
          counter: the name as exposed (OpenMetrics: name_total)
          gauge, untyped: name
          histogram: name_bucket{le="0.5"} per bucket (le="+Inf" always),
                     name_sum, name_count  (gauge histogram: _gsum, _gcount)
          summary: name{quantile="0.9"} per quantile, name_sum, name_count
  tags    the same labels (plus the target's labels; an exposed label the
          target also sets is kept as exported_<name>; empty values dropped)
  time    the sample's timestamp if the exposition has one, else scrape start
  unit    the OpenMetrics UNIT, if any
OpenMetrics _created samples, exemplars and HELP are not forwarded.
Samples that break the measure contract (NaN or infinite value, a series
longer than 128 bytes, more than 32 labels, a label value over 256 bytes) are
rejected with the reason, logged and counted
(mymonit_promscrape_samples_rejected_total{field}); the others are published.
A failed scrape (unreachable, timeout, HTTP error, too large, unparsable)
publishes nothing, is logged with the target and reason and counted
(mymonit_promscrape_scrape_failures_total{reason}).
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg settings
	fs := flag.NewFlagSet("promscrape", flag.ContinueOnError)
	fs.SetOutput(stderr)
	u := command.Usage{Head: usageHead, Hint: "the flags, the targets file and the mapping"}
	err := command.Parse(fs, args, stdout, u, &cfg, func(fs *flag.FlagSet) {
		cfg.Adapter.BindFlags(fs)
		cfg.Scrape.BindFlags(fs)
	}, func() error {
		return errors.Join(cfg.Adapter.Check(), cfg.Scrape.Check())
	})
	if err != nil {
		return err
	}
	targets, err := promscrape.LoadTargets(cfg.Scrape)
	if err != nil {
		return err
	}

	names := make([]string, len(targets))
	for i, t := range targets {
		names[i] = t.Name()
	}
	srv := command.Server{
		Stdout:   stdout,
		Started:  []zap.Field{zap.Strings("targets", names)},
		Stopping: "shutting down: publishing what was scraped",
	}
	return srv.Serve(ctx, cfg.Adapter, cfg, "promscrape",
		fx.Supply(cfg.Scrape, targets),
		promscrape.Module,
	)
}
