package auth

import (
	"context"

	"go.uber.org/fx"
	"go.uber.org/zap"
)

// Module provides the *Verifier. It needs a Config (main supplies it, parsed
// by pkg/config) and a *zap.Logger. Construction makes no network call and
// fails when FIREBASE_AUTH_EMULATOR_HOST is set in production mode.
var Module = fx.Module("auth",
	fx.Provide(provide),
)

type params struct {
	fx.In

	Config Config
	Logger *zap.Logger
}

func provide(p params) (*Verifier, error) {
	return NewVerifier(context.Background(), Params{Config: p.Config, Logger: p.Logger.Named("auth")})
}
