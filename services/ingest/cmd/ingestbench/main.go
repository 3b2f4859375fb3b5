// Command ingestbench is the `make bench` harness of the ingest service. In
// one run on one machine it measures the baselines (the broker draining a
// quorum queue alone, the database inserting alone, and a naive one-by-one
// consumer) and the real ingest binary at full rate, and prints each ingest
// figure as a ratio to its baseline with PASS or MISS against the targets:
//
//	ingest, 100 measures/message   ≥ 0.90 × DB insert alone (rows/s, 1000 rows/tx)
//	ingest, 1 measure/message      ≥ 0.90 × broker drain alone (msg/s, prefetch 2000)
//	ingest, 100 measures/message   ≥ 60 × naive (prefetch 1, autocommit, ack each)
//	publish→commit p99 at 50%      ≤ 100 ms (in-process ingest, OnCommit hook)
//	ingest peak RSS at full rate   ≤ 64 MB (VmHWM of the ingest process)
//
// Usage, from services/ingest (`make bench` does this):
//
//	go run ./cmd/ingestbench [flags]    # -h lists them; -json for machines
//
// # Method
//
// Every timed phase starts from a fresh quorum queue prefilled with
// publisher confirms (not timed) and an empty measures table:
//
//   - drain: a raw amqp091 consumer, prefetch 2000, acks multiple every 100
//     (-drain-prefetch, -drain-ack-every).
//   - db: storage.Store.UpsertMeasures, 1000 fresh rows per call (one
//     transaction), calls one after the other as the ingest writer makes them.
//   - batched, single: the ingest binary, built once from this module, is
//     started as `ingest serve` with the MYMONIT_* variables of the run; its
//     mymonit_ingest_measures_committed_total counter is read from /metrics
//     every -poll. Its peak RSS (VmHWM) and CPU time are read from /proc
//     before it is stopped with SIGTERM.
//   - naive: prefetch 1, decode, one-row autocommit INSERT (a plain
//     database/sql Exec), ack each message.
//   - latency: ingest runs in this process (pipeline.New with an OnCommit
//     hook, queue.Consumer.Run, a storage store and a dead-letter
//     publisher); 100-measure messages are published at -latency-fraction
//     of the batched rate for -latency-duration, every measure stamped with
//     its message's publish instant, and OnCommit records now − time.
//
// The rates of the queue phases (drain, batched, single, naive) are timed
// over their steady part, from a fifth of the messages (or measures) acked
// or committed to four fifths: the queue still holds messages at both ends,
// so the consumer's prefetch window is full and every item counted was
// delivered and handled within the span. Timed from the first commit,
// ingest would be credited with the window of deliveries made before it;
// timed to the last, charged with draining the window after the queue ran
// dry. Over the same span the CPU time of the broker and the database (when
// they run on this machine, found by process name) and of the client is
// read from /proc: the report gives the cost per message of the drain and
// of single-measure ingest, and the ratio of the two, which is the
// single/drain ratio the CPUs allow when both keep them equally busy.
//
// The machine is usually shared, so each baseline runs right before the
// ingest phase it is compared with, the pairs repeat for -rounds, rates are
// medians and ratios the median of the per-round ratios. Progress lines on
// stderr give, per phase, how busy the machine's CPUs were (near 100%, the
// figure is CPU-bound, possibly by other work) and the CPU time per item of
// each party. -inprocess runs the batched and single phases in this
// process, and -cpuprofile then profiles them (one file per phase).
//
// # Isolation
//
// It uses the servers named by MYMONIT_TEST_MYSQL_DSN and
// MYMONIT_TEST_AMQP_URL (defaults: root on 127.0.0.1:3306 and guest on
// 127.0.0.1:5672) without disturbing other users: every phase declares its
// own randomly named quorum queue and exchanges, and the run creates a fresh
// database mymonit_bench_<random>; all of them are deleted at the end, also
// on error or interrupt. -env KEY=VALUE (repeatable) adds or overrides
// variables of the ingest process, for example -env
// MYMONIT_INGEST_PREFETCH=4000 -env GOMEMLIMIT=40MiB; the in-process phases
// read the same MYMONIT_INGEST_* settings. The MYMONIT_* variables of this
// process's own environment are not passed on.
//
// A MISS does not fail the run (benchmarks report, they do not gate): the
// exit status is non-zero only when the benchmark could not run.
package main

import (
	"context"
	"io"

	"github.com/mymonit/mymonit/pkg/benchkit"
)

func main() { benchkit.Main("ingestbench", run) }

// run parses the flags, runs the selected phases and prints the report.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opts, err := parseOptions(args, stderr)
	if err != nil {
		return err
	}
	res, err := runBench(ctx, opts, stderr)
	if err != nil {
		return err
	}
	if opts.json {
		return benchkit.WriteJSON(stdout, res)
	}
	writeTable(stdout, res)
	return nil
}
