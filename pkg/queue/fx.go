package queue

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"
	"go.uber.org/zap"
)

// Module provides *Publisher and *Consumer from a Config and a *zap.Logger
// (and, optionally, a prometheus.Registerer, PublisherOptions and
// ConsumerOptions). Each connects and declares in OnStart, so a bad URL or an
// unreachable broker fails the start, and closes in OnStop. The service runs
// Consumer.Run itself, in a goroutine started by its own OnStart and stopped
// (cancel, then wait) by its OnStop, which fx runs before the Consumer's.
var Module = fx.Module("queue",
	fx.Provide(newFxPublisher, newFxConsumer),
)

// PublisherOptions are the per-service PublisherParams the Module cannot get
// from Config; supply them with fx.Supply. Absent, the zero value is used.
type PublisherOptions struct {
	// Producer: see PublisherParams.Producer.
	Producer string
	// DeclareTopology: see PublisherParams.DeclareTopology.
	DeclareTopology bool
}

// ConsumerOptions are the per-service ConsumerParams the Module cannot get
// from Config; supply them with fx.Supply. Absent, the zero value is used.
type ConsumerOptions struct {
	// Prefetch: see ConsumerParams.Prefetch.
	Prefetch int
	// Tag: see ConsumerParams.Tag.
	Tag string
	// DeclareTopology: see ConsumerParams.DeclareTopology.
	DeclareTopology bool
	// DrainTimeout: see ConsumerParams.DrainTimeout.
	DrainTimeout time.Duration
}

type fxPublisherIn struct {
	fx.In
	Lifecycle  fx.Lifecycle
	Config     Config
	Logger     *zap.Logger
	Registerer prometheus.Registerer `optional:"true"`
	Options    PublisherOptions      `optional:"true"`
}

func newFxPublisher(in fxPublisherIn) *Publisher {
	p := NewPublisher(PublisherParams{
		Config:          in.Config,
		Logger:          in.Logger,
		Producer:        in.Options.Producer,
		DeclareTopology: in.Options.DeclareTopology,
		Registerer:      in.Registerer,
	})
	in.Lifecycle.Append(fx.Hook{
		OnStart: func(ctx context.Context) error {
			if err := in.Config.Validate(); err != nil {
				return err
			}
			return p.Connect(ctx)
		},
		OnStop: func(context.Context) error { return p.Close() },
	})
	return p
}

type fxConsumerIn struct {
	fx.In
	Lifecycle  fx.Lifecycle
	Config     Config
	Logger     *zap.Logger
	Registerer prometheus.Registerer `optional:"true"`
	Options    ConsumerOptions       `optional:"true"`
}

func newFxConsumer(in fxConsumerIn) *Consumer {
	c := NewConsumer(ConsumerParams{
		Config:          in.Config,
		Logger:          in.Logger,
		Prefetch:        in.Options.Prefetch,
		Tag:             in.Options.Tag,
		DeclareTopology: in.Options.DeclareTopology,
		DrainTimeout:    in.Options.DrainTimeout,
		Registerer:      in.Registerer,
	})
	in.Lifecycle.Append(fx.Hook{
		OnStart: func(ctx context.Context) error {
			if err := in.Config.Validate(); err != nil {
				return err
			}
			return c.Connect(ctx)
		},
		OnStop: func(context.Context) error { return c.Close() },
	})
	return c
}
