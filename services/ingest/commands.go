package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/mymonit/mymonit/pkg/config"
	"github.com/mymonit/mymonit/pkg/measure"
	"github.com/mymonit/mymonit/pkg/queue"
	"github.com/mymonit/mymonit/pkg/storage"
	"github.com/mymonit/mymonit/services/ingest/internal/settings"
)

// newFlagSet returns a flag set that reports errors to stderr once.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	return nil
}

// cliLogger logs operator commands' progress to stderr, readable by a person.
func cliLogger(stderr io.Writer) *zap.Logger {
	cfg := zap.NewDevelopmentEncoderConfig()
	cfg.TimeKey = ""
	return zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(cfg), zapcore.AddSync(stderr), zap.InfoLevel))
}

func openDB(ctx context.Context, cfg settings.Config, create bool) (*storage.Store, func(), error) {
	if create {
		if err := storage.CreateDatabase(ctx, cfg.MySQL.DSN); err != nil {
			return nil, nil, err
		}
	}
	db, err := storage.Open(ctx, cfg.MySQL)
	if err != nil {
		return nil, nil, err
	}
	st := storage.NewStore(storage.StoreParams{DB: db})
	return st, func() { _ = db.Close() }, nil
}

func migrateCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("ingest migrate", stderr)
	status := fs.Bool("status", false, "list applied and pending migrations without applying any")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := settings.Load()
	if err != nil {
		return err
	}
	if err := storage.CreateDatabase(ctx, cfg.MySQL.DSN); err != nil {
		return err
	}
	db, err := storage.Open(ctx, cfg.MySQL)
	if err != nil {
		return err
	}
	defer db.Close()
	if *status {
		cur, pending, err := storage.Status(ctx, db)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "schema version %d, %d pending\n", cur, len(pending))
		for _, m := range pending {
			fmt.Fprintf(stdout, "  pending %s\n", m)
		}
		return nil
	}
	applied, err := storage.Migrate(ctx, db, cliLogger(stderr))
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintln(stdout, "schema is up to date")
	}
	for _, m := range applied {
		fmt.Fprintf(stdout, "applied %s\n", m)
	}
	return nil
}

func experimentCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: ingest experiment create SLUG [-name NAME] [-description TEXT] | ingest experiment list")
		return errUsage
	}
	cfg, err := settings.Load()
	if err != nil {
		return err
	}
	switch args[0] {
	case "create":
		fs := newFlagSet("ingest experiment create", stderr)
		name := fs.String("name", "", "human-readable name (default: the slug)")
		desc := fs.String("description", "", "description")
		existOK := fs.Bool("exist-ok", false, "succeed when the experiment exists already")
		// Accept the slug before or after the flags.
		rest := args[1:]
		var slug string
		if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
			slug, rest = rest[0], rest[1:]
		}
		if err := parseFlags(fs, rest); err != nil {
			return err
		}
		if slug == "" && fs.NArg() > 0 {
			slug = fs.Arg(0)
		}
		if slug == "" {
			fmt.Fprintln(stderr, "ingest experiment create: the experiment slug is missing, e.g. `ingest experiment create atlas-pixel -name \"ATLAS pixel\"`")
			return errUsage
		}
		if *name == "" {
			*name = slug
		}
		st, closeDB, err := openDB(ctx, cfg, false)
		if err != nil {
			return err
		}
		defer closeDB()
		e, err := st.CreateExperiment(ctx, storage.Experiment{Slug: slug, Name: *name, Description: *desc})
		if errors.Is(err, storage.ErrConflict) && *existOK {
			fmt.Fprintf(stdout, "experiment %q exists already\n", slug)
			return nil
		}
		if err != nil {
			return fmt.Errorf("create experiment %q: %w", slug, err)
		}
		fmt.Fprintf(stdout, "created experiment %q (id %d)\n", e.Slug, e.ID)
		return nil
	case "list":
		st, closeDB, err := openDB(ctx, cfg, false)
		if err != nil {
			return err
		}
		defer closeDB()
		exps, err := st.ListExperiments(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SLUG\tNAME\tCREATED")
		for _, e := range exps {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", e.Slug, e.Name, e.CreatedAt.UTC().Format(time.RFC3339))
		}
		return tw.Flush()
	default:
		fmt.Fprintf(stderr, "ingest experiment: unknown subcommand %q (create, list)\n", args[0])
		return errUsage
	}
}

func dlqCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: ingest dlq list [-limit N] | ingest dlq replay [-reason TEXT] [-max N]")
		return errUsage
	}
	cfg, err := settings.Load()
	if err != nil {
		return err
	}
	switch args[0] {
	case "list":
		fs := newFlagSet("ingest dlq list", stderr)
		limit := fs.Int("limit", 10, "how many dead letters to show in full")
		if err := parseFlags(fs, args[1:]); err != nil {
			return err
		}
		total, sample, byReason, err := queue.ListDeadLetters(ctx, cfg.AMQP, *limit)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d dead letters in %s\n", total, cfg.AMQP.DeadQueue)
		reasons := make([]string, 0, len(byReason))
		for r := range byReason {
			reasons = append(reasons, r)
		}
		sort.Slice(reasons, func(i, j int) bool { return byReason[reasons[i]] > byReason[reasons[j]] })
		for _, r := range reasons {
			fmt.Fprintf(stdout, "%6d  %s\n", byReason[r], r)
		}
		if len(sample) > 0 {
			fmt.Fprintln(stdout, "\nsample:")
		}
		for _, d := range sample {
			body := string(d.Body)
			if len(body) > 300 {
				body = body[:300] + "…"
			}
			fmt.Fprintf(stdout, "- message %s (routing key %s, rejected %s)\n  reason: %s\n  body: %s\n",
				d.MessageID, d.OriginalRoutingKey, d.RejectedAt.Format(time.RFC3339), d.Reason, body)
		}
		return nil
	case "replay":
		fs := newFlagSet("ingest dlq replay", stderr)
		reason := fs.String("reason", "", "replay only dead letters whose reason contains this text (default: all)")
		max := fs.Int("max", 0, "replay at most this many (0: all)")
		if err := parseFlags(fs, args[1:]); err != nil {
			return err
		}
		pub := queue.NewPublisher(queue.PublisherParams{Config: cfg.AMQP, Logger: zap.NewNop(), Producer: "ingest-dlq-replay"})
		defer pub.Close()
		filter := func(d queue.DeadLetter) bool { return strings.Contains(d.Reason, *reason) }
		n, err := queue.ReplayDeadLetters(ctx, cfg.AMQP, pub, filter, *max)
		fmt.Fprintf(stdout, "replayed %d dead letters to %s\n", n, cfg.AMQP.Exchange)
		return err
	default:
		fmt.Fprintf(stderr, "ingest dlq: unknown subcommand %q (list, replay)\n", args[0])
		return errUsage
	}
}

func feedDemoCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("ingest feed-demo", stderr)
	exp := fs.String("experiment", "demo", "experiment slug (must be registered)")
	sensors := fs.Int("sensors", 4, "number of sensors")
	points := fs.Int("points", 600, "measures per sensor, one per second ending now")
	perMsg := fs.Int("batch", 100, "measures per message")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *sensors < 1 || *points < 1 || *perMsg < 1 || *perMsg > measure.MaxBatch {
		fmt.Fprintf(stderr, "ingest feed-demo: -sensors and -points must be ≥ 1, -batch between 1 and %d\n", measure.MaxBatch)
		return errUsage
	}
	cfg, err := settings.Load()
	if err != nil {
		return err
	}
	pub := queue.NewPublisher(queue.PublisherParams{Config: cfg.AMQP, Logger: zap.NewNop(), Producer: "ingest-feed-demo", DeclareTopology: true})
	defer pub.Close()
	end := time.Now().UTC().Truncate(time.Second)
	var batch []measure.Measure
	var msgs []queue.Message
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		body, err := measure.Encode(batch)
		if err != nil {
			return err
		}
		msgs = append(msgs, queue.Message{RoutingKey: measure.RoutingKey(*exp), Body: body, ContentType: measure.ContentType})
		batch = batch[:0]
		if len(msgs) >= 50 {
			err = pub.Publish(ctx, msgs...)
			msgs = msgs[:0]
		}
		return err
	}
	for s := range *sensors {
		for i := range *points {
			t := end.Add(-time.Duration(*points-1-i) * time.Second)
			v := 20 + 5*math.Sin(float64(i)/30+float64(s)) + float64(s)
			batch = append(batch, measure.Measure{Experiment: *exp, Sensor: fmt.Sprintf("demo/temperature-%d", s+1),
				Time: t, Value: math.Round(v*1000) / 1000, Unit: "degC", Tags: map[string]string{"source": "feed-demo"}})
			if len(batch) == *perMsg {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if len(msgs) > 0 {
		if err := pub.Publish(ctx, msgs...); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "published %d measures for experiment %q (%d sensors)\n", *sensors**points, *exp, *sensors)
	return nil
}

func configCmd(stdout io.Writer) error {
	fmt.Fprint(stdout, config.Markdown(settings.Config{}))
	return nil
}
