package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"iter"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/mymonit/mymonit/pkg/storage"
)

// randomMeasures makes n measures whose names, units, tags, times and
// values cover what the hand-written encoders must escape or format.
func randomMeasures(n int, seed uint64) []storage.Measure {
	sensors := []string{"a", "hv/module-12/current", "with,comma", `q"uote`, `back\slash`, " lead", "\tt", `\.`,
		"nl\nx", "cr\rx", "é ü", "x ", "<b>&amp;</b>", "ctl\x01\x1f\x7f", "bad\xffutf8", "ls\u2028ps\u2029", ""}
	units := []string{"", "V", "a,b", " u", "°C", "<"}
	values := []float64{0, math.Copysign(0, -1), 1.25, -3e-9, 1e-7, 1e22, 1e21, 999999999999999999999, 1e-6, -5e-324,
		math.MaxFloat64, 123456789.125, 21.5, 20.31, -0.05, 1234.5678, 0.000001, 3e-7}
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

// sensorRun makes n measures of one sensor 1.234567 s apart from shortly
// before a midnight, with values of two decimals, as a range read returns
// them.
func sensorRun(n int) []storage.Measure {
	t0 := time.Date(2026, 2, 28, 23, 0, 0, 0, time.UTC)
	out := make([]storage.Measure, n)
	for i := range out {
		out[i] = storage.Measure{SeriesID: 7, Sensor: "hv/module-12/current", Unit: "mA",
			Time: t0.Add(time.Duration(i) * 1234567 * time.Microsecond), Value: float64(i%9000-4500) / 100}
	}
	return out
}

// sensorRuns is randomMeasures ordered by sensor, as a page of several
// sensors comes: runs of one sensor's measures of various lengths.
func sensorRuns(n int, seed uint64) []storage.Measure {
	ms := randomMeasures(n, seed)
	sensors := []string{"", "a", `q"uote`, "é ü", "hv/module-12/current"}
	rng := rand.New(rand.NewPCG(seed, 3))
	for i := range ms {
		ms[i].Sensor = sensors[rng.IntN(1+rng.IntN(len(sensors)))] // more of the first ones
	}
	slices.SortStableFunc(ms, func(a, b storage.Measure) int { return strings.Compare(a.Sensor, b.Sensor) })
	return ms
}

// measurePageJSON is the page as writeJSON writes a measurePage.
func measurePageJSON(t *testing.T, measures []storage.Measure, next string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	writeJSON(rec, http.StatusOK, measurePageOf(measures, next))
	return rec
}

// pageOf reads measures as one page whose next key is next.
func pageOf(measures []storage.Measure, next storage.MeasureKey) eachMeasure {
	return func(fn func(storage.Measure) error) (storage.MeasureKey, error) {
		for _, m := range measures {
			if err := fn(m); err != nil {
				return storage.MeasureKey{}, err
			}
		}
		return next, nil
	}
}

func TestWriteMeasurePageEquiv(t *testing.T) {
	next := storage.MeasureKey{SeriesID: 3, Time: time.Unix(5, 0)}
	tests := []struct {
		name     string
		measures []storage.Measure
		next     storage.MeasureKey
	}{
		{"empty", []storage.Measure{}, storage.MeasureKey{}},
		{"one", randomMeasures(1, 1), storage.MeasureKey{}},
		{"page with a cursor", randomMeasures(1000, 2), next},
		{"largest page", randomMeasures(storage.MaxReadLimit, 3), next},
		{"a run of one sensor across midnight", sensorRun(5000), next},
		{"runs of several sensors", sensorRuns(3000, 4), next},
	}
	s := &Server{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cursor := ""
			if !tt.next.IsZero() {
				cursor = encodeMeasureCursor(cursorMeasures, tt.next)
			}
			want := measurePageJSON(t, tt.measures, cursor)
			if !bytes.HasPrefix(want.Body.Bytes(), []byte(`{"series":[`)) {
				t.Fatalf("reference body %.40q is not a page", want.Body.String())
			}
			got := httptest.NewRecorder()
			if err := s.writeMeasurePage(got, httptest.NewRequest(http.MethodGet, "/", nil), pageOf(tt.measures, tt.next)); err != nil {
				t.Fatal(err)
			}
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
		})
	}
}

// TestWriteMeasurePageErrors: a failure before the first write is returned
// for the problem document, with nothing written; one after it aborts the
// response, whose body is then a cut page.
func TestWriteMeasurePageErrors(t *testing.T) {
	nan := randomMeasures(3, 9)
	nan[1].Value = math.NaN()
	inf := randomMeasures(3, 10)
	inf[2].Value = math.Inf(-1)
	lateInf := randomMeasures(storage.MaxReadLimit, 11)
	lateInf[len(lateInf)-1].Value = math.Inf(1)
	failing := errors.New("connection lost")
	lateFail := func(fn func(storage.Measure) error) (storage.MeasureKey, error) {
		if _, err := pageOf(randomMeasures(2000, 12), storage.MeasureKey{})(fn); err != nil {
			return storage.MeasureKey{}, err
		}
		return storage.MeasureKey{}, failing
	}
	tests := []struct {
		name    string
		each    eachMeasure
		want    error // wanted in the chain; nil: any
		started bool
	}{
		{"NaN", pageOf(nan, storage.MeasureKey{}), nil, false},
		{"-Inf", pageOf(inf, storage.MeasureKey{}), nil, false},
		{"Inf after the first write", pageOf(lateInf, storage.MeasureKey{}), errClientGone, true},
		{"read error at once", func(func(storage.Measure) error) (storage.MeasureKey, error) {
			return storage.MeasureKey{}, failing
		}, failing, false},
		{"read error after the first write", lateFail, failing, true},
	}
	s := &Server{log: zap.NewNop()}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			err := s.writeMeasurePage(rec, httptest.NewRequest(http.MethodGet, "/", nil), tt.each)
			if err == nil {
				t.Fatal("no error")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error %v, want %v in its chain", err, tt.want)
			}
			if tt.started {
				if !errors.Is(err, errClientGone) {
					t.Errorf("error %v after the first write does not keep the error mapper from writing", err)
				}
				if rec.Body.Len() < jsonChunk || json.Valid(rec.Body.Bytes()) {
					t.Errorf("body of %d bytes: want a cut page of at least %d", rec.Body.Len(), jsonChunk)
				}
			} else if rec.Body.Len() > 0 || len(rec.Header()) > 0 {
				t.Errorf("wrote %d bytes and headers %v before failing", rec.Body.Len(), rec.Header())
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
