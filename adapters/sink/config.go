package sink

import (
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/mymonit/mymonit/pkg/logging"
	"github.com/mymonit/mymonit/pkg/measure"
	"github.com/mymonit/mymonit/pkg/queue"
)

// Settings tune the sink of one adapter process. They are read from the
// environment by pkg/config (see the tags) and may be overridden by flags
// (BindFlags).
type Settings struct {
	// BatchSize closes a message when it holds this many measures.
	BatchSize int `env:"MYMONIT_ADAPTER_BATCH_SIZE" default:"1000" min:"1" max:"10000" help:"measures per message; a message closes when it holds this many (1 sends one message per measure, about ten times slower)"`
	// FlushInterval closes a message that is not full this long after its
	// first measure.
	FlushInterval time.Duration `env:"MYMONIT_ADAPTER_FLUSH_INTERVAL" default:"50ms" min:"1ms" max:"1m" help:"a message that is not full closes this long after its first measure"`
	// Buffer bounds the measures held in memory between Add and their
	// confirm; Add waits (backpressure) while it is full.
	Buffer int `env:"MYMONIT_ADAPTER_BUFFER" default:"100000" min:"1" max:"10000000" help:"measures held in memory from receipt until the broker confirms them; when full, the source waits (backpressure)"`
	// InFlight is the number of concurrent publish calls, each carrying one
	// or more messages.
	InFlight int `env:"MYMONIT_ADAPTER_IN_FLIGHT" default:"4" min:"1" max:"256" help:"concurrent publish calls waiting for confirms"`
	// PublishTimeout bounds one publish attempt; a slower attempt marks the
	// adapter not ready and is retried.
	PublishTimeout time.Duration `env:"MYMONIT_ADAPTER_PUBLISH_TIMEOUT" default:"10s" min:"100ms" max:"10m" help:"longest wait for the confirms of one publish attempt; then /readyz turns 503 and the messages are published again"`
	// HTTPAddr serves /healthz, /readyz and /metrics.
	HTTPAddr string `env:"MYMONIT_ADAPTER_HTTP_ADDR" default:":9102" help:"listen address of /healthz, /readyz and /metrics"`
	// ShutdownTimeout bounds how long shutdown waits for the last confirms.
	ShutdownTimeout time.Duration `env:"MYMONIT_ADAPTER_SHUTDOWN_TIMEOUT" default:"30s" min:"1s" max:"1h" help:"how long shutdown may take to flush and wait for the last confirms"`
	// DeclareTopology declares the queues too, not only the exchange.
	DeclareTopology bool `env:"MYMONIT_ADAPTER_DECLARE_TOPOLOGY" default:"false" help:"declare the whole topology (measures and dead-letter queues) on connect, not only the measures exchange"`
}

// DefaultSettings returns the defaults of the tags, for tests and benchmarks.
func DefaultSettings() Settings {
	return Settings{
		BatchSize:       1000,
		FlushInterval:   50 * time.Millisecond,
		Buffer:          100000,
		InFlight:        4,
		PublishTimeout:  10 * time.Second,
		HTTPAddr:        ":9102",
		ShutdownTimeout: 30 * time.Second,
	}
}

// Validate checks the bounds again (flags bypass the tag checks) and the
// rules that span fields; each error names the variable and its flag.
func (s Settings) Validate() error {
	var errs []error
	bound := func(ok bool, env, flagName, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf("%s (-%s): %s", env, flagName, fmt.Sprintf(format, args...)))
		}
	}
	bound(s.BatchSize >= 1 && s.BatchSize <= measure.MaxBatch, "MYMONIT_ADAPTER_BATCH_SIZE", "batch-size", "%d is not between 1 and %d", s.BatchSize, measure.MaxBatch)
	bound(s.FlushInterval >= time.Millisecond && s.FlushInterval <= time.Minute, "MYMONIT_ADAPTER_FLUSH_INTERVAL", "flush-interval", "%v is not between 1ms and 1m", s.FlushInterval)
	bound(s.Buffer >= 1 && s.Buffer <= 10000000, "MYMONIT_ADAPTER_BUFFER", "buffer", "%d is not between 1 and 10000000", s.Buffer)
	bound(s.InFlight >= 1 && s.InFlight <= 256, "MYMONIT_ADAPTER_IN_FLIGHT", "in-flight", "%d is not between 1 and 256", s.InFlight)
	bound(s.PublishTimeout >= 100*time.Millisecond, "MYMONIT_ADAPTER_PUBLISH_TIMEOUT", "publish-timeout", "%v is shorter than 100ms", s.PublishTimeout)
	bound(s.ShutdownTimeout >= time.Second, "MYMONIT_ADAPTER_SHUTDOWN_TIMEOUT", "shutdown-timeout", "%v is shorter than 1s", s.ShutdownTimeout)
	if len(errs) == 0 && s.Buffer < s.BatchSize {
		errs = append(errs, fmt.Errorf("MYMONIT_ADAPTER_BUFFER (-buffer) %d is smaller than MYMONIT_ADAPTER_BATCH_SIZE (-batch-size) %d: messages could never fill", s.Buffer, s.BatchSize))
	}
	return errors.Join(errs...)
}

// BindFlags defines flags on fs that override the settings, with the current
// values (loaded from the environment) as defaults. Call Validate after
// parsing.
func (s *Settings) BindFlags(fs *flag.FlagSet) {
	fs.IntVar(&s.BatchSize, "batch-size", s.BatchSize, "measures per message (MYMONIT_ADAPTER_BATCH_SIZE)")
	fs.DurationVar(&s.FlushInterval, "flush-interval", s.FlushInterval, "a message that is not full closes this long after its first measure (MYMONIT_ADAPTER_FLUSH_INTERVAL)")
	fs.IntVar(&s.Buffer, "buffer", s.Buffer, "measures held from receipt to confirm; when full the source waits (MYMONIT_ADAPTER_BUFFER)")
	fs.IntVar(&s.InFlight, "in-flight", s.InFlight, "concurrent publish calls (MYMONIT_ADAPTER_IN_FLIGHT)")
	fs.DurationVar(&s.PublishTimeout, "publish-timeout", s.PublishTimeout, "longest wait for the confirms of one attempt (MYMONIT_ADAPTER_PUBLISH_TIMEOUT)")
	fs.StringVar(&s.HTTPAddr, "http-addr", s.HTTPAddr, "listen address of /healthz, /readyz, /metrics; empty disables them (MYMONIT_ADAPTER_HTTP_ADDR)")
	fs.DurationVar(&s.ShutdownTimeout, "shutdown-timeout", s.ShutdownTimeout, "how long shutdown may wait for the last confirms (MYMONIT_ADAPTER_SHUTDOWN_TIMEOUT)")
	fs.BoolVar(&s.DeclareTopology, "declare-topology", s.DeclareTopology, "declare the queues too, not only the exchange (MYMONIT_ADAPTER_DECLARE_TOPOLOGY)")
}

// Config is the part of the environment every adapter reads: logging, the
// broker (MYMONIT_AMQP_*) and the sink (MYMONIT_ADAPTER_*). An adapter embeds
// it in its own configuration struct, which pkg/config walks.
type Config struct {
	Log  logging.Config
	AMQP queue.Config
	Sink Settings
}

// BindFlags defines the common flags: the sink's, -log-level and
// -amqp-exchange (the URL, which holds a password, is only read from the
// environment or MYMONIT_AMQP_URL_FILE).
func (c *Config) BindFlags(fs *flag.FlagSet) {
	c.Sink.BindFlags(fs)
	fs.StringVar(&c.Log.Level, "log-level", c.Log.Level, "debug, info, warn or error (MYMONIT_LOG_LEVEL)")
	fs.StringVar(&c.AMQP.Exchange, "amqp-exchange", c.AMQP.Exchange, "topic exchange measures are published to (MYMONIT_AMQP_EXCHANGE)")
}

// Check validates the whole configuration again after flags were parsed
// (config.Load already ran the same checks on the environment's values).
func (c Config) Check() error {
	return errors.Join(c.Log.Validate(), c.AMQP.Validate(), c.Sink.Validate())
}
