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
	BatchSize       int           `env:"MYMONIT_INGEST_BATCH_SIZE" default:"5000" min:"1" max:"20000" help:"measures per database transaction; a batch closes when it holds this many, or the prefetch window / (MYMONIT_INGEST_WRITERS + 1) messages"`
	FlushInterval   time.Duration `env:"MYMONIT_INGEST_FLUSH_INTERVAL" default:"25ms" min:"1ms" max:"10s" help:"a batch that is not full closes this long after its first message"`
	Writers         int           `env:"MYMONIT_INGEST_WRITERS" default:"2" min:"1" max:"16" help:"batches committed concurrently (each on its own database connection); acks stay in delivery order, and a measure repeated in a later batch is still written last"`
	Prefetch        int           `env:"MYMONIT_INGEST_PREFETCH" default:"2000" min:"1" max:"65535" help:"the prefetch window (unacked messages the broker may push to one replica) until MYMONIT_INGEST_WINDOW_MIB sizes it, or always when that is 0; batches close at the window divided by (writers + 1) messages so that the window holds every batch in flight"`
	WindowMiB       int           `env:"MYMONIT_INGEST_WINDOW_MIB" default:"24" min:"0" max:"1024" help:"memory the prefetch window may hold, in MiB: after 1000 messages the window becomes this divided by their mean size plus ~2 KiB, between 32 and 20000 messages (about 2000 messages of 100 measures, 11000 single-measure messages), when that is over 1.5 times away from the window in force; the consumer then finishes its batches and restarts with the new window (at most once a minute). 0 keeps MYMONIT_INGEST_PREFETCH"`
	MemoryLimitMiB  int           `env:"MYMONIT_INGEST_MEMORY_LIMIT_MIB" default:"48" min:"0" help:"soft limit of the Go runtime's memory in MiB (debug.SetMemoryLimit): the garbage collector works harder near it rather than let the heap double; 0 sets none. A GOMEMLIMIT variable, when set, wins"`
	HTTPAddr        string        `env:"MYMONIT_INGEST_HTTP_ADDR" default:":9101" help:"listen address of /healthz, /readyz and /metrics"`
	ShutdownTimeout time.Duration `env:"MYMONIT_INGEST_SHUTDOWN_TIMEOUT" default:"30s" min:"1s" help:"how long shutdown may take to commit and ack in-flight batches"`
}

// WindowBytes is the memory the prefetch window may hold, in bytes (see
// pipeline.Options.WindowBytes); 0 keeps the window at Prefetch.
func (i Ingest) WindowBytes() int { return i.WindowMiB << 20 }

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
