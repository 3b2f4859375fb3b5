package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/mymonit/mymonit/pkg/benchkit"
	"github.com/mymonit/mymonit/pkg/storage"
)

// rangeSQL is the direct baseline: the rows of one series between two
// times, its id known beforehand. storage.Store.EachMeasure of one sensor
// runs this statement with the series found by its name in the same
// statement (pkg/storage/read.go, queryOneSensor), a join this baseline is
// spared.
const rangeSQL = "SELECT series_id, `time`, value, unit, tags FROM measures WHERE series_id = ? AND `time` >= ? AND `time` < ? ORDER BY series_id, `time` LIMIT ?"

// rangeSensors is how many sensors the range queries cycle through.
const rangeSensors = 8

// Range variants, in their order of rotation.
const (
	rangeAPI = iota
	rangeStore
	rangeDirect
	rangePrepared
	rangeVariants
)

// rangeQuery is one range query: a sensor and a window that holds exactly
// points of its points.
type rangeQuery struct {
	sensor   int
	from, to time.Time
	points   int
}

// rangeQueries returns the queries of the phase: the middle -points of
// each of rangeSensors sensors spread over the experiment.
func (b *bench) rangeQueries() []rangeQuery {
	points := b.opts.rangePoints()
	off := (b.opts.perSensor() - points) / 2
	qs := make([]rangeQuery, rangeSensors)
	for i := range qs {
		qs[i] = rangeQuery{
			sensor: i*b.opts.sensors/rangeSensors + b.opts.sensors/(2*rangeSensors),
			from:   pointTime(off),
			to:     pointTime(off + points),
			points: points,
		}
	}
	return qs
}

// rangeRound times -queries calls of each variant, rotating their order,
// after one untimed direct read of each sensor (so that every variant finds
// the rows in the buffer pool). The first call of each variant checks the
// row count.
func (b *bench) rangeRound(ctx context.Context, round int) error {
	qs := b.rangeQueries()
	prepared, err := b.w.db.PrepareContext(ctx, rangeSQL)
	if err != nil {
		return fmt.Errorf("prepare the direct range query: %w", err)
	}
	defer prepared.Close()
	for _, q := range qs {
		if _, err := b.rangeDirect(ctx, q, true); err != nil {
			return err
		}
	}
	cpu := benchkit.ReadCPU(benchkit.CPUAllFields)
	var lat [rangeVariants][]time.Duration
	for k := range b.opts.queries {
		q := qs[k%len(qs)]
		for _, v := range rotate(rangeVariants, k) {
			var (
				d   time.Duration
				err error
			)
			switch v {
			case rangeAPI:
				d, err = b.rangeAPI(ctx, q, k == 0)
			case rangeStore:
				d, err = b.rangeStore(ctx, q)
			case rangeDirect:
				d, err = b.rangeDirect(ctx, q, k == 0)
			case rangePrepared:
				d, err = b.rangePrepared(ctx, prepared, q, k == 0)
			}
			if err != nil {
				return err
			}
			lat[v] = append(lat[v], d)
		}
	}
	r := b.res.rangeResult(b.opts)
	r.API.add(lat[rangeAPI])
	r.Store.add(lat[rangeStore])
	r.Direct.add(lat[rangeDirect])
	r.Prepared.add(lat[rangePrepared])
	busy := benchkit.BusySince(cpu)
	r.MachineBusy = append(r.MachineBusy, roundTo(busy, 2))
	api, dir := benchkit.Percentile(lat[rangeAPI], 50), benchkit.Percentile(lat[rangeDirect], 50)
	b.say("range: %d-point query, p50 API %s, store %s, direct SQL %s (prepared %s): API %.2f × direct (this round)%s",
		qs[0].points, ms(api), ms(benchkit.Percentile(lat[rangeStore], 50)), ms(dir), ms(benchkit.Percentile(lat[rangePrepared], 50)),
		float64(api)/float64(dir), busyNote(busy))
	return nil
}

// rangeAPI times one GET of the range as JSON, the body read to the end;
// with check, it also decodes the body and checks the rows.
func (b *bench) rangeAPI(ctx context.Context, q rangeQuery, check bool) (time.Duration, error) {
	query := url.Values{
		"sensor": {sensorName(q.sensor)},
		"from":   {q.from.Format(time.RFC3339Nano)},
		"to":     {q.to.Format(time.RFC3339Nano)},
		"limit":  {fmt.Sprint(q.points)},
	}
	req, err := b.api.request(ctx, b.api.real, measuresPath(), query, "application/json")
	if err != nil {
		return 0, err
	}
	start := time.Now()
	resp, err := b.api.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("API range query: %w", err)
	}
	defer resp.Body.Close()
	var body []byte
	if check || resp.StatusCode != http.StatusOK {
		body, err = io.ReadAll(resp.Body)
	} else {
		_, err = io.Copy(io.Discard, resp.Body)
	}
	d := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("API range query: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("API range query: %s: %.300s", resp.Status, body)
	}
	if check {
		var page struct {
			Series []struct {
				Sensor   string            `json:"sensor"`
				Measures []json.RawMessage `json:"measures"`
			} `json:"series"`
			NextCursor string `json:"next_cursor"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return 0, fmt.Errorf("API range query: %w", err)
		}
		if len(page.Series) != 1 || page.Series[0].Sensor != sensorName(q.sensor) ||
			len(page.Series[0].Measures) != q.points || page.NextCursor != "" {
			return 0, fmt.Errorf("API range query of sensor %d: %.200s…; want the %d measures of %s and no cursor",
				q.sensor, body, q.points, sensorName(q.sensor))
		}
	}
	return d, nil
}

// rangeStore times storage.Store.EachMeasure of the range, the read of the
// API's JSON pages, each measure counted.
func (b *bench) rangeStore(ctx context.Context, q rangeQuery) (time.Duration, error) {
	n := 0
	start := time.Now()
	next, err := b.w.store.EachMeasure(ctx, storage.MeasureQuery{
		Selection: storage.Selection{ExperimentID: b.w.experiment.ID, Sensors: []string{sensorName(q.sensor)}, From: q.from, To: q.to},
		Limit:     q.points,
	}, func(storage.Measure) error { n++; return nil })
	d := time.Since(start)
	if err != nil {
		return 0, err
	}
	if n != q.points || !next.IsZero() {
		return 0, fmt.Errorf("store range query of sensor %d: %d measures, next %v; want %d and no next page",
			q.sensor, n, next, q.points)
	}
	return d, nil
}

// rangeDirect times rangeSQL as database/sql runs a statement with
// arguments by default (the driver prepares it, runs it and closes it),
// every row scanned into values as the store scans them; with check, it
// checks the row count.
func (b *bench) rangeDirect(ctx context.Context, q rangeQuery, check bool) (time.Duration, error) {
	start := time.Now()
	n, err := scanMeasures(b.w.db.QueryContext(ctx, rangeSQL, b.w.series[q.sensor], q.from, q.to, q.points+1))
	d := time.Since(start)
	return d, checkDirect("direct range query", q, n, err, check)
}

// rangePrepared is rangeDirect through a statement prepared beforehand,
// as the store runs its reads: a round trip less per query.
func (b *bench) rangePrepared(ctx context.Context, st *sql.Stmt, q rangeQuery, check bool) (time.Duration, error) {
	start := time.Now()
	n, err := scanMeasures(st.QueryContext(ctx, b.w.series[q.sensor], q.from, q.to, q.points+1))
	d := time.Since(start)
	return d, checkDirect("prepared range query", q, n, err, check)
}

// checkDirect checks the outcome of a direct range query; with check, its
// row count too.
func checkDirect(what string, q rangeQuery, n int, err error, check bool) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if check && n != q.points {
		return fmt.Errorf("%s of sensor %d: %d rows, want %d", what, q.sensor, n, q.points)
	}
	return nil
}

// scanMeasures scans every row of a query of measure rows (series_id,
// time, value, unit, tags) into values and returns the number of rows.
func scanMeasures(rows *sql.Rows, err error) (int, error) {
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var (
		n          int
		series     int64
		t          time.Time
		value      float64
		unit, tags sql.RawBytes // as the store scans them
	)
	for rows.Next() {
		if err := rows.Scan(&series, &t, &value, &unit, &tags); err != nil {
			return n, err
		}
		n++
	}
	return n, rows.Err()
}
