package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mymonit/mymonit/pkg/benchkit"
)

// TestSmoke runs every phase at a small size, the ingest binary built from
// this module, and checks that each figure and verdict is there and
// plausible: the harness itself is tested, not the machine's speed.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the ingest binary and runs every phase")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	args := []string{"-json", "-rounds", "1", "-poll", "2ms", "-drain-n", "2000", "-db-n", "5000", "-batched-n", "30000",
		"-per-message", "50", "-single-n", "2000", "-naive-n", "200", "-sensors", "50",
		"-latency-duration", "1s", "-latency-fraction", "0.1"}
	var out, progress bytes.Buffer
	if err := run(ctx, args, &out, &progress); err != nil {
		t.Fatalf("run: %v\n%s", err, progress.String())
	}
	var res results
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("decode -json output: %v\n%s", err, out.String())
	}
	for name, r := range map[string]*benchkit.RateStat{"drain": res.Drain, "db": res.DB, "naive": res.Naive} {
		if r == nil || r.Median <= 0 || len(r.Rounds) != 1 {
			t.Errorf("%s = %+v, want one positive round", name, r)
		}
	}
	for name, r := range map[string]*ingestResult{"batched": res.Batched, "single": res.Single} {
		if r == nil || r.Rate.Median <= 0 {
			t.Errorf("%s = %+v, want a positive rate", name, r)
			continue
		}
		if r.PeakRSSMB == nil || *r.PeakRSSMB <= 0 {
			t.Errorf("%s peak RSS %v (%s), want the ingest process's", name, r.PeakRSSMB, r.PeakRSSUnknown)
		}
	}
	if l := res.Latency; l == nil || l.Samples == 0 || l.P50Ms <= 0 || l.P99Ms < l.P50Ms || l.MaxMs < l.P99Ms ||
		l.AchievedMeasuresPerSec <= 0 {
		t.Errorf("latency = %+v, want ordered percentiles over the samples", l)
	}
	// The broker and database run on this machine, so the CPU budget of
	// the drain and single-measure phases is read.
	if c := res.CPU; c == nil || !c.Drain.complete() || !c.Single.complete() || c.Drain.total() <= 0 ||
		c.Single.total() <= 0 || c.Ceiling <= 0 {
		t.Errorf("cpu budget = %+v, want the broker and client costs of both phases", c)
	}
	var names []string
	for _, c := range res.Checks {
		names = append(names, c.Name)
	}
	want := []string{checkBatchedVsDB, checkSingleVsDrain, checkBatchedVsNaive, checkP99, checkPeakRSS}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Errorf("checks %v, want %v", names, want)
	}
}
