package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime/debug"

	"github.com/go-sql-driver/mysql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"
	"go.uber.org/zap"

	"github.com/mymonit/mymonit/pkg/config"
	"github.com/mymonit/mymonit/pkg/logging"
	"github.com/mymonit/mymonit/pkg/queue"
	"github.com/mymonit/mymonit/pkg/storage"
	"github.com/mymonit/mymonit/services/ingest/internal/service"
	"github.com/mymonit/mymonit/services/ingest/internal/settings"
)

// appOptions compose the ingest service from the shared modules.
func appOptions(cfg settings.Config, extra ...fx.Option) []fx.Option {
	opts := []fx.Option{
		fx.Supply(
			cfg.Log.Options("ingest", buildVersion()),
			cfg.MySQL,
			cfg.AMQP,
			cfg.Ingest,
			queue.PublisherOptions{Producer: "ingest", DeclareTopology: true},
			queue.ConsumerOptions{Prefetch: cfg.Ingest.Prefetch, Tag: "ingest", DeclareTopology: true, DrainTimeout: cfg.Ingest.ShutdownTimeout},
		),
		fx.Provide(
			newRegistry,
			func(r *prometheus.Registry) prometheus.Registerer { return r },
		),
		fx.WithLogger(func(l *zap.Logger) fxevent.Logger {
			return &fxevent.ZapLogger{Logger: l.Named("fx").WithOptions(zap.IncreaseLevel(zap.WarnLevel))}
		}),
		logging.Module,
		storage.Module,
		queue.Module,
		service.Module,
		fx.Invoke(func(*service.Service) {}),
	}
	return append(opts, extra...)
}

// newRegistry is the process's metrics registry, with the Go runtime,
// process and log-shipper collectors.
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

func serve(ctx context.Context) error {
	cfg, err := settings.Load()
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	limit := memoryLimit(cfg.Ingest.MemoryLimitMiB, os.LookupEnv)
	var log *zap.Logger
	a := fx.New(appOptions(cfg, fx.Populate(&log))...)
	if err := a.Err(); err != nil {
		return err
	}
	startCtx, cancel := context.WithTimeout(ctx, a.StartTimeout())
	defer cancel()
	if err := a.Start(startCtx); err != nil {
		var me *mysql.MySQLError
		if errors.As(err, &me) && me.Number == 1049 { // unknown database
			return fmt.Errorf("start: %w (create and migrate it with `ingest migrate`)", err)
		}
		return fmt.Errorf("start: %w", err)
	}
	log.Info("ingest started", zap.Any("config", config.Describe(cfg)), limit)
	<-ctx.Done()
	log.Info("shutting down: finishing in-flight batches")
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.Ingest.ShutdownTimeout+a.StopTimeout())
	defer cancel()
	return a.Stop(stopCtx)
}

// memoryLimit sets the Go runtime's soft memory limit to mib MiB (none for
// 0), unless the GOMEMLIMIT variable set one already, and returns the log
// field that says which limit applies.
func memoryLimit(mib int, lookupEnv func(string) (string, bool)) zap.Field {
	if v, ok := lookupEnv("GOMEMLIMIT"); ok && v != "" {
		return zap.String("runtime.memory_limit", "GOMEMLIMIT="+v)
	}
	if mib <= 0 {
		debug.SetMemoryLimit(math.MaxInt64)
		return zap.String("runtime.memory_limit", "none")
	}
	debug.SetMemoryLimit(int64(mib) << 20)
	return zap.String("runtime.memory_limit", fmt.Sprintf("%d MiB", mib))
}

// version is stamped by the image build (-ldflags "-X main.version=...").
var version string

// buildVersion is the stamped version, else the module version recorded by
// the Go toolchain, else "dev".
func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "dev"
}
