// Package settings is the ingest service's configuration: every environment
// variable it reads, with defaults, limits and help (the README's
// configuration reference is generated from it).
package settings

import (
	"errors"
	"time"

	"github.com/mymonit/mymonit/pkg/config"
	"github.com/mymonit/mymonit/pkg/logging"
	"github.com/mymonit/mymonit/pkg/queue"
	"github.com/mymonit/mymonit/pkg/storage"
)

// Ingest tunes the pipeline and its operational endpoints.
type Ingest struct {
	BatchSize       int           `env:"MYMONIT_INGEST_BATCH_SIZE" default:"1000" min:"1" max:"20000" help:"measures per database transaction; a batch closes when it holds this many"`
	FlushInterval   time.Duration `env:"MYMONIT_INGEST_FLUSH_INTERVAL" default:"25ms" min:"1ms" max:"10s" help:"a batch that is not full closes this long after its first message"`
	Prefetch        int           `env:"MYMONIT_INGEST_PREFETCH" default:"2000" min:"1" max:"65535" help:"unacked messages the broker may push to one replica; keep it at least twice the batch size in messages or batches close only on the timer"`
	HTTPAddr        string        `env:"MYMONIT_INGEST_HTTP_ADDR" default:":9101" help:"listen address of /healthz, /readyz and /metrics"`
	ShutdownTimeout time.Duration `env:"MYMONIT_INGEST_SHUTDOWN_TIMEOUT" default:"30s" min:"1s" help:"how long shutdown may take to commit and ack in-flight batches"`
}

// Config is everything the ingest service reads from the environment.
type Config struct {
	Log    logging.Config
	MySQL  storage.Config
	AMQP   queue.Config
	Ingest Ingest
}

// Validate checks what spans several fields.
func (c Config) Validate() error {
	if c.Ingest.ShutdownTimeout < c.Ingest.FlushInterval {
		return errors.New("MYMONIT_INGEST_SHUTDOWN_TIMEOUT must be longer than MYMONIT_INGEST_FLUSH_INTERVAL")
	}
	return nil
}

// Load reads the configuration from the environment.
func Load() (Config, error) {
	var c Config
	err := config.Load(&c)
	return c, err
}
