package storage_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mymonit/mymonit/pkg/storage"
)

// readFixture is an experiment with sensors a, b, c (series ids in that
// order), a sensor without measures, and a second experiment whose rows
// must never show up.
type readFixture struct {
	s   *storage.Store
	exp storage.Experiment
	// rows are the measures of exp, in the read order.
	rows []storage.Measure
	ids  map[string]int64
}

var readT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// newReadFixture stores n measures per sensor: sensor k's measure i is at
// readT0 + i*step, value i*10+k (exact in float64), unit "V" on even i,
// tags on every third.
func newReadFixture(t *testing.T, n int, step time.Duration) readFixture {
	t.Helper()
	s, _ := newStore(t, storage.StoreParams{})
	f := readFixture{s: s, exp: createExperiment(t, s, "read"), ids: map[string]int64{}}
	other := createExperiment(t, s, "other")
	for _, name := range []string{"a", "b", "c", "empty"} {
		f.ids[name] = ensureSeries(t, s, f.exp.ID, name)
	}
	otherID := ensureSeries(t, s, other.ID, "a")
	var rows []storage.Row
	for k, name := range []string{"a", "b", "c"} {
		for i := range n {
			m := storage.Measure{SeriesID: f.ids[name], Sensor: name, Time: readT0.Add(time.Duration(i) * step), Value: float64(i*10 + k)}
			if i%2 == 0 {
				m.Unit = "V"
			}
			if i%3 == 0 {
				m.Tags = map[string]string{"rack": fmt.Sprint("r", i%7), "k": name}
			}
			f.rows = append(f.rows, m)
			rows = append(rows, storage.Row{SeriesID: m.SeriesID, Time: m.Time, Value: m.Value, Unit: m.Unit, Tags: m.Tags})
			rows = append(rows, storage.Row{SeriesID: otherID, Time: m.Time, Value: -1})
		}
	}
	if err := s.UpsertMeasures(testCtx(t), rows); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(f.rows, func(a, b storage.Measure) int {
		return cmp.Or(cmp.Compare(a.SeriesID, b.SeriesID), a.Time.Compare(b.Time))
	})
	return f
}

// want filters the fixture's rows by a selection, in the read order.
func (f readFixture) want(sel storage.Selection) []storage.Measure {
	out := []storage.Measure{}
	if sel.ExperimentID != f.exp.ID {
		return out
	}
	for _, m := range f.rows {
		if len(sel.Sensors) > 0 && !slices.Contains(sel.Sensors, m.Sensor) {
			continue
		}
		if !sel.From.IsZero() && m.Time.Before(sel.From) || !sel.To.IsZero() && !m.Time.Before(sel.To) {
			continue
		}
		out = append(out, m)
	}
	return out
}

// readAll follows the cursors from the first page to the last.
func readAll(t *testing.T, s *storage.Store, q storage.MeasureQuery) (rows []storage.Measure, pages int) {
	t.Helper()
	rows = []storage.Measure{}
	for {
		p, err := s.ReadMeasures(testCtx(t), q)
		if err != nil {
			t.Fatalf("ReadMeasures(%+v): %v", q, err)
		}
		pages++
		limit := cmp.Or(q.Limit, storage.DefaultReadLimit)
		if len(p.Measures) > limit {
			t.Fatalf("page of %d rows, limit %d", len(p.Measures), limit)
		}
		rows = append(rows, p.Measures...)
		if p.Next.IsZero() {
			return rows, pages
		}
		if len(p.Measures) != limit {
			t.Fatalf("a page of %d rows (limit %d) has a next cursor", len(p.Measures), limit)
		}
		if p.Next != p.Measures[len(p.Measures)-1].Key() {
			t.Fatalf("next cursor %+v is not the last row's key", p.Next)
		}
		q.After = p.Next
		if pages > 10000 {
			t.Fatal("too many pages")
		}
	}
}

func TestReadMeasures(t *testing.T) {
	f := newReadFixture(t, 25, time.Second)
	exp := f.exp.ID
	tests := []struct {
		name  string
		sel   storage.Selection
		limit int
	}{
		{"all, default limit", storage.Selection{ExperimentID: exp}, 0},
		{"all, pages of 7", storage.Selection{ExperimentID: exp}, 7},
		{"all, pages of 1", storage.Selection{ExperimentID: exp}, 1},
		{"all, pages that divide the rows", storage.Selection{ExperimentID: exp}, 25},
		{"one sensor", storage.Selection{ExperimentID: exp, Sensors: []string{"b"}}, 4},
		{"two sensors, repeated", storage.Selection{ExperimentID: exp, Sensors: []string{"c", "a", "c"}}, 10},
		{"one sensor, repeated", storage.Selection{ExperimentID: exp, Sensors: []string{"c", "c"}}, 6},
		{"one sensor, from and to", storage.Selection{ExperimentID: exp, Sensors: []string{"a"},
			From: readT0.Add(3 * time.Second), To: readT0.Add(11 * time.Second)}, 3},
		{"unknown sensor", storage.Selection{ExperimentID: exp, Sensors: []string{"nope"}}, 0},
		{"sensor of another experiment only", storage.Selection{ExperimentID: exp, Sensors: []string{"A"}}, 0},
		{"sensor without measures", storage.Selection{ExperimentID: exp, Sensors: []string{"empty"}}, 0},
		{"from", storage.Selection{ExperimentID: exp, From: readT0.Add(20 * time.Second)}, 4},
		{"to", storage.Selection{ExperimentID: exp, To: readT0.Add(3 * time.Second)}, 2},
		{"from and to", storage.Selection{ExperimentID: exp, Sensors: []string{"a", "b"},
			From: readT0.Add(5 * time.Second), To: readT0.Add(9 * time.Second)}, 3},
		{"from between microseconds", storage.Selection{ExperimentID: exp,
			From: readT0.Add(5*time.Second - time.Nanosecond), To: readT0.Add(6 * time.Second)}, 0},
		{"range with no rows", storage.Selection{ExperimentID: exp, From: readT0.Add(-time.Hour), To: readT0}, 0},
		{"before the schema's years", storage.Selection{ExperimentID: exp, From: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
			To: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)}, 100},
		{"unknown experiment", storage.Selection{ExperimentID: exp + 1000}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, pages := readAll(t, f.s, storage.MeasureQuery{Selection: tt.sel, Limit: tt.limit})
			want := f.want(tt.sel)
			if diff := gocmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
			limit := cmp.Or(tt.limit, storage.DefaultReadLimit)
			if wantPages := max(1, (len(want)+limit-1)/limit); pages != wantPages {
				t.Errorf("%d pages, want %d", pages, wantPages)
			}
		})
	}
}

// TestReadOneSensorAfterOtherSeries: a cursor of another series (an
// earlier or a later one, as a client may send when it narrows its sensors
// between pages) resumes in the read order: every row of a later series,
// none of an earlier one.
func TestReadOneSensorAfterOtherSeries(t *testing.T) {
	f := newReadFixture(t, 10, time.Second)
	ctx := testCtx(t)
	sel := storage.Selection{ExperimentID: f.exp.ID, Sensors: []string{"b"}}
	all := f.want(sel)
	tests := []struct {
		name  string
		after storage.MeasureKey
		want  []storage.Measure
	}{
		{"after a row of an earlier series", storage.MeasureKey{SeriesID: f.ids["a"], Time: readT0.Add(time.Hour)}, all},
		{"after a row of a later series", storage.MeasureKey{SeriesID: f.ids["c"], Time: readT0.Add(-time.Hour)}, nil},
		{"after its own fourth row", all[3].Key(), all[4:]},
		{"between two of its rows", storage.MeasureKey{SeriesID: f.ids["b"], Time: all[3].Time.Add(time.Microsecond)}, all[4:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := f.s.ReadMeasures(ctx, storage.MeasureQuery{Selection: sel, After: tt.after, Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			if diff := gocmp.Diff(tt.want, p.Measures, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
		})
	}
}

// TestEachMeasureStops: an error of the callback ends the read at once and
// comes back as it is; the rows before it were the page's first rows.
func TestEachMeasureStops(t *testing.T) {
	f := newReadFixture(t, 10, time.Second)
	stop := errors.New("client gone")
	var got []storage.Measure
	next, err := f.s.EachMeasure(testCtx(t), storage.MeasureQuery{Selection: storage.Selection{ExperimentID: f.exp.ID}, Limit: 20},
		func(m storage.Measure) error {
			got = append(got, m)
			if len(got) == 7 {
				return stop
			}
			return nil
		})
	if err != stop {
		t.Fatalf("error %v, want the callback's own", err)
	}
	if !next.IsZero() {
		t.Errorf("next key %+v after a failed read", next)
	}
	if diff := gocmp.Diff(f.want(storage.Selection{ExperimentID: f.exp.ID})[:7], got); diff != "" {
		t.Errorf("rows before the stop (-want +got):\n%s", diff)
	}
}

func TestReadMeasuresCursorIsStable(t *testing.T) {
	f := newReadFixture(t, 10, time.Second)
	ctx := testCtx(t)
	q := storage.MeasureQuery{Selection: storage.Selection{ExperimentID: f.exp.ID}, Limit: 15}
	p1, err := f.s.ReadMeasures(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	// The cursor is in the middle of sensor b. Add a row before it (b,
	// earlier), one after it (b, later), and replace one after it.
	last := p1.Measures[len(p1.Measures)-1]
	if last.Sensor != "b" {
		t.Fatalf("cursor on sensor %q, want b", last.Sensor)
	}
	b := f.ids["b"]
	before := storage.Row{SeriesID: b, Time: last.Time.Add(-1500 * time.Millisecond), Value: 1e9}
	after := storage.Row{SeriesID: b, Time: last.Time.Add(500 * time.Millisecond), Value: 2e9}
	replaced := storage.Row{SeriesID: f.ids["c"], Time: readT0, Value: 3e9}
	if err := f.s.UpsertMeasures(ctx, []storage.Row{before, after, replaced}); err != nil {
		t.Fatal(err)
	}
	q.After = p1.Next
	rest, _ := readAll(t, f.s, q)
	var values []float64
	for _, m := range rest {
		values = append(values, m.Value)
	}
	if slices.Contains(values, 1e9) {
		t.Error("a row inserted before the cursor showed up after it")
	}
	if !slices.Contains(values, 2e9) || !slices.Contains(values, 3e9) {
		t.Errorf("rows added or replaced after the cursor are missing: %v", values)
	}
	if got, want := len(p1.Measures)+len(rest), len(f.rows)+1; got != want {
		t.Errorf("%d rows over both pages, want %d (no row skipped or repeated)", got, want)
	}
}

func TestReadValidation(t *testing.T) {
	s, _ := newStore(t, storage.StoreParams{})
	e := createExperiment(t, s, "valid")
	ok := storage.Selection{ExperimentID: e.ID}
	sels := map[string]storage.Selection{
		"experiment id 0":   {ExperimentID: 0},
		"empty sensor":      {ExperimentID: e.ID, Sensors: []string{"a", ""}},
		"long sensor":       {ExperimentID: e.ID, Sensors: []string{strings.Repeat("x", storage.MaxSensorBytes+1)}},
		"non-UTF-8 sensor":  {ExperimentID: e.ID, Sensors: []string{"\xff"}},
		"from after to":     {ExperimentID: e.ID, From: readT0.Add(time.Second), To: readT0},
		"from equal to":     {ExperimentID: e.ID, From: readT0, To: readT0},
		"(limit -1)":        ok,
		"(limit too large)": ok,
	}
	limits := map[string]int{"(limit -1)": -1, "(limit too large)": storage.MaxReadLimit + 1}
	for name, sel := range sels {
		t.Run(name, func(t *testing.T) {
			ctx := testCtx(t)
			_, err := s.ReadMeasures(ctx, storage.MeasureQuery{Selection: sel, Limit: limits[name]})
			if !errors.Is(err, storage.ErrInvalid) {
				t.Errorf("ReadMeasures: %v, want ErrInvalid", err)
			}
			_, err = s.ReadBuckets(ctx, storage.BucketQuery{Selection: sel, Every: time.Minute, Limit: limits[name]})
			if !errors.Is(err, storage.ErrInvalid) {
				t.Errorf("ReadBuckets: %v, want ErrInvalid", err)
			}
			if limits[name] > 0 {
				return // streams have no maximum
			}
			for _, err := range s.StreamMeasures(ctx, storage.MeasureQuery{Selection: sel, Limit: limits[name]}) {
				if !errors.Is(err, storage.ErrInvalid) {
					t.Errorf("StreamMeasures: %v, want ErrInvalid", err)
				}
			}
		})
	}
	for _, every := range []time.Duration{0, -time.Second, time.Microsecond, 1500*time.Nanosecond + time.Millisecond, storage.MaxEvery + time.Hour} {
		_, err := s.ReadBuckets(testCtx(t), storage.BucketQuery{Selection: ok, Every: every})
		if !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("ReadBuckets(every %s): %v, want ErrInvalid", every, err)
		}
		for _, err := range s.StreamBuckets(testCtx(t), storage.BucketQuery{Selection: ok, Every: every}) {
			if !errors.Is(err, storage.ErrInvalid) {
				t.Errorf("StreamBuckets(every %s): %v, want ErrInvalid", every, err)
			}
		}
	}
}

// collect runs a sequence to its end, failing on an error.
func collect[T any](t *testing.T, seq func(func(T, error) bool)) []T {
	t.Helper()
	out := []T{}
	for v, err := range seq {
		if err != nil {
			t.Fatalf("stream: %v", err)
		}
		out = append(out, v)
	}
	return out
}

// TestStreamMeasures streams more rows than one statement reads, so the
// stream resumes from its own keyset cursor several times, across series.
func TestStreamMeasures(t *testing.T) {
	f := newReadFixture(t, 4321, time.Millisecond) // 12963 rows: three statements' worth
	ctx := testCtx(t)
	all := storage.Selection{ExperimentID: f.exp.ID}
	t.Run("everything", func(t *testing.T) {
		got := collect(t, f.s.StreamMeasures(ctx, storage.MeasureQuery{Selection: all}))
		if diff := gocmp.Diff(f.rows, got); diff != "" {
			t.Errorf("streamed rows (-want +got):\n%s", diff)
		}
	})
	t.Run("same as pages", func(t *testing.T) {
		sel := storage.Selection{ExperimentID: f.exp.ID, Sensors: []string{"c", "a"}, From: readT0.Add(time.Second), To: readT0.Add(4 * time.Second)}
		pages, _ := readAll(t, f.s, storage.MeasureQuery{Selection: sel, Limit: storage.MaxReadLimit})
		got := collect(t, f.s.StreamMeasures(ctx, storage.MeasureQuery{Selection: sel}))
		if diff := gocmp.Diff(pages, got); diff != "" {
			t.Errorf("stream vs pages (-pages +stream):\n%s", diff)
		}
		if len(got) != 6000 {
			t.Errorf("%d rows, want 6000", len(got))
		}
	})
	t.Run("after a cursor, with a cap", func(t *testing.T) {
		after := f.rows[4000]
		got := collect(t, f.s.StreamMeasures(ctx, storage.MeasureQuery{Selection: all, After: after.Key(), Limit: 6500}))
		if diff := gocmp.Diff(f.rows[4001:4001+6500], got); diff != "" {
			t.Errorf("rows (-want +got):\n%s", diff)
		}
	})
	t.Run("break", func(t *testing.T) {
		n := 0
		for _, err := range f.s.StreamMeasures(ctx, storage.MeasureQuery{Selection: all}) {
			if err != nil {
				t.Fatal(err)
			}
			if n++; n == 10 {
				break
			}
		}
		// The connection went back to the pool: the store still works.
		if _, err := f.s.ReadMeasures(ctx, storage.MeasureQuery{Selection: all, Limit: 1}); err != nil {
			t.Errorf("read after a broken-off stream: %v", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		cctx, cancel := contextWithCancel(t)
		var last error
		n := 0
		for _, err := range f.s.StreamMeasures(cctx, storage.MeasureQuery{Selection: all}) {
			if err != nil {
				last = err
				break
			}
			if n++; n == 100 {
				cancel()
			}
		}
		if last == nil || n >= len(f.rows) {
			t.Errorf("a cancelled stream ended without an error after %d rows", n)
		}
	})
}

// wantBuckets aggregates rows like the server should.
func wantBuckets(rows []storage.Measure, every time.Duration, after storage.MeasureKey) []storage.Bucket {
	out := []storage.Bucket{}
	for _, m := range rows {
		start := m.Time.Truncate(every) // every divides a day here: aligned on the epoch
		if !after.IsZero() && (m.SeriesID < after.SeriesID || m.SeriesID == after.SeriesID && !start.After(after.Time)) {
			continue
		}
		if n := len(out); n > 0 && out[n-1].SeriesID == m.SeriesID && out[n-1].Start.Equal(start) {
			b := &out[n-1]
			b.Count++
			b.Avg += m.Value // the sum until the end
			b.Min, b.Max = min(b.Min, m.Value), max(b.Max, m.Value)
			continue
		}
		out = append(out, storage.Bucket{SeriesID: m.SeriesID, Sensor: m.Sensor, Start: start, Count: 1, Avg: m.Value, Min: m.Value, Max: m.Value})
	}
	for i := range out {
		out[i].Avg /= float64(out[i].Count)
	}
	return out
}

func readAllBuckets(t *testing.T, s *storage.Store, q storage.BucketQuery) []storage.Bucket {
	t.Helper()
	out := []storage.Bucket{}
	for pages := 0; ; pages++ {
		p, err := s.ReadBuckets(testCtx(t), q)
		if err != nil {
			t.Fatalf("ReadBuckets: %v", err)
		}
		if len(p.Buckets) > cmp.Or(q.Limit, storage.DefaultReadLimit) {
			t.Fatalf("page of %d buckets, limit %d", len(p.Buckets), q.Limit)
		}
		out = append(out, p.Buckets...)
		if p.Next.IsZero() {
			return out
		}
		q.After = p.Next
		if pages > 10000 {
			t.Fatal("too many pages")
		}
	}
}

var approx = cmpopts.EquateApprox(0, 1e-12)

func TestReadBuckets(t *testing.T) {
	f := newReadFixture(t, 600, 700*time.Millisecond) // 7 minutes per sensor
	exp := f.exp.ID
	tests := []struct {
		name  string
		sel   storage.Selection
		every time.Duration
		limit int
	}{
		{"minutes", storage.Selection{ExperimentID: exp}, time.Minute, 0},
		{"minutes, pages of 4", storage.Selection{ExperimentID: exp}, time.Minute, 4},
		{"10s, pages of 3", storage.Selection{ExperimentID: exp, Sensors: []string{"b"}}, 10 * time.Second, 3},
		{"one bucket per sensor", storage.Selection{ExperimentID: exp}, 24 * time.Hour, 2},
		{"1ms, one measure per bucket", storage.Selection{ExperimentID: exp, Sensors: []string{"c"}}, time.Millisecond, 100},
		{"range cuts buckets", storage.Selection{ExperimentID: exp, From: readT0.Add(90 * time.Second), To: readT0.Add(150*time.Second + 1)},
			time.Minute, 1},
		{"unknown sensor", storage.Selection{ExperimentID: exp, Sensors: []string{"zz"}}, time.Minute, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := readAllBuckets(t, f.s, storage.BucketQuery{Selection: tt.sel, Every: tt.every, Limit: tt.limit})
			want := wantBuckets(f.want(tt.sel), tt.every, storage.MeasureKey{})
			if diff := gocmp.Diff(want, got, approx); diff != "" {
				t.Errorf("buckets (-want +got):\n%s", diff)
			}
			streamed := collect(t, f.s.StreamBuckets(testCtx(t), storage.BucketQuery{Selection: tt.sel, Every: tt.every}))
			if diff := gocmp.Diff(want, streamed, approx); diff != "" {
				t.Errorf("streamed buckets (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("range cuts buckets: counts", func(t *testing.T) {
		// [12:01:30, 12:02:30.000000001): the bucket of 12:01 holds 12:01:30 to
		// 12:01:59.9, that of 12:02 the rest, and the bound is rounded up to a
		// whole microsecond.
		sel := storage.Selection{ExperimentID: exp, Sensors: []string{"a"}, From: readT0.Add(90 * time.Second), To: readT0.Add(150*time.Second + 1)}
		got := readAllBuckets(t, f.s, storage.BucketQuery{Selection: sel, Every: time.Minute})
		var counts []int64
		for _, b := range got {
			counts = append(counts, b.Count)
		}
		if diff := gocmp.Diff([]int64{43, 43}, counts); diff != "" {
			t.Errorf("counts (-want +got):\n%s", diff)
		}
	})
	t.Run("streamed with a cap after a cursor", func(t *testing.T) {
		all := readAllBuckets(t, f.s, storage.BucketQuery{Selection: storage.Selection{ExperimentID: exp}, Every: time.Minute})
		got := collect(t, f.s.StreamBuckets(testCtx(t), storage.BucketQuery{
			Selection: storage.Selection{ExperimentID: exp}, Every: time.Minute, After: all[5].Key(), Limit: 9}))
		if diff := gocmp.Diff(all[6:15], got, approx); diff != "" {
			t.Errorf("buckets (-want +got):\n%s", diff)
		}
	})
}

// TestReadBucketsSparse reads buckets much narrower than the gaps between
// measures, and far more than one window holds, with values that are not
// integers.
func TestReadBucketsSparse(t *testing.T) {
	s, _ := newStore(t, storage.StoreParams{})
	e := createExperiment(t, s, "sparse")
	id := ensureSeries(t, s, e.ID, "slow")
	var rows []storage.Row
	var ms []storage.Measure
	for i := range 3000 {
		// Every 17 minutes for a month, plus a second measure 250 ms later
		// every fifth time.
		ts := readT0.Add(time.Duration(i) * 17 * time.Minute)
		for j := range 1 + min(1, i%5/4) {
			m := storage.Measure{SeriesID: id, Sensor: "slow", Time: ts.Add(time.Duration(j) * 250 * time.Millisecond), Value: math.Sqrt(float64(i + j))}
			ms = append(ms, m)
			rows = append(rows, storage.Row{SeriesID: id, Time: m.Time, Value: m.Value})
		}
	}
	if err := s.UpsertMeasures(testCtx(t), rows); err != nil {
		t.Fatal(err)
	}
	q := storage.BucketQuery{Selection: storage.Selection{ExperimentID: e.ID}, Every: time.Second}
	want := wantBuckets(ms, time.Second, storage.MeasureKey{})
	if len(want) != 3000 {
		t.Fatalf("fixture: %d buckets", len(want))
	}
	for _, limit := range []int{0, 7, storage.MaxReadLimit} {
		q.Limit = limit
		if diff := gocmp.Diff(want, readAllBuckets(t, s, q), approx); diff != "" {
			t.Errorf("limit %d: buckets (-want +got):\n%s", limit, diff)
		}
	}
	q.Limit = 0
	if diff := gocmp.Diff(want, collect(t, s.StreamBuckets(testCtx(t), q)), approx); diff != "" {
		t.Errorf("streamed buckets (-want +got):\n%s", diff)
	}
}

func TestListSensors(t *testing.T) {
	f := newReadFixture(t, 30, time.Minute)
	got, err := f.s.ListSensors(testCtx(t), f.exp.ID)
	if err != nil {
		t.Fatal(err)
	}
	last := readT0.Add(29 * time.Minute)
	want := []storage.SensorStats{
		{SeriesID: f.ids["a"], Sensor: "a", Count: 30, First: readT0, Last: last},
		{SeriesID: f.ids["b"], Sensor: "b", Count: 30, First: readT0, Last: last},
		{SeriesID: f.ids["c"], Sensor: "c", Count: 30, First: readT0, Last: last},
		{SeriesID: f.ids["empty"], Sensor: "empty"},
	}
	if diff := gocmp.Diff(want, got); diff != "" {
		t.Errorf("sensors (-want +got):\n%s", diff)
	}
	none, err := f.s.ListSensors(testCtx(t), f.exp.ID+1000)
	if err != nil || len(none) != 0 {
		t.Errorf("sensors of an unknown experiment: %v, %v", none, err)
	}
}

// contextWithCancel is a test context with its cancel function.
func contextWithCancel(t *testing.T) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(testCtx(t))
	t.Cleanup(cancel)
	return ctx, cancel
}

// TestReadManySeries reads an experiment of more series than the largest
// group of one statement, most of them with a few measures, some without:
// reads group the series in growing statements, and every row must come
// once, in order, whatever the page size or stream.
func TestReadManySeries(t *testing.T) {
	s, _ := newStore(t, storage.StoreParams{})
	e := createExperiment(t, s, "many")
	var (
		rows []storage.Row
		want []storage.Measure
	)
	for k := range 600 {
		name := fmt.Sprintf("s%03d", k)
		id := ensureSeries(t, s, e.ID, name)
		if k%5 == 3 {
			continue // a series without measures
		}
		for i := range 1 + k%4 {
			m := storage.Measure{SeriesID: id, Sensor: name, Time: readT0.Add(time.Duration(i) * time.Second), Value: float64(k*10 + i)}
			want = append(want, m)
			rows = append(rows, storage.Row{SeriesID: id, Time: m.Time, Value: m.Value})
		}
	}
	if err := s.UpsertMeasures(testCtx(t), rows); err != nil {
		t.Fatal(err)
	}
	sel := storage.Selection{ExperimentID: e.ID}
	for _, limit := range []int{7, 1000, storage.MaxReadLimit} {
		got, _ := readAll(t, s, storage.MeasureQuery{Selection: sel, Limit: limit})
		if diff := gocmp.Diff(want, got); diff != "" {
			t.Errorf("pages of %d (-want +got):\n%s", limit, diff)
		}
	}
	if diff := gocmp.Diff(want, collect(t, s.StreamMeasures(testCtx(t), storage.MeasureQuery{Selection: sel}))); diff != "" {
		t.Errorf("stream (-want +got):\n%s", diff)
	}
	after := want[100]
	got := collect(t, s.StreamMeasures(testCtx(t), storage.MeasureQuery{Selection: sel, After: after.Key(), Limit: 800}))
	if diff := gocmp.Diff(want[101:901], got); diff != "" {
		t.Errorf("stream after a cursor, capped (-want +got):\n%s", diff)
	}
}
