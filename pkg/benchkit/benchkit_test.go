package benchkit_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mymonit/mymonit/pkg/benchkit"
)

func TestExitStatus(t *testing.T) {
	for _, tc := range []struct {
		name     string
		err      error
		want     int
		wantText string
	}{
		{"success", nil, 0, ""},
		{"help", flag.ErrHelp, 0, ""},
		{"wrapped help", fmt.Errorf("parse: %w", flag.ErrHelp), 0, ""},
		{"failure", errors.New("no database"), 1, "apibench: no database\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			if got := benchkit.ExitStatus("apibench", tc.err, &stderr); got != tc.want {
				t.Errorf("status %d, want %d", got, tc.want)
			}
			if stderr.String() != tc.wantText {
				t.Errorf("stderr %q, want %q", stderr.String(), tc.wantText)
			}
		})
	}
}

func TestAtLeast(t *testing.T) {
	for _, tc := range []struct {
		flag   string
		v, min int
		want   string // "" for no error
	}{
		{"-rounds", 1, 1, ""},
		{"-rounds", 5, 1, ""},
		{"-points", 0, 0, ""},
		{"-rounds", 0, 1, "-rounds is 0, must be at least 1"},
		{"-sensors", 7, 8, "-sensors is 7, must be at least 8"},
		{"-points", -1, 0, "-points is -1, must be at least 0"},
	} {
		err := benchkit.AtLeast(tc.flag, tc.v, tc.min)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("AtLeast(%q, %d, %d) = %q, want %q", tc.flag, tc.v, tc.min, got, tc.want)
		}
	}
	// errors.Join keeps the failures of a list, in order, and nothing else.
	err := errors.Join(benchkit.AtLeast("-a", 1, 1), benchkit.AtLeast("-b", 0, 1), benchkit.AtLeast("-c", 0, 2))
	if want := "-b is 0, must be at least 1\n-c is 0, must be at least 2"; err == nil || err.Error() != want {
		t.Errorf("joined %v, want %q", err, want)
	}
	if err := errors.Join(benchkit.AtLeast("-a", 1, 1)); err != nil {
		t.Errorf("joined %v, want nil", err)
	}
}

func TestWriteJSON(t *testing.T) {
	var b bytes.Buffer
	v := struct {
		Host   benchkit.Host      `json:"host"`
		Rate   *benchkit.RateStat `json:"rate"`
		Checks benchkit.Checks    `json:"checks"`
	}{
		Host:   benchkit.Host{CPUs: 2, GOOS: "linux", GOARCH: "amd64", GoVersion: "go1.26", Started: "2026-01-02T03:04:05Z", LoadStart: 0.5, LoadEnd: 1.25},
		Rate:   (*benchkit.RateStat)(nil).Add(100, 0.5),
		Checks: benchkit.Checks{{Name: "a<b", Value: 1.5, Target: ">= 1.00", Pass: true}},
	}
	if err := benchkit.WriteJSON(&b, v); err != nil {
		t.Fatal(err)
	}
	want := `{
  "host": {
    "cpus": 2,
    "goos": "linux",
    "goarch": "amd64",
    "go_version": "go1.26",
    "started": "2026-01-02T03:04:05Z",
    "load_start": 0.5,
    "load_end": 1.25
  },
  "rate": {
    "median": 100,
    "min": 100,
    "max": 100,
    "rounds": [
      100
    ],
    "machine_cpu_busy": [
      0.5
    ]
  },
  "checks": [
    {
      "name": "a<b",
      "value": 1.5,
      "target": ">= 1.00",
      "pass": true
    }
  ]
}
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("JSON (-want +got):\n%s", diff)
	}
	if err := benchkit.WriteJSON(&b, math.NaN()); err == nil {
		t.Error("NaN written, want an error")
	}
}

func TestProfileName(t *testing.T) {
	for _, tc := range []struct{ file, phase, want string }{
		{"cpu.prof", "range", "cpu.range.prof"},
		{"/tmp/x/cpu.prof", "latency", "/tmp/x/cpu.latency.prof"},
		{"cpu", "export", "cpu.export"},
		{"dir.d/cpu", "db", "dir.d/cpu.db"},
		{"cpu.out.pprof", "single", "cpu.out.single.pprof"},
	} {
		if got := benchkit.ProfileName(tc.file, tc.phase); got != tc.want {
			t.Errorf("ProfileName(%q, %q) = %q, want %q", tc.file, tc.phase, got, tc.want)
		}
	}
}

func TestStartCPUProfile(t *testing.T) {
	stop, err := benchkit.StartCPUProfile("", "range")
	if err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Errorf("stop without a file: %v", err)
	}

	dir := t.TempDir()
	stop, err = benchkit.StartCPUProfile(filepath.Join(dir, "cpu.prof"), "range")
	if err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "cpu.range.prof")); err != nil || fi.Size() == 0 {
		t.Errorf("profile file: %v, %v; want a non-empty cpu.range.prof", fi, err)
	}

	if _, err := benchkit.StartCPUProfile(filepath.Join(dir, "missing", "cpu.prof"), "range"); err == nil {
		t.Error("profile into a missing directory started, want an error")
	}
}

func TestParseLoadAvg(t *testing.T) {
	for _, tc := range []struct {
		text string
		want float64
	}{
		{"0.52 0.58 0.59 1/468 12345\n", 0.52},
		{"12.00 8.00 4.00 3/900 1", 12},
		{"0.00 0.00 0.00 1/1 1\n", 0},
		{"", -1},
		{"\n", -1},
		{"high 1 1 1/1 1", -1},
	} {
		if got := benchkit.ParseLoadAvg(tc.text); got != tc.want {
			t.Errorf("ParseLoadAvg(%q) = %v, want %v", tc.text, got, tc.want)
		}
	}
}

func TestLoadAvg(t *testing.T) {
	got := benchkit.LoadAvg()
	if runtime.GOOS == "linux" && got < 0 {
		t.Errorf("LoadAvg() = %v on Linux, want a load", got)
	}
}

func TestParseCPU(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice
	const stat = "cpu  100 20 30 400 50 6 7 8 90 10\ncpu0 50 10 15 200 25 3 3 4 45 5\nintr 1 2 3\n"
	type counters struct {
		Busy, Total uint64
		OK          bool
	}
	for _, tc := range []struct {
		name   string
		text   string
		fields benchkit.CPUFields
		want   counters
	}{
		{"no guest", stat, benchkit.CPUNoGuest, counters{171, 621, true}},
		{"all fields", stat, benchkit.CPUAllFields, counters{271, 721, true}},
		{"four fields", "cpu 1 2 3 4\n", benchkit.CPUAllFields, counters{6, 10, true}},
		{"three fields", "cpu 1 2 3\n", benchkit.CPUAllFields, counters{}},
		{"seven fields", "cpu 1 2 3 4 5 6 7\n", benchkit.CPUNoGuest, counters{19, 28, true}},
		{"no trailing newline", "cpu 1 2 3 4 5", benchkit.CPUNoGuest, counters{6, 15, true}},
		{"not the cpu line first", "cpu0 1 2 3 4 5\ncpu 1 2 3 4 5\n", benchkit.CPUNoGuest, counters{}},
		{"bad number", "cpu 1 2 x 4 5\n", benchkit.CPUAllFields, counters{}},
		{"bad guest number", "cpu 1 2 3 4 5 6 7 8 x 10\n", benchkit.CPUNoGuest, counters{}},
		{"empty", "", benchkit.CPUNoGuest, counters{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got counters
			got.Busy, got.Total, got.OK = benchkit.ParseCPU(tc.text, tc.fields).Counters()
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParseCPU (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBusyBetween(t *testing.T) {
	sample := func(busy, idle int) benchkit.CPUSample {
		return benchkit.ParseCPU(fmt.Sprintf("cpu %d 0 0 %d 0 0 0 0 0 0\n", busy, idle), benchkit.CPUNoGuest)
	}
	for _, tc := range []struct {
		name string
		a, b benchkit.CPUSample
		want float64
	}{
		{"half busy", sample(100, 100), sample(150, 150), 0.5},
		{"all busy", sample(100, 100), sample(300, 100), 1},
		{"idle", sample(100, 100), sample(100, 400), 0},
		{"no time passed", sample(100, 100), sample(100, 100), -1},
		{"unknown start", benchkit.CPUSample{}, sample(100, 100), -1},
		{"unknown end", sample(100, 100), benchkit.CPUSample{}, -1},
	} {
		if got := benchkit.BusyBetween(tc.a, tc.b); got != tc.want {
			t.Errorf("%s: BusyBetween = %v, want %v", tc.name, got, tc.want)
		}
	}
	if runtime.GOOS == "linux" {
		a := benchkit.ReadCPU(benchkit.CPUNoGuest)
		if _, _, ok := a.Counters(); !ok {
			t.Fatal("ReadCPU on Linux: unknown")
		}
		if v := benchkit.BusySince(a); v != -1 && (v < 0 || v > 1) {
			t.Errorf("BusySince = %v, want -1 or a fraction", v)
		}
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		vs   []float64
		want float64
	}{
		{[]float64{7}, 7},
		{[]float64{3, 1}, 2},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{-1, -1, 10, 10, 0}, 0},
	} {
		in := append([]float64(nil), tc.vs...)
		if got := benchkit.Median(tc.vs); got != tc.want {
			t.Errorf("Median(%v) = %v, want %v", tc.vs, got, tc.want)
		}
		if diff := cmp.Diff(in, tc.vs); diff != "" {
			t.Errorf("Median changed its input (-before +after):\n%s", diff)
		}
	}
}

func TestPercentile(t *testing.T) {
	ms := func(vs ...int) []time.Duration {
		var ds []time.Duration
		for _, v := range vs {
			ds = append(ds, time.Duration(v)*time.Millisecond)
		}
		return ds
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // 100 … 1, unsorted
	}
	for _, tc := range []struct {
		name string
		ds   []time.Duration
		p    float64
		want time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one", ms(7), 99, 7 * time.Millisecond},
		{"p50 of two, lower by nearest rank", ms(2, 1), 50, 1 * time.Millisecond},
		{"p50 of three", ms(3, 1, 2), 50, 2 * time.Millisecond},
		{"p99 of three is the max", ms(3, 1, 2), 99, 3 * time.Millisecond},
		{"p50 of 100", ms(hundred...), 50, 50 * time.Millisecond},
		{"p99 of 100", ms(hundred...), 99, 99 * time.Millisecond},
		{"p100 of 100", ms(hundred...), 100, 100 * time.Millisecond},
		{"p0 is the min", ms(hundred...), 0, 1 * time.Millisecond},
	} {
		if got := benchkit.Percentile(tc.ds, tc.p); got != tc.want {
			t.Errorf("%s: Percentile(p%v) = %v, want %v", tc.name, tc.p, got, tc.want)
		}
	}
	ds := ms(3, 1, 2)
	benchkit.Percentile(ds, 50)
	if diff := cmp.Diff(ms(3, 1, 2), ds); diff != "" {
		t.Errorf("Percentile changed its input (-before +after):\n%s", diff)
	}
}

func TestThousands(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		want string
	}{
		{0, "0"},
		{999, "999"},
		{999.5, "1,000"},
		{1000, "1,000"},
		{1234567.4, "1,234,567"},
		{100000, "100,000"},
		{-1234, "-1,234"},
		{-999, "-999"},
	} {
		if got := benchkit.Thousands(tc.v); got != tc.want {
			t.Errorf("Thousands(%v) = %q, want %q", tc.v, got, tc.want)
		}
	}
}

func TestRateStat(t *testing.T) {
	var s *benchkit.RateStat
	if got := s.Spread(); got != "" {
		t.Errorf("nil Spread = %q, want empty", got)
	}
	s = s.Add(2000, 0.456)
	if got := s.Spread(); got != "" {
		t.Errorf("one round: Spread = %q, want empty", got)
	}
	s = s.Add(1000, -1)
	s = s.Add(4500, 1)
	s = s.Add(3000, 0.004)
	want := &benchkit.RateStat{
		Median: 2500, Min: 1000, Max: 4500,
		Rounds:      []float64{2000, 1000, 4500, 3000},
		MachineBusy: []float64{0.46, -1, 1, 0},
	}
	if diff := cmp.Diff(want, s); diff != "" {
		t.Errorf("after four rounds (-want +got):\n%s", diff)
	}
	if got, want := s.Spread(), " [1,000–4,500]"; got != want {
		t.Errorf("Spread = %q, want %q", got, want)
	}
}

func TestPairedRatio(t *testing.T) {
	rounds := func(vs ...float64) *benchkit.RateStat {
		var s *benchkit.RateStat
		for _, v := range vs {
			s = s.Add(v, -1)
		}
		if s == nil {
			s = &benchkit.RateStat{}
		}
		return s
	}
	for _, tc := range []struct {
		name     string
		num, den *benchkit.RateStat
		want     float64
	}{
		{"one round", rounds(90), rounds(100), 0.9},
		{"round by round, not medians", rounds(10, 200, 30), rounds(10, 100, 60), 1},
		{"even count", rounds(1, 3), rounds(1, 1), 2},
		{"extra rounds ignored", rounds(2, 4, 100), rounds(1, 2), 2},
		{"no rounds", rounds(), rounds(1), math.NaN()},
	} {
		got := benchkit.PairedRatio(tc.num, tc.den)
		if got != tc.want && !(math.IsNaN(got) && math.IsNaN(tc.want)) {
			t.Errorf("%s: PairedRatio = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestChecks(t *testing.T) {
	var cs benchkit.Checks
	cs.Add("rate", 1.2, ">= 1.00", true)
	cs.Add("p99", 250, "<= 100", false)
	want := benchkit.Checks{
		{Name: "rate", Value: 1.2, Target: ">= 1.00", Pass: true},
		{Name: "p99", Value: 250, Target: "<= 100", Pass: false},
	}
	if diff := cmp.Diff(want, cs); diff != "" {
		t.Errorf("checks (-want +got):\n%s", diff)
	}
	for _, tc := range []struct {
		name, verdict string
		found         bool
	}{
		{"rate", "PASS", true},
		{"p99", "MISS", true},
		{"rss", "", false},
	} {
		c, ok := cs.Get(tc.name)
		if ok != tc.found || (ok && c.Name != tc.name) {
			t.Errorf("Get(%q) = %+v, %v; want found %v", tc.name, c, ok, tc.found)
		}
		if got := cs.Verdict(tc.name); got != tc.verdict {
			t.Errorf("Verdict(%q) = %q, want %q", tc.name, got, tc.verdict)
		}
	}
}
