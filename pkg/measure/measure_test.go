package measure_test

import (
	"math"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mymonit/mymonit/pkg/measure"
)

func TestValidate(t *testing.T) {
	tags := func(n int) map[string]string {
		m := map[string]string{}
		for i := range n {
			m[strings.Repeat("k", i+1)] = "v"
		}
		return m
	}
	tests := []struct {
		name string
		edit func(*measure.Measure)
		want string // "" for valid
	}{
		{"valid", func(*measure.Measure) {}, ""},
		{"local time is fine", func(m *measure.Measure) { m.Time = m.Time.In(time.FixedZone("X", -7200)) }, ""},
		{"nanoseconds are fine", func(m *measure.Measure) { m.Time = m.Time.Add(999) }, ""},
		{"full measure", func(m *measure.Measure) { m.Unit, m.Tags = "uA", tags(measure.MaxTags) }, ""},
		{"experiment", func(m *measure.Measure) { m.Experiment = "Atlas" }, `experiment: "Atlas" must match ^[a-z0-9][a-z0-9._-]{0,63}$`},
		{"experiment empty", func(m *measure.Measure) { m.Experiment = "" }, "experiment: must not be empty"},
		{"sensor", func(m *measure.Measure) { m.Sensor = "a\x00" }, "sensor: contains control character U+0000"},
		{"sensor long", func(m *measure.Measure) { m.Sensor = strings.Repeat("é", 65) }, "sensor: is 130 bytes, longer than 128"},
		{"sensor invalid UTF-8", func(m *measure.Measure) { m.Sensor = "\xc3(" }, "sensor: is not valid UTF-8"},
		{"time zero", func(m *measure.Measure) { m.Time = time.Time{} }, "time: missing"},
		{"time before 1970", func(m *measure.Measure) { m.Time = time.Unix(-1, 0) }, "time: 1969-12-31T23:59:59Z is out of range: the UTC year must be from 1970 to 9999"},
		{"time after 9999", func(m *measure.Measure) { m.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, "time: 10000-01-01T00:00:00Z is out of range: the UTC year must be from 1970 to 9999"},
		{"NaN", func(m *measure.Measure) { m.Value = math.NaN() }, "value: must be a finite number, got NaN"},
		{"+Inf", func(m *measure.Measure) { m.Value = math.Inf(1) }, "value: must be a finite number, got +Inf"},
		{"-Inf", func(m *measure.Measure) { m.Value = math.Inf(-1) }, "value: must be a finite number, got -Inf"},
		{"unit", func(m *measure.Measure) { m.Unit = "micro-amperes/cm2" }, "unit: is 17 bytes, longer than 16"},
		{"unit invalid UTF-8", func(m *measure.Measure) { m.Unit = "\xff" }, "unit: is not valid UTF-8"},
		{"too many tags", func(m *measure.Measure) { m.Tags = tags(measure.MaxTags + 1) }, "tags: more than 32 entries"},
		{"bad tags sorted", func(m *measure.Measure) {
			m.Tags = map[string]string{"": "x", "b": strings.Repeat("v", 257), "a": "\xff"}
		}, `tags: empty key; tags: value of "a" is not valid UTF-8; tags: value of "b" is 257 bytes, longer than 256`},
		{"all problems, bounded", func(m *measure.Measure) {
			*m = measure.Measure{Value: math.NaN(), Unit: strings.Repeat("u", 20), Tags: map[string]string{"": ""}}
		}, "experiment: must not be empty; sensor: must not be empty; time: missing; value: must be a finite number, got NaN; and 2 more"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := base()
			tt.edit(&m)
			err := m.Validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("Validate() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestValidateExperiment(t *testing.T) {
	re := regexp.MustCompile(measure.ExperimentPattern)
	names := []string{
		"", "a", "0", "atlas-pixel", "cms.hcal_2", "a-", "a.", "-a", ".a", "_a", "A", "aB", "a b", "a/b",
		"é", "a\n", strings.Repeat("a", 64), strings.Repeat("a", 65), "\x00",
	}
	for _, name := range names {
		err := measure.ValidateExperiment(name)
		if want := re.MatchString(name); (err == nil) != want {
			t.Errorf("ValidateExperiment(%q) = %v, want valid=%v (as the pattern says)", name, err, want)
		}
	}
}

func TestRoutingKey(t *testing.T) {
	if got := measure.RoutingKey("atlas-pixel"); got != "experiment.atlas-pixel" {
		t.Errorf("RoutingKey = %q", got)
	}
}
