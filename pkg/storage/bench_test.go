package storage_test

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/mymonit/mymonit/pkg/storage"
	"go.uber.org/zap"
)

// benchSeries prepares a store with series sensors of one experiment.
func benchSeries(b *testing.B, series int) (*storage.Store, *sql.DB, []int64) {
	b.Helper()
	s, db := newStore(b, storage.StoreParams{Logger: zap.NewNop()})
	e := createExperiment(b, s, "bench")
	ids := make([]int64, series)
	for i := range ids {
		ids[i] = ensureSeries(b, s, e.ID, fmt.Sprintf("sensor-%03d", i))
	}
	return s, db, ids
}

// BenchmarkUpsertMeasures writes transactions of 1000 rows over 10 series
// through UpsertMeasures (one prepared 1000-row statement per transaction).
// "insert" appends new times; "redeliver" rewrites the same keys (the
// at-least-once duplicate path).
func BenchmarkUpsertMeasures(b *testing.B) {
	const batch, series = 1000, 10
	for _, mode := range []string{"insert", "redeliver"} {
		b.Run(mode, func(b *testing.B) {
			s, _, ids := benchSeries(b, series)
			ctx := context.Background()
			rows := make([]storage.Row, batch)
			start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			n := 0
			for b.Loop() {
				if mode == "insert" || n == 0 {
					for i := range rows {
						rows[i] = storage.Row{
							SeriesID: ids[i%series],
							Time:     start.Add(time.Duration(n*batch/series+i/series) * time.Millisecond),
							Value:    float64(n + i),
							Unit:     "°C",
							Tags:     map[string]string{"site": "a"},
						}
					}
				}
				if err := s.UpsertMeasures(ctx, rows); err != nil {
					b.Fatal(err)
				}
				n++
			}
			b.ReportMetric(float64(n*batch)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// BenchmarkUpsertMeasuresNaive writes the same rows one by one, each an
// autocommit single-row INSERT ... ON DUPLICATE KEY UPDATE (prepared): what
// an ingest without batching would do.
func BenchmarkUpsertMeasuresNaive(b *testing.B) {
	const series = 10
	_, db, ids := benchSeries(b, series)
	ctx := context.Background()
	stmt, err := db.PrepareContext(ctx, "INSERT INTO measures (series_id, `time`, value, unit, tags) VALUES (?, ?, ?, ?, ?)"+
		" ON DUPLICATE KEY UPDATE value = VALUES(value), unit = VALUES(unit), tags = VALUES(tags)")
	if err != nil {
		b.Fatal(err)
	}
	defer stmt.Close()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	n := 0
	for b.Loop() {
		_, err := stmt.ExecContext(ctx, ids[n%series], start.Add(time.Duration(n/series)*time.Millisecond), float64(n), "°C", `{"site":"a"}`)
		if err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "rows/s")
}
