package storage

import (
	"context"
	"database/sql"

	"go.uber.org/fx"
	"go.uber.org/zap"
)

// Module provides the connection pool (*sql.DB) and the *Store. It needs a
// Config and a *zap.Logger from the application (main supplies the Config,
// parsed by pkg/config).
//
// The pool is built without connecting; OnStart pings the server, then
// applies pending migrations under the migration lock when
// Config.MigrateOnStart is set, or else checks that the schema matches this
// binary (Check), so a service never runs against a schema it does not
// know. OnStop closes the store's statements, then the pool.
var Module = fx.Module("storage",
	fx.Provide(provideDB, provideStore),
)

type dbParams struct {
	fx.In

	Lifecycle fx.Lifecycle
	Config    Config
	Logger    *zap.Logger
}

func provideDB(p dbParams) (*sql.DB, error) {
	log := p.Logger.Named("storage")
	db, err := newDB(p.Config, log)
	if err != nil {
		return nil, err
	}
	p.Lifecycle.Append(fx.Hook{
		OnStart: func(ctx context.Context) error {
			if err := prepareSchema(ctx, db, p.Config, log); err != nil {
				_ = db.Close() // OnStop does not run for a hook that failed to start
				return err
			}
			return nil
		},
		OnStop: func(context.Context) error { return db.Close() },
	})
	return db, nil
}

func prepareSchema(ctx context.Context, db *sql.DB, cfg Config, log *zap.Logger) error {
	if err := ping(ctx, db); err != nil {
		return err
	}
	if !cfg.MigrateOnStart {
		return Check(ctx, db)
	}
	applied, err := Migrate(ctx, db, log)
	if err != nil {
		return err
	}
	current, _, err := Status(ctx, db)
	if err != nil {
		return err
	}
	log.Info("schema is current", zap.Int("schema_version", current), zap.Int("migrations_applied", len(applied)))
	return nil
}

type storeParams struct {
	fx.In

	Lifecycle fx.Lifecycle
	DB        *sql.DB
	Logger    *zap.Logger
}

func provideStore(p storeParams) *Store {
	s := NewStore(StoreParams{DB: p.DB, Logger: p.Logger.Named("storage")})
	p.Lifecycle.Append(fx.StopHook(s.Close))
	return s
}
