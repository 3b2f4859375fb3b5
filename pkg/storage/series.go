package storage

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"go.uber.org/zap"
)

// MaxSensorBytes is the longest sensor name the schema holds.
const MaxSensorBytes = 128

// SeriesKey identifies a series: one sensor of one experiment.
type SeriesKey struct {
	// ExperimentID is the id of a registered experiment.
	ExperimentID int64
	// Sensor is the series name: valid UTF-8, 1 to MaxSensorBytes bytes,
	// compared bytewise (case and trailing spaces count).
	Sensor string
}

// EnsureSeries returns the series id of every key, creating the series that
// do not exist. Concurrent callers (several ingest replicas) converge on the
// same ids: the unique key (experiment_id, sensor) admits one row, and ids
// are always read back from the table. Existing series cost one SELECT per
// experiment and 500 sensors; missing ones are inserted in batches of 500,
// sorted so that concurrent inserters lock in the same order, each batch in
// its own retried transaction (a batch is idempotent, so the work done by an
// earlier batch is kept if a later one fails).
//
// A sensor must be valid UTF-8 of 1 to 128 bytes (ErrInvalid); an unknown
// experiment id is ErrNotFound.
func (s *Store) EnsureSeries(ctx context.Context, keys []SeriesKey) (map[SeriesKey]int64, error) {
	uniq := dedup(keys)
	for _, k := range uniq {
		if err := validateSeriesKey(k); err != nil {
			return nil, err
		}
	}
	out := make(map[SeriesKey]int64, len(uniq))
	if err := s.lookupSeries(ctx, uniq, out); err != nil {
		return nil, err
	}
	missing := slices.DeleteFunc(uniq, func(k SeriesKey) bool { _, ok := out[k]; return ok })
	if len(missing) == 0 {
		return out, nil
	}
	slices.SortFunc(missing, compareSeriesKeys)
	// Insert, then read the ids back. A key still absent after its insert
	// committed was seen under heavy concurrency (once, with eight racing
	// callers under the race detector): insert what is still missing again,
	// a bounded number of times, before giving up.
	for round := 1; ; round++ {
		for chunk := range slices.Chunk(missing, lookupChunk) {
			if err := s.insertSeries(ctx, chunk); err != nil {
				return nil, err
			}
		}
		if err := s.lookupSeries(ctx, missing, out); err != nil {
			return nil, err
		}
		missing = slices.DeleteFunc(missing, func(k SeriesKey) bool { _, ok := out[k]; return ok })
		if len(missing) == 0 {
			return out, nil
		}
		if round == 3 {
			k := missing[0]
			return nil, fmt.Errorf("ensure series (%d, %q) and %d more: inserted but not found", k.ExperimentID, k.Sensor, len(missing)-1)
		}
		s.log.Warn("series inserted but not found; inserting again", zap.Int("count", len(missing)), zap.Int("round", round))
	}
}

func validateSeriesKey(k SeriesKey) error {
	switch {
	case k.ExperimentID <= 0:
		return fmt.Errorf("series key: experiment id %d: %w", k.ExperimentID, ErrInvalid)
	case k.Sensor == "":
		return fmt.Errorf("series key: empty sensor name: %w", ErrInvalid)
	case len(k.Sensor) > MaxSensorBytes:
		return fmt.Errorf("series key: sensor name is %d bytes, at most %d: %w", len(k.Sensor), MaxSensorBytes, ErrInvalid)
	case !utf8.ValidString(k.Sensor):
		return fmt.Errorf("series key: sensor name %q is not valid UTF-8: %w", k.Sensor, ErrInvalid)
	}
	return nil
}

func compareSeriesKeys(a, b SeriesKey) int {
	return cmp.Or(cmp.Compare(a.ExperimentID, b.ExperimentID), strings.Compare(a.Sensor, b.Sensor))
}

// insertSeries creates the series of keys that do not exist. It uses
// INSERT ... ON DUPLICATE KEY UPDATE id = id rather than INSERT IGNORE,
// which would also turn a foreign key violation or an over-long value into
// a warning.
func (s *Store) insertSeries(ctx context.Context, keys []SeriesKey) error {
	now := s.timestamp()
	args := make([]any, 0, 3*len(keys))
	for _, k := range keys {
		args = append(args, k.ExperimentID, []byte(k.Sensor), now)
	}
	q := "INSERT INTO series (experiment_id, sensor, created_at) VALUES " +
		repeatJoin("(?, ?, ?)", len(keys)) + " ON DUPLICATE KEY UPDATE id = id"
	err := s.InTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, q, args...)
		return err
	})
	if mysqlErrno(err) == errNoReferencedRow {
		return fmt.Errorf("ensure series: experiment not registered: %w", ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("ensure series: %w", err)
	}
	return nil
}

// lookupSeries adds the ids of the existing series among keys to out.
func (s *Store) lookupSeries(ctx context.Context, keys []SeriesKey, out map[SeriesKey]int64) error {
	byExperiment := map[int64][]any{}
	var order []int64
	for _, k := range keys {
		if _, ok := byExperiment[k.ExperimentID]; !ok {
			order = append(order, k.ExperimentID)
		}
		byExperiment[k.ExperimentID] = append(byExperiment[k.ExperimentID], []byte(k.Sensor))
	}
	for _, exp := range order {
		for sensors := range slices.Chunk(byExperiment[exp], lookupChunk) {
			args := append([]any{exp}, sensors...)
			rows, err := s.db.QueryContext(ctx,
				"SELECT id, sensor FROM series WHERE experiment_id = ? AND sensor IN ("+placeholders(len(sensors))+")", args...)
			if err != nil {
				return fmt.Errorf("look up series: %w", err)
			}
			err = func() error {
				defer rows.Close()
				for rows.Next() {
					var id int64
					var sensor []byte
					if err := rows.Scan(&id, &sensor); err != nil {
						return err
					}
					out[SeriesKey{ExperimentID: exp, Sensor: string(sensor)}] = id
				}
				return rows.Err()
			}()
			if err != nil {
				return fmt.Errorf("look up series: %w", err)
			}
		}
	}
	return nil
}

var slugPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// validateSlug checks an experiment slug against the message contract.
func validateSlug(slug string) error {
	if !slugPattern.MatchString(slug) {
		return fmt.Errorf("experiment slug %q: want [a-z0-9][a-z0-9._-]{0,63}: %w", slug, ErrInvalid)
	}
	return nil
}

// dedup returns the distinct values of vs in first-seen order, in a new
// slice.
func dedup[T comparable](vs []T) []T {
	seen := make(map[T]struct{}, len(vs))
	out := make([]T, 0, len(vs))
	for _, v := range vs {
		if _, ok := seen[v]; !ok {
			seen[v] = struct{}{}
			out = append(out, v)
		}
	}
	return out
}

// placeholders returns "?, ?, ..." with n marks.
func placeholders(n int) string { return repeatJoin("?", n) }

// repeatJoin returns n copies of s separated by ", ".
func repeatJoin(s string, n int) string {
	if n <= 0 {
		return ""
	}
	var b strings.Builder
	b.Grow(n * (len(s) + 2))
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(s)
	}
	return b.String()
}
