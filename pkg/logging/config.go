package logging

import (
	"fmt"
	"time"
)

// Config is the logging part of every service's environment (parsed by
// pkg/config). Options turns it into Options for New.
type Config struct {
	Level         string        `env:"MYMONIT_LOG_LEVEL" default:"info" oneof:"debug info warn error" help:"minimum log level; the api's audit events are written at any level"`
	LogstashAddr  string        `env:"MYMONIT_LOGSTASH_ADDR" help:"host:port of a Logstash tcp input with the json_lines codec; empty: logs go to stdout only"`
	LogstashQueue int           `env:"MYMONIT_LOGSTASH_BUFFER" default:"8192" min:"16" max:"1048576" help:"log lines queued while Logstash is slow or down; beyond this lines are dropped (counted in mymonit_log_lines_dropped_total), never waited for"`
	MaxBackoff    time.Duration `env:"MYMONIT_LOGSTASH_MAX_BACKOFF" default:"5s" min:"100ms" help:"longest wait between reconnection attempts to Logstash"`
}

// Options returns the Options for a service of the given name and version.
func (c Config) Options(service, version string) Options {
	return Options{
		Service:      service,
		Version:      version,
		Level:        c.Level,
		LogstashAddr: c.LogstashAddr,
		BufferSize:   c.LogstashQueue,
		MaxBackoff:   c.MaxBackoff,
	}
}

// Validate checks the Logstash address.
func (c Config) Validate() error {
	o := c.Options("validate", "")
	if err := o.Validate(); err != nil {
		return fmt.Errorf("MYMONIT_LOGSTASH_ADDR=%q: want host:port (%w)", c.LogstashAddr, err)
	}
	return nil
}
