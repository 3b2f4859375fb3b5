// Command files backfills measures from CSV and JSON-lines files (or stdin)
// into RabbitMQ, resumably. Run it with -h for the column mapping.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"go.uber.org/fx"
	"golang.org/x/term"

	"github.com/mymonit/mymonit/adapters/backfill"
	"github.com/mymonit/mymonit/adapters/internal/command"
	"github.com/mymonit/mymonit/adapters/sink"
)

const usage = `usage: files [flags] FILE... (or - for stdin)

Publishes the measures of CSV and JSON-lines files to RabbitMQ (batched v1
messages with publisher confirms), reports bad rows with their line numbers
and publishes the good ones.

Formats (-format, else by extension: .csv; .jsonl, .ndjson, .json):
  csv    a header line names the columns, in any order (case-insensitive):
           experiment   the experiment (optional with -experiment, which also
                        fills empty cells)
           sensor       the sensor name
           time         RFC 3339 (2026-11-23T10:00:00.5Z, any offset), or
                        with -time-format unix (seconds, fraction allowed) or
                        unix_ms
           value        a finite number
           unit         optional
         every other column is a tag named by its header; empty cells add no
         tag. Example:
           experiment,sensor,time,value,unit,rack
           atlas,hv/m12/current,2026-11-23T10:00:00Z,1.25,uA,r3
  jsonl  one v1 message per line: a measure
           {"experiment":"atlas","sensor":"t1","time":"2026-11-23T10:00:00Z","value":21.5}
         or a batch {"measures":[...]}.

Bad rows are printed to stderr as FILE:LINE: reason; the run goes on. Exit
status: 0 when every row was published, 3 when some rows were refused (the
others were published), 1 on any other error.

Resuming: for each file a checkpoint (FILE.checkpoint, or -checkpoint with a
single file) records the byte offset up to which every row is confirmed by
RabbitMQ or reported; it is written only after the confirms, at most every
second and at the end. Run the same command again after an interruption to
go on from there (rows after the checkpoint may be published twice, which is
harmless: a measure's identity makes a repeat overwrite itself); a completed
file is skipped. -restart ignores the checkpoint. stdin is not resumable.

Progress: a progress bar when stderr is a terminal, otherwise a line every
-progress-interval.
`

// Settings of the files command.
type Settings struct {
	Format           string        `env:"MYMONIT_FILES_FORMAT" help:"csv or jsonl; empty: by file extension"`
	Experiment       string        `env:"MYMONIT_FILES_EXPERIMENT" help:"experiment of CSV rows without an experiment column or cell"`
	TimeFormat       string        `env:"MYMONIT_FILES_TIME_FORMAT" default:"rfc3339" oneof:"rfc3339 unix unix_ms" help:"format of the CSV time column"`
	ProgressInterval time.Duration `env:"MYMONIT_FILES_PROGRESS_INTERVAL" default:"5s" min:"100ms" help:"interval of the progress lines when stderr is not a terminal"`
}

// Config is everything files reads from the environment.
type Config struct {
	Adapter sink.Config
	Files   Settings
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, errBadRows) {
		fmt.Fprintln(os.Stderr, "files:", err)
		os.Exit(3)
	}
	os.Exit(command.Exit("files", err, os.Stderr))
}

var errBadRows = errors.New("some rows were refused (reported above); the others were published")

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	var cfg Config
	var checkpoint string
	var restart bool
	_, httpSet := os.LookupEnv("MYMONIT_ADAPTER_HTTP_ADDR")
	fs := flag.NewFlagSet("files", flag.ContinueOnError)
	fs.SetOutput(stderr)
	u := command.Usage{Head: usage, Hint: "the flags, the formats and resuming", Args: true}
	err := command.Parse(fs, args, stdout, u, &cfg, func(fs *flag.FlagSet) {
		if !httpSet {
			cfg.Adapter.Sink.HTTPAddr = "" // a backfill serves no endpoints unless asked
		}
		cfg.Adapter.BindFlags(fs)
		fs.StringVar(&cfg.Files.Format, "format", cfg.Files.Format, "csv or jsonl; default by extension (MYMONIT_FILES_FORMAT)")
		fs.StringVar(&cfg.Files.Experiment, "experiment", cfg.Files.Experiment, "experiment of CSV rows without one (MYMONIT_FILES_EXPERIMENT)")
		fs.StringVar(&cfg.Files.TimeFormat, "time-format", cfg.Files.TimeFormat, "CSV time column: rfc3339, unix or unix_ms (MYMONIT_FILES_TIME_FORMAT)")
		fs.DurationVar(&cfg.Files.ProgressInterval, "progress-interval", cfg.Files.ProgressInterval, "progress lines interval when not on a terminal (MYMONIT_FILES_PROGRESS_INTERVAL)")
		fs.StringVar(&checkpoint, "checkpoint", "", "checkpoint file (one input file only); default FILE.checkpoint")
		fs.BoolVar(&restart, "restart", false, "ignore existing checkpoints and start from the top")
	}, func() error {
		var errs []error
		errs = append(errs, cfg.Adapter.Check())
		switch cfg.Files.Format {
		case "", backfill.FormatCSV, backfill.FormatJSONL:
		default:
			errs = append(errs, fmt.Errorf("MYMONIT_FILES_FORMAT (-format) %q: want csv or jsonl", cfg.Files.Format))
		}
		switch cfg.Files.TimeFormat {
		case backfill.TimeRFC3339, backfill.TimeUnix, backfill.TimeUnixMs:
		default:
			errs = append(errs, fmt.Errorf("MYMONIT_FILES_TIME_FORMAT (-time-format) %q: want rfc3339, unix or unix_ms", cfg.Files.TimeFormat))
		}
		return errors.Join(errs...)
	})
	if err != nil {
		return err
	}
	inputs := fs.Args()
	if len(inputs) == 0 {
		return command.Usagef("name at least one FILE, or - for stdin (-h for help)")
	}
	if checkpoint != "" && len(inputs) > 1 {
		return errors.New("-checkpoint names the checkpoint of a single file; with several, each gets FILE.checkpoint")
	}
	for _, in := range inputs {
		if _, err := format(in, cfg.Files.Format); err != nil {
			return err
		}
	}

	var s *sink.Sink
	app := fx.New(append(command.App(cfg.Adapter, "files"), fx.Populate(&s))...)
	if err := app.Err(); err != nil {
		return err
	}
	startCtx, cancel := context.WithTimeout(ctx, app.StartTimeout())
	defer cancel()
	if err := app.Start(startCtx); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	runErr := backfillAll(ctx, s, cfg, inputs, checkpoint, restart, stdin, stderr)
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.Adapter.Sink.ShutdownTimeout+app.StopTimeout())
	defer cancel()
	return errors.Join(runErr, app.Stop(stopCtx))
}

func format(path, flagFormat string) (string, error) {
	if flagFormat != "" {
		return flagFormat, nil
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv":
		return backfill.FormatCSV, nil
	case ".jsonl", ".ndjson", ".json":
		return backfill.FormatJSONL, nil
	}
	if path == "-" {
		return "", errors.New("stdin: give -format csv or jsonl")
	}
	return "", fmt.Errorf("%s: cannot tell the format from the extension: give -format csv or jsonl", path)
}

func backfillAll(ctx context.Context, s *sink.Sink, cfg Config, inputs []string, checkpoint string, restart bool, stdin io.Reader, stderr io.Writer) error {
	opts := backfill.CSVOptions{Experiment: cfg.Files.Experiment, TimeFormat: cfg.Files.TimeFormat}
	tty := false
	if f, ok := stderr.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	var bad int64
	for _, in := range inputs {
		fm, _ := format(in, cfg.Files.Format)
		var (
			src   backfill.Source
			start backfill.Checkpoint
			size  int64 = -1
			cp    string
			name  = in
		)
		if in == "-" {
			name = "stdin"
			if fm == backfill.FormatCSV {
				cs, err := backfill.NewCSV(stdin, nil, 0, 0, opts)
				if err != nil {
					return fmt.Errorf("stdin: %w", err)
				}
				src = cs
			} else {
				src = backfill.NewJSONL(stdin, 0, 0)
			}
		} else {
			cp = checkpoint
			if cp == "" {
				cp = in + ".checkpoint"
			}
			var f *os.File
			var err error
			src, start, f, err = backfill.Open(in, fm, opts, cp, restart)
			if errors.Is(err, backfill.ErrComplete) {
				fmt.Fprintf(stderr, "%s: %v; skipped (-restart to publish it again)\n", in, err)
				continue
			}
			if err != nil {
				return fmt.Errorf("%s: %w", in, err)
			}
			defer f.Close()
			if fi, err := f.Stat(); err == nil {
				size = fi.Size()
			}
			if start.Offset > 0 {
				fmt.Fprintf(stderr, "%s: resuming after line %d (byte %d of %d; %d measures already published)\n", in, start.Line, start.Offset, size, start.Published)
			}
		}
		prog := newProgress(name, size, start, tty, cfg.Files.ProgressInterval, stderr)
		final, err := backfill.Run(ctx, s, src, start, backfill.Options{
			Name: name, Checkpoint: cp, Report: stderr, Progress: prog.update,
		})
		prog.finish(final)
		bad += final.BadRows - start.BadRows
		if err != nil {
			if cp != "" {
				return fmt.Errorf("%w (checkpoint %s: line %d; run again to resume)", err, cp, final.Line)
			}
			return err
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d bad rows: %w", bad, errBadRows)
	}
	return nil
}

// progress shows how far a file is: a bar on a terminal, lines otherwise.
type progress struct {
	name     string
	size     int64
	bar      *progressbar.ProgressBar
	out      io.Writer
	every    time.Duration
	last     time.Time
	started  time.Time
	startPub int64
}

func newProgress(name string, size int64, start backfill.Checkpoint, tty bool, every time.Duration, out io.Writer) *progress {
	p := &progress{name: name, size: size, out: out, every: every, last: time.Now(), started: time.Now(), startPub: start.Published}
	if tty {
		p.bar = progressbar.NewOptions64(size,
			progressbar.OptionSetWriter(out),
			progressbar.OptionSetDescription(name),
			progressbar.OptionShowBytes(true),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionShowCount(),
			progressbar.OptionClearOnFinish(),
		)
		_ = p.bar.Set64(start.Offset)
	}
	return p
}

func (p *progress) update(done backfill.Checkpoint, read int64) {
	if p.bar != nil {
		_ = p.bar.Set64(read)
		return
	}
	if time.Since(p.last) < p.every {
		return
	}
	p.last = time.Now()
	p.line(done, read)
}

func (p *progress) line(done backfill.Checkpoint, read int64) {
	of := ""
	if p.size > 0 {
		of = fmt.Sprintf(" of %d (%.0f%%)", p.size, 100*float64(read)/float64(p.size))
	}
	rate := float64(done.Published-p.startPub) / time.Since(p.started).Seconds()
	fmt.Fprintf(p.out, "%s: read %d bytes%s, line %d confirmed, %d measures published (%.0f/s), %d bad rows\n",
		p.name, read, of, done.Line, done.Published, rate, done.BadRows)
}

func (p *progress) finish(done backfill.Checkpoint) {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
	p.line(done, done.Offset)
}
