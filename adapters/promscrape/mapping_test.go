package promscrape_test

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/mymonit/mymonit/adapters/promscrape"
	"github.com/mymonit/mymonit/pkg/measure"
)

var (
	scrapeAt = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	text     = expfmt.NewFormat(expfmt.TypeTextPlain)
	om       = expfmt.FmtOpenMetrics_1_0_0
)

// decode parses an exposition the way the scraper does.
func decode(t testing.TB, format expfmt.Format, body string) []*dto.MetricFamily {
	t.Helper()
	fams, err := decodeAll(format, body)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	sortFamilies(fams)
	return fams
}

func decodeAll(format expfmt.Format, body string) ([]*dto.MetricFamily, error) {
	dec := expfmt.NewDecoder(strings.NewReader(body), format)
	var fams []*dto.MetricFamily
	for {
		mf := &dto.MetricFamily{}
		err := dec.Decode(mf)
		if errors.Is(err, io.EOF) {
			return fams, nil
		}
		if err != nil {
			return nil, err
		}
		fams = append(fams, mf)
	}
}

// sortFamilies orders families by name, as the scraper does.
func sortFamilies(fams []*dto.MetricFamily) {
	slices.SortStableFunc(fams, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
}

func m(sensor string, v float64, tags map[string]string) measure.Measure {
	return measure.Measure{Experiment: "lab", Sensor: sensor, Time: scrapeAt, Value: v, Tags: tags}
}

func TestMap(t *testing.T) {
	target := promscrape.Target{Experiment: "lab"}
	withLabels := promscrape.Target{Experiment: "lab", Labels: map[string]string{"instance": "node1", "empty": ""}}
	longName := "metric_" + strings.Repeat("x", 130)
	many := "many{"
	for i := range 33 {
		if i > 0 {
			many += ","
		}
		many += "l" + string(rune('a'+i%26)) + string(rune('a'+i/26)) + `="v"`
	}
	many += "} 1\n"
	tests := []struct {
		name     string
		target   promscrape.Target
		format   expfmt.Format
		body     string
		want     []measure.Measure
		rejected []promscrape.Rejection
	}{
		{
			name:   "text counter with labels and a timestamp",
			target: target, format: text,
			body: "# TYPE http_requests_total counter\n" +
				`http_requests_total{method="post",code="200"} 1027 1395066363000` + "\n" +
				`http_requests_total{method="post",code="400"} 3` + "\n",
			want: []measure.Measure{
				{Experiment: "lab", Sensor: `http_requests_total{code="200",method="post"}`, Time: time.UnixMilli(1395066363000).UTC(), Value: 1027, Tags: map[string]string{"code": "200", "method": "post"}},
				m(`http_requests_total{code="400",method="post"}`, 3, map[string]string{"code": "400", "method": "post"}),
			},
		},
		{
			name:   "gauge and untyped without labels",
			target: target, format: text,
			body: "# TYPE temp gauge\ntemp 21.5\nuptime_seconds 42\n",
			want: []measure.Measure{m("temp", 21.5, nil), m("uptime_seconds", 42, nil)},
		},
		{
			name:   "text histogram",
			target: target, format: text,
			body: "# TYPE rpc_seconds histogram\n" +
				`rpc_seconds_bucket{svc="a",le="0.05"} 24054` + "\n" +
				`rpc_seconds_bucket{svc="a",le="1"} 33444` + "\n" +
				`rpc_seconds_bucket{svc="a",le="+Inf"} 144320` + "\n" +
				`rpc_seconds_sum{svc="a"} 53423` + "\n" +
				`rpc_seconds_count{svc="a"} 144320` + "\n",
			want: []measure.Measure{
				m(`rpc_seconds_bucket{le="0.05",svc="a"}`, 24054, map[string]string{"le": "0.05", "svc": "a"}),
				m(`rpc_seconds_bucket{le="1",svc="a"}`, 33444, map[string]string{"le": "1", "svc": "a"}),
				m(`rpc_seconds_bucket{le="+Inf",svc="a"}`, 144320, map[string]string{"le": "+Inf", "svc": "a"}),
				m(`rpc_seconds_sum{svc="a"}`, 53423, map[string]string{"svc": "a"}),
				m(`rpc_seconds_count{svc="a"}`, 144320, map[string]string{"svc": "a"}),
			},
		},
		{
			name:   "histogram without its +Inf bucket gets one from the count",
			target: target, format: text,
			body: "# TYPE h histogram\n" +
				`h_bucket{le="1.0"} 2` + "\n" +
				"h_sum 3.5\nh_count 5\n",
			want: []measure.Measure{
				m(`h_bucket{le="1"}`, 2, map[string]string{"le": "1"}),
				m(`h_bucket{le="+Inf"}`, 5, map[string]string{"le": "+Inf"}),
				m("h_sum", 3.5, nil),
				m("h_count", 5, nil),
			},
		},
		{
			name:   "summary, a NaN quantile rejected beside its good siblings",
			target: target, format: text,
			body: "# TYPE rpc summary\n" +
				`rpc{quantile="0.5"} 4773` + "\n" +
				`rpc{quantile="0.99"} NaN` + "\n" +
				"rpc_sum 1.7560473e+07\nrpc_count 2693\n",
			want: []measure.Measure{
				m(`rpc{quantile="0.5"}`, 4773, map[string]string{"quantile": "0.5"}),
				m("rpc_sum", 1.7560473e+07, nil),
				m("rpc_count", 2693, nil),
			},
			rejected: []promscrape.Rejection{{Sensor: `rpc{quantile="0.99"}`, Field: "value", Reason: "value: must be a finite number, got NaN"}},
		},
		{
			name:   "target labels added, a conflicting exposed label kept as exported_, empty values dropped",
			target: withLabels, format: text,
			body: `up{instance="self",job="x",zone=""} 1` + "\n",
			want: []measure.Measure{
				m(`up{exported_instance="self",instance="node1",job="x"}`, 1, map[string]string{"exported_instance": "self", "instance": "node1", "job": "x"}),
			},
		},
		{
			name:   "dropped labels are left out of sensor and tags",
			target: promscrape.Target{Experiment: "lab", DropLabels: []string{"job", "pod"}},
			format: text,
			body:   `up{job="x",pod="p-1",zone="a"} 1` + "\n",
			want:   []measure.Measure{m(`up{zone="a"}`, 1, map[string]string{"zone": "a"})},
		},
		{
			name:   "label values escaped in the sensor",
			target: target, format: text,
			body: `msg{path="C:\\dir",q="say \"hi\"",nl="a\nb"} 1` + "\n",
			want: []measure.Measure{
				m(`msg{nl="a\nb",path="C:\\dir",q="say \"hi\""}`, 1, map[string]string{"nl": "a\nb", "path": `C:\dir`, "q": `say "hi"`}),
			},
		},
		{
			name:   "series too long for a sensor, too many labels",
			target: target, format: text,
			body: longName + " 1\n" + many + "ok 2\n",
			want: []measure.Measure{m("ok", 2, nil)},
			rejected: []promscrape.Rejection{
				{Field: "sensor", Reason: "sensor: is 269 bytes, longer than 128; tags: more than 32 entries"},
				{Sensor: longName, Field: "sensor", Reason: "sensor: is 137 bytes, longer than 128"},
			},
		},
		{
			name:   "OpenMetrics counter, created and exemplar dropped, float timestamp",
			target: target, format: om,
			body: "# TYPE jobs counter\n# HELP jobs Jobs done.\n" +
				`jobs_total{kind="a"} 5 1520879607.789 # {trace_id="x"} 1` + "\n" +
				`jobs_created{kind="a"} 1520870000` + "\n" +
				"# EOF\n",
			want: []measure.Measure{
				{Experiment: "lab", Sensor: `jobs_total{kind="a"}`, Time: time.UnixMilli(1520879607789).UTC(), Value: 5, Tags: map[string]string{"kind": "a"}},
			},
		},
		{
			name:   "OpenMetrics unit, histogram, gauge histogram, summary",
			target: target, format: om,
			body: "# TYPE temp_celsius gauge\n# UNIT temp_celsius celsius\ntemp_celsius 21\n" +
				"# TYPE lat histogram\n" + `lat_bucket{le="0.5"} 1` + "\n" + `lat_bucket{le="+Inf"} 2` + "\nlat_count 2\nlat_sum 0.9\n" +
				"# TYPE q gaugehistogram\n" + `q_bucket{le="10"} 3` + "\n" + `q_bucket{le="+Inf"} 4` + "\nq_gcount 4\nq_gsum 17\n" +
				"# TYPE s summary\n" + `s{quantile="0.9"} 7` + "\ns_sum 8\ns_count 1\n" +
				"# EOF\n",
			want: []measure.Measure{
				m(`lat_bucket{le="0.5"}`, 1, map[string]string{"le": "0.5"}),
				m(`lat_bucket{le="+Inf"}`, 2, map[string]string{"le": "+Inf"}),
				m("lat_sum", 0.9, nil),
				m("lat_count", 2, nil),
				m(`q_bucket{le="10"}`, 3, map[string]string{"le": "10"}),
				m(`q_bucket{le="+Inf"}`, 4, map[string]string{"le": "+Inf"}),
				m("q_gsum", 17, nil),
				m("q_gcount", 4, nil),
				m(`s{quantile="0.9"}`, 7, map[string]string{"quantile": "0.9"}),
				m("s_sum", 8, nil),
				m("s_count", 1, nil),
				{Experiment: "lab", Sensor: "temp_celsius", Time: scrapeAt, Value: 21, Unit: "celsius"},
			},
		},
		{
			name:   "OpenMetrics timestamp before 1970 rejected by field time",
			target: target, format: om,
			body: "old 1 -5\nnew 2\n# EOF\n",
			want: []measure.Measure{m("new", 2, nil)},
			rejected: []promscrape.Rejection{
				{Sensor: "old", Field: "time", Reason: "time: 1969-12-31T23:59:55Z is out of range: the UTC year must be from 1970 to 9999"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fams := decode(t, tt.format, tt.body)
			got, rejected := promscrape.Map(tt.target, fams, scrapeAt)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("measures (-want +got):\n%s", diff)
			}
			if len(rejected) != len(tt.rejected) {
				t.Fatalf("rejected %d samples, want %d: %+v", len(rejected), len(tt.rejected), rejected)
			}
			for i, want := range tt.rejected {
				got := rejected[i]
				if got.Field != want.Field {
					t.Errorf("rejection %d: field %q, want %q (%+v)", i, got.Field, want.Field, got)
				}
				if want.Reason != "" && got.Reason != want.Reason {
					t.Errorf("rejection %d: reason %q, want %q", i, got.Reason, want.Reason)
				}
				if want.Sensor != "" && got.Sensor != want.Sensor {
					t.Errorf("rejection %d: sensor %q, want %q", i, got.Sensor, want.Sensor)
				}
			}
		})
	}
}

func TestSeriesName(t *testing.T) {
	tests := []struct {
		name   string
		labels map[string]string
		want   string
	}{
		{"up", nil, "up"},
		{"up", map[string]string{}, "up"},
		{"up", map[string]string{"b": "2", "a": "1"}, `up{a="1",b="2"}`},
		{"x", map[string]string{"v": "\\\"\n"}, `x{v="\\\"\n"}`},
	}
	for _, tt := range tests {
		if got := promscrape.SeriesName(tt.name, tt.labels); got != tt.want {
			t.Errorf("SeriesName(%q, %v) = %q, want %q", tt.name, tt.labels, got, tt.want)
		}
	}
}
