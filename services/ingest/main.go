// Command ingest drains the MyMONIT measures queue into MySQL/MariaDB, and
// carries the operator commands that go with it:
//
//	ingest [serve]                          run the service (default)
//	ingest migrate [-status]                apply (or list) schema migrations
//	ingest experiment create SLUG [-name N] [-description D]
//	ingest experiment list
//	ingest dlq list [-limit N]              count dead letters by reason, show a sample
//	ingest dlq replay [-reason S] [-max N]  re-publish dead letters after a fix
//	ingest feed-demo [-experiment E] ...    publish synthetic demo measures
//	ingest config                           print the configuration reference
//
// Configuration comes from the environment; `ingest config` lists it.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, "ingest:", err)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

const usage = `usage: ingest [command]

commands:
  serve                      run the ingest service (default)
  migrate [-status]          apply pending schema migrations (or list them)
  experiment create SLUG     register an experiment (-name, -description)
  experiment list            list registered experiments
  dlq list [-limit N]        count dead letters by reason and show a sample
  dlq replay [-reason S] [-max N]
                             re-publish dead letters to the measures exchange
  feed-demo                  publish synthetic measures (see -h)
  config                     print the configuration reference (environment variables)

Configuration is read from the environment; see 'ingest config'.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx)
	case "migrate":
		return migrateCmd(ctx, args, stdout, stderr)
	case "experiment":
		return experimentCmd(ctx, args, stdout, stderr)
	case "dlq":
		return dlqCmd(ctx, args, stdout, stderr)
	case "feed-demo":
		return feedDemoCmd(ctx, args, stdout, stderr)
	case "config":
		return configCmd(stdout)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprintf(stderr, "ingest: unknown command %q\n\n%s", cmd, usage)
		return errUsage
	}
}
