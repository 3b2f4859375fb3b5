package sink

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/mymonit/mymonit/pkg/health"
	"github.com/mymonit/mymonit/pkg/logging"
	"github.com/mymonit/mymonit/pkg/queue"
)

// Module provides, from Settings, Options, a *zap.Logger, a *logging.Logging
// and a *queue.Publisher (logging.Module and queue.Module):
//
//   - *prometheus.Registry (and it as prometheus.Registerer) with the Go,
//     process and log-shipper collectors;
//   - *Sink, started in OnStart and closed in OnStop (flush, wait for
//     confirms), which fx runs after the OnStop of every component that
//     depends on the Sink, so sources stop first;
//   - *health.Server on Settings.HTTPAddr (/healthz, /readyz with the sink's
//     Ready check, /metrics); adapters add their own checks with AddCheck.
//     An empty HTTPAddr leaves it unstarted. The Module invokes it, so it
//     serves whenever the Module is used.
//
// Supply gives it, and logging.Module and queue.Module, what they need.
var Module = fx.Module("sink",
	fx.Provide(
		newRegistry,
		func(r *prometheus.Registry) prometheus.Registerer { return r },
		newFxSink,
		newFxHealth,
	),
	fx.Invoke(func(*health.Server) {}),
)

// Options are what Module cannot read from Settings.
type Options struct {
	// Producer names the adapter (metrics label, message AppId and
	// x-mymonit-producer header).
	Producer string
}

// Supply supplies the configuration to Module, logging.Module and
// queue.Module for the adapter named producer:
//
//	fx.New(sink.Supply(cfg.Adapter, "lineproto", version),
//		logging.Module, queue.Module, sink.Module, <the adapter's module>)
func Supply(cfg Config, producer, version string) fx.Option {
	return fx.Supply(
		cfg.Log.Options(producer, version),
		cfg.AMQP,
		cfg.Sink,
		Options{Producer: producer},
		queue.PublisherOptions{Producer: producer, DeclareTopology: cfg.Sink.DeclareTopology},
	)
}

func newRegistry(l *logging.Logging) (*prometheus.Registry, error) {
	r := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		l.Collector(),
	} {
		if err := r.Register(c); err != nil {
			return nil, fmt.Errorf("register collector: %w", err)
		}
	}
	return r, nil
}

type fxSinkIn struct {
	fx.In
	Lifecycle  fx.Lifecycle
	Settings   Settings
	Options    Options
	Publisher  *queue.Publisher
	Logger     *zap.Logger
	Registerer prometheus.Registerer
}

func newFxSink(in fxSinkIn) (*Sink, error) {
	s, err := New(Params{
		Settings:   in.Settings,
		Publisher:  in.Publisher,
		Producer:   in.Options.Producer,
		Logger:     in.Logger.Named("sink"),
		Registerer: in.Registerer,
	})
	if err != nil {
		return nil, err
	}
	in.Lifecycle.Append(fx.Hook{OnStart: s.Start, OnStop: s.Close})
	return s, nil
}

func newFxHealth(lc fx.Lifecycle, set Settings, s *Sink, r *prometheus.Registry, log *zap.Logger) *health.Server {
	hs := health.New(health.Options{Addr: set.HTTPAddr, Gatherer: r, Logger: log})
	hs.AddCheck("sink", s.Ready)
	if set.HTTPAddr != "" {
		lc.Append(fx.Hook{
			OnStart: func(context.Context) error { return hs.Start() },
			OnStop:  hs.Stop,
		})
	}
	return hs
}
