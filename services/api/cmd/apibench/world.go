package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/go-sql-driver/mysql"
	"go.uber.org/zap"

	"github.com/mymonit/mymonit/pkg/benchkit"
	"github.com/mymonit/mymonit/pkg/storage"
	"github.com/mymonit/mymonit/pkg/testenv"
)

// experimentSlug is the experiment every benchmark measure belongs to.
const experimentSlug = "apibench"

// step is the time between two points of a sensor.
const step = time.Second

// cleanupTimeout bounds each cleanup step, which runs even when the run's
// context is done (interrupt).
const cleanupTimeout = 30 * time.Second

// t0 is the time of the first point of every sensor.
func t0() time.Time { return time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC) }

// pointTime is the time of point j of every sensor.
func pointTime(j int) time.Time { return t0().Add(time.Duration(j) * step) }

// sensorName names sensor i.
func sensorName(i int) string { return fmt.Sprintf("apibench/s%04d", i) }

// pointValue is the value of point j of sensor i: two decimals, as an
// instrument would give.
func pointValue(i, j int) float64 { return 20 + float64((i*7919+j*31)%10000)/100 }

// unit is the unit of every benchmark measure.
const unit = "V"

// world is the database of one run: migrated, the experiment and its series
// registered, the measures loaded.
type world struct {
	opts   *options
	dbName string
	dsn    string // selects dbName
	// db serves the store and the direct SQL of the baselines: the same
	// pool settings and session variables as the api's.
	db         *sql.DB
	store      *storage.Store
	experiment storage.Experiment
	series     []int64 // series id of sensor i
	// reused is true when -keep found the measures already loaded.
	reused bool
}

// newWorld creates (or with -keep, opens) the database and registers the
// experiment and its series; load fills it. The returned cleanup drops a
// database of this run (not the -keep one); it must be called even when
// newWorld fails.
func newWorld(ctx context.Context, opts *options, say func(string, ...any)) (*world, func() error, error) {
	noop := func() error { return nil }
	w := &world{opts: opts, dbName: testenv.Name("mymonit_apibench")}
	if opts.keep {
		w.dbName = opts.keepDB
	}
	cfg, err := mysql.ParseDSN(opts.mysqlDSN)
	if err != nil {
		return nil, noop, fmt.Errorf("-mysql-dsn: %w", err)
	}
	cfg.DBName = ""
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return nil, noop, fmt.Errorf("open MySQL/MariaDB server: %w", err)
	}
	admin.SetMaxOpenConns(1)
	created := false
	cleanup := func() error {
		var errs []error
		if w.store != nil {
			errs = append(errs, w.store.Close())
		}
		if w.db != nil {
			errs = append(errs, w.db.Close())
		}
		if created && !opts.keep {
			if err := retry(func() error { return dropDatabase(ctx, admin, w.dbName) }); err != nil {
				errs = append(errs, fmt.Errorf("drop database %s: %w", w.dbName, err))
			}
		}
		errs = append(errs, admin.Close())
		return errors.Join(errs...)
	}
	if err := admin.PingContext(ctx); err != nil {
		return nil, cleanup, fmt.Errorf("MySQL/MariaDB at %s is not reachable (start it with `make services`): %w", cfg.Addr, err)
	}
	// Dropped at cleanup even if the CREATE seems to fail: an interrupt may
	// cut the reply of a CREATE the server did.
	created = true
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS "+w.dbName+" CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		return nil, cleanup, fmt.Errorf("create database %s: %w", w.dbName, err)
	}
	cfg.DBName = w.dbName
	w.dsn = cfg.FormatDSN()
	if err := w.open(ctx); err != nil {
		return nil, cleanup, err
	}
	if opts.keep {
		ok, why, err := w.holdsExpected(ctx)
		if err != nil {
			return nil, cleanup, err
		}
		if ok {
			w.reused = true
			say("database %s already holds the %s measures of %d sensors: reused (-keep)", w.dbName, benchkit.Thousands(float64(opts.measures)), opts.sensors)
			return w, cleanup, nil
		}
		say("database %s %s: dropping and loading it again (-keep)", w.dbName, why)
		if err := errors.Join(w.store.Close(), w.db.Close()); err != nil {
			return nil, cleanup, err
		}
		w.store, w.db = nil, nil
		if err := dropDatabase(ctx, admin, w.dbName); err != nil {
			return nil, cleanup, fmt.Errorf("drop database %s: %w", w.dbName, err)
		}
		if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+w.dbName+" CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
			return nil, cleanup, fmt.Errorf("create database %s: %w", w.dbName, err)
		}
		if err := w.open(ctx); err != nil {
			return nil, cleanup, err
		}
	}
	if err := w.register(ctx); err != nil {
		return nil, cleanup, err
	}
	return w, cleanup, nil
}

func dropDatabase(ctx context.Context, admin *sql.DB, name string) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_, err := admin.ExecContext(cctx, "DROP DATABASE IF EXISTS "+name)
	return err
}

// open opens the pool and the store and migrates the schema.
func (w *world) open(ctx context.Context) error {
	db, err := storage.Open(ctx, storage.Config{DSN: w.dsn, MaxOpenConns: 8, MaxIdleConns: 8, ConnMaxLifetime: 30 * time.Minute})
	if err != nil {
		return err
	}
	w.db = db
	if _, err := storage.Migrate(ctx, db, zap.NewNop()); err != nil {
		return fmt.Errorf("migrate %s: %w", w.dbName, err)
	}
	w.store = storage.NewStore(storage.StoreParams{DB: db})
	return nil
}

// register creates the experiment and its series.
func (w *world) register(ctx context.Context) error {
	e, err := w.store.CreateExperiment(ctx, storage.Experiment{Slug: experimentSlug, Name: "API benchmark"})
	if err != nil {
		return fmt.Errorf("register experiment: %w", err)
	}
	w.experiment = e
	return w.ensureSeries(ctx)
}

// ensureSeries registers (or finds) the series of the sensors, in sensor
// order, so that their ids increase with the sensor number.
func (w *world) ensureSeries(ctx context.Context) error {
	w.series = make([]int64, w.opts.sensors)
	const chunk = 500
	for lo := 0; lo < w.opts.sensors; lo += chunk {
		keys := make([]storage.SeriesKey, 0, chunk)
		for i := lo; i < min(lo+chunk, w.opts.sensors); i++ {
			keys = append(keys, storage.SeriesKey{ExperimentID: w.experiment.ID, Sensor: sensorName(i)})
		}
		ids, err := w.store.EnsureSeries(ctx, keys)
		if err != nil {
			return fmt.Errorf("register series: %w", err)
		}
		for i, k := range keys {
			w.series[lo+i] = ids[k]
		}
	}
	return nil
}

// holdsExpected reports whether a -keep database holds exactly the data of
// this run's sizes, and if not, why.
func (w *world) holdsExpected(ctx context.Context) (bool, string, error) {
	e, err := w.store.ExperimentBySlug(ctx, experimentSlug)
	if errors.Is(err, storage.ErrNotFound) {
		return false, "is empty", nil
	}
	if err != nil {
		return false, "", err
	}
	w.experiment = e
	var series int
	if err := w.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM series WHERE experiment_id = ?", e.ID).Scan(&series); err != nil {
		return false, "", fmt.Errorf("count series: %w", err)
	}
	if series != w.opts.sensors {
		return false, fmt.Sprintf("holds %d sensors, not %d", series, w.opts.sensors), nil
	}
	if err := w.ensureSeries(ctx); err != nil {
		return false, "", err
	}
	// The first and last points of the first and last sensors, then the
	// count (a scan of the whole table: seconds).
	for _, i := range []int{0, w.opts.sensors - 1} {
		var first, last sql.NullTime
		var n int
		if err := w.db.QueryRowContext(ctx, "SELECT MIN(`time`), MAX(`time`), COUNT(*) FROM measures WHERE series_id = ?",
			w.series[i]).Scan(&first, &last, &n); err != nil {
			return false, "", fmt.Errorf("check sensor %d: %w", i, err)
		}
		if n != w.opts.perSensor() || !first.Time.Equal(pointTime(0)) || !last.Time.Equal(pointTime(w.opts.perSensor()-1)) {
			return false, fmt.Sprintf("holds other points for sensor %d", i), nil
		}
	}
	var total int
	if err := w.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM measures").Scan(&total); err != nil {
		return false, "", fmt.Errorf("count measures: %w", err)
	}
	if total != w.opts.measures {
		return false, fmt.Sprintf("holds %s measures, not %s", benchkit.Thousands(float64(total)), benchkit.Thousands(float64(w.opts.measures))), nil
	}
	return true, "", nil
}

// retry runs a cleanup step until it succeeds or cleanupTimeout passed, so
// that a server restarting (as some tests of the project do) does not leave
// the run's database behind.
func retry(step func() error) error {
	deadline := time.Now().Add(cleanupTimeout)
	for {
		err := step()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(time.Second)
	}
}

// appendRow appends point j of sensor i as a line of the LOAD DATA input:
// series id, time, value, unit, separated by tabs.
func appendRow(b []byte, seriesID int64, i, j int) []byte {
	b = strconv.AppendInt(b, seriesID, 10)
	b = append(b, '\t')
	b = pointTime(j).AppendFormat(b, "2006-01-02 15:04:05.000000")
	b = append(b, '\t')
	b = strconv.AppendFloat(b, pointValue(i, j), 'f', -1, 64)
	b = append(b, '\t')
	b = append(b, unit...)
	return append(b, '\n')
}
