package mqtt

import (
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/mymonit/mymonit/adapters/sink"
	"github.com/mymonit/mymonit/pkg/health"
)

// Module provides the *Bridge from the Config and the *Rules the command
// supplies (LoadRules), a *sink.Sink and *health.Server (sink.Module), a
// *zap.Logger and a prometheus.Registerer. OnStart connects and subscribes,
// failing the start when the broker cannot be reached; OnStop waits for the
// pending acknowledgements and disconnects, before the sink closes. The
// bridge's connection is added to /readyz.
var Module = fx.Module("mqtt",
	fx.Provide(provide),
	fx.Invoke(func(*Bridge) {}),
)

type fxIn struct {
	fx.In
	Lifecycle  fx.Lifecycle
	Config     Config
	Rules      *Rules
	Sink       *sink.Sink
	Health     *health.Server
	Logger     *zap.Logger
	Registerer prometheus.Registerer
}

func provide(in fxIn) (*Bridge, error) {
	b, err := New(Params{
		Config:     in.Config,
		Rules:      in.Rules,
		Sink:       in.Sink,
		Logger:     in.Logger.Named("mqtt"),
		Registerer: in.Registerer,
	})
	if err != nil {
		return nil, err
	}
	in.Health.AddCheck("mqtt", b.Ready)
	in.Lifecycle.Append(fx.Hook{OnStart: b.Start, OnStop: b.Stop})
	return b, nil
}
