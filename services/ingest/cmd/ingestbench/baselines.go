package main

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/mymonit/mymonit/pkg/benchkit"
	"github.com/mymonit/mymonit/pkg/measure"
	"github.com/mymonit/mymonit/pkg/storage"
)

// measured is the rate of a timed phase and how busy the machine's CPUs
// were meanwhile (fraction of all CPUs, -1 when unknown).
type measured struct {
	rate, busy float64
	// cost is the CPU time per message of the broker, the database and the
	// raw consumer (this process) while timed.
	cost cpuCost
}

// selfCPU returns the CPU time (user + system) this process used so far.
func selfCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("cpu time: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// selfMeter reads the local servers and this process as the client.
func (w *world) selfMeter() cpuMeter { return cpuMeter{servers: w.servers, client: selfCPU} }

// benchDrain measures the broker alone: a fresh quorum queue prefilled with
// single-measure messages (not timed) is drained by a raw amqp091 consumer
// with manual acks, acking multiple every -drain-ack-every. The rate is in
// msg/s.
func (w *world) benchDrain(ctx context.Context) (_ measured, err error) {
	cfg, cleanup, err := w.newTopology()
	defer func() { err = errors.Join(err, cleanup()) }()
	if err != nil {
		return measured{}, err
	}
	n := w.opts.drainMessages
	if _, err := w.prefill(ctx, cfg, n, 1); err != nil {
		return measured{}, err
	}
	return consume(ctx, cfg.URL, cfg.Queue, n, w.opts.drainPrefetch, w.opts.drainAckEvery, w.selfMeter(), nil)
}

// consume drains n messages of queue q with manual acks and the prefetch,
// calling handle (when not nil) for each delivery before its ack, and
// acking multiple every ackEvery deliveries. It returns the rate in
// messages/s over the steady span of the deliveries (steadySpan), and the
// CPU cost per message meter reads over that span.
func consume(ctx context.Context, url, q string, n, prefetch, ackEvery int, meter cpuMeter, handle func(amqp.Delivery) error) (measured, error) {
	conn, err := dialAMQP(url)
	if err != nil {
		return measured{}, err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return measured{}, fmt.Errorf("open channel: %w", err)
	}
	if err := ch.Qos(prefetch, 0, false); err != nil {
		return measured{}, fmt.Errorf("set prefetch %d: %w", prefetch, err)
	}
	const tag = "ingestbench"
	deliveries, err := ch.Consume(q, tag, false, false, false, false, nil)
	if err != nil {
		return measured{}, fmt.Errorf("consume %s: %w", q, err)
	}
	clock := newSpanClock(n, meter)
	for got := 0; got < n; {
		select {
		case <-ctx.Done():
			return measured{}, fmt.Errorf("drained %d of %d messages: %w", got, n, ctx.Err())
		case d, ok := <-deliveries:
			if !ok {
				return measured{}, fmt.Errorf("drained %d of %d messages: delivery channel closed", got, n)
			}
			got++
			clock.observe(time.Now(), got)
			if handle != nil {
				if err := handle(d); err != nil {
					return measured{}, err
				}
			}
			if got%ackEvery == 0 || got == n {
				if err := d.Ack(true); err != nil {
					return measured{}, fmt.Errorf("ack: %w", err)
				}
			}
		}
	}
	if err := ch.Cancel(tag, false); err != nil {
		return measured{}, fmt.Errorf("cancel consumer: %w", err)
	}
	r, err := clock.rate()
	return measured{rate: r, busy: clock.busy, cost: clock.cost}, err
}

// perSecond returns n/d per second, refusing a zero duration.
func perSecond(n int, d time.Duration) (float64, error) {
	if d <= 0 {
		return 0, errors.New("phase too short to time: raise its size")
	}
	return float64(n) / d.Seconds(), nil
}

// dbChunk is the number of rows per UpsertMeasures call (one transaction)
// in the database baseline: the ingest default batch size.
const dbChunk = 1000

// benchDB measures the database alone: storage.Store.UpsertMeasures called
// with dbChunk fresh rows at a time, one transaction each, one after the
// other as the ingest writer does, into an empty measures table. The rate
// is in rows/s.
func (w *world) benchDB(ctx context.Context) (measured, error) {
	if err := w.emptyMeasures(ctx); err != nil {
		return measured{}, err
	}
	n := w.opts.dbRows
	rows := make([]storage.Row, n)
	for i := range rows {
		m := w.gen(i)
		rows[i] = storage.Row{SeriesID: w.series[i%w.opts.sensors], Time: m.Time, Value: m.Value, Unit: m.Unit}
	}
	start, cpu := time.Now(), benchkit.ReadCPU(benchkit.CPUNoGuest)
	for i := 0; i < n; i += dbChunk {
		if err := w.store.UpsertMeasures(ctx, rows[i:min(i+dbChunk, n)]); err != nil {
			return measured{}, fmt.Errorf("database baseline: %w", err)
		}
	}
	elapsed, busy := time.Since(start), benchkit.BusySince(cpu)
	if err := w.checkRows(ctx, phaseDB, n); err != nil {
		return measured{}, err
	}
	r, err := perSecond(n, elapsed)
	return measured{rate: r, busy: busy}, err
}

// naiveInsert is the statement of the naive design: one row, autocommit.
const naiveInsert = "INSERT INTO measures (series_id, `time`, value) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE value = VALUES(value)"

// benchNaive measures the design ingest replaces: prefetch 1, each
// single-measure message decoded, written by a one-row autocommit INSERT
// (a plain database/sql Exec) and acked on its own. It returns msg/s.
func (w *world) benchNaive(ctx context.Context) (_ measured, err error) {
	if err := w.emptyMeasures(ctx); err != nil {
		return measured{}, err
	}
	cfg, cleanup, err := w.newTopology()
	defer func() { err = errors.Join(err, cleanup()) }()
	if err != nil {
		return measured{}, err
	}
	n := w.opts.naiveMessages
	if _, err := w.prefill(ctx, cfg, n, 1); err != nil {
		return measured{}, err
	}
	ids := make(map[string]int64, len(w.series))
	for i, id := range w.series {
		ids[sensorName(i)] = id
	}
	handle := func(d amqp.Delivery) error {
		dec, err := measure.Decode(d.Body)
		if err != nil {
			return fmt.Errorf("naive: decode: %w", err)
		}
		for _, m := range dec.Measures {
			if _, err := w.db.ExecContext(ctx, naiveInsert, ids[m.Sensor], m.Time, m.Value); err != nil {
				return fmt.Errorf("naive: insert: %w", err)
			}
		}
		return nil
	}
	r, err := consume(ctx, cfg.URL, cfg.Queue, n, 1, 1, cpuMeter{}, handle) // its CPU cost is not reported
	if err != nil {
		return measured{}, err
	}
	return r, w.checkRows(ctx, phaseNaive, n)
}
