package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/mymonit/mymonit/pkg/benchkit"
	"github.com/mymonit/mymonit/pkg/queue"
)

// runBench sets up the run's database, builds the ingest binary when a phase
// needs it, runs the selected phases in order and evaluates the targets.
// Progress goes to progress; everything it created is removed before it
// returns, whatever happened.
func runBench(ctx context.Context, opts *options, progress io.Writer) (_ *results, err error) {
	say := func(format string, args ...any) { fmt.Fprintf(progress, "ingestbench: "+format+"\n", args...) }
	loadStart := benchkit.LoadAvg()
	log := warnLogger(progress)

	bin, removeBin, err := prepareBinary(ctx, opts, say)
	defer func() { err = errors.Join(err, removeBin()) }()
	if err != nil {
		return nil, err
	}

	w, cleanup, err := newWorld(ctx, opts, log)
	defer func() {
		if cerr := cleanup(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("cleanup: %w", cerr))
		}
	}()
	if err != nil {
		return nil, err
	}
	say("database %s ready", w.dbName)
	set, err := w.settings(queue.Config{URL: opts.amqpURL, Exchange: "x", Queue: "q", DeadExchange: "dx", DeadQueue: "dq", QueueType: queue.QueueTypeQuorum})
	if err != nil {
		return nil, err
	}
	res := newResults(opts, set.Ingest)
	res.Host.LoadStart = loadStart

	// Each baseline runs right before the ingest phase compared with it, and
	// the pairs repeat for -rounds: the medians resist other work on the
	// machine better than one sample does.
	for round := 1; round <= opts.rounds; round++ {
		if opts.rounds > 1 {
			say("round %d of %d", round, opts.rounds)
		}
		if opts.has(phaseDrain) {
			say("drain: prefilling %d single-measure messages, then draining (prefetch %d, ack every %d)", opts.drainMessages, opts.drainPrefetch, opts.drainAckEvery)
			r, err := w.benchDrain(ctx)
			if err != nil {
				return nil, fmt.Errorf("drain: %w", err)
			}
			res.Drain = res.Drain.Add(r.rate, r.busy)
			res.drainCPU = append(res.drainCPU, r.cost)
			say("drain: %s msg/s%s%s", benchkit.Thousands(r.rate), busyNote(r.busy, r.rate), costNote(r.cost, "message"))
		}
		if err := w.ingestPhase(ctx, phaseSingle, bin, &res.Single, say); err != nil {
			return nil, err
		}
		if opts.has(phaseDB) {
			say("db: upserting %d rows, %d per transaction", opts.dbRows, dbChunk)
			r, err := w.benchDB(ctx)
			if err != nil {
				return nil, err
			}
			res.DB = res.DB.Add(r.rate, r.busy)
			say("db: %s rows/s%s", benchkit.Thousands(r.rate), busyNote(r.busy, r.rate))
		}
		if err := w.ingestPhase(ctx, phaseBatched, bin, &res.Batched, say); err != nil {
			return nil, err
		}
	}
	if opts.has(phaseNaive) {
		say("naive: prefilling %d single-measure messages, then prefetch 1, autocommit INSERT, ack each", opts.naiveMessages)
		r, err := w.benchNaive(ctx)
		if err != nil {
			return nil, fmt.Errorf("naive: %w", err)
		}
		res.Naive = res.Naive.Add(r.rate, r.busy)
		say("naive: %s msg/s%s", benchkit.Thousands(r.rate), busyNote(r.busy, r.rate))
	}
	if opts.has(phaseLatency) {
		rate := opts.latencyRate
		if rate <= 0 {
			rate = opts.latencyFraction * res.Batched.Rate.Median
		}
		say("latency: publishing %d-measure messages at %s measures/s for %v (in-process ingest)", opts.perMessage, benchkit.Thousands(rate), opts.latencyDuration)
		f, err := w.benchLatency(ctx, rate)
		if err != nil {
			return nil, fmt.Errorf("latency: %w", err)
		}
		res.Latency = newLatencyResult(f, opts.latencyRate <= 0, opts.latencyFraction)
		say("latency: p50 %s, p99 %s, max %s over %d measures", ms(f.p50), ms(f.p99), ms(f.max), f.samples)
	}
	res.evaluate()
	res.Host.LoadEnd = benchkit.LoadAvg()
	return res, nil
}

// prepareBinary returns the ingest binary the phases run: -ingest-bin, or
// one built into a temporary directory that the returned function removes;
// "" when no phase needs one.
func prepareBinary(ctx context.Context, opts *options, say func(string, ...any)) (string, func() error, error) {
	noop := func() error { return nil }
	needed := !opts.inProcess && (opts.has(phaseBatched) || opts.has(phaseSingle))
	if !needed || opts.ingestBin != "" {
		return opts.ingestBin, noop, nil
	}
	dir, err := findIngestModule(ctx, opts.ingestDir)
	if err != nil {
		return "", noop, err
	}
	tmp, err := os.MkdirTemp("", "ingestbench-")
	if err != nil {
		return "", noop, fmt.Errorf("temporary directory: %w", err)
	}
	remove := func() error { return os.RemoveAll(tmp) }
	say("building the ingest binary from %s", dir)
	bin, err := buildIngest(ctx, dir, tmp)
	return bin, remove, err
}

// ingestPhase runs one round of the batched or single ingest phase, when
// selected, and adds its figures to *dst.
func (w *world) ingestPhase(ctx context.Context, phase, bin string, dst **ingestResult, say func(string, ...any)) error {
	if !w.opts.has(phase) {
		return nil
	}
	n, perMsg, unit := w.opts.batchedMeasures, w.opts.perMessage, "measures"
	if phase == phaseSingle {
		n, perMsg, unit = w.opts.singleMessages, 1, "messages"
	}
	where := "the ingest binary"
	if w.opts.inProcess {
		where = "in-process ingest"
	}
	say("%s: prefilling %d %s (%d measures/message), then draining with %s", phase, n, unit, perMsg, where)
	f, err := w.benchIngest(ctx, phase, bin, n, perMsg)
	if err != nil {
		return err
	}
	if *dst == nil {
		*dst = &ingestResult{Measures: n, MeasuresPerMsg: perMsg}
	}
	(*dst).add(f)
	say("%s: %s rows/s%s", phase, benchkit.Thousands(f.rowsPerSec), f.note())
	return nil
}
