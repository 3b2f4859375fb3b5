package storage_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/mymonit/mymonit/pkg/storage"
	"github.com/mymonit/mymonit/pkg/testenv"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// testCtx returns a context bounded well below the test timeout.
func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// openDB opens a pool on dsn, closed when the test ends.
func openDB(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	db, err := storage.Open(testCtx(t), storage.Config{DSN: dsn, MaxOpenConns: 8, MaxIdleConns: 8, ConnMaxLifetime: time.Minute})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// freshDB returns a pool on a new, empty database.
func freshDB(t testing.TB) *sql.DB {
	t.Helper()
	return openDB(t, testenv.MySQLDatabase(t))
}

// migratedDB returns a pool on a new database with the embedded schema.
func migratedDB(t testing.TB) *sql.DB {
	t.Helper()
	db := freshDB(t)
	log := zap.NewNop() // benchmarks print what tests log
	if tt, ok := t.(*testing.T); ok {
		log = zaptest.NewLogger(tt)
	}
	if _, err := storage.Migrate(testCtx(t), db, log); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return db
}

// newStore returns a store over a migrated database.
func newStore(t testing.TB, p storage.StoreParams) (*storage.Store, *sql.DB) {
	t.Helper()
	if p.DB == nil {
		p.DB = migratedDB(t)
	}
	if p.Logger == nil {
		p.Logger = zaptest.NewLogger(t)
	}
	s := storage.NewStore(p)
	t.Cleanup(func() { _ = s.Close() })
	return s, p.DB
}

// createExperiment registers an experiment or fails the test.
func createExperiment(t testing.TB, s *storage.Store, slug string) storage.Experiment {
	t.Helper()
	e, err := s.CreateExperiment(testCtx(t), storage.Experiment{Slug: slug, Name: "Experiment " + slug})
	if err != nil {
		t.Fatalf("CreateExperiment(%q): %v", slug, err)
	}
	return e
}

// ensureSeries returns the id of one series or fails the test.
func ensureSeries(t testing.TB, s *storage.Store, experimentID int64, sensor string) int64 {
	t.Helper()
	k := storage.SeriesKey{ExperimentID: experimentID, Sensor: sensor}
	ids, err := s.EnsureSeries(testCtx(t), []storage.SeriesKey{k})
	if err != nil {
		t.Fatalf("EnsureSeries: %v", err)
	}
	return ids[k]
}

// queryInt runs a query returning one integer.
func queryInt(t testing.TB, db *sql.DB, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRowContext(testCtx(t), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}
