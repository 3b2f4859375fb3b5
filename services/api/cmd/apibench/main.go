// Command apibench is the `make bench` harness of the api service. On a
// database of -measures measures (10,000,000) over -sensors sensors (1,000)
// it measures, in one run on one machine, the API against the database
// alone and prints each figure as a ratio to its baseline, with PASS or
// MISS against the goals:
//
//	10k-point range query, API JSON     p50 and p99 ≤ 1.5 × the same SQL run directly
//	CSV export through the API          ≥ 300,000 rows/s, heap growth ≤ 32 MiB (constant memory)
//	cached-token small read, 32 clients ≥ 0.90 × the same read with authentication bypassed
//
// Usage, from services/api (`make bench` does this):
//
//	go run ./cmd/apibench [flags]    # -h lists them; -json for machines
//	go run ./cmd/apibench -keep      # keep the loaded database for the next run
//
// # Method
//
// Setup (not timed against any goal): a database is created and migrated,
// an experiment "apibench" with -sensors series is registered, and the
// measures are loaded with LOAD DATA LOCAL INFILE through the driver's
// reader handler (-loader insert: multi-row INSERTs of 5000 rows), whole
// series in primary-key order, one statement (one transaction) of about
// 200,000 rows at a time, on one connection (-load-conns). On 2 CPUs
// LOAD DATA on one connection loaded ~390k rows/s, multi-row INSERTs
// ~130-280k; two connections were slower for both (~170k), since each
// inserts into the middle of the other's key range and splits pages,
// where one appends at the end of the clustered index. Sensor i
// holds -measures/-sensors points, one per second from 2026-01-02T00:00:00Z,
// every sensor on the same times. The Firebase Auth Emulator is found or
// started (authtest.Run), a scientist account is signed up there, created
// as a MyMONIT user and made a member of the experiment.
//
// The API runs in this process: httpapi.New with the real auth.Verifier in
// test mode against the emulator, the production logger (ECS JSON with
// redaction, written to io.Discard) and /healthz from pkg/health as
// fallback, served by httpapi's own net/http server on 127.0.0.1:0. A
// second instance differs only by a verifier that accepts the scientist
// without looking at the token (authentication bypassed). Clients use HTTP
// keep-alive over loopback. In-process rather than the api binary, so that
// -cpuprofile sees the handler, the store and the driver, the baseline of
// the concurrent read can swap the verifier, and the heap of the server can
// be read during the export; the server code and its net/http server are
// those of the binary.
//
// Each round runs the three phases below, and each phase rotates the order
// of its variants from call to call, so that other work on the machine and
// warm caches weigh on all of them alike. Latency percentiles are over the
// samples of all rounds, rates the median of the rounds.
//
//   - range: -queries times per round, a -points (10,000) point window of
//     one of 8 sensors (the middle of its points), limit=-points: the API
//     (GET /v1/experiments/apibench/measures?sensor=&from=&to=&limit=, JSON,
//     body read to the end), storage.Store.EachMeasure (what the API reads
//     the page with, without HTTP and JSON), and the rows of the series
//     read directly by its id (the statement EachMeasure runs, less the
//     lookup of the series by name), through
//     database/sql with the same driver settings, scanned into values: the
//     goal's baseline runs it as database/sql runs a statement with
//     arguments by default (prepare, execute, close), and the report adds
//     it through a statement prepared beforehand, as the store runs its
//     reads.
//     The first call of each variant per round checks the row count.
//   - export: -export-rows rows (2,000,000: a time window over every
//     sensor) as CSV through the API (Accept: text/csv), lines counted by
//     the client; storage.Store.StreamMeasures alone; and the statements of
//     the stream (one per group of 256 series) sent directly, unchunked.
//     During the API export the Go heap (runtime/metrics heap objects) and
//     the process RSS are sampled every 10 ms; the growth is the peak
//     minus the level measured after a GC just before.
//   - concurrent: -clients (32) clients for -duration each, sending
//     GET /healthz (the bare server), then the small read
//     (measures?sensor=&limit=10) on the bypassed instance, then on the
//     real one with the scientist's token, which the verifier has cached.
//
// # Isolation
//
// It uses the server named by MYMONIT_TEST_MYSQL_DSN (default root on
// 127.0.0.1:3306) and creates a fresh database mymonit_apibench_<random>,
// dropped at the end, also on error or interrupt. With -keep it uses the
// database -keep-db (mymonit_apibench) instead and leaves it in place: a
// database with the expected rows is reused without loading, any other
// content is dropped and loaded again. The emulator named by
// FIREBASE_AUTH_EMULATOR_HOST, or one answering on 127.0.0.1:9099, is
// used; otherwise one is started on a free port and stopped at the end.
//
// A MISS does not fail the run (benchmarks report, they do not gate): the
// exit status is non-zero only when the benchmark could not run.
package main

import (
	"context"
	"io"

	"github.com/mymonit/mymonit/pkg/benchkit"
)

func main() { benchkit.Main("apibench", run) }

// run parses the flags, runs the benchmark and prints the report.
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
