package queue_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap/zaptest"

	"github.com/mymonit/mymonit/pkg/queue"
)

func TestModuleValidates(t *testing.T) {
	err := fx.ValidateApp(
		fx.Supply(validConfig(), zaptest.NewLogger(t)),
		queue.Module,
		fx.Invoke(func(*queue.Publisher, *queue.Consumer) {}),
	)
	if err != nil {
		t.Fatalf("ValidateApp: %v", err)
	}
}

func TestModuleLifecycle(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "quorum")
	var (
		pub *queue.Publisher
		con *queue.Consumer
	)
	app := fxtest.New(t,
		fx.Supply(cfg, zaptest.NewLogger(t),
			queue.PublisherOptions{Producer: "fx-test"},
			queue.ConsumerOptions{DeclareTopology: true, Prefetch: 10}),
		queue.Module,
		fx.Populate(&pub, &con),
	)
	app.RequireStart()
	// The consumer's OnStart declared the topology, so a measure is routable.
	if err := pub.Publish(testCtx(t, 10*time.Second), queue.Message{RoutingKey: queue.RoutingKey("e")}); err != nil {
		t.Fatalf("Publish after start: %v", err)
	}
	waitDepth(t, cfg.URL, cfg.Queue, 1)
	app.RequireStop()
	if err := pub.Publish(testCtx(t, 10*time.Second), queue.Message{RoutingKey: queue.RoutingKey("e")}); !errors.Is(err, queue.ErrClosed) {
		t.Errorf("Publish after stop = %v, want ErrClosed", err)
	}
}

func TestModuleStartFailsFast(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "quorum")
	tests := []struct {
		name   string
		modify func(*queue.Config)
		want   string
	}{
		{"unreachable broker", func(c *queue.Config) { c.URL = "amqp://guest:guest@127.0.0.1:1/" }, "connect"},
		{"bad scheme", func(c *queue.Config) { c.URL = "http://127.0.0.1:5672/" }, "MYMONIT_AMQP_URL"},
		{"invalid config", func(c *queue.Config) { c.QueueType = "stream" }, "MYMONIT_AMQP_QUEUE_TYPE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := cfg
			tt.modify(&bad)
			app := fx.New(
				fx.NopLogger,
				fx.Supply(bad, zaptest.NewLogger(t)),
				queue.Module,
				fx.Invoke(func(*queue.Publisher, *queue.Consumer) {}),
			)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := app.Start(ctx)
			if err == nil {
				_ = app.Stop(ctx)
				t.Fatalf("Start succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Start = %v, want it to mention %q", err, tt.want)
			}
			if ctx.Err() != nil {
				t.Errorf("Start waited for its deadline instead of failing fast")
			}
		})
	}
}
