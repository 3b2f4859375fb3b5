// Command api is the MyMONIT REST API: the /v1 resources (see
// internal/httpapi and its openapi.yaml) and the operational endpoints
// (/healthz, /readyz with a database check, /metrics) on one listener.
//
// Usage:
//
//	api                                              serve
//	api bootstrap-admin -uid UID [-name N] [-email E] [-force]
//	api config                                       print the configuration reference
//
// bootstrap-admin creates the first administrator, for the Firebase uid
// UID, directly in the database (MYMONIT_MYSQL_DSN; the schema must be
// migrated). It refuses when a live admin exists, unless -force.
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
	"github.com/mymonit/mymonit/pkg/queue"
	"github.com/mymonit/mymonit/pkg/storage"
	"github.com/mymonit/mymonit/services/api/internal/auth"
	"github.com/mymonit/mymonit/services/api/internal/httpapi"
	"github.com/mymonit/mymonit/services/api/internal/live"
)

// version is stamped by the image build (-ldflags "-X main.version=...").
var version = "dev"

// Config is everything the api reads from the environment.
type Config struct {
	Log      logging.Config
	MySQL    storage.Config
	Auth     auth.Config
	HTTPAddr string `env:"MYMONIT_API_HTTP_ADDR" default:":8080" help:"listen address of the API"`
	// AMQP is where live streams copy measures from (URL and exchange).
	AMQP        queue.Config
	LiveRecheck time.Duration `env:"MYMONIT_API_LIVE_RECHECK" default:"5s" min:"100ms" help:"how often an open live stream re-checks that its caller may still read the experiment (admin changes on the same replica end it at once)"`
	LiveBuffer  int           `env:"MYMONIT_API_LIVE_BUFFER" default:"64" min:"1" max:"65536" help:"messages a live stream holds for a slow client before it drops (and tells the client)"`
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "api:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "bootstrap-admin":
			return bootstrapAdmin(ctx, args[1:], os.Stdout)
		case "config":
			_, err := fmt.Fprint(os.Stdout, config.Markdown(Config{}))
			return err
		default:
			return fmt.Errorf("unknown command %q (commands: bootstrap-admin, config; none to serve)", args[0])
		}
	}
	return serve(ctx)
}

func serve(ctx context.Context) error {
	var cfg Config
	if err := config.Load(&cfg); err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	logs, err := logging.New(cfg.Log.Options("api", version))
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
	// Without MIGRATE_ON_START the api serves whatever the schema, and
	// /readyz answers 503 until it is the one this binary knows.
	if cfg.MySQL.MigrateOnStart {
		applied, err := storage.Migrate(ctx, db, log.Named("storage"))
		if err != nil {
			return fmt.Errorf("migrations at start: %w", err)
		}
		log.Info("schema is current", zap.Int("migrations_applied", len(applied)))
	}

	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), logs.Collector()} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register collector: %w", err)
		}
	}
	verifier, err := auth.NewVerifier(ctx, auth.Params{Config: cfg.Auth, Logger: log.Named("auth")})
	if err != nil {
		return fmt.Errorf("cannot verify Firebase ID tokens, not starting: %w", err)
	}
	accounts, err := auth.NewAccounts(ctx, cfg.Auth)
	if err != nil {
		return err
	}
	store := storage.NewStore(storage.StoreParams{DB: db, Logger: log.Named("storage")})
	defer store.Close()

	// Live streams: a tap on the measures exchange, fanned out by a hub. The
	// API serves without the broker; only live streams answer 503 then.
	tap := queue.NewTap(queue.TapParams{Config: cfg.AMQP, Logger: log.Named("live")})
	hub, err := live.NewHub(live.Params{Source: tap, Logger: log.Named("live"), Buffer: cfg.LiveBuffer, Registerer: reg})
	if err != nil {
		return err
	}
	tapCtx, stopTap := context.WithCancel(context.WithoutCancel(ctx))
	tapDone := make(chan error, 1)
	go func() { tapDone <- tap.Run(tapCtx, hub.Deliver) }()
	defer func() {
		stopTap()
		if err := <-tapDone; err != nil {
			log.Error("live tap stopped", zap.Error(err))
		}
	}()

	ops := health.New(health.Options{Gatherer: reg, Logger: log})
	ops.AddCheck("database", func(ctx context.Context) error { return storage.Check(ctx, db) })
	srv, err := httpapi.New(httpapi.Params{
		Store: store, Verifier: verifier, Accounts: accounts, Logger: log.Named("api"), Audit: logs.Audit().Named("api"),
		Fallback: ops.Handler(), Addr: cfg.HTTPAddr, Live: hub, LiveRecheck: cfg.LiveRecheck,
	})
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	log.Info("api started", zap.Any("config", config.Describe(cfg)))
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Stop(stopCtx)
}
