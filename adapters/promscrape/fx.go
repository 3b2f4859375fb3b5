package promscrape

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/mymonit/mymonit/adapters/sink"
)

// Module provides the *Scraper from the Config and the []Target the command
// supplies (LoadTargets), a *sink.Sink (sink.Module), a *zap.Logger and a
// prometheus.Registerer. The scraping loop starts in OnStart and, in OnStop,
// is cancelled and waited for, before the sink it depends on closes.
var Module = fx.Module("promscrape",
	fx.Provide(provide),
	fx.Invoke(func(*Scraper) {}),
)

type fxIn struct {
	fx.In
	Lifecycle  fx.Lifecycle
	Config     Config
	Targets    []Target
	Sink       *sink.Sink
	Logger     *zap.Logger
	Registerer prometheus.Registerer
}

func provide(in fxIn) (*Scraper, error) {
	s, err := New(Params{
		Targets:      in.Targets,
		Sink:         in.Sink,
		MaxBodyBytes: in.Config.MaxBody,
		Logger:       in.Logger.Named("promscrape"),
		Registerer:   in.Registerer,
	})
	if err != nil {
		return nil, err
	}
	var (
		cancel context.CancelFunc
		done   chan struct{}
	)
	in.Lifecycle.Append(fx.Hook{
		OnStart: func(context.Context) error {
			var ctx context.Context
			ctx, cancel = context.WithCancel(context.Background())
			done = make(chan struct{})
			go func() {
				defer close(done)
				_ = s.Run(ctx)
			}()
			return nil
		},
		OnStop: func(ctx context.Context) error {
			cancel()
			select {
			case <-done:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		},
	})
	return s, nil
}
