package service

import (
	"database/sql"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/mymonit/mymonit/pkg/queue"
	"github.com/mymonit/mymonit/pkg/storage"
	"github.com/mymonit/mymonit/services/ingest/internal/settings"
)

// Module provides the ingest Service, started and stopped with the app.
var Module = fx.Module("ingest",
	fx.Provide(provide),
)

type in struct {
	fx.In
	Lifecycle fx.Lifecycle
	Settings  settings.Ingest
	AMQP      queue.Config
	DB        *sql.DB
	Store     *storage.Store
	Publisher *queue.Publisher
	Consumer  *queue.Consumer
	Logger    *zap.Logger
	Registry  *prometheus.Registry
}

func provide(p in) (*Service, error) {
	s, err := New(Params{
		Settings:     p.Settings,
		DeadExchange: p.AMQP.DeadExchange,
		DB:           p.DB,
		Store:        p.Store,
		Publisher:    p.Publisher,
		Consumer:     p.Consumer,
		Logger:       p.Logger,
		Registry:     p.Registry,
	})
	if err != nil {
		return nil, err
	}
	p.Lifecycle.Append(fx.Hook{OnStart: s.Start, OnStop: s.Stop})
	return s, nil
}
