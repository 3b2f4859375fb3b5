package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Defaults of StoreParams.
const (
	// DefaultChunkRows is the number of rows per INSERT statement.
	DefaultChunkRows = 1000
	// DefaultMaxTxAttempts bounds the runs of an InTx function.
	DefaultMaxTxAttempts = 5
)

// maxPlaceholders is the limit of the MySQL protocol per prepared statement.
const maxPlaceholders = 65535

// StoreParams configures a Store. DB is required; zero values of the other
// fields select the defaults.
type StoreParams struct {
	// DB is the pool from Open.
	DB *sql.DB
	// Logger receives retry notices; nil discards them.
	Logger *zap.Logger
	// ChunkRows is the number of rows per multi-row INSERT in
	// UpsertMeasures (default DefaultChunkRows, at most 13107: 65535
	// placeholders of 5 columns).
	ChunkRows int
	// MaxTxAttempts bounds how often InTx runs its function when it keeps
	// losing lock races (default DefaultMaxTxAttempts).
	MaxTxAttempts int
	// Now returns the current time for created_at/updated_at (default
	// time.Now).
	Now func() time.Time
}

// Store reads and writes the MyMONIT schema. It caches no data (slug and
// series id caches belong to their callers), only the prepared statement of
// a full UpsertMeasures chunk. It is safe for concurrent use.
type Store struct {
	db          *sql.DB
	log         *zap.Logger
	chunkRows   int
	maxAttempts int
	now         func() time.Time

	mu         sync.Mutex
	upsertStmt *sql.Stmt            // prepared lazily for chunkRows rows
	stmts      map[string]*sql.Stmt // statements of fixed text, prepared once (prepared)
}

// NewStore returns a Store over p.DB.
func NewStore(p StoreParams) *Store {
	s := &Store{
		db:          p.DB,
		log:         p.Logger,
		chunkRows:   p.ChunkRows,
		maxAttempts: p.MaxTxAttempts,
		now:         p.Now,
	}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	if s.chunkRows <= 0 {
		s.chunkRows = DefaultChunkRows
	}
	s.chunkRows = min(s.chunkRows, maxPlaceholders/measureColumns)
	if s.maxAttempts <= 0 {
		s.maxAttempts = DefaultMaxTxAttempts
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// Close releases the prepared statements of the store. It does not close
// the DB.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	if s.upsertStmt != nil {
		errs = append(errs, s.upsertStmt.Close())
		s.upsertStmt = nil
	}
	for q, st := range s.stmts {
		errs = append(errs, st.Close())
		delete(s.stmts, q)
	}
	return errors.Join(errs...)
}

// prepared returns the statement of a fixed query text (one of a small
// set, never text built from values), prepared once: database/sql then
// prepares it once per connection and reuses it, where a plain query
// costs a prepare, an execute and a close on every call. It returns nil
// when the statement cannot be prepared; the caller then sends the query
// plainly, which reports the error.
func (s *Store) prepared(ctx context.Context, query string) *sql.Stmt {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.stmts[query]; st != nil {
		return st
	}
	st, err := s.db.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	if s.stmts == nil {
		s.stmts = map[string]*sql.Stmt{}
	}
	s.stmts[query] = st
	return st
}

// lookup runs one of the store's fixed single-row lookups (user,
// experiment, membership: the API sends them on every request) through
// its prepared statement.
func (s *Store) lookup(ctx context.Context, query string, args ...any) *sql.Row {
	if st := s.prepared(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return s.db.QueryRowContext(ctx, query, args...)
}

// queryFixed runs a query of fixed text through its prepared statement.
func (s *Store) queryFixed(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := s.prepared(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return s.db.QueryContext(ctx, query, args...)
}

// lookups is a rowQuerier over Store.lookup.
type lookups struct{ s *Store }

func (l lookups) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return l.s.lookup(ctx, query, args...)
}

// timestamp returns the current time as stored: UTC, microseconds.
func (s *Store) timestamp() time.Time {
	return s.now().UTC().Truncate(time.Microsecond)
}

// Backoff between InTx attempts: full jitter over an exponential ceiling.
const (
	txRetryBase = 5 * time.Millisecond
	txRetryCap  = 500 * time.Millisecond
)

// InTx runs fn in a transaction and commits it. When fn or the commit fails
// the transaction is rolled back and the error returned, wrapped. When the
// failure is a lost lock race (deadlock 1213, lock wait timeout 1205) the
// whole of fn runs again in a new transaction, after a short random pause,
// up to MaxTxAttempts times; fn must therefore be safe to re-run and keep
// no effects outside the transaction. Other errors are returned after one
// attempt. The transaction is also rolled back if fn panics.
func (s *Store) InTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := s.runTx(ctx, fn)
		if err == nil {
			return nil
		}
		if !isLockError(err) || attempt >= s.maxAttempts {
			if attempt > 1 {
				return fmt.Errorf("transaction failed after %d attempts: %w", attempt, err)
			}
			return err
		}
		ceiling := min(txRetryCap, txRetryBase<<(attempt-1))
		pause := rand.N(ceiling) + time.Millisecond
		s.log.Debug("transaction lost a lock race, retrying",
			zap.Int("attempt", attempt), zap.Duration("pause", pause), zap.Error(err))
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("transaction retry after %w: %w", err, ctx.Err())
		case <-t.C:
		}
	}
}

func (s *Store) runTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	done := false
	defer func() {
		if !done {
			_ = tx.Rollback()
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	done = true
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// Experiment is a registered experiment.
type Experiment struct {
	// ID is assigned by the database.
	ID int64
	// Slug names the experiment in messages (routing keys) and URLs.
	Slug string
	// Name is a human title, at most 200 characters.
	Name string
	// Description is free text.
	Description string
	// CreatedAt and UpdatedAt are UTC, to the microsecond.
	CreatedAt time.Time
	UpdatedAt time.Time
}

// CreateExperiment registers e (its ID and times are ignored) and returns it
// as stored. The slug must match [a-z0-9][a-z0-9._-]{0,63} and the name be
// at most 200 characters (ErrInvalid); a taken slug is ErrConflict.
func (s *Store) CreateExperiment(ctx context.Context, e Experiment) (Experiment, error) {
	if err := validateSlug(e.Slug); err != nil {
		return Experiment{}, err
	}
	if n := len([]rune(e.Name)); n > 200 {
		return Experiment{}, fmt.Errorf("experiment name is %d characters, at most 200: %w", n, ErrInvalid)
	}
	now := s.timestamp()
	res, err := s.db.ExecContext(ctx,
		"INSERT INTO experiments (slug, name, description, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
		e.Slug, e.Name, e.Description, now, now)
	if mysqlErrno(err) == errDupEntry {
		return Experiment{}, fmt.Errorf("create experiment %q: %w", e.Slug, ErrConflict)
	}
	if err != nil {
		return Experiment{}, fmt.Errorf("create experiment %q: %w", e.Slug, err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return Experiment{}, fmt.Errorf("create experiment %q: %w", e.Slug, err)
	}
	e.ID, e.CreatedAt, e.UpdatedAt = id, now, now
	return e, nil
}

const experimentColumns = "id, slug, name, description, created_at, updated_at"

func scanExperiment(sc interface{ Scan(...any) error }) (Experiment, error) {
	var e Experiment
	err := sc.Scan(&e.ID, &e.Slug, &e.Name, &e.Description, &e.CreatedAt, &e.UpdatedAt)
	return e, err
}

// ExperimentBySlug returns the experiment with the slug, or ErrNotFound.
func (s *Store) ExperimentBySlug(ctx context.Context, slug string) (Experiment, error) {
	if validateSlug(slug) != nil {
		// Never stored; and the PAD SPACE collation would match "x " to "x".
		return Experiment{}, fmt.Errorf("experiment %q: %w", slug, ErrNotFound)
	}
	e, err := scanExperiment(s.lookup(ctx,
		"SELECT "+experimentColumns+" FROM experiments WHERE slug = ?", slug))
	if errors.Is(err, sql.ErrNoRows) {
		return Experiment{}, fmt.Errorf("experiment %q: %w", slug, ErrNotFound)
	}
	if err != nil {
		return Experiment{}, fmt.Errorf("experiment %q: %w", slug, err)
	}
	return e, nil
}

// Caller is a user with an experiment it asks for, read together:
// UserAndExperiment.
type Caller struct {
	User User
	// Experiment is the experiment with the slug asked for; Found is false
	// (and Experiment zero) when there is none.
	Experiment Experiment
	Found      bool
	// Member reports whether the user is a member of the experiment.
	Member bool
}

// UserAndExperiment returns the user with the Firebase uid, as
// UserByFirebaseUID does (ErrNotFound for an unknown or erased user), with
// the experiment with the slug, as ExperimentBySlug does, and whether the
// user is one of its members, in one statement: the API asks all three on
// every request about one experiment.
func (s *Store) UserAndExperiment(ctx context.Context, uid, slug string) (Caller, error) {
	if validateSlug(slug) != nil {
		// No experiment has it; and the PAD SPACE collation would match
		// "x " to "x".
		u, err := s.UserByFirebaseUID(ctx, uid)
		return Caller{User: u}, err
	}
	if validateUID(uid) != nil {
		return Caller{}, fmt.Errorf("user by firebase uid: %w", ErrNotFound)
	}
	var (
		c                 Caller
		eID               sql.NullInt64
		eSlug, eName      sql.NullString
		eDesc             sql.NullString
		eCreated, eUpdate sql.NullTime
	)
	row := s.lookup(ctx, "SELECT u.id, u.firebase_uid, u.name, u.email, u.role, u.erased_at, u.created_at, u.updated_at, "+
		"e.id, e.slug, e.name, e.description, e.created_at, e.updated_at, "+
		"EXISTS (SELECT 1 FROM memberships m WHERE m.experiment_id = e.id AND m.user_id = u.id) "+
		"FROM users u LEFT JOIN experiments e ON e.slug = ? WHERE u.firebase_uid = ?", slug, uid)
	u, err := scanUser(scanFunc(func(dest ...any) error {
		return row.Scan(append(dest, &eID, &eSlug, &eName, &eDesc, &eCreated, &eUpdate, &c.Member)...)
	}))
	if errors.Is(err, sql.ErrNoRows) {
		return Caller{}, fmt.Errorf("user by firebase uid: %w", ErrNotFound)
	}
	if err != nil {
		return Caller{}, fmt.Errorf("user by firebase uid and experiment %q: %w", slug, err)
	}
	c.User = u
	if c.Found = eID.Valid; c.Found {
		c.Experiment = Experiment{ID: eID.Int64, Slug: eSlug.String, Name: eName.String, Description: eDesc.String,
			CreatedAt: eCreated.Time, UpdatedAt: eUpdate.Time}
	}
	return c, nil
}

// scanFunc is a Scan method of its own.
type scanFunc func(dest ...any) error

// Scan implements the scanner of scanUser and scanExperiment.
func (f scanFunc) Scan(dest ...any) error { return f(dest...) }

// ListExperiments returns all experiments ordered by slug.
func (s *Store) ListExperiments(ctx context.Context) ([]Experiment, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+experimentColumns+" FROM experiments ORDER BY slug")
	if err != nil {
		return nil, fmt.Errorf("list experiments: %w", err)
	}
	defer rows.Close()
	var out []Experiment
	for rows.Next() {
		e, err := scanExperiment(rows)
		if err != nil {
			return nil, fmt.Errorf("list experiments: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list experiments: %w", err)
	}
	return out, nil
}

// lookupChunk bounds the number of values in one IN (...) list.
const lookupChunk = 500

// ExperimentIDs maps the registered slugs among slugs to their ids; slugs
// that are not registered (or not valid) are absent from the map.
func (s *Store) ExperimentIDs(ctx context.Context, slugs []string) (map[string]int64, error) {
	uniq := slices.DeleteFunc(dedup(slugs), func(slug string) bool { return validateSlug(slug) != nil })
	out := make(map[string]int64, len(uniq))
	for chunk := range slices.Chunk(uniq, lookupChunk) {
		args := make([]any, len(chunk))
		for i, v := range chunk {
			args[i] = v
		}
		rows, err := s.db.QueryContext(ctx,
			"SELECT slug, id FROM experiments WHERE slug IN ("+placeholders(len(chunk))+")", args...)
		if err != nil {
			return nil, fmt.Errorf("experiment ids: %w", err)
		}
		err = func() error {
			defer rows.Close()
			for rows.Next() {
				var slug string
				var id int64
				if err := rows.Scan(&slug, &id); err != nil {
					return err
				}
				out[slug] = id
			}
			return rows.Err()
		}()
		if err != nil {
			return nil, fmt.Errorf("experiment ids: %w", err)
		}
	}
	return out, nil
}
