package storage

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migration is one versioned schema change, embedded in the binary from
// migrations/NNNN_name.sql.
type Migration struct {
	// Version is the number the file name starts with; versions run 1, 2, 3...
	Version int
	// Name is the rest of the file name, without extension.
	Name string
	// Checksum is the hex SHA-256 of the file, recorded when applied.
	Checksum string

	statements []string
}

// String returns the file name stem, e.g. "0001_init".
func (m Migration) String() string { return fmt.Sprintf("%04d_%s", m.Version, m.Name) }

// Migrations returns the migrations embedded in this binary, in version
// order.
func Migrations() ([]Migration, error) {
	return loadMigrations(migrationFiles, "migrations")
}

var migrationFileName = regexp.MustCompile(`^([0-9]{4,})_([a-z0-9_]+)\.sql$`)

// loadMigrations reads dir of fsys. Versions must run 1, 2, 3... without
// gaps or duplicates, so that a bad merge is caught by the tests.
func loadMigrations(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var ms []Migration
	for _, e := range entries {
		if e.IsDir() || path.Ext(e.Name()) != ".sql" {
			continue
		}
		sm := migrationFileName.FindStringSubmatch(e.Name())
		if sm == nil {
			return nil, fmt.Errorf("migration file %s: want NNNN_name.sql (lowercase): %w", e.Name(), ErrInvalid)
		}
		v, err := strconv.Atoi(sm[1])
		if err != nil {
			return nil, fmt.Errorf("migration file %s: %w", e.Name(), err)
		}
		body, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		sum := sha256.Sum256(body)
		stmts := splitStatements(string(body))
		if len(stmts) == 0 {
			return nil, fmt.Errorf("migration file %s has no statements: %w", e.Name(), ErrInvalid)
		}
		ms = append(ms, Migration{Version: v, Name: sm[2], Checksum: hex.EncodeToString(sum[:]), statements: stmts})
	}
	slices.SortFunc(ms, func(a, b Migration) int { return a.Version - b.Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migration %s: versions must run 1, 2, 3... without gaps or duplicates, want version %d here: %w", m, i+1, ErrInvalid)
		}
	}
	return ms, nil
}

// schemaVersionError reports a schema that does not match the binary; it
// matches ErrSchemaNewer or ErrSchemaBehind.
type schemaVersionError struct {
	current, known int
	pending        []Migration
}

func (e *schemaVersionError) Error() string {
	if e.current > e.known {
		return fmt.Sprintf("schema version %d is newer than this binary knows (%d): upgrade the binary", e.current, e.known)
	}
	names := make([]string, len(e.pending))
	for i, m := range e.pending {
		names[i] = m.String()
	}
	return fmt.Sprintf("schema version %d is behind this binary (%d), pending %s: run the migrate command or set MYMONIT_MYSQL_MIGRATE_ON_START=true", e.current, e.known, strings.Join(names, ", "))
}

func (e *schemaVersionError) Is(target error) bool {
	if e.current > e.known {
		return target == ErrSchemaNewer
	}
	return target == ErrSchemaBehind
}

// migrationRow is a row of schema_migrations. A row whose AppliedAt is NULL
// is a migration that stopped part way: done statements ran.
type migrationRow struct {
	version   int
	name      string
	checksum  string
	done      int
	appliedAt sql.NullTime
}

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version         INT          NOT NULL,
	name            VARCHAR(255) NOT NULL,
	checksum        CHAR(64)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
	statements_done INT          NOT NULL DEFAULT 0,
	applied_at      DATETIME(6)  NULL,
	PRIMARY KEY (version)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// readMigrationRows returns schema_migrations by version; an absent table is
// an empty map.
func readMigrationRows(ctx context.Context, q querier) (map[int]migrationRow, error) {
	rows, err := q.QueryContext(ctx, "SELECT version, name, checksum, statements_done, applied_at FROM schema_migrations")
	if mysqlErrno(err) == errNoSuchTable {
		return map[int]migrationRow{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	defer rows.Close()
	out := map[int]migrationRow{}
	for rows.Next() {
		var r migrationRow
		if err := rows.Scan(&r.version, &r.name, &r.checksum, &r.done, &r.appliedAt); err != nil {
			return nil, fmt.Errorf("read schema_migrations: %w", err)
		}
		out[r.version] = r
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	return out, nil
}

// schemaState compares the recorded rows with the known migrations.
// current is the highest version recorded (applied or started); pending
// lists the known migrations not completely applied.
func schemaState(rows map[int]migrationRow, known []Migration) (current int, pending []Migration) {
	for v, r := range rows {
		if r.appliedAt.Valid || v > len(known) {
			current = max(current, v)
		}
	}
	for _, m := range known {
		if r, ok := rows[m.Version]; !ok || !r.appliedAt.Valid {
			pending = append(pending, m)
		}
	}
	return current, pending
}

// Status reports the schema version of the database (the highest applied
// migration, or a version recorded by a newer binary; 0 for an empty
// database) and the embedded migrations not yet applied, including one that
// stopped part way. It takes no lock.
func Status(ctx context.Context, db *sql.DB) (current int, pending []Migration, err error) {
	known, err := Migrations()
	if err != nil {
		return 0, nil, err
	}
	rows, err := readMigrationRows(ctx, db)
	if err != nil {
		return 0, nil, err
	}
	current, pending = schemaState(rows, known)
	return current, pending, nil
}

// Check returns nil when the database schema is exactly the one this binary
// was built for, an error matching ErrSchemaNewer when a newer binary has
// migrated it, and one matching ErrSchemaBehind when migrations are pending.
// Services that do not migrate on start call it before serving.
func Check(ctx context.Context, db *sql.DB) error {
	known, err := Migrations()
	if err != nil {
		return err
	}
	rows, err := readMigrationRows(ctx, db)
	if err != nil {
		return err
	}
	current, pending := schemaState(rows, known)
	if current > len(known) || len(pending) > 0 {
		return &schemaVersionError{current: current, known: len(known), pending: pending}
	}
	return nil
}

// Migrate applies the pending embedded migrations in version order and
// returns those it applied (none when the schema is current). See the
// package documentation for the locking and crash-recovery design. On error
// it returns the migrations applied before the failure, and the error names
// the migration and statement that failed. A database migrated by a newer
// binary is an error matching ErrSchemaNewer; nothing is changed then.
func Migrate(ctx context.Context, db *sql.DB, log *zap.Logger) ([]Migration, error) {
	known, err := Migrations()
	if err != nil {
		return nil, err
	}
	return migrate(ctx, db, log, known)
}

// migrationLockPoll is how long one GET_LOCK call waits, in seconds, before
// Migrate logs that it is still waiting and checks its context.
const migrationLockPoll = 5

func migrate(ctx context.Context, db *sql.DB, log *zap.Logger, known []Migration) (applied []Migration, err error) {
	if log == nil {
		log = zap.NewNop()
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	// The dedicated session is never returned to the pool: migrations may
	// change session state, and closing the session is the last resort that
	// frees the lock if RELEASE_LOCK failed.
	defer func() {
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		_ = conn.Close()
	}()

	unlock, err := lockMigrations(ctx, conn, log)
	if err != nil {
		return nil, err
	}
	defer unlock()

	if _, err := conn.ExecContext(ctx, createMigrationsTable); err != nil {
		return nil, fmt.Errorf("create schema_migrations: %w", err)
	}
	rows, err := readMigrationRows(ctx, conn)
	if err != nil {
		return nil, err
	}
	if current, _ := schemaState(rows, known); current > len(known) {
		return nil, &schemaVersionError{current: current, known: len(known)}
	}
	for _, m := range known {
		r, seen := rows[m.Version]
		if seen && r.appliedAt.Valid {
			if r.checksum != m.Checksum {
				log.Warn("applied migration differs from the embedded file; edit schema by new migrations, not by changing old ones",
					zap.String("migration", m.String()), zap.String("recorded_checksum", r.checksum), zap.String("embedded_checksum", m.Checksum))
			}
			continue
		}
		if err := applyMigration(ctx, conn, log, m, r, seen); err != nil {
			return applied, err
		}
		applied = append(applied, m)
	}
	return applied, nil
}

// lockName scopes the named lock to the database: GET_LOCK names are
// server-wide, and databases sharing a server must not wait for each other.
// MySQL limits names to 64 characters.
func lockName(database string) string {
	name := "mymonit.migrate." + database
	if len(name) > 64 {
		sum := sha256.Sum256([]byte(database))
		name = "mymonit.migrate." + hex.EncodeToString(sum[:])[:48]
	}
	return name
}

// lockMigrations takes the migration lock on conn, waiting as long as ctx
// allows, and returns its release function.
func lockMigrations(ctx context.Context, conn *sql.Conn, log *zap.Logger) (func(), error) {
	var database sql.NullString
	if err := conn.QueryRowContext(ctx, "SELECT DATABASE()").Scan(&database); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	if !database.Valid || database.String == "" {
		return nil, fmt.Errorf("migrate: MYMONIT_MYSQL_DSN selects no database: %w", ErrInvalid)
	}
	name := lockName(database.String)
	start := time.Now()
	for {
		var got sql.NullInt64
		if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, ?)", name, migrationLockPoll).Scan(&got); err != nil {
			return nil, fmt.Errorf("migrate: take lock %s: %w", name, err)
		}
		if !got.Valid {
			return nil, fmt.Errorf("migrate: take lock %s: GET_LOCK returned NULL", name)
		}
		if got.Int64 == 1 {
			break
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("migrate: take lock %s: %w", name, err)
		}
		log.Info("waiting for the migration lock held by another process",
			zap.String("lock", name), zap.Duration("waited", time.Since(start)))
	}
	return func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		var released sql.NullInt64
		if err := conn.QueryRowContext(rctx, "SELECT RELEASE_LOCK(?)", name).Scan(&released); err != nil {
			// The session is discarded after migrating, which frees the lock.
			log.Warn("release migration lock; closing the session instead", zap.String("lock", name), zap.Error(err))
		}
	}, nil
}

// applyMigration runs m's statements from where a previous attempt stopped
// and marks m applied.
func applyMigration(ctx context.Context, conn *sql.Conn, log *zap.Logger, m Migration, r migrationRow, resuming bool) error {
	start := time.Now()
	from := 0
	if resuming {
		if r.checksum != m.Checksum {
			return fmt.Errorf("migration %s stopped after %d statements and its file changed since: repair the schema by hand, then delete its schema_migrations row", m, r.done)
		}
		from = r.done
		log.Warn("resuming a migration that stopped part way", zap.String("migration", m.String()), zap.Int("statements_done", r.done))
	} else {
		_, err := conn.ExecContext(ctx,
			"INSERT INTO schema_migrations (version, name, checksum, statements_done, applied_at) VALUES (?, ?, ?, 0, NULL)",
			m.Version, m.Name, m.Checksum)
		if err != nil {
			return fmt.Errorf("migration %s: record start: %w", m, err)
		}
	}
	for i := from; i < len(m.statements); i++ {
		if err := applyStatement(ctx, conn, log, m, i, resuming && i == from); err != nil {
			return err
		}
	}
	if _, err := conn.ExecContext(ctx, "UPDATE schema_migrations SET applied_at = UTC_TIMESTAMP(6) WHERE version = ?", m.Version); err != nil {
		return fmt.Errorf("migration %s: record completion: %w", m, err)
	}
	log.Info("applied migration", zap.String("migration", m.String()),
		zap.Int("statements", len(m.statements)-from), zap.Duration("took", time.Since(start)))
	return nil
}

// applyStatement runs statement i of m and records its completion in the
// same transaction: atomic for DML. DDL commits implicitly on MySQL and
// MariaDB, so a crash between the DDL and the record leaves the statement
// done but unrecorded; when resuming, that one statement is run again and
// the errors that mean "already done" are accepted.
func applyStatement(ctx context.Context, conn *sql.Conn, log *zap.Logger, m Migration, i int, mayBeDone bool) error {
	stmt := m.statements[i]
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migration %s statement %d: %w", m, i+1, err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, stmt); err != nil {
		if !mayBeDone || !isAlreadyDone(err) {
			return fmt.Errorf("migration %s statement %d (%s): %w", m, i+1, excerpt(stmt), err)
		}
		log.Warn("statement of a resumed migration was already applied", zap.String("migration", m.String()),
			zap.Int("statement", i+1), zap.Error(err))
	}
	if _, err := tx.ExecContext(ctx, "UPDATE schema_migrations SET statements_done = ? WHERE version = ?", i+1, m.Version); err != nil {
		return fmt.Errorf("migration %s: record statement %d: %w", m, i+1, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migration %s: commit statement %d: %w", m, i+1, err)
	}
	return nil
}

// isAlreadyDone reports the DDL errors that mean a statement took effect
// before: table exists, unknown table on DROP, duplicate column or index,
// cannot drop a missing column or index, duplicate foreign key.
func isAlreadyDone(err error) bool {
	switch mysqlErrno(err) {
	case 1050, 1051, 1060, 1061, 1091, 1826:
		return true
	}
	return false
}

// excerpt returns the start of a statement on one line, for error messages.
func excerpt(stmt string) string {
	s := strings.Join(strings.Fields(stmt), " ")
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}
