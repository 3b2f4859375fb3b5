package lineproto_test

import (
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/mymonit/mymonit/adapters/lineproto"
	"github.com/mymonit/mymonit/pkg/measure"
)

var now = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func TestParse(t *testing.T) {
	t.Parallel()
	all := lineproto.Mapping{SensorTags: []string{lineproto.AllTags}}
	tests := []struct {
		name    string
		mapping lineproto.Mapping
		batch   lineproto.Batch
		body    string
		want    []measure.Measure
		lines   []int
		errs    []string // "line: reason substring"
		ignored int
	}{
		{
			name:    "fields become sensors, tags join the sensor in key order",
			mapping: all,
			batch:   lineproto.Batch{Experiment: "atlas"},
			body:    "cpu,host=a,cpu=cpu0 usage_idle=97.5,usage_user=2i 1700000000000000000\n",
			want: []measure.Measure{
				{Experiment: "atlas", Sensor: "cpu.usage_idle,cpu=cpu0,host=a", Time: time.Unix(1700000000, 0).UTC(), Value: 97.5, Tags: map[string]string{"cpu": "cpu0", "host": "a"}},
				{Experiment: "atlas", Sensor: "cpu.usage_user,cpu=cpu0,host=a", Time: time.Unix(1700000000, 0).UTC(), Value: 2, Tags: map[string]string{"cpu": "cpu0", "host": "a"}},
			},
			lines: []int{1, 1},
		},
		{
			name:    "no sensor tags; experiment tag wins over db and is removed",
			mapping: lineproto.Mapping{DefaultExperiment: "dflt"},
			batch:   lineproto.Batch{Experiment: "fromdb", Now: now},
			body:    "hv,experiment=cms,rack=r3 current=1.25,count=3u",
			want: []measure.Measure{
				{Experiment: "cms", Sensor: "hv.current", Time: now, Value: 1.25, Tags: map[string]string{"rack": "r3"}},
				{Experiment: "cms", Sensor: "hv.count", Time: now, Value: 3, Tags: map[string]string{"rack": "r3"}},
			},
			lines: []int{1, 1},
		},
		{
			name:    "selected sensor tags, default experiment",
			mapping: lineproto.Mapping{DefaultExperiment: "dflt", SensorTags: []string{"host"}},
			batch:   lineproto.Batch{Precision: lineproto.Second},
			body:    "# a comment\n\n  \nt,host=h1,rack=r1 v=1 1700000000\r\n",
			want: []measure.Measure{
				{Experiment: "dflt", Sensor: "t.v,host=h1", Time: time.Unix(1700000000, 0).UTC(), Value: 1, Tags: map[string]string{"host": "h1", "rack": "r1"}},
			},
			lines: []int{4},
		},
		{
			name:    "precisions",
			mapping: lineproto.Mapping{DefaultExperiment: "e"},
			batch:   lineproto.Batch{Precision: lineproto.Millisecond},
			body:    "m v=1 1700000000123\nm v=2 -1000",
			want: []measure.Measure{
				{Experiment: "e", Sensor: "m.v", Time: time.UnixMilli(1700000000123).UTC(), Value: 1},
				{Experiment: "e", Sensor: "m.v", Time: time.Unix(-1, 0).UTC(), Value: 2},
			},
			lines: []int{1, 2},
		},
		{
			name:    "hours",
			mapping: lineproto.Mapping{DefaultExperiment: "e"},
			batch:   lineproto.Batch{Precision: lineproto.Hour},
			body:    "m v=1 10",
			want:    []measure.Measure{{Experiment: "e", Sensor: "m.v", Time: time.Unix(36000, 0).UTC(), Value: 1}},
			lines:   []int{1},
		},
		{
			name:    "bad lines reported by number, good ones kept, non-numeric field refused beside a numeric one",
			mapping: lineproto.Mapping{DefaultExperiment: "e"},
			batch:   lineproto.Batch{Now: now},
			body:    "good v=1\nbroken v=\nstatus msg=\"down\",v=2\nflag ok=true\nt v=1 notatime\n\nlast v=3",
			want: []measure.Measure{
				{Experiment: "e", Sensor: "good.v", Time: now, Value: 1},
				{Experiment: "e", Sensor: "status.v", Time: now, Value: 2},
				{Experiment: "e", Sensor: "last.v", Time: now, Value: 3},
			},
			lines: []int{1, 3, 7},
			errs: []string{
				"2: column",
				`3: field "msg": string value "down" is not a number`,
				`4: field "ok": bool value true is not a number`,
				"5: ",
			},
		},
		{
			name:    "non-numeric fields ignored when asked",
			mapping: lineproto.Mapping{DefaultExperiment: "e", IgnoreNonNumeric: true},
			batch:   lineproto.Batch{Now: now},
			body:    "status msg=\"down\",v=2,ok=false",
			want:    []measure.Measure{{Experiment: "e", Sensor: "status.v", Time: now, Value: 2}},
			lines:   []int{1},
			ignored: 2,
		},
		{
			name:  "no experiment anywhere",
			batch: lineproto.Batch{Now: now},
			body:  "m v=1",
			errs:  []string{"1: no experiment"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := tc.mapping.Parse([]byte(tc.body), tc.batch)
			if diff := cmp.Diff(tc.want, p.Measures); diff != "" {
				t.Errorf("measures (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.lines, p.Lines); diff != "" {
				t.Errorf("lines (-want +got):\n%s", diff)
			}
			if len(p.Errors) != len(tc.errs) {
				t.Fatalf("errors = %v, want %d", p.Errors, len(tc.errs))
			}
			for i, e := range p.Errors {
				if got := e.Error()[len("line "):]; !strings.HasPrefix(got, tc.errs[i]) && !strings.Contains(got, tc.errs[i]) {
					t.Errorf("error %d = %q, want %q", i, e.Error(), tc.errs[i])
				}
				if e.Text == "" || e.Kind == "" {
					t.Errorf("error %d lacks text or kind: %+v", i, e)
				}
			}
			if p.Ignored != tc.ignored {
				t.Errorf("ignored = %d, want %d", p.Ignored, tc.ignored)
			}
		})
	}
}

func TestParsePrecision(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want lineproto.Precision
		err  bool
	}{
		{"", lineproto.Nanosecond, false}, {"n", lineproto.Nanosecond, false}, {"ns", lineproto.Nanosecond, false},
		{"u", lineproto.Microsecond, false}, {"us", lineproto.Microsecond, false},
		{"ms", lineproto.Millisecond, false}, {"s", lineproto.Second, false},
		{"m", lineproto.Minute, false}, {"h", lineproto.Hour, false},
		{"d", 0, true}, {"NS", 0, true},
	}
	for _, tc := range tests {
		got, err := lineproto.ParsePrecision(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParsePrecision(%q) = %v, %v", tc.in, got, err)
		}
	}
}

// FuzzParse checks the mapping never panics and accounts for every line:
// each measure comes from a non-blank line and names its measurement, each
// error names a line that exists, values are finite.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"cpu,host=a,cpu=cpu0 usage_idle=97.5,usage_user=2i 1700000000000000000",
		"hv,experiment=cms,rack=r3 current=1.25,count=3u\nbad line\n# c\n",
		"status msg=\"do\\\"wn\",v=2,ok=true -5",
		"m,a=b\\ c v=1e308 9223372036854775807\nm v=-1e-300",
		"a\\,b,t\\=x=y\\ z f\\ g=1",
		"m v=1 99999999999999999999",
	} {
		f.Add([]byte(s), uint8(0))
		f.Add([]byte(s), uint8(5))
	}
	precs := []lineproto.Precision{lineproto.Nanosecond, lineproto.Microsecond, lineproto.Millisecond, lineproto.Second, lineproto.Minute, lineproto.Hour}
	f.Fuzz(func(t *testing.T, body []byte, prec uint8) {
		m := lineproto.Mapping{DefaultExperiment: "e", SensorTags: []string{lineproto.AllTags}}
		p := m.Parse(body, lineproto.Batch{Precision: precs[int(prec)%len(precs)], Now: now})
		lines := strings.Split(string(body), "\n")
		if len(p.Lines) != len(p.Measures) {
			t.Fatalf("%d line numbers for %d measures", len(p.Lines), len(p.Measures))
		}
		for i, ms := range p.Measures {
			n := p.Lines[i]
			if n < 1 || n > len(lines) || strings.TrimSpace(lines[n-1]) == "" {
				t.Fatalf("measure %d from line %d of %d", i, n, len(lines))
			}
			if math.IsNaN(ms.Value) || math.IsInf(ms.Value, 0) {
				t.Fatalf("measure %d: value %v", i, ms.Value)
			}
			if !strings.Contains(ms.Sensor, ".") || ms.Experiment == "" {
				t.Fatalf("measure %d: %+v", i, ms)
			}
			if _, ok := ms.Tags[lineproto.ExperimentTag]; ok {
				t.Fatalf("experiment tag kept: %+v", ms)
			}
		}
		for _, e := range p.Errors {
			if e.Line < 1 || e.Line > len(lines) || e.Reason == "" {
				t.Fatalf("error on line %d of %d: %q", e.Line, len(lines), e.Reason)
			}
			if !utf8.ValidString(e.Text) || len(e.Text) > 124 || !utf8.ValidString(e.Reason) {
				t.Fatalf("report not printable: %q %q", e.Text, e.Reason)
			}
		}
	})
}
