package promscrape

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/mymonit/mymonit/pkg/measure"
)

// Rejection is a sample that could not become a measure.
type Rejection struct {
	// Sensor is the series the sample would have become.
	Sensor string
	// Field is the measure field at fault: experiment, sensor, time, value,
	// unit or tags. It is the reason label of the rejection counter.
	Field string
	// Reason says what is wrong, naming the field, for example
	// "value: must be a finite number, got NaN".
	Reason string
}

// Map turns the metric families of one scrape of target t into measures,
// following the mapping of the package documentation. at is when the scrape
// started: the time of samples without a timestamp. Samples that break the
// v1 contract are returned as rejections; they never cost their siblings.
// Families are mapped in the order given and samples in exposition order.
func Map(t Target, fams []*dto.MetricFamily, at time.Time) ([]measure.Measure, []Rejection) {
	m := mapper{target: t, at: at.UTC()}
	for _, f := range fams {
		m.family(f)
	}
	return m.measures, m.rejected
}

type mapper struct {
	target   Target
	at       time.Time
	measures []measure.Measure
	rejected []Rejection
}

func (m *mapper) family(f *dto.MetricFamily) {
	if f == nil {
		return
	}
	name, unit := f.GetName(), f.GetUnit()
	for _, s := range f.GetMetric() {
		if s == nil {
			continue
		}
		labels := m.labels(s.GetLabel())
		at := m.at
		if s.TimestampMs != nil {
			at = time.UnixMilli(s.GetTimestampMs()).UTC()
		}
		add := func(sample string, extraName, extraValue string, v float64) {
			m.add(sample, labels, extraName, extraValue, v, unit, at)
		}
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			add(name, "", "", s.GetCounter().GetValue())
		case dto.MetricType_GAUGE:
			add(name, "", "", s.GetGauge().GetValue())
		case dto.MetricType_UNTYPED:
			add(name, "", "", s.GetUntyped().GetValue())
		case dto.MetricType_SUMMARY:
			sum := s.GetSummary()
			for _, q := range sum.GetQuantile() {
				add(name, "quantile", formatFloat(q.GetQuantile()), q.GetValue())
			}
			add(name+"_sum", "", "", sum.GetSampleSum())
			add(name+"_count", "", "", float64(sum.GetSampleCount()))
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			h := s.GetHistogram()
			count := float64(h.GetSampleCount())
			if h.SampleCountFloat != nil {
				count = h.GetSampleCountFloat()
			}
			inf := false
			for _, b := range h.GetBucket() {
				v := float64(b.GetCumulativeCount())
				if b.CumulativeCountFloat != nil {
					v = b.GetCumulativeCountFloat()
				}
				ub := b.GetUpperBound()
				inf = inf || math.IsInf(ub, +1)
				add(name+"_bucket", "le", formatFloat(ub), v)
			}
			if !inf {
				add(name+"_bucket", "le", "+Inf", count)
			}
			sumName, countName := name+"_sum", name+"_count"
			if f.GetType() == dto.MetricType_GAUGE_HISTOGRAM {
				sumName, countName = name+"_gsum", name+"_gcount"
			}
			add(sumName, "", "", h.GetSampleSum())
			add(countName, "", "", count)
		}
	}
}

// labels merges the exposed labels of a sample with the target's: empty
// values are dropped, and an exposed label the target also sets is renamed
// exported_<name>.
func (m *mapper) labels(exposed []*dto.LabelPair) map[string]string {
	out := make(map[string]string, len(exposed)+len(m.target.Labels)+1)
	for k, v := range m.target.Labels {
		if v != "" {
			out[k] = v
		}
	}
	for _, l := range exposed {
		k, v := l.GetName(), l.GetValue()
		if v == "" || slices.Contains(m.target.DropLabels, k) {
			continue
		}
		for {
			if _, taken := out[k]; !taken {
				break
			}
			k = "exported_" + k
		}
		out[k] = v
	}
	return out
}

func (m *mapper) add(name string, labels map[string]string, extraName, extraValue string, v float64, unit string, at time.Time) {
	tags := labels
	if extraName != "" {
		tags = make(map[string]string, len(labels)+1)
		for k, v := range labels {
			tags[k] = v
		}
		k := extraName
		for {
			if _, taken := tags[k]; !taken {
				break
			}
			k = "exported_" + k
		}
		if k != extraName {
			// An exposed label named le or quantile makes way for ours.
			tags[k] = tags[extraName]
		}
		tags[extraName] = extraValue
	} else if len(tags) > 0 {
		tags = make(map[string]string, len(labels))
		for k, v := range labels {
			tags[k] = v
		}
	}
	if len(tags) == 0 {
		tags = nil
	}
	ms := measure.Measure{
		Experiment: m.target.Experiment,
		Sensor:     SeriesName(name, tags),
		Time:       at,
		Value:      v,
		Unit:       unit,
		Tags:       tags,
	}
	if err := ms.Validate(); err != nil {
		reason := err.Error()
		m.rejected = append(m.rejected, Rejection{Sensor: ms.Sensor, Field: field(reason), Reason: reason})
		return
	}
	m.measures = append(m.measures, ms)
}

// field returns the field a measure.Validate reason starts with.
func field(reason string) string {
	if i := strings.IndexByte(reason, ':'); i > 0 {
		f := reason[:i]
		switch f {
		case "experiment", "sensor", "time", "value", "unit", "tags":
			return f
		}
		if strings.HasPrefix(f, "tag") {
			return "tags"
		}
	}
	return "other"
}

// SeriesName writes a series in the Prometheus notation: name, then the
// labels sorted by name in braces, values quoted and escaped as in the text
// exposition format. It is the sensor of the series' measures.
func SeriesName(name string, labels map[string]string) string {
	if len(labels) == 0 {
		return name
	}
	keys := make([]string, 0, len(labels))
	n := len(name) + 2
	for k, v := range labels {
		keys = append(keys, k)
		n += len(k) + len(v) + 4
	}
	slices.Sort(keys)
	var b strings.Builder
	b.Grow(n)
	b.WriteString(name)
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k)
		b.WriteString(`="`)
		escapeLabelValue(&b, labels[k])
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

func escapeLabelValue(b *strings.Builder, v string) {
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\':
			b.WriteString(`\\`)
		case '"':
			b.WriteString(`\"`)
		case '\n':
			b.WriteString(`\n`)
		default:
			b.WriteByte(c)
		}
	}
}

// formatFloat writes an upper bound or a quantile: the shortest text that
// reads back as the same float64, and +Inf, -Inf, NaN as Prometheus spells
// them.
func formatFloat(f float64) string {
	switch {
	case math.IsInf(f, +1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	case math.IsNaN(f):
		return "NaN"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}
