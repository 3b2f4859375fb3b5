package storage

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"go.uber.org/zap"
)

// Config configures the connection pool. pkg/config fills it from the
// environment using the struct tags.
type Config struct {
	// DSN is a go-sql-driver/mysql data source name that selects the
	// database, e.g. user:password@tcp(host:3306)/mymonit. Open overrides
	// the session settings the store depends on (see Open).
	DSN string `env:"MYMONIT_MYSQL_DSN" default:"root@tcp(127.0.0.1:3306)/mymonit" secret:"true" help:"MySQL/MariaDB data source name, user:password@tcp(host:port)/database (go-sql-driver/mysql syntax)"`
	// MaxOpenConns caps the open connections of the pool.
	MaxOpenConns int `env:"MYMONIT_MYSQL_MAX_OPEN_CONNS" default:"8" min:"1" help:"maximum open connections to MySQL/MariaDB"`
	// MaxIdleConns caps the idle connections kept in the pool; values above
	// MaxOpenConns are lowered to it.
	MaxIdleConns int `env:"MYMONIT_MYSQL_MAX_IDLE_CONNS" default:"8" min:"0" help:"maximum idle connections kept to MySQL/MariaDB"`
	// ConnMaxLifetime recycles connections after this age (0 keeps them
	// forever). Keep it below the server's wait_timeout and any proxy's
	// idle timeout.
	ConnMaxLifetime time.Duration `env:"MYMONIT_MYSQL_CONN_MAX_LIFETIME" default:"30m" min:"0s" help:"maximum age of a MySQL/MariaDB connection (0 = unlimited)"`
	// MigrateOnStart applies pending migrations when the fx module starts,
	// under a lock shared by all replicas. When false the module only checks
	// that the schema matches this binary.
	MigrateOnStart bool `env:"MYMONIT_MYSQL_MIGRATE_ON_START" default:"false" help:"apply pending schema migrations at start (under a lock shared by replicas)"`
}

// Validate checks the settings without connecting: the DSN parses and the
// pool sizes are possible. Errors name the variable and never print the
// password. pkg/config calls it after loading.
func (c Config) Validate() error {
	if _, err := driverConfig(c.DSN); err != nil {
		return err
	}
	switch {
	case c.MaxOpenConns < 1:
		return fmt.Errorf("MYMONIT_MYSQL_MAX_OPEN_CONNS is %d, must be at least 1: %w", c.MaxOpenConns, ErrInvalid)
	case c.MaxIdleConns < 0:
		return fmt.Errorf("MYMONIT_MYSQL_MAX_IDLE_CONNS is %d, must not be negative: %w", c.MaxIdleConns, ErrInvalid)
	case c.ConnMaxLifetime < 0:
		return fmt.Errorf("MYMONIT_MYSQL_CONN_MAX_LIFETIME is %s, must not be negative: %w", c.ConnMaxLifetime, ErrInvalid)
	}
	return nil
}

// Connection defaults applied when the DSN leaves them unset.
const (
	defaultDialTimeout  = 10 * time.Second
	defaultWriteTimeout = 30 * time.Second
)

// sqlMode is the session sql_mode: strict (bad data is an error, never a
// silent truncation or a zero date), valid on MariaDB 10.11 and MySQL 8.
const sqlMode = "STRICT_ALL_TABLES,ONLY_FULL_GROUP_BY,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION"

// Open returns a connection pool for cfg and pings the server with ctx.
//
// Whatever the DSN says, every connection uses parseTime=true, loc=UTC,
// session time_zone '+00:00', a strict sql_mode, charset utf8mb4 with
// collation utf8mb4_bin, times truncated to microseconds (the DATETIME(6)
// precision; MySQL would round, MariaDB truncate) and rejects read-only
// servers (a failed-over primary) so the pool reconnects. The dial timeout
// defaults to 10s and the write timeout to 30s when the DSN sets none; there
// is no default read timeout, as queries are bounded by their contexts and a
// long migration must not be cut off.
//
// An unparsable DSN is reported naming MYMONIT_MYSQL_DSN, never printing its
// password.
func Open(ctx context.Context, cfg Config) (*sql.DB, error) {
	return open(ctx, cfg, nil)
}

// open is Open with the driver's own log lines routed to log (when not nil).
func open(ctx context.Context, cfg Config, log *zap.Logger) (*sql.DB, error) {
	db, err := newDB(cfg, log)
	if err != nil {
		return nil, err
	}
	if err := ping(ctx, db); err != nil {
		_ = db.Close()
		return nil, err
	}
	return db, nil
}

func ping(ctx context.Context, db *sql.DB) error {
	if err := db.PingContext(ctx); err != nil {
		return fmt.Errorf("ping MySQL/MariaDB: %w", err)
	}
	return nil
}

// newDB builds the pool without connecting.
func newDB(cfg Config, log *zap.Logger) (*sql.DB, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	mc, err := driverConfig(cfg.DSN)
	if err != nil {
		return nil, err
	}
	if log != nil {
		mc.Logger = driverLogger{log: log}
	}
	connector, err := mysql.NewConnector(mc)
	if err != nil {
		return nil, fmt.Errorf("MYMONIT_MYSQL_DSN: %w", err)
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(cfg.MaxOpenConns)
	db.SetMaxIdleConns(min(cfg.MaxIdleConns, cfg.MaxOpenConns))
	db.SetConnMaxLifetime(cfg.ConnMaxLifetime)
	return db, nil
}

// driverConfig parses dsn and forces the session settings the store relies
// on.
func driverConfig(dsn string) (*mysql.Config, error) {
	mc, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("MYMONIT_MYSQL_DSN is not a valid DSN (want user:password@tcp(host:port)/database?param=value): %w", redactedError{err: err, secret: dsnPassword(dsn)})
	}
	mc.ParseTime = true
	mc.Loc = time.UTC
	mc.Collation = "utf8mb4_bin"
	mc.MultiStatements = false
	mc.RejectReadOnly = true
	if mc.Timeout == 0 {
		mc.Timeout = defaultDialTimeout
	}
	if mc.WriteTimeout == 0 {
		mc.WriteTimeout = defaultWriteTimeout
	}
	if err := mc.Apply(mysql.TimeTruncate(time.Microsecond)); err != nil {
		return nil, fmt.Errorf("MYMONIT_MYSQL_DSN: %w", err)
	}
	if mc.Params == nil {
		mc.Params = map[string]string{}
	}
	// The driver sends each parameter as SET <name>=<value> on connect.
	mc.Params["time_zone"] = "'+00:00'"
	mc.Params["sql_mode"] = "'" + sqlMode + "'"
	return mc, nil
}

// dsnPassword returns the password part of a DSN as written, best effort,
// so that it can be cut out of a parse error.
func dsnPassword(dsn string) string {
	at := strings.LastIndex(dsn, "@")
	if at < 0 {
		return ""
	}
	userinfo := dsn[:at]
	if i := strings.IndexByte(userinfo, ':'); i >= 0 {
		return userinfo[i+1:]
	}
	return ""
}

// redactedError hides secret in the message of err but keeps err in the
// chain for errors.Is/As.
type redactedError struct {
	err    error
	secret string
}

func (e redactedError) Error() string {
	msg := e.err.Error()
	if e.secret != "" {
		msg = strings.ReplaceAll(msg, e.secret, "***")
	}
	return msg
}

func (e redactedError) Unwrap() error { return e.err }

// driverLogger sends go-sql-driver/mysql's log lines (broken connections,
// mostly) to zap.
type driverLogger struct{ log *zap.Logger }

func (l driverLogger) Print(v ...any) {
	l.log.Warn(strings.TrimSpace(fmt.Sprint(v...)), zap.String("log.logger", "go-sql-driver/mysql"))
}

// CreateDatabase creates the database selected by dsn, with charset utf8mb4
// and collation utf8mb4_bin, unless it exists. It connects without selecting
// a database, so the account needs the CREATE privilege. Used by the migrate
// command and `make run` on a local install; production databases are
// usually created by the operator.
func CreateDatabase(ctx context.Context, dsn string) error {
	mc, err := driverConfig(dsn)
	if err != nil {
		return err
	}
	name := mc.DBName
	if name == "" {
		return fmt.Errorf("MYMONIT_MYSQL_DSN selects no database: %w", ErrInvalid)
	}
	mc.DBName = ""
	connector, err := mysql.NewConnector(mc)
	if err != nil {
		return fmt.Errorf("MYMONIT_MYSQL_DSN: %w", err)
	}
	db := sql.OpenDB(connector)
	defer db.Close()
	db.SetMaxOpenConns(1)
	q := "CREATE DATABASE IF NOT EXISTS " + quoteIdent(name) + " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
	if _, err := db.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("create database %s: %w", quoteIdent(name), err)
	}
	return nil
}

// quoteIdent quotes a MySQL identifier with backticks.
func quoteIdent(name string) string {
	return "`" + strings.ReplaceAll(name, "`", "``") + "`"
}
