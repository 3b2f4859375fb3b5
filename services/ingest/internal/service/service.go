// Package service runs the ingest pipeline as a long-lived process: it
// consumes the measures queue through the pipeline, serves /healthz, /readyz
// and /metrics, and shuts down by finishing and acking in-flight batches.
package service

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/zap"

	"github.com/mymonit/mymonit/pkg/health"
	"github.com/mymonit/mymonit/services/ingest/internal/pipeline"
	"github.com/mymonit/mymonit/services/ingest/internal/settings"
)

// Consumer is the queue consumer the service runs; *queue.Consumer
// implements it.
type Consumer interface {
	Run(ctx context.Context, handle func(ctx context.Context, deliveries <-chan amqp.Delivery)) error
	Connected() bool
	pipeline.Window
}

// Params are the service's dependencies.
type Params struct {
	Settings     settings.Ingest
	DeadExchange string
	DB           *sql.DB
	Store        pipeline.Store
	Publisher    pipeline.Publisher
	Consumer     Consumer
	Logger       *zap.Logger
	Registry     *prometheus.Registry
}

// Service is the running ingest process.
type Service struct {
	log      *zap.Logger
	consumer Consumer
	pipe     *pipeline.Pipeline
	health   *health.Server
	stopRun  context.CancelFunc
	wg       sync.WaitGroup
	runErr   error
}

// New wires the pipeline and the operational endpoints.
func New(p Params) (*Service, error) {
	metrics, err := pipeline.NewMetrics(p.Registry)
	if err != nil {
		return nil, fmt.Errorf("ingest metrics: %w", err)
	}
	pipe := pipeline.New(pipeline.Params{
		Store:     p.Store,
		Publisher: p.Publisher,
		Window:    p.Consumer,
		Logger:    p.Logger,
		Metrics:   metrics,
		Options: pipeline.Options{
			BatchSize:     p.Settings.BatchSize,
			WindowBytes:   p.Settings.WindowBytes(),
			Writers:       p.Settings.Writers,
			FlushInterval: p.Settings.FlushInterval,
			DrainTimeout:  p.Settings.ShutdownTimeout,
			DeadExchange:  p.DeadExchange,
		},
	})
	hs := health.New(health.Options{Addr: p.Settings.HTTPAddr, Gatherer: p.Registry, Logger: p.Logger})
	hs.AddCheck("broker", func(context.Context) error {
		if !p.Consumer.Connected() {
			return errors.New("not connected to RabbitMQ")
		}
		return nil
	})
	hs.AddCheck("database", func(ctx context.Context) error {
		if err := p.DB.PingContext(ctx); err != nil {
			return fmt.Errorf("database unreachable: %w", err)
		}
		return nil
	})
	hs.AddCheck("pipeline", func(context.Context) error {
		if !pipe.Healthy() {
			return errors.New("the last batch is waiting on the database or broker")
		}
		return nil
	})
	return &Service{log: p.Logger, consumer: p.Consumer, pipe: pipe, health: hs}, nil
}

// Start serves the operational endpoints and starts consuming.
func (s *Service) Start(context.Context) error {
	if err := s.health.Start(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.stopRun = cancel
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.runErr = s.consumer.Run(ctx, s.pipe.Handle)
	}()
	return nil
}

// Stop stops consuming, waits until in-flight batches are committed and
// acked (bounded by the shutdown timeout inside the pipeline), then stops the
// endpoints.
func (s *Service) Stop(ctx context.Context) error {
	if s.stopRun != nil {
		s.stopRun()
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
		err = s.runErr
	case <-ctx.Done():
		err = fmt.Errorf("ingest: stop: %w", ctx.Err())
	}
	s.log.Info("ingest stopped consuming; in-flight batches settled")
	return errors.Join(err, s.health.Stop(ctx))
}

// HealthAddr is the address of the operational endpoints.
func (s *Service) HealthAddr() string { return s.health.Addr() }
