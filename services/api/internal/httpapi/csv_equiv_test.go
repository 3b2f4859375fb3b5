package httpapi

import (
	"bytes"
	"encoding/csv"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/mymonit/mymonit/pkg/measure"
	"github.com/mymonit/mymonit/pkg/storage"
)

func TestAppendMeasureCSVEquiv(t *testing.T) {
	sensors := []string{"a", "hv/module-12/current", "with,comma", `q"uote`, " lead", "\tt", `\.`, "nl\nx", "cr\rx", "é ü", "x "}
	units := []string{"", "V", "a,b", " u"}
	rng := rand.New(rand.NewPCG(1, 2))
	var tw measure.TimeWriter
	for i := range 20000 {
		m := storage.Measure{
			Sensor: sensors[i%len(sensors)],
			Time:   time.UnixMicro(rng.Int64N(253402300799999999-(-30610224000000000)) - 30610224000000000).UTC(),
			Value:  []float64{0, 1.25, -3e-9, 1e22, rng.NormFloat64() * 1e6, 21.5}[i%6],
			Unit:   units[i%len(units)],
		}
		if i%7 == 0 {
			m.Tags = map[string]string{"rack": "r3", "k,\"": "v\n"}
		}
		var want bytes.Buffer
		cw := csv.NewWriter(&want)
		_ = cw.Write(measureRecord(m, nil))
		cw.Flush()
		if got := appendMeasureCSV(nil, m, &tw); string(got) != want.String() {
			t.Fatalf("%+v:\n got %q\nwant %q", m, got, want.String())
		}
	}
}
