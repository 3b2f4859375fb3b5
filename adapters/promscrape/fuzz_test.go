package promscrape_test

import (
	"math"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mymonit/mymonit/adapters/promscrape"
)

var fuzzSeeds = []string{
	"temp 21.5\n",
	"# TYPE c counter\nc_total{a=\"1\",b=\"\"} 3 1700000000000\n",
	"# TYPE h histogram\nh_bucket{le=\"0.1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 0.3\nh_count 2\n",
	"# TYPE s summary\ns{quantile=\"0.5\",x=\"y\"} NaN\ns_sum 1\ns_count 0\n",
	"x{instance=\"i\",v=\"a\\\\b\\\"c\\nd\"} -Inf\n",
	"# TYPE g gauge\n# UNIT g_bytes bytes\ng 1e308\n# EOF\n",
	"# TYPE q gaugehistogram\nq_bucket{le=\"1\"} 1\nq_bucket{le=\"+Inf\"} 1\nq_gcount 1\nq_gsum 1\n# EOF\n",
}

// FuzzMapText maps any text exposition expfmt accepts and checks the
// mapping's invariants (see checkMapping).
func FuzzMapText(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		fams, err := decodeAll(text, body)
		if err != nil {
			return
		}
		checkMapping(t, fams)
	})
}

// FuzzMapOpenMetrics does the same for OpenMetrics (whose parser is slow:
// keep inputs short).
func FuzzMapOpenMetrics(f *testing.F) {
	for _, s := range fuzzSeeds {
		if !strings.HasSuffix(s, "# EOF\n") {
			s += "# EOF\n"
		}
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		if len(body) > 512 {
			return
		}
		fams, err := decodeAll(om, body)
		if err != nil {
			return
		}
		checkMapping(t, fams)
	})
}

// checkMapping maps fams for a target with an extra label and checks that
//   - every sample becomes exactly one measure or one rejection;
//   - every measure is valid, of the target's experiment, and tagged with
//     the target's label;
//   - every sensor reads back, through the text format parser, as a series
//     whose labels are the measure's tags.
func checkMapping(t *testing.T, fams []*dto.MetricFamily) {
	target := promscrape.Target{Experiment: "fuzz", Labels: map[string]string{"instance": "i1"}}
	ms, rejected := promscrape.Map(target, fams, scrapeAt)
	if want := samples(fams); len(ms)+len(rejected) != want {
		t.Fatalf("%d measures + %d rejections for %d samples", len(ms), len(rejected), want)
	}
	for _, r := range rejected {
		if r.Reason == "" || r.Field == "" {
			t.Fatalf("rejection without a reason or field: %+v", r)
		}
	}
	for _, m := range ms {
		if err := m.Validate(); err != nil {
			t.Fatalf("invalid measure %+v: %v", m, err)
		}
		if m.Experiment != "fuzz" || m.Tags["instance"] != "i1" {
			t.Fatalf("measure %+v lost the target's experiment or label", m)
		}
		if math.IsNaN(m.Value) || math.IsInf(m.Value, 0) {
			t.Fatalf("measure %+v has a value that is not finite", m)
		}
		p := expfmt.NewTextParser(model.UTF8Validation)
		back, err := p.TextToMetricFamilies(strings.NewReader(m.Sensor + " 1\n"))
		if err != nil {
			t.Fatalf("sensor %q does not read back as a series: %v", m.Sensor, err)
		}
		if len(back) != 1 {
			t.Fatalf("sensor %q reads back as %d families", m.Sensor, len(back))
		}
		for _, f := range back {
			got := map[string]string{}
			for _, l := range f.GetMetric()[0].GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			if len(got) != len(m.Tags) {
				t.Fatalf("sensor %q has labels %v, tags are %v", m.Sensor, got, m.Tags)
			}
			for k, v := range m.Tags {
				if got[k] != v {
					t.Fatalf("sensor %q has labels %v, tags are %v", m.Sensor, got, m.Tags)
				}
			}
		}
	}
}

// samples counts the samples the mapping should produce, independently of it.
func samples(fams []*dto.MetricFamily) int {
	n := 0
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			switch f.GetType() {
			case dto.MetricType_SUMMARY:
				n += len(m.GetSummary().GetQuantile()) + 2
			case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
				bs := m.GetHistogram().GetBucket()
				n += len(bs) + 2
				if len(bs) == 0 || !math.IsInf(bs[len(bs)-1].GetUpperBound(), +1) {
					n++
				}
			default:
				n++
			}
		}
	}
	return n
}
