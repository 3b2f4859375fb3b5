package storage

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
	"unicode/utf8"
)

// MaxUnitChars is the longest unit the schema holds.
const MaxUnitChars = 16

// Row is one measure as stored: the value of a series at a time.
type Row struct {
	// SeriesID comes from EnsureSeries.
	SeriesID int64
	// Time is stored in UTC, truncated to the microsecond; two times equal
	// after truncation are the same measure.
	Time time.Time
	// Value must be finite.
	Value float64
	// Unit is optional ("" is stored as NULL), at most 16 characters.
	Unit string
	// Tags are optional; empty is stored as NULL, otherwise as compact JSON
	// with sorted keys.
	Tags map[string]string
}

const (
	measureColumns = 5
	upsertPrefix   = "INSERT INTO measures (series_id, `time`, value, unit, tags) VALUES "
	upsertRow      = "(?, ?, ?, ?, ?)"
	upsertSuffix   = " ON DUPLICATE KEY UPDATE value = VALUES(value), unit = VALUES(unit), tags = VALUES(tags)"
)

func upsertQuery(rows int) string {
	return upsertPrefix + repeatJoin(upsertRow, rows) + upsertSuffix
}

// UpsertMeasures writes rows in one transaction: all or nothing. A row whose
// (series, time) exists replaces its value, unit and tags, so re-delivered
// measures never add rows; within one call a repeated key keeps the last
// row (last write wins). Rows are sorted by key first, which appends to the
// clustered index in order and makes concurrent callers take row locks in
// the same order. They go out as multi-row INSERT ... ON DUPLICATE KEY
// UPDATE statements of ChunkRows rows (a statement prepared once per
// connection) plus one ad-hoc statement for the remainder. Lost lock races
// are retried by InTx.
//
// Invalid rows (series id <= 0, time outside years 1000-9999, non-finite
// value, over-long or non-UTF-8 unit) fail the whole call with ErrInvalid
// before anything is sent. Rows naming a series that does not exist are
// stored anyway (measures have no foreign key; see the package doc).
func (s *Store) UpsertMeasures(ctx context.Context, rows []Row) error {
	if len(rows) == 0 {
		return nil
	}
	args, n, err := measureArgs(rows)
	if err != nil {
		return err
	}
	full := s.chunkRows * measureColumns
	err = s.InTx(ctx, func(tx *sql.Tx) error {
		for chunk := range slices.Chunk(args, full) {
			if len(chunk) == full {
				stmt, err := s.upsertStatement(ctx)
				if err != nil {
					return err
				}
				if _, err := tx.StmtContext(ctx, stmt).ExecContext(ctx, chunk...); err != nil {
					return err
				}
				continue
			}
			if _, err := tx.ExecContext(ctx, upsertQuery(len(chunk)/measureColumns), chunk...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("upsert %d measures: %w", n, err)
	}
	return nil
}

// upsertStatement returns the statement for a full chunk, preparing it on
// first use. database/sql re-prepares it on each connection it meets.
func (s *Store) upsertStatement(ctx context.Context) (*sql.Stmt, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.upsertStmt != nil {
		return s.upsertStmt, nil
	}
	stmt, err := s.db.PrepareContext(ctx, upsertQuery(s.chunkRows))
	if err != nil {
		return nil, fmt.Errorf("prepare upsert: %w", err)
	}
	s.upsertStmt = stmt
	return stmt, nil
}

// measureArgs validates rows and returns the statement arguments of the
// distinct keys, sorted by (series, time), the last row winning for each
// key, and the number of distinct rows.
func measureArgs(rows []Row) ([]any, int, error) {
	type keyed struct {
		series int64
		time   time.Time
		index  int
	}
	ks := make([]keyed, len(rows))
	for i, r := range rows {
		if err := validateRow(r); err != nil {
			return nil, 0, fmt.Errorf("measure %d of %d: %w", i, len(rows), err)
		}
		ks[i] = keyed{series: r.SeriesID, time: r.Time.UTC().Truncate(time.Microsecond), index: i}
	}
	slices.SortStableFunc(ks, func(a, b keyed) int {
		return cmp.Or(cmp.Compare(a.series, b.series), a.time.Compare(b.time))
	})
	args := make([]any, 0, len(ks)*measureColumns)
	n := 0
	for i, k := range ks {
		if i+1 < len(ks) && ks[i+1].series == k.series && ks[i+1].time.Equal(k.time) {
			continue // a later row has the same key: the last one wins
		}
		r := rows[k.index]
		tags, err := encodeTags(r.Tags)
		if err != nil {
			return nil, 0, fmt.Errorf("measure %d of %d: %w", k.index, len(rows), err)
		}
		var unit any
		if r.Unit != "" {
			unit = r.Unit
		}
		args = append(args, k.series, k.time, r.Value, unit, tags)
		n++
	}
	return args, n, nil
}

func validateRow(r Row) error {
	switch {
	case r.SeriesID <= 0:
		return fmt.Errorf("series id %d: %w", r.SeriesID, ErrInvalid)
	case math.IsNaN(r.Value) || math.IsInf(r.Value, 0):
		return fmt.Errorf("value %v is not finite: %w", r.Value, ErrInvalid)
	case !utf8.ValidString(r.Unit):
		return fmt.Errorf("unit %q is not valid UTF-8: %w", r.Unit, ErrInvalid)
	case utf8.RuneCountInString(r.Unit) > MaxUnitChars:
		return fmt.Errorf("unit %q is longer than %d characters: %w", r.Unit, MaxUnitChars, ErrInvalid)
	}
	// The DATETIME range both MariaDB and MySQL guarantee.
	if y := r.Time.UTC().Year(); y < 1000 || y > 9999 {
		return fmt.Errorf("time %s is outside years 1000-9999: %w", r.Time.Format(time.RFC3339Nano), ErrInvalid)
	}
	return nil
}

// encodeTags returns compact JSON with sorted keys, or nil (NULL) for no
// tags. HTML characters are not escaped.
func encodeTags(tags map[string]string) (any, error) {
	if len(tags) == 0 {
		return nil, nil
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(tags); err != nil {
		return nil, fmt.Errorf("encode tags: %w", err)
	}
	return string(bytes.TrimSuffix(b.Bytes(), []byte("\n"))), nil
}

// CountMeasures returns the number of measures stored for the experiment,
// or ErrNotFound when the slug is not registered. It scans the experiment's
// rows: meant for tests and operators, not for hot paths.
func (s *Store) CountMeasures(ctx context.Context, experimentSlug string) (int64, error) {
	if validateSlug(experimentSlug) != nil {
		return 0, fmt.Errorf("count measures of %q: %w", experimentSlug, ErrNotFound)
	}
	var n int64
	err := s.db.QueryRowContext(ctx, `SELECT (
			SELECT COUNT(*) FROM series s JOIN measures m ON m.series_id = s.id
			WHERE s.experiment_id = e.id)
		FROM experiments e WHERE e.slug = ?`, experimentSlug).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("count measures of %q: %w", experimentSlug, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("count measures of %q: %w", experimentSlug, err)
	}
	return n, nil
}
