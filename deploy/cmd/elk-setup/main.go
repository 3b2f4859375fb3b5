// Command elk-setup prepares Elasticsearch and Kibana for the MyMONIT logs,
// once, before (or while) Logstash starts writing:
//
//   - the index lifecycle policy mymonit-logs (rollover daily or at 10 GB,
//     delete after ELK_SETUP_LOG_RETENTION),
//   - the index template mymonit-logs, which makes mymonit-logs a data
//     stream with ECS mappings,
//   - the Kibana saved objects: the data view, saved searches and the
//     MyMONIT audit dashboard (imported with overwrite).
//
// It waits for Elasticsearch and Kibana to answer, retrying with a growing
// pause and logging each wait, for at most ELK_SETUP_TIMEOUT, and exits 0
// when everything is applied, 1 with the reason otherwise. Running it again
// applies the same objects again: it is idempotent.
//
// Configuration (environment; the password preferably as a file):
//
//	ELK_SETUP_ELASTICSEARCH_URL            default http://elasticsearch:9200
//	ELK_SETUP_KIBANA_URL                   default http://kibana:5601
//	ELK_SETUP_ELASTICSEARCH_USERNAME       default elastic (Kibana too)
//	ELK_SETUP_ELASTICSEARCH_PASSWORD_FILE  file holding the password (or ELK_SETUP_ELASTICSEARCH_PASSWORD)
//	ELK_SETUP_TIMEOUT                      default 5m
//	ELK_SETUP_LOG_RETENTION                default 30d
//
// `elk-setup config` prints this reference with the current values.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/mymonit/mymonit/pkg/config"
	"github.com/mymonit/mymonit/pkg/logging"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "elk-setup:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "config":
			var cfg Config
			_ = config.LoadFrom(func(string) (string, bool) { return "", false }, os.ReadFile, &cfg)
			_, err := io.WriteString(stdout, config.Markdown(&cfg))
			return err
		default:
			return fmt.Errorf("unknown argument %q (usage: elk-setup [config])", args[0])
		}
	}
	var cfg Config
	if err := config.Load(&cfg); err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	logs, err := logging.New(logging.Options{Service: "elk-setup", Stdout: stdout})
	if err != nil {
		return err
	}
	err = NewSetup(SetupParams{Config: cfg, Log: logs.Logger()}).Run(ctx)
	return errors.Join(err, logs.Close(context.WithoutCancel(ctx)))
}
