package storage_test

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/mymonit/mymonit/pkg/storage"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)

// readMeasures returns the stored rows of the series, by series and time.
func readMeasures(t testing.TB, db *sql.DB, seriesIDs ...int64) []storage.Row {
	t.Helper()
	var out []storage.Row
	for _, id := range seriesIDs {
		rows, err := db.QueryContext(testCtx(t), "SELECT series_id, `time`, value, unit, tags FROM measures WHERE series_id = ? ORDER BY `time`", id)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var r storage.Row
			var unit, tags sql.NullString
			if err := rows.Scan(&r.SeriesID, &r.Time, &r.Value, &unit, &tags); err != nil {
				t.Fatal(err)
			}
			r.Unit = unit.String
			if tags.Valid {
				if err := json.Unmarshal([]byte(tags.String), &r.Tags); err != nil {
					t.Fatalf("tags %q: %v", tags.String, err)
				}
			}
			out = append(out, r)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	return out
}

func makeRows(series []int64, n int, value func(i int) float64) []storage.Row {
	rows := make([]storage.Row, n)
	for i := range rows {
		rows[i] = storage.Row{
			SeriesID: series[i%len(series)],
			Time:     t0.Add(time.Duration(i/len(series)) * time.Second),
			Value:    value(i),
			Unit:     "°C",
		}
	}
	return rows
}

var cmpRows = cmpopts.SortSlices(func(a, b storage.Row) bool {
	if a.SeriesID != b.SeriesID {
		return a.SeriesID < b.SeriesID
	}
	return a.Time.Before(b.Time)
})

func TestUpsertMeasuresChunkBoundaries(t *testing.T) {
	s, db := newStore(t, storage.StoreParams{})
	for _, n := range []int{1, 999, 1000, 1001, 2500} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			ctx := testCtx(t)
			e := createExperiment(t, s, fmt.Sprintf("chunks-%d", n))
			a, b := ensureSeries(t, s, e.ID, "a"), ensureSeries(t, s, e.ID, "b")
			rows := makeRows([]int64{a, b}, n, func(i int) float64 { return float64(i) + 0.5 })
			if err := s.UpsertMeasures(ctx, rows); err != nil {
				t.Fatalf("UpsertMeasures(%d rows): %v", n, err)
			}
			if got, err := s.CountMeasures(ctx, e.Slug); err != nil || got != int64(n) {
				t.Errorf("CountMeasures = %d, %v; want %d", got, err, n)
			}
			if diff := cmp.Diff(rows, readMeasures(t, db, a, b), cmpRows); diff != "" {
				t.Errorf("stored rows (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUpsertMeasuresUpdatesInPlace(t *testing.T) {
	s, db := newStore(t, storage.StoreParams{ChunkRows: 7}) // several chunks, prepared and ad-hoc
	ctx := testCtx(t)
	e := createExperiment(t, s, "upsert")
	a, b := ensureSeries(t, s, e.ID, "a"), ensureSeries(t, s, e.ID, "b")
	rows := makeRows([]int64{a, b}, 40, func(i int) float64 { return float64(i) })
	for i := range rows {
		rows[i].Tags = map[string]string{"v": "1"}
	}
	if err := s.UpsertMeasures(ctx, rows); err != nil {
		t.Fatal(err)
	}
	// Re-delivery with new values; half lose their unit and tags.
	updated := make([]storage.Row, len(rows))
	for i, r := range rows {
		r.Value = -r.Value - 1
		if i%2 == 0 {
			r.Unit, r.Tags = "", nil
		} else {
			r.Tags = map[string]string{"v": "2"}
		}
		updated[i] = r
	}
	for range 2 { // twice: still no new rows
		if err := s.UpsertMeasures(ctx, updated); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.CountMeasures(ctx, e.Slug); err != nil || n != int64(len(rows)) {
		t.Errorf("CountMeasures after upserts = %d, %v; want %d", n, err, len(rows))
	}
	if diff := cmp.Diff(updated, readMeasures(t, db, a, b), cmpRows, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("rows after upsert (-want +got):\n%s", diff)
	}
	if n := queryInt(t, db, "SELECT COUNT(*) FROM measures WHERE unit IS NULL AND tags IS NULL"); n != int64(len(rows)/2) {
		t.Errorf("%d rows with NULL unit and tags, want %d (empty is stored as NULL)", n, len(rows)/2)
	}
}

func TestUpsertMeasuresLastWriteWins(t *testing.T) {
	s, db := newStore(t, storage.StoreParams{ChunkRows: 3})
	ctx := testCtx(t)
	e := createExperiment(t, s, "lww")
	a := ensureSeries(t, s, e.ID, "a")
	tA := t0
	rows := []storage.Row{
		{SeriesID: a, Time: tA, Value: 1, Unit: "first"},
		{SeriesID: a, Time: tA.Add(time.Second), Value: 10},
		{SeriesID: a, Time: tA.Add(2 * time.Second), Value: 20},
		{SeriesID: a, Time: tA.Add(3 * time.Second), Value: 30},
		{SeriesID: a, Time: tA.In(time.FixedZone("X", -7*3600)), Value: 2, Tags: map[string]string{"k": "v"}}, // same instant
		{SeriesID: a, Time: tA.Add(3 * time.Second), Value: 31},
		{SeriesID: a, Time: tA.Add(999 * time.Nanosecond), Value: 3, Unit: "last"}, // same microsecond
	}
	if err := s.UpsertMeasures(ctx, rows); err != nil {
		t.Fatal(err)
	}
	want := []storage.Row{
		{SeriesID: a, Time: tA, Value: 3, Unit: "last"},
		{SeriesID: a, Time: tA.Add(time.Second), Value: 10},
		{SeriesID: a, Time: tA.Add(2 * time.Second), Value: 20},
		{SeriesID: a, Time: tA.Add(3 * time.Second), Value: 31},
	}
	if diff := cmp.Diff(want, readMeasures(t, db, a), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("stored rows (-want +got):\n%s", diff)
	}
}

func TestUpsertMeasuresTimePrecision(t *testing.T) {
	s, db := newStore(t, storage.StoreParams{})
	ctx := testCtx(t)
	e := createExperiment(t, s, "precision")
	a := ensureSeries(t, s, e.ID, "a")
	paris := time.FixedZone("CEST", 2*3600)
	tests := []struct {
		in   time.Time
		want time.Time
	}{
		{time.Date(2026, 5, 6, 7, 8, 9, 1000, time.UTC), time.Date(2026, 5, 6, 7, 8, 9, 1000, time.UTC)},
		{time.Date(2026, 5, 6, 7, 8, 10, 999999999, time.UTC), time.Date(2026, 5, 6, 7, 8, 10, 999999000, time.UTC)}, // truncated, not rounded
		{time.Date(2026, 5, 6, 9, 8, 11, 500, paris), time.Date(2026, 5, 6, 7, 8, 11, 0, time.UTC)},
		{time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)},
		{time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)}, // no zero-date confusion
	}
	var rows, want []storage.Row
	for i, tt := range tests {
		rows = append(rows, storage.Row{SeriesID: a, Time: tt.in, Value: float64(i)})
		want = append(want, storage.Row{SeriesID: a, Time: tt.want, Value: float64(i)})
	}
	if err := s.UpsertMeasures(ctx, rows); err != nil {
		t.Fatal(err)
	}
	got := readMeasures(t, db, a)
	if diff := cmp.Diff(want, got, cmpRows, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("times (-want +got):\n%s", diff)
	}
	for _, r := range got {
		if r.Time.Location() != time.UTC {
			t.Errorf("time %v read back in %v, want UTC", r.Time, r.Time.Location())
		}
	}
}

func TestUpsertMeasuresValuesAndTagsRoundTrip(t *testing.T) {
	s, db := newStore(t, storage.StoreParams{})
	ctx := testCtx(t)
	e := createExperiment(t, s, "tags")
	a := ensureSeries(t, s, e.ID, "a")
	tests := []struct {
		value float64
		unit  string
		tags  map[string]string
	}{
		{0, "", nil},
		{-0.000001, "m/s²", map[string]string{}},
		{math.MaxFloat64, "µS/cm", map[string]string{"site": "Lac Léman", "depth": "12.5"}},
		{math.SmallestNonzeroFloat64, "0123456789abcdef", map[string]string{`quote"back\slash`: "<tag>&'", "": "empty key", "nl": "a\nb\tc"}},
		{-1e308, "°", map[string]string{"emoji": "🌊", "zero": "\u0000x"}},
	}
	var rows []storage.Row
	for i, tt := range tests {
		rows = append(rows, storage.Row{SeriesID: a, Time: t0.Add(time.Duration(i) * time.Millisecond), Value: tt.value, Unit: tt.unit, Tags: tt.tags})
	}
	if err := s.UpsertMeasures(ctx, rows); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rows, readMeasures(t, db, a), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	var raw string
	if err := db.QueryRowContext(ctx, "SELECT tags FROM measures WHERE series_id = ? AND `time` = ?", a, rows[2].Time).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	// Compact, sorted keys, no HTML escaping. (MySQL 8 re-serialises JSON with
	// spaces after separators; compare after removing them.)
	if want := `{"depth":"12.5","site":"Lac Léman"}`; raw != want && raw != `{"depth": "12.5", "site": "Lac Léman"}` {
		t.Errorf("stored tags = %s, want %s", raw, want)
	}
}

func TestUpsertMeasuresRejectsInvalidRows(t *testing.T) {
	s, _ := newStore(t, storage.StoreParams{})
	ctx := testCtx(t)
	e := createExperiment(t, s, "invalid")
	a := ensureSeries(t, s, e.ID, "a")
	good := storage.Row{SeriesID: a, Time: t0, Value: 1}
	tests := []struct {
		name string
		bad  storage.Row
	}{
		{"NaN", storage.Row{SeriesID: a, Time: t0.Add(time.Second), Value: math.NaN()}},
		{"+Inf", storage.Row{SeriesID: a, Time: t0.Add(time.Second), Value: math.Inf(1)}},
		{"no series", storage.Row{Time: t0.Add(time.Second)}},
		{"year 999", storage.Row{SeriesID: a, Time: time.Date(999, 12, 31, 0, 0, 0, 0, time.UTC)}},
		{"zero time", storage.Row{SeriesID: a}},
		{"year 10000", storage.Row{SeriesID: a, Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{"unit of 17 characters", storage.Row{SeriesID: a, Time: t0.Add(time.Second), Unit: "0123456789abcdefg"}},
		{"unit not UTF-8", storage.Row{SeriesID: a, Time: t0.Add(time.Second), Unit: "\xff"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.UpsertMeasures(ctx, []storage.Row{good, tt.bad})
			if !errors.Is(err, storage.ErrInvalid) {
				t.Errorf("UpsertMeasures = %v, want ErrInvalid", err)
			}
			if storage.IsRetryable(err) {
				t.Errorf("IsRetryable(%v) = true", err)
			}
		})
	}
	if n, err := s.CountMeasures(ctx, e.Slug); err != nil || n != 0 {
		t.Errorf("CountMeasures = %d, %v; want 0: a batch with an invalid row writes nothing", n, err)
	}
}

func TestUpsertMeasuresIsAtomic(t *testing.T) {
	s, db := newStore(t, storage.StoreParams{ChunkRows: 10})
	ctx := testCtx(t)
	e := createExperiment(t, s, "atomic")
	a := ensureSeries(t, s, e.ID, "a")
	// A server-side failure in the third chunk, after two chunks went in.
	_, err := db.ExecContext(ctx, `CREATE TRIGGER measures_poison BEFORE INSERT ON measures FOR EACH ROW
		BEGIN IF NEW.value = 666 THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'poison'; END IF; END`)
	if err != nil {
		t.Fatal(err)
	}
	rows := makeRows([]int64{a}, 25, func(i int) float64 { return float64(i) })
	rows[22].Value = 666
	err = s.UpsertMeasures(ctx, rows)
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1644 {
		t.Fatalf("UpsertMeasures = %v, want the trigger's error 1644", err)
	}
	if storage.IsRetryable(err) {
		t.Errorf("IsRetryable(%v) = true, want false", err)
	}
	if n, err := s.CountMeasures(ctx, e.Slug); err != nil || n != 0 {
		t.Errorf("CountMeasures = %d, %v; want 0 (all or nothing)", n, err)
	}
}

func TestCountMeasures(t *testing.T) {
	s, _ := newStore(t, storage.StoreParams{})
	ctx := testCtx(t)
	e1, e2 := createExperiment(t, s, "count-1"), createExperiment(t, s, "count-2")
	a, b := ensureSeries(t, s, e1.ID, "a"), ensureSeries(t, s, e2.ID, "a")
	if err := s.UpsertMeasures(ctx, append(makeRows([]int64{a}, 3, func(int) float64 { return 1 }), makeRows([]int64{b}, 5, func(int) float64 { return 1 })...)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		slug    string
		want    int64
		wantErr error
	}{
		{"count-1", 3, nil},
		{"count-2", 5, nil},
		{"count-3", 0, storage.ErrNotFound},
		{"count-1 ", 0, storage.ErrNotFound},
	}
	for _, tt := range tests {
		n, err := s.CountMeasures(ctx, tt.slug)
		if n != tt.want || !errors.Is(err, tt.wantErr) {
			t.Errorf("CountMeasures(%q) = %d, %v; want %d, %v", tt.slug, n, err, tt.want, tt.wantErr)
		}
	}
	if err := s.UpsertMeasures(ctx, nil); err != nil {
		t.Errorf("UpsertMeasures(nil) = %v", err)
	}
}
