package measure_test

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mymonit/mymonit/pkg/measure"
)

func TestEncodeOne(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	tests := []struct {
		name string
		edit func(*measure.Measure)
		want string
	}{
		{
			name: "minimal",
			edit: func(*measure.Measure) {},
			want: `{"experiment":"atlas-pixel","sensor":"hv/module-12/current","time":"2026-11-23T10:00:00.123456Z","value":1.25}`,
		},
		{
			name: "the example of the contract",
			edit: func(m *measure.Measure) { m.Unit, m.Tags = "uA", map[string]string{"rack": "r3"} },
			want: `{"experiment":"atlas-pixel","sensor":"hv/module-12/current","time":"2026-11-23T10:00:00.123456Z","value":1.25,"unit":"uA","tags":{"rack":"r3"}}`,
		},
		{
			name: "time in UTC with six digits, nanoseconds truncated",
			edit: func(m *measure.Measure) { m.Time = time.Date(2026, 11, 23, 11, 0, 0, 999, paris) },
			want: `{"experiment":"atlas-pixel","sensor":"hv/module-12/current","time":"2026-11-23T10:00:00.000000Z","value":1.25}`,
		},
		{
			name: "tags in key order, strings escaped",
			edit: func(m *measure.Measure) {
				m.Sensor = "a\"b\\c/é"
				m.Tags = map[string]string{"z": "1", "a": "x\ny\t\x01\r", "m": "<&>"}
			},
			want: `{"experiment":"atlas-pixel","sensor":"a\"b\\c/é","time":"2026-11-23T10:00:00.123456Z","value":1.25,"tags":{"a":"x\ny\t\u0001\r","m":"<&>","z":"1"}}`,
		},
		{"integer value", func(m *measure.Measure) { m.Value = 100 }, `{"experiment":"atlas-pixel","sensor":"hv/module-12/current","time":"2026-11-23T10:00:00.123456Z","value":100}`},
		{"negative zero", func(m *measure.Measure) { m.Value = math.Copysign(0, -1) }, `{"experiment":"atlas-pixel","sensor":"hv/module-12/current","time":"2026-11-23T10:00:00.123456Z","value":-0}`},
		{"large value", func(m *measure.Measure) { m.Value = 1e21 }, `{"experiment":"atlas-pixel","sensor":"hv/module-12/current","time":"2026-11-23T10:00:00.123456Z","value":1e+21}`},
		{"small value", func(m *measure.Measure) { m.Value = -1e-7 }, `{"experiment":"atlas-pixel","sensor":"hv/module-12/current","time":"2026-11-23T10:00:00.123456Z","value":-1e-7}`},
		{"largest value", func(m *measure.Measure) { m.Value = math.MaxFloat64 }, `{"experiment":"atlas-pixel","sensor":"hv/module-12/current","time":"2026-11-23T10:00:00.123456Z","value":1.7976931348623157e+308}`},
		{"smallest value", func(m *measure.Measure) { m.Value = math.SmallestNonzeroFloat64 }, `{"experiment":"atlas-pixel","sensor":"hv/module-12/current","time":"2026-11-23T10:00:00.123456Z","value":5e-324}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := base()
			tt.edit(&m)
			got, err := measure.EncodeOne(m)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, string(got)); diff != "" {
				t.Errorf("EncodeOne differs (-want +got):\n%s", diff)
			}
			// encoding/json reads the same value.
			var std struct{ Value float64 }
			if err := json.Unmarshal(got, &std); err != nil || std.Value != m.Value {
				t.Errorf("encoding/json reads value %v (%v), want %v", std.Value, err, m.Value)
			}
			// Decode gives back the normalised measure.
			d, err := measure.Decode(got)
			if err != nil || len(d.Measures) != 1 {
				t.Fatalf("Decode: %+v, %v", d, err)
			}
			want := m
			want.Time = m.Time.UTC().Truncate(time.Microsecond)
			if diff := cmp.Diff(want, d.Measures[0]); diff != "" {
				t.Errorf("round trip differs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	ms := sample(250)
	ms[3].Unit, ms[3].Tags = "", nil
	ms[7].Value = -0.000123
	body, err := measure.Encode(ms)
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(body) {
		t.Fatalf("Encode wrote invalid JSON: %s", body)
	}
	d, err := measure.Decode(body)
	if err != nil {
		t.Fatal(err)
	}
	want := measure.Decoded{Measures: ms, Batch: true}
	if diff := cmp.Diff(want, d); diff != "" {
		t.Errorf("round trip differs (-want +got):\n%s", diff)
	}
}

func TestEncodeErrors(t *testing.T) {
	bad := base()
	bad.Value = math.NaN()
	bigTags := map[string]string{}
	for _, k := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"} {
		bigTags[k] = strings.Repeat("v", measure.MaxTagValueBytes)
	}
	big := make([]measure.Measure, 2000)
	for i := range big {
		big[i] = base()
		big[i].Tags = bigTags
	}
	tests := []struct {
		name string
		ms   []measure.Measure
		want string
	}{
		{"empty", nil, "encode: empty batch"},
		{"too many", make([]measure.Measure, measure.MaxBatch+1), "encode: 10001 measures, more than the 10000 a batch may hold"},
		{"invalid", []measure.Measure{base(), bad}, "encode: measure 1: value: must be a finite number, got NaN"},
		{"zero measure", []measure.Measure{{}}, "encode: measure 0: experiment: must not be empty; sensor: must not be empty; time: missing"},
		{"too large", big, "encode: batch of 2000 measures takes 5500014 bytes, more than the limit of 4194304: split it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := measure.Encode(tt.ms)
			if err == nil {
				t.Fatalf("Encode succeeded: %.100s", b)
			}
			if err.Error() != tt.want {
				t.Errorf("Encode error\n got: %v\nwant: %s", err, tt.want)
			}
		})
	}

	if _, err := measure.EncodeOne(bad); err == nil || err.Error() != "encode: value: must be a finite number, got NaN" {
		t.Errorf("EncodeOne(NaN) error = %v", err)
	}
}

func TestEncodeRaw(t *testing.T) {
	body := `{"measures":[` + obj() + `,` + obj("value", `"NaN"`) + `, 42 ,` + obj("sensor", `""`) + `]}`
	d, err := measure.Decode([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	var raws []json.RawMessage
	for _, r := range d.Rejected {
		raws = append(raws, r.Raw)
	}
	dead := measure.EncodeRaw(raws)
	want := `{"measures":[` + obj("value", `"NaN"`) + `,42,` + obj("sensor", `""`) + `]}`
	if diff := cmp.Diff(want, string(dead)); diff != "" {
		t.Errorf("EncodeRaw differs (-want +got):\n%s", diff)
	}

	// Decoding the dead letter rejects the same items, re-numbered.
	again, err := measure.Decode(dead)
	if err != nil {
		t.Fatal(err)
	}
	reasons := func(rs []measure.Rejection) []string {
		var out []string
		for _, r := range rs {
			_, reason, _ := strings.Cut(r.Reason, ": ")
			out = append(out, reason)
		}
		return out
	}
	if len(again.Measures) != 0 {
		t.Errorf("dead letter yields measures: %+v", again.Measures)
	}
	if diff := cmp.Diff(reasons(d.Rejected), reasons(again.Rejected)); diff != "" {
		t.Errorf("reasons differ (-first +again):\n%s", diff)
	}
	if got := string(measure.EncodeRaw(nil)); got != `{"measures":[]}` {
		t.Errorf("EncodeRaw(nil) = %s", got)
	}
}
