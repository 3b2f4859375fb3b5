package backfill_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/mymonit/mymonit/adapters/backfill"
)

// FuzzSources checks that the CSV and JSON-lines readers never panic, that
// line numbers and offsets only grow and stay within the input, and that a
// row carries measures or errors only when it has content.
func FuzzSources(f *testing.F) {
	for _, s := range []string{
		"experiment,sensor,time,value,unit,rack\natlas,t1,2026-11-23T10:00:00Z,1,C,r1\n",
		"sensor,time,value\ns,\"2026-11-23T10:00:00Z\",1\ns,x,\"a\"\"b\"\n\"unterminated,1\n",
		`{"experiment":"a","sensor":"s","time":"2026-11-23T10:00:00Z","value":1}` + "\n{\"measures\":[1]}\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		check := func(src backfill.Source) {
			var lastLine int
			var lastEnd int64
			for range len(body) + 2 {
				r, err := src.Next()
				if err == io.EOF {
					return
				}
				if err != nil {
					t.Fatalf("Next: %v", err)
				}
				if r.Line < lastLine || r.End < lastEnd || r.End > int64(len(body)) {
					t.Fatalf("row line %d end %d after line %d end %d (input %d bytes)", r.Line, r.End, lastLine, lastEnd, len(body))
				}
				lastLine, lastEnd = r.Line, r.End
				for _, m := range r.Measures {
					if m.Sensor == "" && m.Experiment == "" && len(bytes.TrimSpace(body)) == 0 {
						t.Fatalf("measure from blank input: %+v", m)
					}
				}
			}
			t.Fatalf("more rows than bytes")
		}
		if src, err := backfill.NewCSV(bytes.NewReader(body), nil, 0, 0, backfill.CSVOptions{Experiment: "e"}); err == nil {
			check(src)
		}
		check(backfill.NewJSONL(bytes.NewReader(body), 0, 0))
	})
}
