package storage_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mymonit/mymonit/pkg/storage"
	"github.com/mymonit/mymonit/pkg/testenv"
	"go.uber.org/zap/zaptest"
)

func embedded(t *testing.T) []storage.Migration {
	t.Helper()
	ms, err := storage.Migrations()
	if err != nil {
		t.Fatalf("Migrations: %v", err)
	}
	return ms
}

func versions(ms []storage.Migration) []int {
	var vs []int
	for _, m := range ms {
		vs = append(vs, m.Version)
	}
	return vs
}

func tables(t *testing.T, db *sql.DB) []string {
	t.Helper()
	rows, err := db.QueryContext(testCtx(t),
		"SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() ORDER BY table_name")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestMigrationsEmbedded(t *testing.T) {
	ms := embedded(t)
	if len(ms) == 0 || ms[0].String() != "0001_init" {
		t.Fatalf("embedded migrations start with %v, want 0001_init", ms)
	}
	for i, m := range ms {
		if m.Version != i+1 {
			t.Errorf("migration %d has version %d", i, m.Version)
		}
		if len(m.Checksum) != 64 {
			t.Errorf("migration %s: checksum %q", m, m.Checksum)
		}
	}
	if got := len(ms[0].Statements()); got != 5 {
		t.Errorf("0001_init has %d statements, want 5 (one per table)", got)
	}
}

func TestMigrateFromEmpty(t *testing.T) {
	db := freshDB(t)
	ctx := testCtx(t)
	known := embedded(t)

	current, pending, err := storage.Status(ctx, db)
	if err != nil {
		t.Fatalf("Status on an empty database: %v", err)
	}
	if current != 0 || !slices.Equal(versions(pending), versions(known)) {
		t.Errorf("Status on an empty database = %d, %v; want 0, %v", current, versions(pending), versions(known))
	}
	if err := storage.Check(ctx, db); !errors.Is(err, storage.ErrSchemaBehind) || !strings.Contains(err.Error(), "0001_init") {
		t.Errorf("Check on an empty database = %v, want ErrSchemaBehind naming 0001_init", err)
	}

	applied, err := storage.Migrate(ctx, db, zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if diff := cmp.Diff(versions(known), versions(applied)); diff != "" {
		t.Errorf("applied migrations (-want +got):\n%s", diff)
	}
	want := []string{"experiments", "measures", "memberships", "membership_revocations", "schema_migrations", "series", "users"}
	if diff := cmp.Diff(want, tables(t, db)); diff != "" {
		t.Errorf("tables (-want +got):\n%s", diff)
	}
	current, pending, err = storage.Status(ctx, db)
	if err != nil || current != len(known) || len(pending) != 0 {
		t.Errorf("Status after Migrate = %d, %v, %v; want %d, none, nil", current, pending, err, len(known))
	}
	if err := storage.Check(ctx, db); err != nil {
		t.Errorf("Check after Migrate: %v", err)
	}
	for _, m := range known {
		var done int
		var appliedAt sql.NullTime
		var sum string
		err := db.QueryRowContext(ctx, "SELECT statements_done, applied_at, checksum FROM schema_migrations WHERE version = ?", m.Version).
			Scan(&done, &appliedAt, &sum)
		if err != nil {
			t.Fatalf("schema_migrations row of %s: %v", m, err)
		}
		if done != len(m.Statements()) || !appliedAt.Valid || sum != m.Checksum {
			t.Errorf("schema_migrations row of %s = done %d, applied %v, checksum %s; want %d, set, %s",
				m, done, appliedAt, sum, len(m.Statements()), m.Checksum)
		}
	}

	// The engine and row format the schema documents.
	var engine, format string
	if err := db.QueryRowContext(ctx, "SELECT engine, row_format FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'measures'").
		Scan(&engine, &format); err != nil {
		t.Fatal(err)
	}
	if engine != "InnoDB" || format != "Dynamic" {
		t.Errorf("measures is %s/%s, want InnoDB/Dynamic", engine, format)
	}
}

func TestMigrateWaitsForTheLock(t *testing.T) {
	dsn := testenv.MySQLDatabase(t)
	db := openDB(t, dsn)
	ctx := testCtx(t)
	var database string
	if err := db.QueryRowContext(ctx, "SELECT DATABASE()").Scan(&database); err != nil {
		t.Fatal(err)
	}
	lock := storage.LockName(database)

	// Another "replica" holds the lock.
	holder, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	if n := queryConnInt(t, holder, "SELECT GET_LOCK(?, 0)", lock); n != 1 {
		t.Fatalf("GET_LOCK = %d", n)
	}
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	applied, err := storage.Migrate(short, openDB(t, dsn), zaptest.NewLogger(t))
	if !errors.Is(err, context.DeadlineExceeded) || len(applied) != 0 {
		t.Errorf("Migrate while the lock is held = %v, %v; want nothing, context.DeadlineExceeded", applied, err)
	}
	if got := tables(t, db); len(got) != 0 {
		t.Errorf("Migrate changed the schema without the lock: %v", got)
	}
	if n := queryConnInt(t, holder, "SELECT RELEASE_LOCK(?)", lock); n != 1 {
		t.Fatalf("RELEASE_LOCK = %d", n)
	}

	if _, err := storage.Migrate(ctx, db, zaptest.NewLogger(t)); err != nil {
		t.Fatalf("Migrate after the lock was released: %v", err)
	}
	// Migrate released its lock (or closed its session): it is free again.
	if n := queryInt(t, db, "SELECT IS_FREE_LOCK(?)", lock); n != 1 {
		t.Errorf("IS_FREE_LOCK after Migrate = %d, want 1", n)
	}
}

func queryConnInt(t *testing.T, conn *sql.Conn, q string, args ...any) int64 {
	t.Helper()
	var n sql.NullInt64
	if err := conn.QueryRowContext(testCtx(t), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n.Int64
}

func TestMigrateTwiceIsNoop(t *testing.T) {
	db := migratedDB(t)
	ctx := testCtx(t)
	before := queryInt(t, db, "SELECT COUNT(*) FROM schema_migrations WHERE applied_at IS NOT NULL")
	var stamp string
	if err := db.QueryRowContext(ctx, "SELECT MAX(applied_at) FROM schema_migrations").Scan(&stamp); err != nil {
		t.Fatal(err)
	}
	applied, err := storage.Migrate(ctx, db, zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	if len(applied) != 0 {
		t.Errorf("second Migrate applied %v, want nothing", applied)
	}
	var stamp2 string
	if err := db.QueryRowContext(ctx, "SELECT MAX(applied_at) FROM schema_migrations").Scan(&stamp2); err != nil {
		t.Fatal(err)
	}
	if after := queryInt(t, db, "SELECT COUNT(*) FROM schema_migrations WHERE applied_at IS NOT NULL"); after != before || stamp2 != stamp {
		t.Errorf("schema_migrations changed: %d rows (was %d), last applied %s (was %s)", after, before, stamp2, stamp)
	}
}

func TestMigrateConcurrentReplicas(t *testing.T) {
	dsn := testenv.MySQLDatabase(t)
	ctx := testCtx(t)
	const replicas = 5
	dbs := make([]*sql.DB, replicas) // one pool per "replica"
	for i := range dbs {
		dbs[i] = openDB(t, dsn)
	}
	results := make([][]storage.Migration, replicas)
	errs := make([]error, replicas)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Go(func() {
			<-start
			results[i], errs[i] = storage.Migrate(ctx, dbs[i], zaptest.NewLogger(t))
		})
	}
	close(start)
	wg.Wait()

	appliedTimes := map[int]int{}
	for i := range replicas {
		if errs[i] != nil {
			t.Errorf("replica %d: Migrate: %v", i, errs[i])
		}
		for _, m := range results[i] {
			appliedTimes[m.Version]++
		}
	}
	want := map[int]int{}
	for _, m := range embedded(t) {
		want[m.Version] = 1
	}
	if diff := cmp.Diff(want, appliedTimes); diff != "" {
		t.Errorf("times each migration was applied (-want +got):\n%s", diff)
	}
	if n := queryInt(t, dbs[0], "SELECT COUNT(*) FROM schema_migrations WHERE applied_at IS NOT NULL"); n != int64(len(want)) {
		t.Errorf("schema_migrations has %d applied rows, want %d", n, len(want))
	}
	if err := storage.Check(ctx, dbs[0]); err != nil {
		t.Errorf("Check: %v", err)
	}
}

func TestSchemaNewerThanBinary(t *testing.T) {
	db := migratedDB(t)
	ctx := testCtx(t)
	known := len(embedded(t))
	future := known + 2
	if _, err := db.ExecContext(ctx,
		"INSERT INTO schema_migrations (version, name, checksum, statements_done, applied_at) VALUES (?, 'future', REPEAT('0', 64), 1, UTC_TIMESTAMP(6))",
		future); err != nil {
		t.Fatal(err)
	}
	wantMsg := fmt.Sprintf("schema version %d is newer than this binary knows (%d): upgrade the binary", future, known)

	applied, err := storage.Migrate(ctx, db, zaptest.NewLogger(t))
	if !errors.Is(err, storage.ErrSchemaNewer) || err.Error() != wantMsg || len(applied) != 0 {
		t.Errorf("Migrate = %v, %q; want nothing, %q (ErrSchemaNewer)", applied, err, wantMsg)
	}
	if err := storage.Check(ctx, db); !errors.Is(err, storage.ErrSchemaNewer) || errors.Is(err, storage.ErrSchemaBehind) {
		t.Errorf("Check = %v, want ErrSchemaNewer only", err)
	}
	if current, _, err := storage.Status(ctx, db); err != nil || current != future {
		t.Errorf("Status = %d, %v; want %d", current, err, future)
	}
}

func mapFS(files map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for name, body := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(body)}
	}
	return fsys
}

func TestMigrateResumesAfterCrash(t *testing.T) {
	db := freshDB(t)
	ctx := testCtx(t)
	const body = `CREATE TABLE a (id INT PRIMARY KEY);
CREATE TABLE b (id INT PRIMARY KEY);
INSERT INTO a VALUES (1);
CREATE TABLE c (id INT PRIMARY KEY);`
	sum := sha256.Sum256([]byte(body))

	// A previous run recorded statement 1, then ran statement 2 (DDL,
	// auto-committed) and died before recording it.
	for _, q := range []string{
		storage.CreateMigrationsTable,
		"CREATE TABLE a (id INT PRIMARY KEY)",
		"CREATE TABLE b (id INT PRIMARY KEY)",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.ExecContext(ctx,
		"INSERT INTO schema_migrations (version, name, checksum, statements_done) VALUES (1, 'crash', ?, 1)",
		hex.EncodeToString(sum[:])); err != nil {
		t.Fatal(err)
	}

	applied, err := storage.MigrateFS(ctx, db, zaptest.NewLogger(t), mapFS(map[string]string{"0001_crash.sql": body}))
	if err != nil {
		t.Fatalf("resumed Migrate: %v", err)
	}
	if diff := cmp.Diff([]int{1}, versions(applied)); diff != "" {
		t.Errorf("applied (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"a", "b", "c", "schema_migrations"}, tables(t, db)); diff != "" {
		t.Errorf("tables (-want +got):\n%s", diff)
	}
	if n := queryInt(t, db, "SELECT COUNT(*) FROM a"); n != 1 {
		t.Errorf("table a has %d rows, want 1 (the INSERT ran once)", n)
	}
	if n := queryInt(t, db, "SELECT statements_done FROM schema_migrations WHERE version = 1 AND applied_at IS NOT NULL"); n != 4 {
		t.Errorf("statements_done = %d, want 4", n)
	}
}

func TestMigrateStopsAtFailingStatement(t *testing.T) {
	db := freshDB(t)
	ctx := testCtx(t)
	broken := mapFS(map[string]string{
		"0001_one.sql": "CREATE TABLE one (id INT PRIMARY KEY);",
		"0002_two.sql": "CREATE TABLE two (id INT PRIMARY KEY);\nCREATE TABLE oops (id NOSUCHTYPE);\nCREATE TABLE three (id INT PRIMARY KEY);",
	})
	applied, err := storage.MigrateFS(ctx, db, zaptest.NewLogger(t), broken)
	if err == nil || !strings.Contains(err.Error(), "0002_two statement 2") {
		t.Fatalf("Migrate with a broken statement: err = %v, want it to name 0002_two statement 2", err)
	}
	if diff := cmp.Diff([]int{1}, versions(applied)); diff != "" {
		t.Errorf("applied before the failure (-want +got):\n%s", diff)
	}
	var done int
	var appliedAt sql.NullTime
	if err := db.QueryRowContext(ctx, "SELECT statements_done, applied_at FROM schema_migrations WHERE version = 2").Scan(&done, &appliedAt); err != nil {
		t.Fatal(err)
	}
	if done != 1 || appliedAt.Valid {
		t.Errorf("0002 recorded as done %d, applied %v; want 1 statement, not applied", done, appliedAt)
	}
	// Running the same file again fails again at the same place: an error
	// that does not mean "already done" is never skipped.
	if _, err := storage.MigrateFS(ctx, db, zaptest.NewLogger(t), broken); err == nil || !strings.Contains(err.Error(), "0002_two statement 2") {
		t.Errorf("second run: err = %v, want the same failure", err)
	}
	// A changed file cannot be resumed safely.
	fixed := mapFS(map[string]string{
		"0001_one.sql": "CREATE TABLE one (id INT PRIMARY KEY);",
		"0002_two.sql": "CREATE TABLE two (id INT PRIMARY KEY);\nCREATE TABLE three (id INT PRIMARY KEY);",
	})
	if _, err := storage.MigrateFS(ctx, db, zaptest.NewLogger(t), fixed); err == nil || !strings.Contains(err.Error(), "changed") {
		t.Errorf("resume with a changed file: err = %v, want a refusal", err)
	}
	// After the operator's repair (delete the row and the partial table), it applies.
	for _, q := range []string{"DELETE FROM schema_migrations WHERE version = 2", "DROP TABLE two"} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	applied, err = storage.MigrateFS(ctx, db, zaptest.NewLogger(t), fixed)
	if err != nil || !slices.Equal(versions(applied), []int{2}) {
		t.Errorf("after repair: Migrate = %v, %v; want [2], nil", versions(applied), err)
	}
}

func TestLoadMigrationsRejectsBadSets(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
	}{
		{"gap", map[string]string{"0001_a.sql": "SELECT 1;", "0003_c.sql": "SELECT 1;"}},
		{"duplicate version", map[string]string{"0001_a.sql": "SELECT 1;", "0001_b.sql": "SELECT 1;"}},
		{"not starting at 1", map[string]string{"0002_b.sql": "SELECT 1;"}},
		{"bad name", map[string]string{"0001-Init.sql": "SELECT 1;"}},
		{"empty", map[string]string{"0001_a.sql": "-- nothing\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := storage.LoadMigrations(mapFS(tt.files))
			if !errors.Is(err, storage.ErrInvalid) {
				t.Errorf("LoadMigrations = %v, %v; want ErrInvalid", ms, err)
			}
		})
	}
	ms, err := storage.LoadMigrations(mapFS(map[string]string{"0002_b.sql": "SELECT 2;", "0001_a.sql": "SELECT 1;", "README.md": "x"}))
	if err != nil || len(ms) != 2 || ms[0].String() != "0001_a" || ms[1].String() != "0002_b" {
		t.Errorf("LoadMigrations of a good set = %v, %v", ms, err)
	}
}

func TestLockName(t *testing.T) {
	tests := []struct {
		database string
		want     string
	}{
		{"mymonit", "mymonit.migrate.mymonit"},
		{strings.Repeat("x", 64), ""}, // hashed; checked for length only
	}
	for _, tt := range tests {
		got := storage.LockName(tt.database)
		if len(got) > 64 {
			t.Errorf("LockName(%q) = %q, longer than 64", tt.database, got)
		}
		if tt.want != "" && got != tt.want {
			t.Errorf("LockName(%q) = %q, want %q", tt.database, got, tt.want)
		}
	}
	if storage.LockName(strings.Repeat("x", 64)) == storage.LockName(strings.Repeat("x", 63)+"y") {
		t.Error("long database names share a lock name")
	}
}
