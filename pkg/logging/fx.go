package logging

import (
	"go.uber.org/fx"
	"go.uber.org/zap"
)

// Module provides *Logging, its root *zap.Logger and, named "audit", the
// logger of audit events (Logging.Audit), from the Options the
// service's main supplies (fx.Supply or a config module), and closes the
// Logging when the application stops. The shipper runs from construction,
// so that what other constructors log is shipped too. Register
// Logging.Collector on the service's Prometheus registry where the registry
// is built; route fx's own events to the logger with fx.WithLogger in main
// if wanted.
var Module = fx.Module("logging",
	fx.Provide(provide),
)

type result struct {
	fx.Out

	Logging *Logging
	Logger  *zap.Logger
	Audit   *zap.Logger `name:"audit"`
}

func provide(lc fx.Lifecycle, o Options) (result, error) {
	l, err := New(o)
	if err != nil {
		return result{}, err
	}
	lc.Append(fx.StopHook(l.Close))
	return result{Logging: l, Logger: l.Logger(), Audit: l.Audit()}, nil
}
