package storage

import (
	"context"
	"database/sql"
	"io/fs"

	"go.uber.org/zap"
)

// Hooks for the external tests.

// SplitStatements exposes splitStatements.
var SplitStatements = splitStatements

// LockName exposes lockName.
var LockName = lockName

// CreateMigrationsTable is the DDL of schema_migrations.
const CreateMigrationsTable = createMigrationsTable

// LoadMigrations reads migrations from the root of fsys.
func LoadMigrations(fsys fs.FS) ([]Migration, error) { return loadMigrations(fsys, ".") }

// MigrateFS runs Migrate with the migrations at the root of fsys.
func MigrateFS(ctx context.Context, db *sql.DB, log *zap.Logger, fsys fs.FS) ([]Migration, error) {
	ms, err := loadMigrations(fsys, ".")
	if err != nil {
		return nil, err
	}
	return migrate(ctx, db, log, ms)
}

// Statements returns the statements of m.
func (m Migration) Statements() []string { return m.statements }
