package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/mymonit/mymonit/pkg/benchkit"
	"github.com/mymonit/mymonit/pkg/measure"
	"github.com/mymonit/mymonit/pkg/testenv"
)

// Phase names, in the order they run.
const (
	phaseDrain   = "drain"
	phaseDB      = "db"
	phaseBatched = "batched"
	phaseSingle  = "single"
	phaseNaive   = "naive"
	phaseLatency = "latency"
)

// allPhases returns the phase names in the order of -h.
func allPhases() []string {
	return []string{phaseDrain, phaseDB, phaseBatched, phaseSingle, phaseNaive, phaseLatency}
}

// options are the command-line settings of one run.
type options struct {
	mysqlDSN string // server DSN, no database selected
	amqpURL  string

	phases []string

	drainMessages   int
	dbRows          int
	batchedMeasures int
	perMessage      int
	singleMessages  int
	naiveMessages   int
	sensors         int

	drainPrefetch   int
	drainAckEvery   int
	rounds          int
	latencyDuration time.Duration
	latencyFraction float64
	latencyRate     float64 // rows/s; 0: latencyFraction × the batched rate

	ingestDir string
	ingestBin string
	env       envFlag
	inProcess bool
	cpuProf   string
	timeout   time.Duration
	poll      time.Duration
	json      bool
}

// has reports whether the phase was selected.
func (o *options) has(phase string) bool { return slices.Contains(o.phases, phase) }

// envFlag collects repeated -env KEY=VALUE flags, in order.
type envFlag []string

// String implements flag.Value.
func (e *envFlag) String() string { return strings.Join(*e, " ") }

// Set implements flag.Value.
func (e *envFlag) Set(v string) error {
	k, _, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("want KEY=VALUE, got %q", v)
	}
	*e = append(*e, v)
	return nil
}

func parseOptions(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("ingestbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.mysqlDSN, "mysql-dsn", testenv.MySQLServerDSN(), "MySQL/MariaDB server DSN, no database selected (a fresh mymonit_bench_* database is created and dropped)")
	fs.StringVar(&o.amqpURL, "amqp-url", testenv.AMQPURL(), "RabbitMQ URL (random queue and exchange names are used and deleted)")
	phases := fs.String("phases", strings.Join(allPhases(), ","), "comma-separated phases to run: "+strings.Join(allPhases(), ","))
	fs.IntVar(&o.drainMessages, "drain-n", 60000, "single-measure messages drained by the raw consumer (broker baseline)")
	fs.IntVar(&o.dbRows, "db-n", 200000, "rows inserted by storage.Store.UpsertMeasures (database baseline)")
	fs.IntVar(&o.batchedMeasures, "batched-n", 1000000, "measures ingested in batched messages")
	fs.IntVar(&o.perMessage, "per-message", 100, "measures per batched message")
	fs.IntVar(&o.singleMessages, "single-n", 60000, "single-measure messages ingested")
	fs.IntVar(&o.naiveMessages, "naive-n", 3000, "single-measure messages drained by the naive consumer")
	fs.IntVar(&o.sensors, "sensors", 100, "sensors (series) the measures are spread over; at least -per-message")
	fs.IntVar(&o.drainPrefetch, "drain-prefetch", 2000, "prefetch of the raw drain consumer")
	fs.IntVar(&o.drainAckEvery, "drain-ack-every", 100, "deliveries the raw drain consumer acks at once (ack multiple); at most -drain-prefetch")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds of the baseline/ingest pairs (drain+single, db+batched); medians are reported")
	fs.DurationVar(&o.latencyDuration, "latency-duration", 5*time.Second, "how long the latency phase publishes")
	fs.Float64Var(&o.latencyFraction, "latency-fraction", 0.5, "latency phase publish rate, as a fraction of the batched ingest rate")
	fs.Float64Var(&o.latencyRate, "latency-rate", 0, "latency phase publish rate in measures/s (overrides -latency-fraction; needed when the batched phase is skipped)")
	fs.StringVar(&o.ingestDir, "ingest-dir", "", "directory of the ingest module to build (default: found from the working directory or this source)")
	fs.StringVar(&o.ingestBin, "ingest-bin", "", "use this ingest binary instead of building one")
	fs.Var(&o.env, "env", "KEY=VALUE added to the ingest process's environment (repeatable), e.g. MYMONIT_INGEST_PREFETCH=4000 or GOGC=50; MYMONIT_INGEST_* also apply to the in-process phases")
	fs.BoolVar(&o.inProcess, "inprocess", false, "run the batched and single phases in this process rather than the ingest binary (for -cpuprofile; no RSS figure)")
	fs.StringVar(&o.cpuProf, "cpuprofile", "", "write CPU profiles of the in-process ingest phases (latency, and batched/single with -inprocess; the last round) to this file name with the phase before the extension")
	fs.DurationVar(&o.poll, "poll", 20*time.Millisecond, "how often the ingest binary's committed counter is read from /metrics while timing")
	fs.DurationVar(&o.timeout, "phase-timeout", 2*time.Minute, "longest a timed phase may take before the run fails")
	fs.BoolVar(&o.json, "json", false, "print the figures as JSON instead of a table")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for p := range strings.SplitSeq(*phases, ",") {
		p = strings.TrimSpace(p)
		switch {
		case p == "":
		case slices.Contains(allPhases(), p):
			if !slices.Contains(o.phases, p) {
				o.phases = append(o.phases, p)
			}
		default:
			return nil, fmt.Errorf("-phases: unknown phase %q (want some of %s)", p, strings.Join(allPhases(), ","))
		}
	}
	return o, o.validate()
}

func (o *options) validate() error {
	// errors.Join drops the nils of the minimums that hold.
	errs := []error{
		benchkit.AtLeast("-drain-n", o.drainMessages, 1000),
		benchkit.AtLeast("-db-n", o.dbRows, 1000),
		benchkit.AtLeast("-batched-n", o.batchedMeasures, 1000),
		benchkit.AtLeast("-single-n", o.singleMessages, 1000),
		benchkit.AtLeast("-naive-n", o.naiveMessages, 100),
		benchkit.AtLeast("-per-message", o.perMessage, 1),
		benchkit.AtLeast("-sensors", o.sensors, 1),
		benchkit.AtLeast("-drain-prefetch", o.drainPrefetch, 1),
		benchkit.AtLeast("-drain-ack-every", o.drainAckEvery, 1),
		benchkit.AtLeast("-rounds", o.rounds, 1),
	}
	if o.drainAckEvery > o.drainPrefetch {
		errs = append(errs, fmt.Errorf("-drain-ack-every (%d) must be at most -drain-prefetch (%d): the consumer would wait for deliveries the broker holds back until the ack", o.drainAckEvery, o.drainPrefetch))
	}
	if o.perMessage > measure.MaxBatch {
		errs = append(errs, fmt.Errorf("-per-message is %d, at most %d", o.perMessage, measure.MaxBatch))
	}
	if o.sensors < o.perMessage {
		errs = append(errs, fmt.Errorf("-sensors (%d) must be at least -per-message (%d), so the measures of one message have distinct series", o.sensors, o.perMessage))
	}
	if o.latencyDuration < time.Second {
		errs = append(errs, errors.New("-latency-duration must be at least 1s"))
	}
	if o.latencyFraction <= 0 || o.latencyFraction > 1 {
		errs = append(errs, errors.New("-latency-fraction must be in (0, 1]"))
	}
	if o.has(phaseLatency) && !o.has(phaseBatched) && o.latencyRate <= 0 {
		errs = append(errs, errors.New("the latency phase needs the batched phase or -latency-rate"))
	}
	if o.poll < time.Millisecond {
		errs = append(errs, errors.New("-poll must be at least 1ms"))
	}
	if o.timeout <= 0 {
		errs = append(errs, errors.New("-phase-timeout must be positive"))
	}
	return errors.Join(errs...)
}
