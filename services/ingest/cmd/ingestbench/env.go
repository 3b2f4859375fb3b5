package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/go-sql-driver/mysql"
	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/mymonit/mymonit/pkg/benchkit"
	"github.com/mymonit/mymonit/pkg/measure"
	"github.com/mymonit/mymonit/pkg/queue"
	"github.com/mymonit/mymonit/pkg/storage"
	"github.com/mymonit/mymonit/pkg/testenv"
)

// experiment is the slug every benchmark measure belongs to.
const experiment = "bench"

// cleanupTimeout bounds each cleanup step, which runs even when the run's
// context is done (interrupt).
const cleanupTimeout = 30 * time.Second

// t0 returns the time of generated measure 0; measure i is at t0 + i ms.
func t0() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }

// world is the isolated environment of one run: a fresh, migrated database
// with the experiment and its series registered, and the broker URL. Queues
// are declared per phase (newTopology).
type world struct {
	opts   *options
	log    *zap.Logger
	dbName string
	dsn    string // selects dbName
	db     *sql.DB
	store  *storage.Store
	series []int64 // series id of sensor i
	// servers are the broker and database processes of this machine, whose
	// CPU time the queue phases account for.
	servers []benchkit.ProcessGroup
}

// newWorld creates the database mymonit_bench_<random>, migrates it and
// registers the benchmark experiment and sensors. The returned cleanup drops
// the database; it must be called even when newWorld fails.
func newWorld(ctx context.Context, opts *options, log *zap.Logger) (*world, func() error, error) {
	w := &world{opts: opts, log: log, dbName: testenv.Name("mymonit_bench"), servers: localServers()}
	cfg, err := mysql.ParseDSN(opts.mysqlDSN)
	if err != nil {
		return nil, func() error { return nil }, fmt.Errorf("-mysql-dsn: %w", err)
	}
	cfg.DBName = ""
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return nil, func() error { return nil }, fmt.Errorf("open MySQL/MariaDB server: %w", err)
	}
	admin.SetMaxOpenConns(1)
	var created, createFailed bool
	cleanup := func() error {
		var errs []error
		if w.store != nil {
			errs = append(errs, w.store.Close())
		}
		if w.db != nil {
			errs = append(errs, w.db.Close())
		}
		if created {
			drop := func() error {
				cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
				defer cancel()
				_, err := admin.ExecContext(cctx, "DROP DATABASE IF EXISTS "+w.dbName)
				return err
			}
			if createFailed {
				_ = drop() // one attempt: it most likely never existed
			} else if err := retry(drop); err != nil {
				errs = append(errs, fmt.Errorf("drop database %s: %w", w.dbName, err))
			}
		}
		errs = append(errs, admin.Close())
		return errors.Join(errs...)
	}
	// Dropped at cleanup even if the CREATE seems to fail: an interrupt may
	// cut the reply of a CREATE the server did.
	created = true
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+w.dbName+" CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		createFailed = true
		return nil, cleanup, fmt.Errorf("create database %s: %w", w.dbName, err)
	}
	cfg.DBName = w.dbName
	w.dsn = cfg.FormatDSN()
	w.db, err = storage.Open(ctx, storage.Config{DSN: w.dsn, MaxOpenConns: 8, MaxIdleConns: 8, ConnMaxLifetime: 30 * time.Minute})
	if err != nil {
		return nil, cleanup, err
	}
	if _, err := storage.Migrate(ctx, w.db, log); err != nil {
		return nil, cleanup, fmt.Errorf("migrate: %w", err)
	}
	w.store = storage.NewStore(storage.StoreParams{DB: w.db, Logger: log})
	e, err := w.store.CreateExperiment(ctx, storage.Experiment{Slug: experiment, Name: "ingest benchmark"})
	if err != nil {
		return nil, cleanup, fmt.Errorf("register experiment: %w", err)
	}
	keys := make([]storage.SeriesKey, opts.sensors)
	for i := range keys {
		keys[i] = storage.SeriesKey{ExperimentID: e.ID, Sensor: sensorName(i)}
	}
	ids, err := w.store.EnsureSeries(ctx, keys)
	if err != nil {
		return nil, cleanup, fmt.Errorf("register series: %w", err)
	}
	w.series = make([]int64, len(keys))
	for i, k := range keys {
		w.series[i] = ids[k]
	}
	return w, cleanup, nil
}

// emptyMeasures removes every measure row, so that each phase writes fresh
// rows into an empty table, as the database baseline does.
func (w *world) emptyMeasures(ctx context.Context) error {
	if _, err := w.db.ExecContext(ctx, "TRUNCATE TABLE measures"); err != nil {
		return fmt.Errorf("empty measures: %w", err)
	}
	return nil
}

// countMeasures returns the number of measure rows.
func (w *world) countMeasures(ctx context.Context) (int64, error) {
	var n int64
	if err := w.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM measures").Scan(&n); err != nil {
		return 0, fmt.Errorf("count measures: %w", err)
	}
	return n, nil
}

// checkRows verifies that the phase left exactly want rows.
func (w *world) checkRows(ctx context.Context, phase string, want int) error {
	got, err := w.countMeasures(ctx)
	if err != nil {
		return err
	}
	if got != int64(want) {
		return fmt.Errorf("%s: %d measure rows in the database, want %d", phase, got, want)
	}
	return nil
}

// sensorName names sensor i.
func sensorName(i int) string { return "bench/s" + strconv.Itoa(i) }

// gen returns generated measure i: sensor i mod sensors, at t0 + i ms, so
// that every (sensor, time) is distinct.
func (w *world) gen(i int) measure.Measure {
	return measure.Measure{
		Experiment: experiment,
		Sensor:     sensorName(i % w.opts.sensors),
		Time:       t0().Add(time.Duration(i) * time.Millisecond),
		Value:      float64(i),
		Unit:       "V",
	}
}

// newTopology declares a fresh quorum queue, its exchanges and dead-letter
// queue, all with random names, as the ingest service would (so that the
// service's own declaration matches). The returned cleanup deletes them.
func (w *world) newTopology() (queue.Config, func() error, error) {
	cfg := queue.Config{
		URL:           w.opts.amqpURL,
		Exchange:      testenv.Name("bench_x_measures"),
		Queue:         testenv.Name("bench_q_ingest"),
		DeadExchange:  testenv.Name("bench_x_dead"),
		DeadQueue:     testenv.Name("bench_q_dead"),
		QueueType:     queue.QueueTypeQuorum,
		DeliveryLimit: 20,
	}
	cleanup := func() error { return retry(func() error { return deleteTopology(cfg) }) }
	conn, err := dialAMQP(cfg.URL)
	if err != nil {
		return cfg, func() error { return nil }, err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return cfg, func() error { return nil }, fmt.Errorf("open channel: %w", err)
	}
	if err := cfg.Topology().Declare(ch); err != nil {
		return cfg, cleanup, err
	}
	return cfg, cleanup, ch.Close()
}

// retry runs a cleanup step until it succeeds or cleanupTimeout passed, so
// that a server restarting (as some tests of the project do) does not leave
// the run's database or queues behind.
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

// deleteTopology deletes the queues and exchanges of cfg, whatever their
// state and whether or not the run was interrupted; it ignores names that
// do not exist.
func deleteTopology(cfg queue.Config) error {
	conn, err := dialAMQP(cfg.URL)
	if err != nil {
		return fmt.Errorf("delete queues: %w", err)
	}
	defer conn.Close()
	var errs []error
	del := func(what, name string, f func(*amqp.Channel) error) {
		ch, err := conn.Channel()
		if err != nil {
			errs = append(errs, fmt.Errorf("delete %s %s: %w", what, name, err))
			return
		}
		defer ch.Close()
		if err := f(ch); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("delete %s %s: %w", what, name, err))
		}
	}
	for _, q := range []string{cfg.Queue, cfg.DeadQueue} {
		del("queue", q, func(ch *amqp.Channel) error { _, err := ch.QueueDelete(q, false, false, false); return err })
	}
	for _, x := range []string{cfg.Exchange, cfg.DeadExchange} {
		del("exchange", x, func(ch *amqp.Channel) error { return ch.ExchangeDelete(x, false, false) })
	}
	return errors.Join(errs...)
}

func isNotFound(err error) bool {
	var ae *amqp.Error
	return errors.As(err, &ae) && ae.Code == amqp.NotFound
}

// dialAMQP connects to the broker with a bounded dial.
func dialAMQP(url string) (*amqp.Connection, error) {
	conn, err := amqp.DialConfig(url, amqp.Config{
		Dial:       amqp.DefaultDial(10 * time.Second),
		Properties: amqp.Table{"connection_name": "mymonit ingestbench"},
	})
	if err != nil {
		return nil, fmt.Errorf("connect to RabbitMQ: %w", err)
	}
	return conn, nil
}

// prefill publishes measures [0, n) in messages of perMsg measures (perMsg
// 1: single-measure messages) to cfg's exchange, with confirms. It returns
// the number of messages.
func (w *world) prefill(ctx context.Context, cfg queue.Config, n, perMsg int) (int, error) {
	pub := queue.NewPublisher(queue.PublisherParams{Config: cfg, Producer: "ingestbench"})
	defer pub.Close()
	const chunk = 1000 // messages per Publish call, pipelined
	msgs := make([]queue.Message, 0, chunk)
	sent := 0
	flush := func() error {
		if len(msgs) == 0 {
			return nil
		}
		if err := pub.Publish(ctx, msgs...); err != nil {
			return fmt.Errorf("prefill: %w", err)
		}
		sent += len(msgs)
		msgs = msgs[:0]
		return nil
	}
	batch := make([]measure.Measure, 0, perMsg)
	for i := 0; i < n; i += perMsg {
		batch = batch[:0]
		for j := i; j < min(i+perMsg, n); j++ {
			batch = append(batch, w.gen(j))
		}
		body, err := encode(batch, perMsg == 1)
		if err != nil {
			return sent, err
		}
		msgs = append(msgs, measureMessage(body))
		if len(msgs) == chunk {
			if err := flush(); err != nil {
				return sent, err
			}
		}
	}
	return sent, flush()
}

// encode encodes ms as a single-measure message (single, one measure) or a
// batch message.
func encode(ms []measure.Measure, single bool) ([]byte, error) {
	if single {
		return measure.EncodeOne(ms[0])
	}
	return measure.Encode(ms)
}

// measureMessage wraps an encoded body as a message of the benchmark
// experiment.
func measureMessage(body []byte) queue.Message {
	return queue.Message{
		RoutingKey:  queue.RoutingKey(experiment),
		Body:        body,
		ContentType: measure.ContentType,
	}
}

// warnLogger logs warnings and errors of the in-process components to w.
func warnLogger(out io.Writer) *zap.Logger {
	cfg := zap.NewDevelopmentEncoderConfig()
	cfg.TimeKey = ""
	return zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(cfg), zapcore.AddSync(out), zap.WarnLevel))
}
