package main

import (
	"fmt"
	"io"
	"math"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mymonit/mymonit/pkg/benchkit"
	"github.com/mymonit/mymonit/services/ingest/internal/settings"
)

// Targets of the ingest service (see the package documentation).
const (
	targetBatchedVsDB    = 0.90
	targetSingleVsDrain  = 0.90
	targetBatchedVsNaive = 60
	targetP99            = 100 * time.Millisecond
	targetPeakRSSMB      = 64
)

// results are the figures of one run, as printed by -json. Rates measured
// over several rounds are reported as their median.
type results struct {
	Host     benchkit.Host  `json:"host"`
	Settings ingestSettings `json:"ingest_settings"`
	// Rounds of the baseline/ingest pairs; naive and latency run once.
	Rounds int `json:"rounds"`

	Drain   *benchkit.RateStat `json:"drain_msgs_per_sec,omitempty"`
	DB      *benchkit.RateStat `json:"db_rows_per_sec,omitempty"`
	Batched *ingestResult      `json:"batched,omitempty"`
	Single  *ingestResult      `json:"single,omitempty"`
	Naive   *benchkit.RateStat `json:"naive_msgs_per_sec,omitempty"`
	Latency *latencyResult     `json:"latency,omitempty"`
	// CPU compares the CPU cost per message of the drain baseline and of
	// single-measure ingest, when both ran with the broker on this machine.
	CPU *cpuBudget `json:"cpu_budget,omitempty"`

	Checks benchkit.Checks `json:"checks"`

	drainPrefetch int
	drainCPU      []cpuCost // per round
}

// ingestSettings are the ingest settings in force and the -env overrides.
type ingestSettings struct {
	BatchSize     int      `json:"batch_size"`
	FlushInterval string   `json:"flush_interval"`
	Prefetch      int      `json:"prefetch"`
	WindowMiB     int      `json:"window_mib"`
	InProcess     bool     `json:"in_process"`
	Env           []string `json:"env,omitempty"`
}

// ingestResult is a full-rate ingest phase over its rounds.
type ingestResult struct {
	Measures       int               `json:"measures"`
	MeasuresPerMsg int               `json:"measures_per_message"`
	Rate           benchkit.RateStat `json:"rows_per_sec"`
	// PeakRSSMB is the largest peak RSS (VmHWM) of the rounds.
	PeakRSSMB      *float64 `json:"peak_rss_mb,omitempty"`
	PeakRSSUnknown string   `json:"peak_rss_unknown,omitempty"`
	// CPUSecondsPerRound is the CPU time of the whole ingest process in
	// each round (start, drain, up to the last commit), all threads.
	CPUSecondsPerRound []float64 `json:"cpu_seconds_per_round,omitempty"`

	costs []cpuCost // per round
}

// add records the figures of one round.
func (r *ingestResult) add(f ingestFigures) {
	r.Rate = *r.Rate.Add(f.rowsPerSec, f.busy)
	switch {
	case f.peakRSS > 0:
		mb := float64(f.peakRSS) / (1 << 20)
		if r.PeakRSSMB == nil || mb > *r.PeakRSSMB {
			r.PeakRSSMB = &mb
		}
	case f.rssErr != nil:
		r.PeakRSSUnknown = f.rssErr.Error()
	default:
		r.PeakRSSUnknown = "in-process run"
	}
	if f.cpu > 0 {
		r.CPUSecondsPerRound = append(r.CPUSecondsPerRound, f.cpu.Seconds())
	}
	r.costs = append(r.costs, f.cost)
}

// busyNote describes the machine's CPU load while a rate was timed for
// progress lines: the busy fraction and, with the rate, the machine's CPU
// time per item (broker, database and consumer together, plus other work).
func busyNote(busy, rate float64) string {
	if busy < 0 || rate <= 0 {
		return ""
	}
	perItem := busy * float64(runtime.NumCPU()) / rate
	return fmt.Sprintf(" (machine CPU %.0f%% busy, %.1f µs per item)", 100*busy, 1e6*perItem)
}

// costNote describes a CPU cost per item for progress lines.
func costNote(c cpuCost, item string) string {
	if len(c) == 0 {
		return ""
	}
	return fmt.Sprintf(", CPU per %s: %s", item, c)
}

// note describes the side figures of one round for progress lines.
func (f ingestFigures) note() string {
	s := busyNote(f.busy, f.rowsPerSec)
	if f.peakRSS > 0 {
		s += fmt.Sprintf(", peak RSS %.0f MB", float64(f.peakRSS)/(1<<20))
	}
	s += costNote(f.cost, "measure")
	if f.upsertCalls > 0 && f.commitSpan > 0 {
		s += fmt.Sprintf(", writers in UpsertMeasures %.0f%% of the time (summed over the writers), %.2f ms per call",
			100*f.upsertTime.Seconds()/f.commitSpan.Seconds(), msf(f.upsertTime)/float64(f.upsertCalls))
	}
	return s
}

// latencyResult is the latency phase.
type latencyResult struct {
	TargetMeasuresPerSec   float64 `json:"target_measures_per_sec"`
	AchievedMeasuresPerSec float64 `json:"achieved_measures_per_sec"`
	FractionOfBatched      float64 `json:"fraction_of_batched_rate,omitempty"`
	Samples                int     `json:"samples"`
	P50Ms                  float64 `json:"p50_ms"`
	P99Ms                  float64 `json:"p99_ms"`
	MaxMs                  float64 `json:"max_ms"`
}

func newLatencyResult(f latencyFigures, fromBatched bool, fraction float64) *latencyResult {
	r := &latencyResult{
		TargetMeasuresPerSec:   f.targetRate,
		AchievedMeasuresPerSec: f.achievedRate,
		Samples:                f.samples,
		P50Ms:                  msf(f.p50),
		P99Ms:                  msf(f.p99),
		MaxMs:                  msf(f.max),
	}
	if fromBatched {
		r.FractionOfBatched = fraction
	}
	return r
}

func newResults(opts *options, set settings.Ingest) *results {
	return &results{
		Host: benchkit.NewHost(),
		Settings: ingestSettings{
			BatchSize:     set.BatchSize,
			FlushInterval: set.FlushInterval.String(),
			Prefetch:      set.Prefetch,
			WindowMiB:     set.WindowMiB,
			InProcess:     opts.inProcess,
			Env:           opts.env,
		},
		Rounds:        opts.rounds,
		drainPrefetch: opts.drainPrefetch,
	}
}

// Check names.
const (
	checkBatchedVsDB    = "batched_vs_db"
	checkSingleVsDrain  = "single_vs_drain"
	checkBatchedVsNaive = "batched_vs_naive"
	checkP99            = "latency_p99_ms"
	checkPeakRSS        = "peak_rss_mb"
)

// evaluate fills Checks from the figures present.
func (r *results) evaluate() {
	r.Checks = nil
	if r.Batched != nil && r.DB != nil {
		v := benchkit.PairedRatio(&r.Batched.Rate, r.DB)
		r.Checks.Add(checkBatchedVsDB, v, fmt.Sprintf(">= %.2f", targetBatchedVsDB), v >= targetBatchedVsDB)
	}
	if r.Single != nil && r.Drain != nil {
		v := benchkit.PairedRatio(&r.Single.Rate, r.Drain)
		r.Checks.Add(checkSingleVsDrain, v, fmt.Sprintf(">= %.2f", targetSingleVsDrain), v >= targetSingleVsDrain)
		r.CPU = newCPUBudget(r.drainCPU, r.Single.costs)
	}
	if r.Batched != nil && r.Naive != nil {
		v := r.Batched.Rate.Median / r.Naive.Median
		r.Checks.Add(checkBatchedVsNaive, v, fmt.Sprintf(">= %d", targetBatchedVsNaive), v >= targetBatchedVsNaive)
	}
	if r.Latency != nil {
		v := r.Latency.P99Ms
		r.Checks.Add(checkP99, v, fmt.Sprintf("<= %.0f", msf(targetP99)), v <= msf(targetP99))
	}
	if rss, ok := r.peakRSS(); ok {
		r.Checks.Add(checkPeakRSS, rss, fmt.Sprintf("<= %d", targetPeakRSSMB), rss <= targetPeakRSSMB)
	}
}

// peakRSS is the largest peak RSS of the ingest phases that measured one.
func (r *results) peakRSS() (float64, bool) {
	var v float64
	ok := false
	for _, ir := range []*ingestResult{r.Batched, r.Single} {
		if ir != nil && ir.PeakRSSMB != nil {
			v, ok = math.Max(v, *ir.PeakRSSMB), true
		}
	}
	return v, ok
}

// writeTable prints the human report.
func writeTable(w io.Writer, r *results) {
	h := r.Host
	fmt.Fprintf(w, "MyMONIT ingest benchmark (one run, this machine: %d CPUs, %s/%s, %s; load average %.1f at start, %.1f at end)\n",
		h.CPUs, h.GOOS, h.GOARCH, h.GoVersion, h.LoadStart, h.LoadEnd)
	if r.Rounds > 1 {
		fmt.Fprintf(w, "rates: median of %d rounds [min–max]; ratios to baselines: median of per-round ratios; naive and latency: one round\n", r.Rounds)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "path\trate\tratio / target\t")
	na := "n/a (baseline not run)"
	if r.Drain != nil {
		fmt.Fprintf(tw, "broker drain alone (prefetch %d)\t%s msg/s%s\tbaseline\t\n", r.drainPrefetch, benchkit.Thousands(r.Drain.Median), r.Drain.Spread())
	}
	if r.DB != nil {
		fmt.Fprintf(tw, "DB insert alone (%d rows/tx)\t%s rows/s%s\tbaseline\t\n", dbChunk, benchkit.Thousands(r.DB.Median), r.DB.Spread())
	}
	if b := r.Batched; b != nil {
		ratio := na
		if c, ok := r.Checks.Get(checkBatchedVsDB); ok {
			ratio = fmt.Sprintf("%.2f × DB alone (target ≥ %.2f)", c.Value, targetBatchedVsDB)
		}
		fmt.Fprintf(tw, "ingest, %d measures/message\t%s rows/s%s\t%s\t%s\n", b.MeasuresPerMsg, benchkit.Thousands(b.Rate.Median), b.Rate.Spread(), ratio, r.Checks.Verdict(checkBatchedVsDB))
	}
	if s := r.Single; s != nil {
		ratio := na
		if c, ok := r.Checks.Get(checkSingleVsDrain); ok {
			ratio = fmt.Sprintf("%.2f × drain alone (target ≥ %.2f)", c.Value, targetSingleVsDrain)
		}
		fmt.Fprintf(tw, "ingest, 1 measure/message\t%s rows/s%s\t%s\t%s\n", benchkit.Thousands(s.Rate.Median), s.Rate.Spread(), ratio, r.Checks.Verdict(checkSingleVsDrain))
	}
	if r.Naive != nil {
		ratio := "n/a (batched ingest not run)"
		if c, ok := r.Checks.Get(checkBatchedVsNaive); ok {
			ratio = fmt.Sprintf("batched ingest = %.0f × naive (target ≥ %d)", c.Value, targetBatchedVsNaive)
		}
		fmt.Fprintf(tw, "naive (prefetch 1, autocommit, ack each)\t%s msg/s\t%s\t%s\n", benchkit.Thousands(r.Naive.Median), ratio, r.Checks.Verdict(checkBatchedVsNaive))
	}
	if l := r.Latency; l != nil {
		at := benchkit.Thousands(l.TargetMeasuresPerSec) + " measures/s"
		if l.FractionOfBatched > 0 {
			at = fmt.Sprintf("%.0f%% of max rate", 100*l.FractionOfBatched)
		}
		fmt.Fprintf(tw, "publish→commit at %s\tp50 %.0f ms, p99 %.0f ms, max %.0f ms\t(target p99 ≤ %.0f ms)\t%s\n",
			at, l.P50Ms, l.P99Ms, l.MaxMs, msf(targetP99), r.Checks.Verdict(checkP99))
	}
	if rss, ok := r.peakRSS(); ok {
		var parts []string
		for _, ir := range []*ingestResult{r.Batched, r.Single} {
			if ir != nil && ir.PeakRSSMB != nil {
				parts = append(parts, fmt.Sprintf("%.0f MB (%d/msg)", *ir.PeakRSSMB, ir.MeasuresPerMsg))
			}
		}
		fmt.Fprintf(tw, "ingest peak RSS at full rate\t%s\t(target max ≤ %d MB, max %.0f MB)\t%s\n",
			strings.Join(parts, ", "), targetPeakRSSMB, rss, r.Checks.Verdict(checkPeakRSS))
	}
	tw.Flush()
	s := r.Settings
	where := "ingest binary (subprocess)"
	if s.InProcess {
		where = "in-process pipeline"
	}
	fmt.Fprintf(w, "ingest: %s; batch %d measures, flush %s, prefetch %d at start, window %d MiB", where, s.BatchSize, s.FlushInterval, s.Prefetch, s.WindowMiB)
	if len(s.Env) > 0 {
		fmt.Fprintf(w, "; env %s", strings.Join(s.Env, " "))
	}
	fmt.Fprintln(w)
	if c := r.CPU; c != nil {
		fmt.Fprintf(w, "CPU per message (median of rounds): drain alone %s; ingest, 1 measure/message %s\n", c.Drain, c.Single)
		fmt.Fprintf(w, "  with the machine's CPUs as busy in both, these costs allow ingest at most %.2f × drain alone\n", c.Ceiling)
	}
	if l := r.Latency; l != nil {
		fmt.Fprintf(w, "latency phase: in-process ingest, %s measures/s asked, %s published, %d samples\n",
			benchkit.Thousands(l.TargetMeasuresPerSec), benchkit.Thousands(l.AchievedMeasuresPerSec), l.Samples)
	}
}

// msf is d in milliseconds.
func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// ms formats d in milliseconds for progress lines.
func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", msf(d)) }
