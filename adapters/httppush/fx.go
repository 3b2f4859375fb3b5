package httppush

import (
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/mymonit/mymonit/adapters/sink"
)

// Module provides the *Server from Settings, the *sink.Sink and a
// *zap.Logger; it listens in OnStart and, in OnStop, waits for the requests
// in progress before the sink closes.
var Module = fx.Module("httppush",
	fx.Provide(func(lc fx.Lifecycle, set Settings, s *sink.Sink, log *zap.Logger) (*Server, error) {
		srv, err := NewServer(set, s, log.Named("httppush"))
		if err != nil {
			return nil, err
		}
		lc.Append(fx.Hook{OnStart: srv.Start, OnStop: srv.Stop})
		return srv, nil
	}),
)
