package httpapi

import (
	"context"

	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/mymonit/mymonit/pkg/storage"
)

// Module provides the *Server and runs it with the application: OnStart
// listens (failing fast on a taken port), OnStop shuts it down gracefully.
// It needs a *storage.Store, a Verifier, a *zap.Logger and a Config, and
// takes the audit logger named "audit" (logging.Module) when there is one.
var Module = fx.Module("httpapi",
	fx.Provide(provide),
	fx.Invoke(func(*Server) {}),
)

// Config is where the API listens and what else it serves.
type Config struct {
	Addr string
}

type params struct {
	fx.In

	Lifecycle fx.Lifecycle
	Config    Config
	Store     *storage.Store
	Verifier  Verifier
	Logger    *zap.Logger
	Audit     *zap.Logger    `name:"audit" optional:"true"`
	Accounts  AccountDeleter `optional:"true"`
}

func provide(p params) (*Server, error) {
	params := Params{Store: p.Store, Verifier: p.Verifier, Logger: p.Logger.Named("api"), Accounts: p.Accounts, Addr: p.Config.Addr}
	if p.Audit != nil {
		params.Audit = p.Audit.Named("api")
	}
	s, err := New(params)
	if err != nil {
		return nil, err
	}
	p.Lifecycle.Append(fx.Hook{
		OnStart: func(context.Context) error { return s.Start() },
		OnStop:  s.Stop,
	})
	return s, nil
}
