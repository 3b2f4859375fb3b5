package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"time"

	"github.com/mymonit/mymonit/pkg/benchkit"
	"github.com/mymonit/mymonit/pkg/storage"
)

// exportSeriesChunk is the number of series of one statement of the
// direct export: the largest group storage's streams use (they start at 16
// series and double while statements come back short), so the baseline is
// the cheapest form of the same scan.
const exportSeriesChunk = 256

// csvHeader is the first line of a CSV export of raw measures.
const csvHeader = "sensor,time,value,unit,tags\n"

// Export variants, in their order of rotation.
const (
	exportAPI = iota
	exportStore
	exportDirect
	exportVariants
)

// exportFigures are the figures of one export through the API.
type exportFigures struct {
	rows       int
	bytes      int64
	elapsed    time.Duration
	heapBase   int64
	heapPeak   int64
	rssBase    int64
	rssPeak    int64
	memSamples int
}

// exportWindow is the time window of the export: the first exportSteps
// points of every sensor.
func (b *bench) exportWindow() (from, to time.Time, rows int) {
	steps := b.opts.exportSteps()
	return pointTime(0), pointTime(steps), steps * b.opts.sensors
}

// exportRound exports the window once per variant, in rotated order.
func (b *bench) exportRound(ctx context.Context, round int) error {
	from, to, rows := b.exportWindow()
	r := b.res.exportResult(rows)
	for _, v := range rotate(exportVariants, round-1) {
		cpu := benchkit.ReadCPU(benchkit.CPUAllFields)
		switch v {
		case exportAPI:
			f, err := b.exportAPI(ctx, from, to, rows)
			if err != nil {
				return err
			}
			busy := benchkit.BusySince(cpu)
			rate := float64(rows) / f.elapsed.Seconds()
			r.API = *r.API.Add(rate, busy)
			r.addMemory(f)
			b.say("export: API CSV %s rows (%.0f MiB) in %.1f s: %s rows/s%s; heap %.1f → peak %.1f MiB, RSS %.0f → peak %.0f MiB (%d samples)",
				benchkit.Thousands(float64(rows)), mb(f.bytes), f.elapsed.Seconds(), benchkit.Thousands(rate), busyNote(busy),
				mb(f.heapBase), mb(f.heapPeak), mb(f.rssBase), mb(f.rssPeak), f.memSamples)
		case exportStore:
			d, err := b.exportStore(ctx, from, to, rows)
			if err != nil {
				return err
			}
			busy := benchkit.BusySince(cpu)
			rate := float64(rows) / d.Seconds()
			r.Store = *r.Store.Add(rate, busy)
			b.say("export: storage.StreamMeasures %s rows in %.1f s: %s rows/s%s", benchkit.Thousands(float64(rows)), d.Seconds(), benchkit.Thousands(rate), busyNote(busy))
		case exportDirect:
			d, err := b.exportDirect(ctx, from, to, rows)
			if err != nil {
				return err
			}
			busy := benchkit.BusySince(cpu)
			rate := float64(rows) / d.Seconds()
			r.Direct = *r.Direct.Add(rate, busy)
			b.say("export: direct SQL scan %s rows in %.1f s: %s rows/s%s", benchkit.Thousands(float64(rows)), d.Seconds(), benchkit.Thousands(rate), busyNote(busy))
		}
	}
	return nil
}

// exportAPI downloads the window as CSV, counting lines as they arrive,
// and samples the heap and RSS meanwhile.
func (b *bench) exportAPI(ctx context.Context, from, to time.Time, want int) (exportFigures, error) {
	query := url.Values{"from": {from.Format(time.RFC3339Nano)}, "to": {to.Format(time.RFC3339Nano)}}
	req, err := b.api.request(ctx, b.api.real, measuresPath(), query, "text/csv")
	if err != nil {
		return exportFigures{}, err
	}
	runtime.GC()
	f := exportFigures{heapBase: heapInUse(), rssBase: rss()}
	peak := startMemPeak()
	start := time.Now()
	lines, n, err := b.download(req)
	f.elapsed = time.Since(start)
	f.heapPeak, f.rssPeak, f.memSamples = peak.end()
	if err != nil {
		return f, err
	}
	f.rows, f.bytes = lines-1, n
	if f.rows != want {
		return f, fmt.Errorf("API CSV export: %d rows, want %d", f.rows, want)
	}
	return f, nil
}

// download sends req and reads the CSV answer to the end with a fixed
// buffer; it returns the lines and bytes read.
func (b *bench) download(req *http.Request) (lines int, n int64, err error) {
	resp, err := b.api.client.Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("API CSV export: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		return 0, 0, fmt.Errorf("API CSV export: %s: %s", resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
		return 0, 0, fmt.Errorf("API CSV export: Content-Type %q, want text/csv", ct)
	}
	buf := make([]byte, 64<<10)
	first := true
	for {
		k, rerr := resp.Body.Read(buf)
		if first && k > 0 {
			if !bytes.HasPrefix(buf[:k], []byte(csvHeader)) {
				return 0, 0, fmt.Errorf("API CSV export: starts with %.60q, want the header %q", buf[:k], csvHeader)
			}
			first = false
		}
		lines += bytes.Count(buf[:k], []byte{'\n'})
		n += int64(k)
		if errors.Is(rerr, io.EOF) {
			return lines, n, nil
		}
		if rerr != nil {
			return lines, n, fmt.Errorf("API CSV export after %d lines: %w", lines, rerr)
		}
	}
}

// exportStore reads the window with storage.Store.StreamMeasures.
func (b *bench) exportStore(ctx context.Context, from, to time.Time, want int) (time.Duration, error) {
	start := time.Now()
	n := 0
	for _, err := range b.w.store.StreamMeasures(ctx, storage.MeasureQuery{
		Selection: storage.Selection{ExperimentID: b.w.experiment.ID, From: from, To: to},
	}) {
		if err != nil {
			return 0, err
		}
		n++
	}
	d := time.Since(start)
	if n != want {
		return 0, fmt.Errorf("store export: %d rows, want %d", n, want)
	}
	return d, nil
}

// exportDirect scans the window with the statements of the stream, one per
// exportSeriesChunk series, without the stream's LIMIT and keyset
// restarts: the database's own scan rate.
func (b *bench) exportDirect(ctx context.Context, from, to time.Time, want int) (time.Duration, error) {
	start := time.Now()
	n := 0
	for lo := 0; lo < len(b.w.series); lo += exportSeriesChunk {
		ids := b.w.series[lo:min(lo+exportSeriesChunk, len(b.w.series))]
		args := make([]any, 0, len(ids)+2)
		for _, id := range ids {
			args = append(args, id)
		}
		args = append(args, from, to)
		q := "SELECT series_id, `time`, value, unit, tags FROM measures WHERE series_id IN (?" +
			strings.Repeat(",?", len(ids)-1) + ") AND `time` >= ? AND `time` < ? ORDER BY series_id, `time`"
		k, err := scanMeasures(b.w.db.QueryContext(ctx, q, args...))
		if err != nil {
			return 0, fmt.Errorf("direct export: %w", err)
		}
		n += k
	}
	d := time.Since(start)
	if n != want {
		return 0, fmt.Errorf("direct export: %d rows, want %d", n, want)
	}
	return d, nil
}
