// Package storage owns the MyMONIT schema on MariaDB 10.11 or MySQL 8: the
// connection pool (Open), the versioned migrations embedded in the binary
// (Migrate, Status, Check), and the Store with the reads and writes the
// services share. Module wires it into an fx application.
//
// # Connections
//
// Open parses the DSN with go-sql-driver/mysql and forces what the store
// relies on, whatever the DSN says: parseTime and loc=UTC (DATETIME scans
// into UTC time.Time), session time_zone '+00:00' (NOW() and
// CURRENT_TIMESTAMP are UTC), a strict sql_mode (over-long or invalid data
// is an error, never a silent truncation), utf8mb4 with collation
// utf8mb4_bin, times truncated to the microsecond on the client (MySQL
// rounds extra digits, MariaDB truncates; truncating first makes both
// agree), no multi-statements, and rejectReadOnly so that a primary that
// failed over to read-only is dropped from the pool. Statements are bounded
// by their contexts; there is no default read timeout, so a long migration
// is not cut off.
//
// # Schema
//
// Migration 0001_init creates five InnoDB tables, utf8mb4, DATETIME(6) in
// UTC:
//
//   - users: role ENUM('admin','scientist','auditor'); firebase_uid unique
//     and case-sensitive; name and email are PII and nullable, so GDPR
//     erasure clears them, sets erased_at and keeps the pseudonymous row
//     that audit events refer to by id.
//   - experiments: slug unique ([a-z0-9][a-z0-9._-]{0,63}, checked by
//     CreateExperiment), name, description.
//   - memberships: (experiment_id, user_id) primary key, a key on user_id,
//     both foreign keys ON DELETE CASCADE.
//   - series: one row per (experiment, sensor) with a surrogate BIGINT id,
//     unique on (experiment_id, sensor). Measures carry the 8-byte id
//     instead of the experiment and a name of up to 128 bytes, which keeps
//     the measures key small. sensor is VARBINARY(128) rather than
//     VARCHAR(128) utf8mb4_bin: the message contract limits it to 128 bytes
//     (VARCHAR counts characters), and utf8mb4_bin, the only binary
//     collation both servers share, is PAD SPACE, under which "t" and "t "
//     would collide in the unique key. The store checks the name is valid
//     UTF-8. The foreign key to experiments is RESTRICT: an experiment with
//     data is not deleted by accident (delete its measures and series
//     first).
//   - measures: PRIMARY KEY (series_id, time), value DOUBLE, unit
//     VARCHAR(16) NULL, tags JSON NULL. The clustered key is the identity of
//     a measure, (experiment, sensor, time) = (series_id, time), so a
//     re-delivered measure updates its row instead of adding one; it keeps
//     each series' rows together in time order, so ingest appends per series
//     and a time-range scan of a sensor reads consecutive pages; and it is
//     the only index, nothing else to maintain on the insert path. There is
//     no foreign key on series_id: it would cost a lookup and a shared lock
//     in series for every inserted row, and only ids returned by
//     EnsureSeries are written. ROW_FORMAT=DYNAMIC (both servers' default,
//     stated): COMPRESSED would save disk at a CPU cost on every insert.
//     Tags are compact JSON with sorted keys, NULL when empty, so the api
//     can filter with JSON functions on either server.
//
// # Idempotency
//
// Delivery is at least once; storage makes it effectively once.
// UpsertMeasures writes with INSERT ... ON DUPLICATE KEY UPDATE value,
// unit, tags (the VALUES() form, accepted by MariaDB and MySQL 8; no row
// alias, no RETURNING), so writing a measure again, in the same call or
// later, leaves one row holding the last write. Within one call the rows
// are first sorted by (series_id, time) and reduced to the last row of each
// key; the sort also appends to the clustered index in order and makes
// concurrent writers take row locks in the same order, which avoids most
// deadlocks. A call is one transaction: all rows or none, so the ingest
// service acks a delivery only after UpsertMeasures returned nil. If the
// outcome of a commit is unknown (connection lost during COMMIT), running
// the same batch again is safe.
//
// EnsureSeries reads the existing series, inserts the missing ones with
// INSERT ... ON DUPLICATE KEY UPDATE id = id (rather than INSERT IGNORE,
// which would also turn a foreign-key violation or an over-long name into a
// warning and a missing row), then reads their ids back. Replicas that race
// on a new sensor converge on the one row the unique key admits. Lost
// inserts burn AUTO_INCREMENT values; ids are not dense.
//
// # Transactions and locking
//
// Store.InTx runs a function in a transaction (REPEATABLE READ, the server
// default), checks the commit, rolls back on any error or panic, and runs
// the whole function again when InnoDB chose it as a deadlock victim (1213)
// or it timed out waiting for a lock (1205): up to StoreParams.MaxTxAttempts
// attempts with exponential backoff and full jitter. Any other error is
// returned at once. IsRetryable classifies errors for callers that retry
// whole operations, such as ingest deciding between requeueing a batch
// (database unavailable) and dead-lettering it (bad data).
//
// # Migrations
//
// Migrations are files migrations/NNNN_name.sql embedded with embed.FS,
// numbered 1, 2, 3... without gaps. The table schema_migrations (version,
// name, checksum, statements_done, applied_at) records them; the schema
// version is the highest applied version.
//
// Migrate runs on one dedicated connection and first takes a named lock,
// GET_LOCK('mymonit.migrate.<database>'), waiting for it as long as its
// context allows, so that replicas starting together apply each migration
// once: the others wait, then find nothing pending. The name includes the
// database because GET_LOCK names are server-wide and databases sharing a
// server must not wait for one another. The lock is released with
// RELEASE_LOCK and the session is then discarded, never returned to the
// pool, so neither the lock nor session state set by a migration can leak.
//
// MySQL and MariaDB commit DDL implicitly, so a migration cannot be one
// transaction. Each file is split into statements (at semicolons outside
// quotes and comments) and each statement runs in a transaction together
// with the update of statements_done: atomic for DML. For DDL a crash can
// fall between the statement and its record; the next Migrate resumes at
// the first unrecorded statement and, for that statement only, accepts the
// errors that mean it already took effect (table exists, duplicate column
// or index, unknown table or column on DROP). A migration whose file
// changed since it stopped part way is refused (repair by hand); a changed
// file of an applied migration is only logged: change the schema with new
// migrations, never by editing old ones. Migrations also use IF NOT EXISTS
// where both servers support it.
//
// Check is what services that do not migrate call at start: it fails with
// ErrSchemaBehind when migrations are pending and with ErrSchemaNewer when
// a newer binary has migrated the database ("schema version 7 is newer than
// this binary knows (5): upgrade the binary"); Migrate refuses the latter
// too, changing nothing.
//
// Writing a migration: one change per statement, syntax both servers
// accept, no DELIMITER or stored programs, and DDL that is safe to run
// again where that is cheap.
package storage
