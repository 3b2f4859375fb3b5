package promscrape_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"

	"github.com/mymonit/mymonit/adapters/promscrape"
)

// exposition returns n gauge series of one family, in OpenMetrics or text.
func exposition(n int, openMetrics bool) string {
	var b strings.Builder
	b.WriteString("# TYPE node_value gauge\n")
	for i := range n {
		fmt.Fprintf(&b, "node_value{cpu=\"%d\",mode=\"idle\"} %d.5\n", i, i)
	}
	if openMetrics {
		b.WriteString("# EOF\n")
	}
	return b.String()
}

// BenchmarkDecodeAndMap measures the parse and mapping of a 1000-series
// exposition, per format (samples/s are reported).
func BenchmarkDecodeAndMap(b *testing.B) {
	for _, tt := range []struct {
		name   string
		om     bool
		format expfmt.Format
	}{{"text", false, text}, {"OpenMetrics", true, om}} {
		body := exposition(1000, tt.om)
		b.Run(tt.name, func(b *testing.B) {
			target := promscrape.Target{Experiment: "lab"}
			for b.Loop() {
				fams, err := decodeAll(tt.format, body)
				if err != nil {
					b.Fatal(err)
				}
				ms, _ := promscrape.Map(target, fams, scrapeAt)
				if len(ms) != 1000 {
					b.Fatalf("%d measures", len(ms))
				}
			}
			b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "samples/s")
		})
	}
}
