package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/mymonit/mymonit/pkg/benchkit"
)

// Goals of the api service (see the package documentation).
const (
	goalRangeRatio      = 1.5     // API latency / direct SQL latency, p50 and p99
	goalCSVRowsPerSec   = 300_000 // CSV export through the API
	goalCSVHeapGrowthMB = 32      // heap growth during the export, MiB
	goalCachedVsBypass  = 0.90    // cached-token read / bypassed read, req/s
)

// Check names.
const (
	checkRangeP50     = "range_p50_api_vs_direct"
	checkRangeP99     = "range_p99_api_vs_direct"
	checkCSVRate      = "csv_rows_per_sec"
	checkCSVHeap      = "csv_heap_growth_mib"
	checkCachedVsBypa = "cached_vs_bypassed"
)

// results are the figures of one run, as printed by -json.
type results struct {
	Host   benchkit.Host `json:"host"`
	Setup  setupInfo     `json:"setup"`
	Rounds int           `json:"rounds"`

	Range      *rangeResult      `json:"range,omitempty"`
	Export     *exportResult     `json:"export,omitempty"`
	Concurrent *concurrentResult `json:"concurrent,omitempty"`

	Checks benchkit.Checks `json:"checks"`
}

// setupInfo describes the data and the API under test.
type setupInfo struct {
	Measures int    `json:"measures"`
	Sensors  int    `json:"sensors"`
	Database string `json:"database"`
	// Reused is true when -keep found the data loaded; Load is then nil.
	Reused               bool         `json:"reused"`
	Load                 *loadFigures `json:"load,omitempty"`
	EmulatorHost         string       `json:"auth_emulator"`
	EmulatorStartSeconds float64      `json:"auth_emulator_start_seconds,omitempty"`
}

func newResults(opts *options) *results {
	return &results{
		Host:   benchkit.NewHost(),
		Setup:  setupInfo{Measures: opts.measures, Sensors: opts.sensors},
		Rounds: opts.rounds,
	}
}

// latencyStat is a latency distribution over the samples of every round.
type latencyStat struct {
	Samples int     `json:"samples"`
	P50Ms   float64 `json:"p50_ms"`
	P99Ms   float64 `json:"p99_ms"`
	MaxMs   float64 `json:"max_ms"`
	// RoundP50Ms is the median of each round.
	RoundP50Ms []float64 `json:"round_p50_ms"`

	all []time.Duration
}

// add adds the samples of one round.
func (l *latencyStat) add(d []time.Duration) {
	l.all = append(l.all, d...)
	l.Samples = len(l.all)
	l.P50Ms = msf(benchkit.Percentile(l.all, 50))
	l.P99Ms = msf(benchkit.Percentile(l.all, 99))
	l.MaxMs = msf(slices.Max(l.all))
	l.RoundP50Ms = append(l.RoundP50Ms, roundTo(msf(benchkit.Percentile(d, 50)), 3))
}

// rangeResult is the range phase.
type rangeResult struct {
	Points  int         `json:"points"`
	Sensors int         `json:"sensors_cycled"`
	API     latencyStat `json:"api_json"`
	Store   latencyStat `json:"store_each_measure"`
	Direct  latencyStat `json:"direct_sql"`
	// Prepared is the direct SQL through a statement prepared beforehand,
	// reported beside the goal's baseline.
	Prepared latencyStat `json:"direct_sql_prepared"`
	// MachineBusy is, per round, the busy fraction of the machine's CPUs.
	MachineBusy []float64 `json:"machine_cpu_busy"`
}

func (r *results) rangeResult(opts *options) *rangeResult {
	if r.Range == nil {
		r.Range = &rangeResult{Points: opts.rangePoints(), Sensors: rangeSensors}
	}
	return r.Range
}

// exportResult is the export phase.
type exportResult struct {
	Rows   int               `json:"rows"`
	Bytes  int64             `json:"csv_bytes"`
	API    benchkit.RateStat `json:"api_csv_rows_per_sec"`
	Store  benchkit.RateStat `json:"store_stream_rows_per_sec"`
	Direct benchkit.RateStat `json:"direct_sql_rows_per_sec"`
	Memory memResult         `json:"api_export_memory"`
}

// memResult is the memory of the process during the API exports: the
// largest growth of any round.
type memResult struct {
	HeapBaseMiB   float64 `json:"heap_in_use_before_mib"`
	HeapPeakMiB   float64 `json:"heap_in_use_peak_mib"`
	HeapGrowthMiB float64 `json:"heap_growth_mib"`
	RSSBaseMiB    float64 `json:"rss_before_mib"`
	RSSPeakMiB    float64 `json:"rss_peak_mib"`
	RSSGrowthMiB  float64 `json:"rss_growth_mib"`
}

func (r *results) exportResult(rows int) *exportResult {
	if r.Export == nil {
		r.Export = &exportResult{Rows: rows}
	}
	return r.Export
}

// addMemory records the memory of one API export, keeping the round with
// the largest heap growth.
func (e *exportResult) addMemory(f exportFigures) {
	e.Bytes = f.bytes
	growth := mb(f.heapPeak - f.heapBase)
	if e.Memory.HeapPeakMiB > 0 && growth <= e.Memory.HeapGrowthMiB {
		return
	}
	e.Memory = memResult{
		HeapBaseMiB: roundTo(mb(f.heapBase), 1), HeapPeakMiB: roundTo(mb(f.heapPeak), 1), HeapGrowthMiB: roundTo(growth, 1),
		RSSBaseMiB: roundTo(mb(f.rssBase), 1), RSSPeakMiB: roundTo(mb(f.rssPeak), 1), RSSGrowthMiB: roundTo(mb(f.rssPeak-f.rssBase), 1),
	}
}

// concurrentResult is the concurrent phase.
type concurrentResult struct {
	Clients         int                `json:"clients"`
	SecondsPerRound float64            `json:"seconds_per_variant_and_round"`
	Healthz         *benchkit.RateStat `json:"healthz_req_per_sec"`
	Bypassed        *benchkit.RateStat `json:"small_read_bypassed_req_per_sec"`
	Cached          *benchkit.RateStat `json:"small_read_cached_token_req_per_sec"`
}

func (r *results) concurrentResult(opts *options) *concurrentResult {
	if r.Concurrent == nil {
		r.Concurrent = &concurrentResult{Clients: opts.clients, SecondsPerRound: opts.duration.Seconds()}
	}
	return r.Concurrent
}

// evaluate fills Checks from the figures present.
func (r *results) evaluate() {
	r.Checks = nil
	add := func(name string, v float64, target string, pass bool) {
		r.Checks.Add(name, roundTo(v, 3), target, pass)
	}
	if g := r.Range; g != nil && g.Direct.Samples > 0 {
		p50 := g.API.P50Ms / g.Direct.P50Ms
		p99 := g.API.P99Ms / g.Direct.P99Ms
		add(checkRangeP50, p50, fmt.Sprintf("<= %.1f", goalRangeRatio), p50 <= goalRangeRatio)
		add(checkRangeP99, p99, fmt.Sprintf("<= %.1f", goalRangeRatio), p99 <= goalRangeRatio)
	}
	if e := r.Export; e != nil && len(e.API.Rounds) > 0 {
		add(checkCSVRate, e.API.Median, fmt.Sprintf(">= %d", goalCSVRowsPerSec), e.API.Median >= goalCSVRowsPerSec)
		add(checkCSVHeap, e.Memory.HeapGrowthMiB, fmt.Sprintf("<= %d", goalCSVHeapGrowthMB), e.Memory.HeapGrowthMiB <= goalCSVHeapGrowthMB)
	}
	if c := r.Concurrent; c != nil && c.Cached != nil && c.Bypassed != nil {
		v := benchkit.PairedRatio(c.Cached, c.Bypassed)
		add(checkCachedVsBypa, v, fmt.Sprintf(">= %.2f", goalCachedVsBypass), v >= goalCachedVsBypass)
	}
}

// writeTable prints the human report.
func writeTable(w io.Writer, r *results) {
	h := r.Host
	fmt.Fprintf(w, "MyMONIT API benchmark (one run, this machine: %d CPUs, %s/%s, %s; load average %.1f at start, %.1f at end)\n",
		h.CPUs, h.GOOS, h.GOARCH, h.GoVersion, h.LoadStart, h.LoadEnd)
	s := r.Setup
	data := fmt.Sprintf("%s measures of %d sensors in %s", benchkit.Thousands(float64(s.Measures)), s.Sensors, s.Database)
	if s.Load != nil {
		data += fmt.Sprintf(", loaded in %.0f s (%s rows/s, %s, %d connections)", s.Load.Seconds, benchkit.Thousands(s.Load.RowsPerS), s.Load.Loader, s.Load.Conns)
	} else if s.Reused {
		data += " (reused, -keep)"
	}
	fmt.Fprintln(w, data)
	fmt.Fprintf(w, "%d rounds; latencies over the samples of all rounds, rates the median of the rounds [min–max], ratios of rates the median of the per-round ratios\n", r.Rounds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "path\tfigure\tratio / goal\t")
	if g := r.Range; g != nil {
		lat := func(l latencyStat) string { return fmt.Sprintf("p50 %.1f ms, p99 %.1f ms", l.P50Ms, l.P99Ms) }
		fmt.Fprintf(tw, "%d-point range, direct SQL (%d samples)\t%s\tbaseline\t\n", g.Points, g.Direct.Samples, lat(g.Direct))
		fmt.Fprintf(tw, "%d-point range, direct SQL, prepared statement\t%s\tp50 %.2f ×, p99 %.2f × direct\t\n", g.Points, lat(g.Prepared),
			g.Prepared.P50Ms/g.Direct.P50Ms, g.Prepared.P99Ms/g.Direct.P99Ms)
		fmt.Fprintf(tw, "%d-point range, storage.EachMeasure\t%s\tp50 %.2f ×, p99 %.2f × direct\t\n", g.Points, lat(g.Store),
			g.Store.P50Ms/g.Direct.P50Ms, g.Store.P99Ms/g.Direct.P99Ms)
		p50, _ := r.Checks.Get(checkRangeP50)
		p99, _ := r.Checks.Get(checkRangeP99)
		verdict := r.Checks.Verdict(checkRangeP50)
		if r.Checks.Verdict(checkRangeP99) != verdict {
			verdict = "p50 " + verdict + ", p99 " + r.Checks.Verdict(checkRangeP99)
		}
		fmt.Fprintf(tw, "%d-point range, API JSON\t%s\tp50 %.2f ×, p99 %.2f × direct; goal ≤ %.1f\t%s\n", g.Points, lat(g.API),
			p50.Value, p99.Value, goalRangeRatio, verdict)
		fmt.Fprintf(tw, "\t\tp50 %.2f ×, p99 %.2f × prepared\t\n", g.API.P50Ms/g.Prepared.P50Ms, g.API.P99Ms/g.Prepared.P99Ms)
	}
	if e := r.Export; e != nil {
		fmt.Fprintf(tw, "export %s rows, direct SQL scan\t%s rows/s%s\tbaseline\t\n", benchkit.Thousands(float64(e.Rows)), benchkit.Thousands(e.Direct.Median), e.Direct.Spread())
		fmt.Fprintf(tw, "export, storage.StreamMeasures\t%s rows/s%s\t%.2f × direct\t\n", benchkit.Thousands(e.Store.Median), e.Store.Spread(), benchkit.PairedRatio(&e.Store, &e.Direct))
		fmt.Fprintf(tw, "export, API text/csv (%.0f MiB)\t%s rows/s%s\t%.2f × direct; goal ≥ %s rows/s\t%s\n", mb(e.Bytes), benchkit.Thousands(e.API.Median), e.API.Spread(),
			benchkit.PairedRatio(&e.API, &e.Direct), benchkit.Thousands(goalCSVRowsPerSec), r.Checks.Verdict(checkCSVRate))
		m := e.Memory
		fmt.Fprintf(tw, "export memory (API and client process)\theap %.1f → %.1f MiB, RSS %.0f → %.0f MiB\theap +%.1f MiB for %.0f MiB of CSV; goal ≤ %d MiB\t%s\n",
			m.HeapBaseMiB, m.HeapPeakMiB, m.RSSBaseMiB, m.RSSPeakMiB, m.HeapGrowthMiB, mb(e.Bytes), goalCSVHeapGrowthMB, r.Checks.Verdict(checkCSVHeap))
	}
	if c := r.Concurrent; c != nil && c.Healthz != nil && c.Bypassed != nil && c.Cached != nil {
		fmt.Fprintf(tw, "GET /healthz, %d clients\t%s req/s%s\tbaseline (bare server)\t\n", c.Clients, benchkit.Thousands(c.Healthz.Median), c.Healthz.Spread())
		fmt.Fprintf(tw, "small read, authentication bypassed\t%s req/s%s\t%.2f × healthz\t\n", benchkit.Thousands(c.Bypassed.Median), c.Bypassed.Spread(), benchkit.PairedRatio(c.Bypassed, c.Healthz))
		v, _ := r.Checks.Get(checkCachedVsBypa)
		fmt.Fprintf(tw, "small read, cached Firebase token\t%s req/s%s\t%.2f × bypassed; goal ≥ %.2f\t%s\n", benchkit.Thousands(c.Cached.Median), c.Cached.Spread(),
			v.Value, goalCachedVsBypass, r.Checks.Verdict(checkCachedVsBypa))
	}
	tw.Flush()
	if c := r.Concurrent; c != nil {
		fmt.Fprintf(w, "small read: GET %s?sensor=%s&limit=%d as the member scientist; %s per variant and round\n",
			measuresPath(), sensorName(0), smallReadLimit, time.Duration(c.SecondsPerRound*float64(time.Second)))
	}
}

// busyNote describes the machine's CPU load while a figure was timed.
func busyNote(busy float64) string {
	if busy < 0 {
		return ""
	}
	return fmt.Sprintf(" (machine CPU %.0f%% busy)", 100*busy)
}

func roundTo(v float64, digits int) float64 {
	p := math.Pow10(digits)
	return math.Round(v*p) / p
}

// msf is d in milliseconds.
func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// ms formats d in milliseconds for progress lines.
func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", msf(d)) }

// mb is n bytes in MiB.
func mb(n int64) float64 { return float64(n) / (1 << 20) }
