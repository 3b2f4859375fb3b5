package httpapi

import (
	"bytes"
	"iter"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/mymonit/mymonit/pkg/storage"
)

// randomMeasures makes n measures whose names, units, tags, times and
// values cover what the hand-written encoders must escape or format.
func randomMeasures(n int, seed uint64) []storage.Measure {
	sensors := []string{"a", "hv/module-12/current", "with,comma", `q"uote`, `back\slash`, " lead", "\tt", `\.`,
		"nl\nx", "cr\rx", "é ü", "x ", "<b>&amp;</b>", "ctl\x01\x1f\x7f", "bad\xffutf8", "ls\u2028ps\u2029", ""}
	units := []string{"", "V", "a,b", " u", "°C", "<"}
	values := []float64{0, math.Copysign(0, -1), 1.25, -3e-9, 1e-7, 1e22, 1e21, 999999999999999999999, 1e-6, -5e-324,
		math.MaxFloat64, 123456789.125, 21.5}
	rng := rand.New(rand.NewPCG(seed, 2))
	out := make([]storage.Measure, n)
	for i := range out {
		m := storage.Measure{
			SeriesID: int64(1 + i%17),
			Sensor:   sensors[i%len(sensors)],
			Time:     time.UnixMicro(rng.Int64N(253402300799999999-(-30610224000000000)) - 30610224000000000).UTC(),
			Value:    values[i%len(values)],
			Unit:     units[i%len(units)],
		}
		if i%3 == 0 {
			m.Value = rng.NormFloat64() * math.Pow(10, float64(rng.IntN(60)-30))
		}
		if i%7 == 0 {
			m.Tags = map[string]string{"rack": "r3", "k,\"": "v\n", "<&>": "\u2028é"}
		}
		out[i] = m
	}
	return out
}

// measurePageJSON is the page as writeJSON writes a measurePage.
func measurePageJSON(t *testing.T, measures []storage.Measure, next string) *httptest.ResponseRecorder {
	t.Helper()
	out := measurePage{Measures: make([]apiMeasure, len(measures)), NextCursor: next}
	for i, m := range measures {
		out.Measures[i] = measureToAPI(m)
	}
	rec := httptest.NewRecorder()
	writeJSON(rec, http.StatusOK, out)
	return rec
}

func TestWriteMeasurePageEquiv(t *testing.T) {
	nan := randomMeasures(3, 9)
	nan[1].Value = math.NaN()
	inf := randomMeasures(3, 10)
	inf[2].Value = math.Inf(-1)
	tests := []struct {
		name     string
		measures []storage.Measure
		next     string
	}{
		{"empty", []storage.Measure{}, ""},
		{"one", randomMeasures(1, 1), ""},
		{"page with a cursor", randomMeasures(1000, 2), encodeMeasureCursor(cursorMeasures, storage.MeasureKey{SeriesID: 3, Time: time.Unix(5, 0)})},
		{"largest page", randomMeasures(storage.MaxReadLimit, 3), "bTo5OjEyMzQ"},
		{"NaN (encoding/json's error)", nan, ""},
		{"Inf (encoding/json's error)", inf, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := measurePageJSON(t, tt.measures, tt.next)
			got := httptest.NewRecorder()
			writeMeasurePage(got, tt.measures, tt.next)
			if got.Code != want.Code {
				t.Errorf("status %d, want %d", got.Code, want.Code)
			}
			for _, h := range []string{"Content-Type", "X-Content-Type-Options", "Cache-Control"} {
				if g, w := got.Header().Get(h), want.Header().Get(h); g != w {
					t.Errorf("%s %q, want %q", h, g, w)
				}
			}
			if g, w := got.Body.Bytes(), want.Body.Bytes(); !bytes.Equal(g, w) {
				i := 0
				for i < min(len(g), len(w)) && g[i] == w[i] {
					i++
				}
				t.Fatalf("bodies differ at byte %d of %d/%d:\n got …%q\nwant …%q", i, len(g), len(w),
					g[max(0, i-80):min(len(g), i+80)], w[max(0, i-80):min(len(w), i+80)])
			}
			if !bytes.HasPrefix(want.Body.Bytes(), []byte(`{"measures":[`)) && !slices.ContainsFunc(tt.measures, func(m storage.Measure) bool {
				return math.IsNaN(m.Value) || math.IsInf(m.Value, 0)
			}) {
				t.Errorf("reference body %.40q is not a page", want.Body.String())
			}
		})
	}
}

// TestStreamMeasuresCSVEquiv compares whole responses of the hand-written
// CSV stream with streamCSV over measureRecord.
func TestStreamMeasuresCSVEquiv(t *testing.T) {
	seq := func(ms []storage.Measure) iter.Seq2[storage.Measure, error] {
		return func(yield func(storage.Measure, error) bool) {
			for _, m := range ms {
				if !yield(m, nil) {
					return
				}
			}
		}
	}
	s := &Server{}
	for _, n := range []int{0, 1, csvFlushRows, 2*csvFlushRows + 345} {
		ms := randomMeasures(n, uint64(n))
		want, got := httptest.NewRecorder(), httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		if err := s.streamCSV(want, r, []string{"sensor", "time", "value", "unit", "tags"}, rowsOf(seq(ms), measureRecord)); err != nil {
			t.Fatal(err)
		}
		if err := s.streamMeasuresCSV(got, r, seq(ms)); err != nil {
			t.Fatalf("%d rows: %v", n, err)
		}
		if got.Code != want.Code || got.Header().Get("Content-Type") != want.Header().Get("Content-Type") {
			t.Errorf("%d rows: status %d %q, want %d %q", n, got.Code, got.Header().Get("Content-Type"), want.Code, want.Header().Get("Content-Type"))
		}
		if !bytes.Equal(got.Body.Bytes(), want.Body.Bytes()) {
			t.Errorf("%d rows: bodies differ (%d and %d bytes)", n, got.Body.Len(), want.Body.Len())
		}
		if lines := bytes.Count(got.Body.Bytes(), []byte("\n")); n > 0 && lines < n+1 {
			t.Errorf("%d rows: %d lines", n, lines)
		}
	}
}
