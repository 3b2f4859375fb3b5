// Command ingestbench is the `make bench` harness of the ingest service. In
// one run on one machine it measures the baselines (the broker draining a
// quorum queue alone, the database inserting alone, and a naive one-by-one
// consumer) and the real ingest binary at full rate, and prints each ingest
// figure as a ratio to its baseline with PASS or MISS against the targets:
//
//	ingest, 100 measures/message   ≥ 0.90 × DB insert alone (rows/s)
//	ingest, 1 measure/message      ≥ 0.90 × broker drain alone (msg/s)
//	ingest, 100 measures/message   ≥ 60 × naive (prefetch 1, autocommit, ack each)
//	publish→commit p99 at 50%      ≤ 100 ms (in-process ingest, OnCommit hook)
//	ingest peak RSS at full rate   ≤ 64 MB (VmHWM of the ingest process)
//
// Usage, from services/ingest (`make bench` does this):
//
//	go run ./cmd/ingestbench [flags]
//
// It uses the servers named by MYMONIT_TEST_MYSQL_DSN and
// MYMONIT_TEST_AMQP_URL (defaults: root on 127.0.0.1:3306 and guest on
// 127.0.0.1:5672) without disturbing other users: every phase declares its
// own randomly named quorum queue and exchanges, and the run creates a fresh
// database mymonit_bench_<random>; all of them are deleted at the end, also
// on error or interrupt. The ingest binary is built once into a temporary
// directory and started with the MYMONIT_* variables of the run; -env
// KEY=VALUE (repeatable) adds or overrides variables of the ingest process,
// for example -env MYMONIT_INGEST_PREFETCH=4000 -env GOMEMLIMIT=48MiB, and
// the in-process latency phase reads the same MYMONIT_INGEST_* settings.
//
// A MISS does not fail the run (benchmarks report, they do not gate): the
// exit status is non-zero only when the benchmark could not run.
package main

import (
	"context"
	"errors"
	"flag"
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
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "ingestbench:", err)
		}
		os.Exit(1)
	}
}

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
		return writeJSON(stdout, res)
	}
	writeTable(stdout, res)
	return nil
}
