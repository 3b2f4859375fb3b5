package measure_test

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/mymonit/mymonit/pkg/measure"
)

// sample returns n realistic measures: one experiment, distinct sensors,
// a unit and a tag.
func sample(n int) []measure.Measure {
	base := time.Date(2026, 11, 23, 10, 0, 0, 123456000, time.UTC)
	ms := make([]measure.Measure, n)
	for i := range ms {
		ms[i] = measure.Measure{
			Experiment: "atlas-pixel",
			Sensor:     "hv/module-" + strconv.Itoa(i) + "/current",
			Time:       base.Add(time.Duration(i) * time.Millisecond),
			Value:      1.25 + float64(i)/1000,
			Unit:       "uA",
			Tags:       map[string]string{"rack": "r" + strconv.Itoa(i%4)},
		}
	}
	return ms
}

func benchmarkDecode(b *testing.B, body []byte, perMessage int) {
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		d, err := measure.Decode(body)
		if err != nil || len(d.Measures) != perMessage {
			b.Fatalf("Decode: %d measures, %v", len(d.Measures), err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perMessage), "ns/measure")
	if perMessage > 1 {
		b.ReportMetric(float64(testing.AllocsPerRun(10, func() { _, _ = measure.Decode(body) }))/float64(perMessage), "allocs/measure")
	}
}

// BenchmarkDecodeBatch100 decodes a realistic 100-measure batch.
func BenchmarkDecodeBatch100(b *testing.B) {
	body, err := measure.Encode(sample(100))
	if err != nil {
		b.Fatal(err)
	}
	benchmarkDecode(b, body, 100)
}

// BenchmarkDecodeSingle decodes a single-measure message.
func BenchmarkDecodeSingle(b *testing.B) {
	body, err := measure.EncodeOne(sample(1)[0])
	if err != nil {
		b.Fatal(err)
	}
	benchmarkDecode(b, body, 1)
}

// BenchmarkDecodeBatch1000Plain decodes a 1000-measure batch without unit
// or tags, the leanest realistic form.
func BenchmarkDecodeBatch1000Plain(b *testing.B) {
	ms := sample(1000)
	for i := range ms {
		ms[i].Unit, ms[i].Tags = "", nil
	}
	body, err := measure.Encode(ms)
	if err != nil {
		b.Fatal(err)
	}
	benchmarkDecode(b, body, 1000)
}

// BenchmarkEncodeBatch100 encodes a 100-measure batch.
func BenchmarkEncodeBatch100(b *testing.B) {
	ms := sample(100)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := measure.Encode(ms); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*100), "ns/measure")
}

func ExampleDecode() {
	d, err := measure.Decode([]byte(`{"measures":[
		{"experiment":"atlas-pixel","sensor":"hv/module-12/current","time":"2026-11-23T11:00:00.1234567+01:00","value":1.25,"unit":"uA","tags":{"rack":"r3"}},
		{"experiment":"atlas-pixel","sensor":"hv/module-13/current","time":"yesterday","value":"NaN"}
	]}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, m := range d.Measures {
		fmt.Println(m.Experiment, m.Sensor, m.Time.Format(time.RFC3339Nano), m.Value, m.Unit, m.Tags)
	}
	for _, r := range d.Rejected {
		fmt.Println(r.Reason)
	}
	// Output:
	// atlas-pixel hv/module-12/current 2026-11-23T10:00:00.123456Z 1.25 uA map[rack:r3]
	// measure 1: time: "yesterday" is not RFC 3339; value: must be a finite number, got "NaN"
}
