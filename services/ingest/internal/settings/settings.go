// Package settings is the ingest service's configuration: every environment
// variable it reads, with defaults, limits and help (the README's
// configuration reference is generated from it).
package settings

import (
	"errors"
	"fmt"
	"time"

	"github.com/mymonit/mymonit/pkg/config"
	"github.com/mymonit/mymonit/pkg/logging"
	"github.com/mymonit/mymonit/pkg/queue"
	"github.com/mymonit/mymonit/pkg/storage"
)

// Ingest tunes the pipeline and its operational endpoints.
type Ingest struct {
	BatchSize       int           `env:"MYMONIT_INGEST_BATCH_SIZE" default:"5000" min:"1" max:"20000" help:"measures per database transaction; a batch closes when it holds this many, or MYMONIT_INGEST_PREFETCH / (MYMONIT_INGEST_WRITERS + 1) messages"`
	FlushInterval   time.Duration `env:"MYMONIT_INGEST_FLUSH_INTERVAL" default:"25ms" min:"1ms" max:"10s" help:"a batch that is not full closes this long after its first message"`
	Writers         int           `env:"MYMONIT_INGEST_WRITERS" default:"2" min:"1" max:"16" help:"batches committed concurrently (each on its own database connection); acks stay in delivery order, and a measure repeated in a later batch is still written last"`
	Prefetch        int           `env:"MYMONIT_INGEST_PREFETCH" default:"2000" min:"1" max:"65535" help:"unacked messages the broker may push to one replica; batches close at this divided by (writers + 1) messages so that the window holds every batch in flight. The window's bodies are held in memory: 2000 messages of 100 measures are ~20 MB, so raise it only for small messages"`
	MemoryLimitMiB  int           `env:"MYMONIT_INGEST_MEMORY_LIMIT_MIB" default:"48" min:"0" help:"soft limit of the Go runtime's memory in MiB (debug.SetMemoryLimit): the garbage collector works harder near it rather than let the heap double; 0 sets none. A GOMEMLIMIT variable, when set, wins"`
	HTTPAddr        string        `env:"MYMONIT_INGEST_HTTP_ADDR" default:":9101" help:"listen address of /healthz, /readyz and /metrics"`
	ShutdownTimeout time.Duration `env:"MYMONIT_INGEST_SHUTDOWN_TIMEOUT" default:"30s" min:"1s" help:"how long shutdown may take to commit and ack in-flight batches"`
}

// BatchMessages is the number of messages that closes a batch: writers+1
// batches (those committing and the one filling) fit in the prefetch window,
// so that a batch of small messages is not left waiting for the window to
// reopen.
func (i Ingest) BatchMessages() int {
	return max(1, i.Prefetch/(i.Writers+1))
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
	var errs []error
	if c.Ingest.ShutdownTimeout < c.Ingest.FlushInterval {
		errs = append(errs, errors.New("MYMONIT_INGEST_SHUTDOWN_TIMEOUT must be longer than MYMONIT_INGEST_FLUSH_INTERVAL"))
	}
	if c.Ingest.Writers > c.MySQL.MaxOpenConns {
		errs = append(errs, fmt.Errorf("MYMONIT_INGEST_WRITERS=%d must not exceed MYMONIT_MYSQL_MAX_OPEN_CONNS=%d: each writer holds a connection while it commits",
			c.Ingest.Writers, c.MySQL.MaxOpenConns))
	}
	return errors.Join(errs...)
}

// Load reads the configuration from the environment.
func Load() (Config, error) {
	var c Config
	err := config.Load(&c)
	return c, err
}
