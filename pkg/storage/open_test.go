package storage_test

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/google/go-cmp/cmp"
	"github.com/mymonit/mymonit/pkg/config"
	"github.com/mymonit/mymonit/pkg/storage"
	"github.com/mymonit/mymonit/pkg/testenv"
)

func TestOpenForcesSessionSettings(t *testing.T) {
	dsn := testenv.MySQLDatabase(t)
	// Settings in the DSN that the store cannot work with are overridden.
	db := openDB(t, dsn+"?parseTime=false&loc=Local&collation=utf8mb4_general_ci")
	ctx := testCtx(t)

	// Several connections: every one of them must carry the settings.
	conns := 3
	for i := range conns {
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var tz, mode, coll, cs string
		var now time.Time
		err = conn.QueryRowContext(ctx, "SELECT @@session.time_zone, @@session.sql_mode, @@session.collation_connection, @@session.character_set_connection, UTC_TIMESTAMP(6)").
			Scan(&tz, &mode, &coll, &cs, &now)
		if err != nil {
			t.Fatalf("conn %d: %v", i, err)
		}
		if tz != "+00:00" {
			t.Errorf("conn %d: time_zone = %q, want +00:00", i, tz)
		}
		for _, want := range []string{"STRICT_ALL_TABLES", "NO_ZERO_DATE", "ERROR_FOR_DIVISION_BY_ZERO"} {
			if !strings.Contains(mode, want) {
				t.Errorf("conn %d: sql_mode = %q, want %s in it", i, mode, want)
			}
		}
		if coll != "utf8mb4_bin" || cs != "utf8mb4" {
			t.Errorf("conn %d: connection charset/collation = %s/%s, want utf8mb4/utf8mb4_bin", i, cs, coll)
		}
		// parseTime=true and loc=UTC: DATETIME scans into a UTC time.Time.
		if now.Location() != time.UTC {
			t.Errorf("conn %d: scanned time in %v, want UTC", i, now.Location())
		}
		if d := time.Since(now); d < -time.Minute || d > time.Minute {
			t.Errorf("conn %d: UTC_TIMESTAMP is %v away from the local clock: time zone not applied", i, d)
		}
	}
}

func TestOpenStrictModeRejectsTruncation(t *testing.T) {
	db := freshDB(t)
	ctx := testCtx(t)
	if _, err := db.ExecContext(ctx, "CREATE TABLE t (s VARCHAR(3) NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	_, err := db.ExecContext(ctx, "INSERT INTO t VALUES ('abcd')")
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1406 {
		t.Fatalf("insert of an over-long value: err = %v, want error 1406 (data too long)", err)
	}
}

func TestOpenRejectsBadConfig(t *testing.T) {
	const password = "s3cr3t-pa55"
	tests := []struct {
		name    string
		cfg     storage.Config
		wantMsg string
	}{
		{"unterminated address", storage.Config{DSN: "mymonit:" + password + "@tcp(127.0.0.1:3306/mymonit", MaxOpenConns: 1}, "MYMONIT_MYSQL_DSN"},
		{"no slash", storage.Config{DSN: "mymonit:" + password + "@tcp(127.0.0.1:3306)", MaxOpenConns: 1}, "MYMONIT_MYSQL_DSN"},
		{"bad parameter", storage.Config{DSN: "mymonit:" + password + "@tcp(127.0.0.1:3306)/db?parseTime=maybe", MaxOpenConns: 1}, "MYMONIT_MYSQL_DSN"},
		{"no connections", storage.Config{DSN: "root@tcp(127.0.0.1:3306)/db", MaxOpenConns: 0}, "MYMONIT_MYSQL_MAX_OPEN_CONNS"},
		{"negative idle", storage.Config{DSN: "root@tcp(127.0.0.1:3306)/db", MaxOpenConns: 1, MaxIdleConns: -1}, "MYMONIT_MYSQL_MAX_IDLE_CONNS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := storage.Open(testCtx(t), tt.cfg)
			if err == nil {
				_ = db.Close()
				t.Fatal("Open succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not name %s", err, tt.wantMsg)
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("error %q prints the password", err)
			}
		})
	}
}

func TestOpenUnreachableIsRetryable(t *testing.T) {
	// Port 1 on loopback: nothing listens, the dial is refused at once.
	db, err := storage.Open(testCtx(t), storage.Config{DSN: "root@tcp(127.0.0.1:1)/mymonit", MaxOpenConns: 1})
	if err == nil {
		_ = db.Close()
		t.Fatal("Open of an unreachable server succeeded")
	}
	if !storage.IsRetryable(err) {
		t.Errorf("IsRetryable(%v) = false, want true (server down)", err)
	}
}

func TestCreateDatabase(t *testing.T) {
	ctx := testCtx(t)
	cfg, err := mysql.ParseDSN(testenv.MySQLServerDSN())
	if err != nil {
		t.Fatal(err)
	}
	admin := openDB(t, cfg.FormatDSN())
	name := testenv.Name("mymonit_test")
	t.Cleanup(func() {
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
	})
	cfg.DBName = name
	dsn := cfg.FormatDSN()
	for i := range 2 { // the second call finds it and succeeds
		if err := storage.CreateDatabase(ctx, dsn); err != nil {
			t.Fatalf("CreateDatabase #%d: %v", i+1, err)
		}
	}
	var cs, coll string
	err = admin.QueryRowContext(ctx,
		"SELECT default_character_set_name, default_collation_name FROM information_schema.schemata WHERE schema_name = ?", name).Scan(&cs, &coll)
	if err != nil {
		t.Fatalf("database %s not created: %v", name, err)
	}
	if cs != "utf8mb4" || coll != "utf8mb4_bin" {
		t.Errorf("database %s is %s/%s, want utf8mb4/utf8mb4_bin", name, cs, coll)
	}
	// The new database is usable through Open + Migrate.
	if _, err := storage.Migrate(ctx, openDB(t, dsn), nil); err != nil {
		t.Errorf("Migrate on the created database: %v", err)
	}

	cfg.DBName = ""
	if err := storage.CreateDatabase(ctx, cfg.FormatDSN()); !errors.Is(err, storage.ErrInvalid) {
		t.Errorf("CreateDatabase without a database name: err = %v, want ErrInvalid", err)
	}
}

func TestConfigLoadsFromEnvironment(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    storage.Config
		wantErr string
	}{
		{
			name: "defaults",
			env:  map[string]string{},
			want: storage.Config{DSN: "root@tcp(127.0.0.1:3306)/mymonit", MaxOpenConns: 8, MaxIdleConns: 8, ConnMaxLifetime: 30 * time.Minute},
		},
		{
			name: "set",
			env: map[string]string{
				"MYMONIT_MYSQL_DSN":               "u:p@tcp(db:3306)/m",
				"MYMONIT_MYSQL_MAX_OPEN_CONNS":    "16",
				"MYMONIT_MYSQL_MAX_IDLE_CONNS":    "4",
				"MYMONIT_MYSQL_CONN_MAX_LIFETIME": "5m",
				"MYMONIT_MYSQL_MIGRATE_ON_START":  "true",
			},
			want: storage.Config{DSN: "u:p@tcp(db:3306)/m", MaxOpenConns: 16, MaxIdleConns: 4, ConnMaxLifetime: 5 * time.Minute, MigrateOnStart: true},
		},
		{
			name:    "bad DSN is reported by Validate without the password",
			env:     map[string]string{"MYMONIT_MYSQL_DSN": "u:hunter2@tcp(db:3306"},
			wantErr: "MYMONIT_MYSQL_DSN",
		},
		{
			name:    "zero connections",
			env:     map[string]string{"MYMONIT_MYSQL_MAX_OPEN_CONNS": "0"},
			wantErr: "MYMONIT_MYSQL_MAX_OPEN_CONNS",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got storage.Config
			err := config.LoadFrom(func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }, os.ReadFile, &got)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "hunter2") {
					t.Errorf("LoadFrom = %v, want an error naming %s without the password", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadFrom: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Config (-want +got):\n%s", diff)
			}
		})
	}
}
