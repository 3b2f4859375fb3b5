package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/mymonit/mymonit/pkg/benchkit"
)

// Sizes of the load.
const (
	// loadChunkRows is about the rows of one LOAD DATA statement or one
	// INSERT transaction: whole series, at least one.
	loadChunkRows = 200_000
	// insertRows is the rows of one multi-row INSERT statement.
	insertRows = 5000
)

// loadFigures describe the load of the measures.
type loadFigures struct {
	Loader   string  `json:"loader"`
	Conns    int     `json:"connections"`
	Rows     int     `json:"rows"`
	Seconds  float64 `json:"seconds"`
	RowsPerS float64 `json:"rows_per_sec"`
	Busy     float64 `json:"machine_cpu_busy"`
}

// load fills the measures table: -load-conns workers take chunks of whole
// series in order and load each with one LOAD DATA LOCAL INFILE statement
// or one transaction of multi-row INSERTs. Progress is a bar on a terminal,
// a line every 10 s otherwise.
func (w *world) load(ctx context.Context, progress io.Writer) (loadFigures, error) {
	opts := w.opts
	seriesPerChunk := max(1, loadChunkRows/opts.perSensor())
	var (
		next  atomic.Int64 // next sensor to load
		done  atomic.Int64 // rows sent
		wg    sync.WaitGroup
		mu    sync.Mutex
		errs  []error
		total = int64(opts.measures)
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopProgress := startProgress(progress, total, &done)
	cpu := benchkit.ReadCPU(benchkit.CPUAllFields)
	start := time.Now()
	for worker := range opts.loadConns {
		wg.Go(func() {
			for {
				lo := int(next.Add(int64(seriesPerChunk))) - seriesPerChunk
				if lo >= opts.sensors || ctx.Err() != nil {
					return
				}
				hi := min(lo+seriesPerChunk, opts.sensors)
				var err error
				if opts.loader == loaderInsert {
					err = w.insertChunk(ctx, lo, hi, &done)
				} else {
					err = w.infileChunk(ctx, worker, lo, hi, &done)
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("load sensors %d-%d: %w", lo, hi-1, err))
					mu.Unlock()
					cancel()
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	busy := benchkit.BusySince(cpu)
	stopProgress()
	if err := errors.Join(errs...); err != nil {
		return loadFigures{}, err
	}
	if _, err := w.db.ExecContext(ctx, "ANALYZE TABLE measures"); err != nil {
		return loadFigures{}, fmt.Errorf("analyze measures: %w", err)
	}
	return loadFigures{
		Loader: opts.loader, Conns: opts.loadConns, Rows: opts.measures,
		Seconds: elapsed.Seconds(), RowsPerS: float64(opts.measures) / elapsed.Seconds(), Busy: busy,
	}, nil
}

// infileChunk loads sensors [lo, hi) with one LOAD DATA LOCAL INFILE whose
// input is generated as the driver reads it.
func (w *world) infileChunk(ctx context.Context, worker, lo, hi int, done *atomic.Int64) error {
	name := fmt.Sprintf("apibench-%d-%d", worker, lo)
	r := &rowReader{w: w, sensor: lo, end: hi, done: done}
	mysql.RegisterReaderHandler(name, func() io.Reader { return r })
	defer mysql.DeregisterReaderHandler(name)
	_, err := w.db.ExecContext(ctx, "LOAD DATA LOCAL INFILE 'Reader::"+name+"' INTO TABLE measures "+
		"CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\\t' LINES TERMINATED BY '\\n' (series_id, `time`, value, unit)")
	return err
}

// rowReader generates the LOAD DATA lines of sensors [sensor, end), point
// by point, counting the rows it hands out in done.
type rowReader struct {
	w           *world
	sensor, end int
	point       int
	buf         []byte
	off         int
	done        *atomic.Int64
}

func (r *rowReader) Read(p []byte) (int, error) {
	if r.off == len(r.buf) {
		r.buf, r.off = r.buf[:0], 0
		rows := 0
		for len(r.buf) < 64<<10 && r.sensor < r.end {
			r.buf = appendRow(r.buf, r.w.series[r.sensor], r.sensor, r.point)
			rows++
			if r.point++; r.point == r.w.opts.perSensor() {
				r.sensor, r.point = r.sensor+1, 0
			}
		}
		r.done.Add(int64(rows))
		if len(r.buf) == 0 {
			return 0, io.EOF
		}
	}
	n := copy(p, r.buf[r.off:])
	r.off += n
	return n, nil
}

// insertChunk loads sensors [lo, hi) in one transaction of multi-row
// INSERTs with literal values (numbers and fixed-format times: nothing to
// escape), which saves the prepare round trips of placeholders.
func (w *world) insertChunk(ctx context.Context, lo, hi int, done *atomic.Int64) error {
	return w.store.InTx(ctx, func(tx *sql.Tx) error {
		var q []byte
		rows := 0
		flush := func() error {
			if rows == 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, string(q)); err != nil {
				return err
			}
			done.Add(int64(rows))
			q, rows = q[:0], 0
			return nil
		}
		for i := lo; i < hi; i++ {
			for j := range w.opts.perSensor() {
				if rows == 0 {
					q = append(q, "INSERT INTO measures (series_id, `time`, value, unit) VALUES "...)
				} else {
					q = append(q, ',')
				}
				q = append(q, '(')
				q = strconv.AppendInt(q, w.series[i], 10)
				q = append(q, ",'"...)
				q = pointTime(j).AppendFormat(q, "2006-01-02 15:04:05.000000")
				q = append(q, "',"...)
				q = strconv.AppendFloat(q, pointValue(i, j), 'f', -1, 64)
				q = append(q, ",'"+unit+"')"...)
				if rows++; rows == insertRows {
					if err := flush(); err != nil {
						return err
					}
				}
			}
		}
		return flush()
	})
}

// startProgress shows the rows loaded so far: a progress bar when progress
// is a terminal, otherwise a line every 10 s. The returned function stops
// it and waits for it.
func startProgress(progress io.Writer, total int64, done *atomic.Int64) func() {
	tty := false
	if f, ok := progress.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	every := 10 * time.Second
	var bar *progressbar.ProgressBar
	if tty {
		every = 200 * time.Millisecond
		bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(progress),
			progressbar.OptionSetDescription("apibench: loading measures"),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("rows"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionSetWidth(30),
			progressbar.OptionClearOnFinish(),
		)
	}
	stop := make(chan struct{})
	finished := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-stop:
				if bar != nil {
					_ = bar.Set64(done.Load())
					_ = bar.Finish()
				}
				return
			case <-t.C:
				n := done.Load()
				if bar != nil {
					_ = bar.Set64(n)
					continue
				}
				rate := float64(n) / time.Since(start).Seconds()
				eta := "?"
				if rate > 0 {
					eta = time.Duration(float64(total-n) / rate * float64(time.Second)).Round(time.Second).String()
				}
				fmt.Fprintf(progress, "apibench: loading measures: %s of %s rows (%.0f%%), %s rows/s, %s left\n",
					benchkit.Thousands(float64(n)), benchkit.Thousands(float64(total)), 100*float64(n)/float64(total), benchkit.Thousands(rate), strings.TrimSpace(eta))
			}
		}
	}()
	return func() {
		close(stop)
		<-finished
	}
}
