// Command api is the MyMONIT REST API. This first version serves the
// operational endpoints (/healthz, /readyz with a database check, /metrics);
// the /v1 resources are built on top of it.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"

	"github.com/mymonit/mymonit/pkg/config"
	"github.com/mymonit/mymonit/pkg/health"
	"github.com/mymonit/mymonit/pkg/logging"
	"github.com/mymonit/mymonit/pkg/storage"
)

// Config is everything the api reads from the environment.
type Config struct {
	Log      logging.Config
	MySQL    storage.Config
	HTTPAddr string `env:"MYMONIT_API_HTTP_ADDR" default:":8080" help:"listen address of the API"`
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "api:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	var cfg Config
	if err := config.Load(&cfg); err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	logs, err := logging.New(cfg.Log.Options("api", "dev"))
	if err != nil {
		return err
	}
	defer func() {
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = logs.Close(c)
	}()
	log := logs.Logger()

	db, err := storage.Open(ctx, cfg.MySQL)
	if err != nil {
		return err
	}
	defer db.Close()

	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), logs.Collector()} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register collector: %w", err)
		}
	}
	srv := health.New(health.Options{Addr: cfg.HTTPAddr, Gatherer: reg, Logger: log})
	srv.AddCheck("database", func(ctx context.Context) error { return storage.Check(ctx, db) })
	if err := srv.Start(); err != nil {
		return err
	}
	log.Info("api started", zap.Any("config", config.Describe(cfg)))
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Stop(stopCtx)
}
