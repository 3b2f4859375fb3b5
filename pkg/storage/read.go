package storage

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"iter"
	"slices"
	"strings"
	"time"
)

// Reads of measures, for the api.
//
// # Order and cursors
//
// Every read returns rows in the order of the clustered key of measures:
// by series id, then by time. That is the order InnoDB stores them in, so a
// page is one range scan of the primary key per group of series, rows come
// out already sorted (no filesort, whatever the size of the range) and the
// scan stops at the page limit. Series ids are given in the order sensors
// first appeared, so sensors come in that order, each with its measures in
// time order. A page ends at a MeasureKey (series id, time): the next page
// starts strictly after it, which is stable while rows are added or
// replaced (a row is never skipped or repeated because another was
// inserted before it). Downsampled reads use the same order, with the start
// of the bucket as the time.
//
// # Statements
//
// The series of the selection are read first (one small query on the
// (experiment_id, sensor) key). Measures are then read with
// "series_id IN (...) AND time >= ? AND time < ? ORDER BY series_id, time
// LIMIT n" over groups of series, each a range scan of the primary key with
// one range per series. The range optimizer's cost grows with the ranges
// (with 256 series it took several times as long as reading 5,000 rows),
// so a read starts with a group of readSeriesFirst series and doubles the
// group, up to readSeriesChunk, while statements come back short: dense
// data is read a few series per statement, sparse data in few statements.
// Streams (StreamMeasures, StreamBuckets) run such
// statements one after another, streamChunkRows rows at a time, each
// resuming after the last row of the previous one: memory stays constant,
// and no statement stays open for a whole download (a long-open statement
// holds a connection and a read view that delays purge).
//
// Buckets are computed by the server (COUNT, AVG, MIN, MAX grouped by
// FLOOR(microseconds since 1970-01-01 / every)), one series at a time,
// over time windows that hold no more buckets than are still wanted, so a
// page reads only the rows it summarises; a probe of the primary key
// (MIN(time) from a point) jumps over empty stretches.

// Limits of the reads.
const (
	// DefaultReadLimit is the page size of ReadMeasures and ReadBuckets
	// when the query sets none.
	DefaultReadLimit = 1000
	// MaxReadLimit is the largest page.
	MaxReadLimit = 10000
	// MinEvery and MaxEvery bound the bucket width of downsampled reads.
	MinEvery = time.Millisecond
	MaxEvery = 366 * 24 * time.Hour
)

const (
	// readSeriesChunk bounds the series ids in one statement's IN list,
	// which keeps the range optimizer far from its memory limit.
	readSeriesChunk = 256
	// readSeriesFirst is the series ids of the first grouped statement of
	// a read; each statement that comes back short doubles the next group.
	readSeriesFirst = 16
	// streamChunkRows is the number of rows of one statement of a stream.
	streamChunkRows = 5000
	// bucketWindow is the number of buckets one window of a stream asks
	// for.
	bucketWindow = 1000
	// maxWindowGrowth bounds how far a window grows over sparse data.
	maxWindowGrowth = 1 << 16
)

// The times the schema holds (DATETIME of both servers, years 1000-9999),
// in microseconds since 1970-01-01 UTC; maxReadMicros is exclusive.
var (
	minReadMicros = time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	maxReadMicros = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
)

// Selection picks measures of one experiment.
type Selection struct {
	// ExperimentID is the id of the experiment; one that does not exist
	// has no series, hence no measures.
	ExperimentID int64
	// Sensors keeps only the series with these names, compared bytewise;
	// empty keeps all. A name that no series has selects nothing.
	Sensors []string
	// From and To bound the time, From <= time < To; a zero time leaves
	// that side open.
	From, To time.Time
}

// bounds returns the time range in microseconds, [lo, hi).
func (sel Selection) bounds() (lo, hi int64) {
	lo, hi = minReadMicros, maxReadMicros
	if !sel.From.IsZero() {
		lo = min(max(lo, microsCeil(sel.From)), hi)
	}
	if !sel.To.IsZero() {
		hi = max(min(hi, microsCeil(sel.To)), lo)
	}
	return lo, hi
}

// microsCeil is t in microseconds, rounded up: a bound between two
// microseconds admits the same stored times as the next microsecond.
// (UnixMicro rounds down: its nanoseconds are never negative.)
func microsCeil(t time.Time) int64 {
	us := t.UnixMicro()
	if t.Nanosecond()%1000 != 0 {
		us++
	}
	return us
}

func (sel Selection) validate() error {
	if sel.ExperimentID <= 0 {
		return fmt.Errorf("experiment id %d: %w", sel.ExperimentID, ErrInvalid)
	}
	for _, name := range sel.Sensors {
		if err := validateSeriesKey(SeriesKey{ExperimentID: sel.ExperimentID, Sensor: name}); err != nil {
			return err
		}
	}
	if !sel.From.IsZero() && !sel.To.IsZero() && !sel.From.Before(sel.To) {
		return fmt.Errorf("from %s is not before to %s: %w",
			sel.From.Format(time.RFC3339Nano), sel.To.Format(time.RFC3339Nano), ErrInvalid)
	}
	return nil
}

// MeasureKey is the position of a row in the read order: a series and a
// time (for buckets, the start of the bucket). The zero key is the start.
type MeasureKey struct {
	SeriesID int64
	Time     time.Time
}

// IsZero reports whether k is the start of the read order.
func (k MeasureKey) IsZero() bool { return k.SeriesID == 0 }

// Measure is a stored measure as read back.
type Measure struct {
	SeriesID int64
	// Sensor is the name of the series.
	Sensor string
	// Time is UTC, to the microsecond.
	Time  time.Time
	Value float64
	// Unit is "" when none was stored.
	Unit string
	// Tags is nil when none were stored.
	Tags map[string]string
}

// Key is the position of m in the read order.
func (m Measure) Key() MeasureKey { return MeasureKey{SeriesID: m.SeriesID, Time: m.Time} }

// MeasureQuery is a read of raw measures.
type MeasureQuery struct {
	Selection
	// After is the cursor: only rows after this key are read.
	After MeasureKey
	// Limit is the page size of ReadMeasures (0: DefaultReadLimit; at most
	// MaxReadLimit) and the row cap of StreamMeasures (0: no cap).
	Limit int
}

// MeasurePage is a page of ReadMeasures.
type MeasurePage struct {
	Measures []Measure
	// Next is the key of the last row when more rows follow, for
	// MeasureQuery.After of the next page; zero on the last page.
	Next MeasureKey
}

// pageLimit checks the page size of a paged read.
func pageLimit(limit int) (int, error) {
	switch {
	case limit == 0:
		return DefaultReadLimit, nil
	case limit < 0 || limit > MaxReadLimit:
		return 0, fmt.Errorf("limit %d not in 1..%d: %w", limit, MaxReadLimit, ErrInvalid)
	}
	return limit, nil
}

// ReadMeasures returns a page of the measures of q, in the read order
// (series id, then time; see the package documentation of reads), and the
// cursor of the next page. An invalid query (experiment id <= 0, a bad
// sensor name, From not before To, a limit out of range) is ErrInvalid.
func (s *Store) ReadMeasures(ctx context.Context, q MeasureQuery) (MeasurePage, error) {
	limit, err := pageLimit(q.Limit)
	if err != nil {
		return MeasurePage{}, fmt.Errorf("read measures: %w", err)
	}
	out := make([]Measure, 0, limit)
	next, err := s.EachMeasure(ctx, q, func(m Measure) error {
		out = append(out, m)
		return nil
	})
	if err != nil {
		return MeasurePage{}, err
	}
	return MeasurePage{Measures: out, Next: next}, nil
}

// EachMeasure reads the page ReadMeasures returns, without holding it: fn
// is called with each measure of the page, in the read order, as its row
// arrives, and the page's Next key is returned (zero on the last page).
// An error of fn stops the read and is returned as it is; queries are
// checked as ReadMeasures checks them.
func (s *Store) EachMeasure(ctx context.Context, q MeasureQuery, fn func(Measure) error) (MeasureKey, error) {
	limit, err := pageLimit(q.Limit)
	if err != nil {
		return MeasureKey{}, fmt.Errorf("read measures: %w", err)
	}
	if err := q.validate(); err != nil {
		return MeasureKey{}, fmt.Errorf("read measures: %w", err)
	}
	var (
		n          int
		last, next MeasureKey
		fnErr      error
	)
	yield := func(m Measure) bool {
		if n == limit {
			next = last
			return false
		}
		if fnErr = fn(m); fnErr != nil {
			return false
		}
		if n++; n == limit {
			last = m.Key() // the key of the page's end, should a row follow
		}
		return true
	}
	// One row more than the page tells whether another page follows.
	if sel := q.Selection; oneSensor(sel.Sensors) {
		_, _, err = s.queryOneSensor(ctx, sel, q.After, limit+1, yield)
	} else {
		var series []seriesName
		if series, err = s.selectSeries(ctx, sel, q.After.SeriesID); err == nil {
			_, _, err = s.scanMeasures(ctx, sel, series, q.After, limit+1, yield)
		}
	}
	if err != nil {
		return MeasureKey{}, err
	}
	if fnErr != nil {
		return MeasureKey{}, fnErr
	}
	return next, nil
}

// oneSensor reports whether names hold one sensor, maybe repeated.
func oneSensor(names []string) bool {
	return len(names) > 0 && !slices.ContainsFunc(names[1:], func(n string) bool { return n != names[0] })
}

// StreamMeasures yields the measures of q in the read order, all of them
// (or q.Limit when set), one row at a time: the rows are never held
// together, so memory stays constant however many there are. It runs one
// statement per streamChunkRows rows, each resuming after the last row
// yielded. An error ends the sequence: it is yielded once, with a zero
// Measure, possibly after some rows. Breaking out of the loop releases
// everything.
func (s *Store) StreamMeasures(ctx context.Context, q MeasureQuery) iter.Seq2[Measure, error] {
	return func(yield func(Measure, error) bool) {
		if q.Limit < 0 {
			yield(Measure{}, fmt.Errorf("stream measures: limit %d: %w", q.Limit, ErrInvalid))
			return
		}
		if err := q.validate(); err != nil {
			yield(Measure{}, fmt.Errorf("stream measures: %w", err))
			return
		}
		series, err := s.selectSeries(ctx, q.Selection, q.After.SeriesID)
		if err != nil {
			yield(Measure{}, err)
			return
		}
		after, total := q.After, 0
		for {
			chunk := streamChunkRows
			if q.Limit > 0 {
				chunk = min(chunk, q.Limit-total)
			}
			var last Measure
			n, stopped, err := s.scanMeasures(ctx, q.Selection, series, after, chunk, func(m Measure) bool {
				last = m
				return yield(m, nil)
			})
			if err != nil {
				yield(Measure{}, err)
				return
			}
			total += n
			if stopped || n < chunk || (q.Limit > 0 && total >= q.Limit) {
				return
			}
			after = last.Key()
			series = series[slices.IndexFunc(series, func(sn seriesName) bool { return sn.id == after.SeriesID }):]
		}
	}
}

// seriesName is a series of a selection.
type seriesName struct {
	id     int64
	sensor string
}

// selectSeries returns the series of sel with an id of at least fromID,
// ordered by id.
func (s *Store) selectSeries(ctx context.Context, sel Selection, fromID int64) ([]seriesName, error) {
	var out []seriesName
	scan := func(q string, args ...any) error {
		query := s.db.QueryContext
		if len(args) <= 3 {
			query = s.queryFixed // all the series, or one sensor's
		}
		rows, err := query(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var sn seriesName
			var sensor []byte
			if err := rows.Scan(&sn.id, &sensor); err != nil {
				return err
			}
			sn.sensor = string(sensor)
			out = append(out, sn)
		}
		return rows.Err()
	}
	const base = "SELECT id, sensor FROM series WHERE experiment_id = ? AND id >= ?"
	if len(sel.Sensors) == 0 {
		if err := scan(base+" ORDER BY id", sel.ExperimentID, fromID); err != nil {
			return nil, fmt.Errorf("select series: %w", err)
		}
		return out, nil
	}
	for names := range slices.Chunk(dedup(sel.Sensors), lookupChunk) {
		args := []any{sel.ExperimentID, fromID}
		for _, n := range names {
			args = append(args, []byte(n))
		}
		if err := scan(base+" AND sensor IN ("+placeholders(len(names))+")", args...); err != nil {
			return nil, fmt.Errorf("select series: %w", err)
		}
	}
	slices.SortFunc(out, func(a, b seriesName) int { return cmp.Compare(a.id, b.id) })
	return out, nil
}

// scanMeasures yields up to limit measures of the series (ordered by id)
// after the key, in the read order, and returns how many it yielded and
// whether yield asked to stop.
func (s *Store) scanMeasures(ctx context.Context, sel Selection, series []seriesName, after MeasureKey,
	limit int, yield func(Measure) bool) (n int, stopped bool, err error) {
	i := 0
	for i < len(series) && series[i].id < after.SeriesID {
		i++
	}
	if !after.IsZero() && i < len(series) && series[i].id == after.SeriesID {
		// The rest of the cursor's series.
		n, stopped, err = s.queryMeasures(ctx, sel, series[i:i+1], after.Time, limit, yield)
		if err != nil || stopped {
			return n, stopped, err
		}
		i++
	}
	// Each statement that returns fewer rows than asked ends the loop or
	// is followed by another: the group doubles for that one.
	for group := readSeriesFirst; i < len(series) && n < limit; group = min(2*group, readSeriesChunk) {
		chunk := series[i:min(i+group, len(series))]
		k, stopped, err := s.queryMeasures(ctx, sel, chunk, time.Time{}, limit-n, yield)
		n += k
		if err != nil || stopped {
			return n, stopped, err
		}
		i += len(chunk)
	}
	return n, false, nil
}

// queryMeasures runs one statement over series (ordered by id), for rows
// after the time when it is not zero.
func (s *Store) queryMeasures(ctx context.Context, sel Selection, series []seriesName, after time.Time,
	limit int, yield func(Measure) bool) (n int, stopped bool, err error) {
	var q strings.Builder
	args := make([]any, 0, len(series)+4)
	q.WriteString("SELECT series_id, `time`, value, unit, tags FROM measures WHERE ")
	if len(series) == 1 {
		q.WriteString("series_id = ?")
	} else {
		q.WriteString("series_id IN (" + placeholders(len(series)) + ")")
	}
	for _, sn := range series {
		args = append(args, sn.id)
	}
	lo, hi := sel.bounds()
	if !after.IsZero() {
		lo = max(lo, after.UnixMicro()+1)
	}
	args = timeBounds(&q, args, "`time`", lo, hi)
	q.WriteString(" ORDER BY series_id, `time` LIMIT ?")
	args = append(args, limit)

	query := s.db.QueryContext
	if len(series) == 1 {
		query = s.queryFixed // one of four texts
	}
	rows, err := query(ctx, q.String(), args...)
	if err != nil {
		return 0, false, fmt.Errorf("read measures: %w", err)
	}
	return yieldMeasures(rows, func(id int64) string { return sensorOf(series, id) }, yield)
}

// queryOneSensor is scanMeasures for a selection of one sensor, without
// selectSeries: the statement finds the series itself (one row of a
// unique key, which the planner reads first, as a constant), a round
// trip less for the API's most common read.
func (s *Store) queryOneSensor(ctx context.Context, sel Selection, after MeasureKey,
	limit int, yield func(Measure) bool) (n int, stopped bool, err error) {
	var q strings.Builder
	sensor := sel.Sensors[0]
	args := make([]any, 0, 7)
	q.WriteString("SELECT m.series_id, m.`time`, m.value, m.unit, m.tags FROM series s JOIN measures m ON m.series_id = s.id " +
		"WHERE s.experiment_id = ? AND s.sensor = ?")
	args = append(args, sel.ExperimentID, []byte(sensor))
	if !after.IsZero() {
		// After the key: a later series, or the key's series after its time.
		q.WriteString(" AND s.id >= ? AND (s.id > ? OR m.`time` >= ?)")
		args = append(args, after.SeriesID, after.SeriesID, time.UnixMicro(after.Time.UnixMicro()+1).UTC())
	}
	lo, hi := sel.bounds()
	args = timeBounds(&q, args, "m.`time`", lo, hi)
	q.WriteString(" ORDER BY m.series_id, m.`time` LIMIT ?")
	args = append(args, limit)
	rows, err := s.queryFixed(ctx, q.String(), args...) // one of eight texts
	if err != nil {
		return 0, false, fmt.Errorf("read measures: %w", err)
	}
	return yieldMeasures(rows, func(int64) string { return sensor }, yield)
}

// timeBounds adds the conditions of the time range [lo, hi) on the column,
// leaving out the bounds of the whole schema range.
func timeBounds(q *strings.Builder, args []any, column string, lo, hi int64) []any {
	if lo > minReadMicros {
		q.WriteString(" AND " + column + " >= ?")
		args = append(args, time.UnixMicro(lo).UTC())
	}
	if hi < maxReadMicros {
		q.WriteString(" AND " + column + " < ?")
		args = append(args, time.UnixMicro(hi).UTC())
	}
	return args
}

// yieldMeasures scans measure rows (series id, time, value, unit, tags),
// naming their sensors by id, and yields them; it closes the rows.
func yieldMeasures(rows *sql.Rows, sensor func(id int64) string, yield func(Measure) bool) (n int, stopped bool, err error) {
	defer rows.Close()
	// Scanned into variables that live across rows: Scan takes their
	// addresses, so variables of the loop body would be allocated per row.
	// The unit's bytes are compared with the last unit's, so that a run of
	// one unit shares one string.
	var (
		seriesID   int64
		at         time.Time
		value      float64
		unit, tags sql.RawBytes
		lastUnit   string
	)
	for rows.Next() {
		if err := rows.Scan(&seriesID, &at, &value, &unit, &tags); err != nil {
			return n, false, fmt.Errorf("read measures: %w", err)
		}
		if string(unit) != lastUnit {
			lastUnit = string(unit)
		}
		m := Measure{SeriesID: seriesID, Time: at, Value: value, Unit: lastUnit}
		if tags != nil {
			// Into a map of its own: the address of m.Tags would move m to
			// the heap, row after row.
			var t map[string]string
			if err := json.Unmarshal(tags, &t); err != nil {
				return n, false, fmt.Errorf("read measures: tags of series %d at %s: %w",
					m.SeriesID, m.Time.Format(time.RFC3339Nano), err)
			}
			m.Tags = t
		}
		m.Sensor = sensor(m.SeriesID)
		n++
		if !yield(m) {
			return n, true, nil
		}
	}
	if err := rows.Err(); err != nil {
		return n, false, fmt.Errorf("read measures: %w", err)
	}
	return n, false, nil
}

// sensorOf finds the name of a series in a list ordered by id.
func sensorOf(series []seriesName, id int64) string {
	i, ok := slices.BinarySearchFunc(series, id, func(sn seriesName, id int64) int { return cmp.Compare(sn.id, id) })
	if !ok {
		return ""
	}
	return series[i].sensor
}

// BucketQuery is a downsampled read: the measures of each series are
// summarised per time bucket. Buckets are aligned on multiples of Every
// since 1970-01-01T00:00:00Z (a bucket of 1h starts on the hour); a bucket
// cut by From or To summarises only the measures inside the range.
type BucketQuery struct {
	Selection
	// Every is the width of a bucket: MinEvery to MaxEvery, a whole number
	// of microseconds.
	Every time.Duration
	// After is the cursor: the series and start of the last bucket read.
	After MeasureKey
	// Limit is the page size of ReadBuckets (0: DefaultReadLimit; at most
	// MaxReadLimit) and the bucket cap of StreamBuckets (0: no cap).
	Limit int
}

func (q BucketQuery) validate() error {
	if q.Every < MinEvery || q.Every > MaxEvery || q.Every%time.Microsecond != 0 {
		return fmt.Errorf("bucket width %s: want %s to %s, whole microseconds: %w", q.Every, MinEvery, MaxEvery, ErrInvalid)
	}
	return q.Selection.validate()
}

// Bucket summarises the measures of one series in one time bucket. Only
// buckets that hold measures are returned.
type Bucket struct {
	SeriesID int64
	Sensor   string
	// Start is the start of the bucket, UTC; the bucket is [Start,
	// Start+Every).
	Start time.Time
	// Count is the number of measures (at least 1); Avg, Min and Max
	// summarise their values.
	Count         int64
	Avg, Min, Max float64
}

// Key is the position of b in the read order.
func (b Bucket) Key() MeasureKey { return MeasureKey{SeriesID: b.SeriesID, Time: b.Start} }

// BucketPage is a page of ReadBuckets.
type BucketPage struct {
	Buckets []Bucket
	// Next is the key of the last bucket when more follow; zero on the last
	// page.
	Next MeasureKey
}

// ReadBuckets returns a page of the buckets of q, ordered by series id and
// start, and the cursor of the next page. Invalid queries are ErrInvalid.
func (s *Store) ReadBuckets(ctx context.Context, q BucketQuery) (BucketPage, error) {
	limit, err := pageLimit(q.Limit)
	if err != nil {
		return BucketPage{}, fmt.Errorf("read buckets: %w", err)
	}
	if err := q.validate(); err != nil {
		return BucketPage{}, fmt.Errorf("read buckets: %w", err)
	}
	series, err := s.selectSeries(ctx, q.Selection, q.After.SeriesID)
	if err != nil {
		return BucketPage{}, err
	}
	out := make([]Bucket, 0, min(limit+1, 256))
	if _, err := s.scanBuckets(ctx, q, series, limit+1, func(b Bucket) bool {
		out = append(out, b)
		return true
	}); err != nil {
		return BucketPage{}, err
	}
	page := BucketPage{Buckets: out}
	if len(out) > limit {
		page.Buckets = out[:limit]
		page.Next = out[limit-1].Key()
	}
	return page, nil
}

// StreamBuckets yields the buckets of q in order, all of them (or q.Limit
// when set), with constant memory, like StreamMeasures.
func (s *Store) StreamBuckets(ctx context.Context, q BucketQuery) iter.Seq2[Bucket, error] {
	return func(yield func(Bucket, error) bool) {
		if q.Limit < 0 {
			yield(Bucket{}, fmt.Errorf("stream buckets: limit %d: %w", q.Limit, ErrInvalid))
			return
		}
		if err := q.validate(); err != nil {
			yield(Bucket{}, fmt.Errorf("stream buckets: %w", err))
			return
		}
		series, err := s.selectSeries(ctx, q.Selection, q.After.SeriesID)
		if err != nil {
			yield(Bucket{}, err)
			return
		}
		if _, err := s.scanBuckets(ctx, q, series, q.Limit, func(b Bucket) bool { return yield(b, nil) }); err != nil {
			yield(Bucket{}, err)
		}
	}
}

// scanBuckets yields up to limit buckets (no cap when limit is 0) of the
// series after q.After, series by series, window by window, and returns
// whether yield asked to stop.
func (s *Store) scanBuckets(ctx context.Context, q BucketQuery, series []seriesName, limit int,
	yield func(Bucket) bool) (stopped bool, err error) {
	every := q.Every.Microseconds()
	lo0, hi := q.bounds()
	n := 0
	for _, sn := range series {
		if sn.id < q.After.SeriesID {
			continue
		}
		lo := lo0
		if sn.id == q.After.SeriesID {
			lo = max(lo, floorDiv(q.After.Time.UnixMicro(), every)*every+every)
		}
		growth := int64(1)
		for lo < hi && (limit == 0 || n < limit) {
			first, ok, err := s.firstTime(ctx, sn.id, lo, hi)
			if err != nil {
				return false, err
			}
			if !ok {
				break
			}
			want := int64(bucketWindow)
			if limit > 0 {
				want = int64(limit - n)
			}
			start := floorDiv(first, every) * every
			end := hi
			if span := want * growth; span <= (hi-start)/every {
				end = start + span*every
			}
			k, stopped, err := s.queryBuckets(ctx, sn, every, first, end, int(want), yield)
			n += k
			if err != nil || stopped {
				return stopped, err
			}
			if int64(k) < want/2 && growth < maxWindowGrowth {
				growth *= 2 // sparse data: look further next time
			}
			lo = end
		}
		if limit > 0 && n >= limit {
			break
		}
	}
	return false, nil
}

// floorDiv is a/b rounded towards minus infinity (b > 0).
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// firstTime returns the time, in microseconds, of the first measure of the
// series in [lo, hi): one descent of the primary key.
func (s *Store) firstTime(ctx context.Context, seriesID, lo, hi int64) (int64, bool, error) {
	var t sql.NullTime
	err := s.db.QueryRowContext(ctx, "SELECT MIN(`time`) FROM measures WHERE series_id = ? AND `time` >= ? AND `time` <= ?",
		seriesID, time.UnixMicro(lo).UTC(), time.UnixMicro(hi-1).UTC()).Scan(&t)
	if err != nil {
		return 0, false, fmt.Errorf("read buckets: %w", err)
	}
	if !t.Valid {
		return 0, false, nil
	}
	return t.Time.UnixMicro(), true, nil
}

// queryBuckets runs the aggregate of one series over [lo, hi) microseconds
// and yields up to limit buckets.
func (s *Store) queryBuckets(ctx context.Context, sn seriesName, every, lo, hi int64, limit int,
	yield func(Bucket) bool) (n int, stopped bool, err error) {
	rows, err := s.db.QueryContext(ctx,
		"SELECT FLOOR(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', `time`) / ?) AS b, "+
			"COUNT(*), AVG(value), MIN(value), MAX(value) FROM measures "+
			"WHERE series_id = ? AND `time` >= ? AND `time` <= ? GROUP BY b ORDER BY b LIMIT ?",
		every, sn.id, time.UnixMicro(lo).UTC(), time.UnixMicro(hi-1).UTC(), limit)
	if err != nil {
		return 0, false, fmt.Errorf("read buckets: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		b := Bucket{SeriesID: sn.id, Sensor: sn.sensor}
		var index int64
		if err := rows.Scan(&index, &b.Count, &b.Avg, &b.Min, &b.Max); err != nil {
			return n, false, fmt.Errorf("read buckets: %w", err)
		}
		b.Start = time.UnixMicro(index * every).UTC()
		n++
		if !yield(b) {
			return n, true, nil
		}
	}
	if err := rows.Err(); err != nil {
		return n, false, fmt.Errorf("read buckets: %w", err)
	}
	return n, false, nil
}

// SensorStats describes one sensor (series) of an experiment.
type SensorStats struct {
	SeriesID int64
	Sensor   string
	// Count is the number of measures; First and Last are the times of the
	// first and last, zero when Count is 0.
	Count       int64
	First, Last time.Time
}

// ListSensors returns the sensors of an experiment ordered by name
// (bytewise), with the number of their measures and the times of the first
// and last. Counting reads every measure of the experiment (an index range
// scan per sensor): it costs time in proportion to the data. An experiment
// that does not exist has no sensors.
func (s *Store) ListSensors(ctx context.Context, experimentID int64) ([]SensorStats, error) {
	rows, err := s.db.QueryContext(ctx,
		"SELECT s.id, s.sensor, COUNT(m.series_id), MIN(m.`time`), MAX(m.`time`) "+
			"FROM series s LEFT JOIN measures m ON m.series_id = s.id "+
			"WHERE s.experiment_id = ? GROUP BY s.id, s.sensor ORDER BY s.sensor", experimentID)
	if err != nil {
		return nil, fmt.Errorf("list sensors: %w", err)
	}
	defer rows.Close()
	out := []SensorStats{}
	for rows.Next() {
		var (
			st          SensorStats
			sensor      []byte
			first, last sql.NullTime
		)
		if err := rows.Scan(&st.SeriesID, &sensor, &st.Count, &first, &last); err != nil {
			return nil, fmt.Errorf("list sensors: %w", err)
		}
		st.Sensor, st.First, st.Last = string(sensor), first.Time, last.Time
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list sensors: %w", err)
	}
	return out, nil
}
