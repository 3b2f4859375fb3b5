package logging

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Defaults applied by New and NewShipper to zero-valued options.
const (
	DefaultLevel        = "info"
	DefaultBufferSize   = 8192
	DefaultDialTimeout  = 5 * time.Second
	DefaultWriteTimeout = 5 * time.Second
	DefaultMinBackoff   = 100 * time.Millisecond
	DefaultMaxBackoff   = 5 * time.Second
)

// Options configures a Logging. The service's configuration fills it (from
// the environment or flags); this package never reads the environment.
type Options struct {
	// Service is written as service.name on every line. Required.
	Service string
	// Version is written as service.version on every line.
	Version string
	// Level is the minimum level: debug, info, warn or error
	// (case-insensitive). Empty means info.
	Level string
	// Stdout receives every line. Nil means os.Stdout.
	Stdout io.Writer
	// LogstashAddr is the host:port of a Logstash tcp input with the
	// json_lines codec. Empty disables shipping.
	LogstashAddr string
	// BufferSize is the number of lines the shipper queues while Logstash
	// is slow or unreachable; further lines are dropped and counted.
	// Zero means DefaultBufferSize.
	BufferSize int
	// DialTimeout bounds one connection attempt. Zero means
	// DefaultDialTimeout.
	DialTimeout time.Duration
	// WriteTimeout bounds one write to Logstash; a write that does not
	// complete in time closes the connection. Zero means
	// DefaultWriteTimeout.
	WriteTimeout time.Duration
	// MaxBackoff caps the delay between reconnection attempts. Zero means
	// DefaultMaxBackoff.
	MaxBackoff time.Duration
	// Fields are added to every line, after ecs.version, service.name and
	// service.version (for example zap.String("service.environment",
	// "production")). They are redacted like any other field.
	Fields []zap.Field
}

// Validate reports the first invalid option, naming it.
func (o Options) Validate() error {
	if strings.TrimSpace(o.Service) == "" {
		return errors.New("logging: Options.Service is empty")
	}
	if _, err := parseLevel(o.Level); err != nil {
		return err
	}
	if o.LogstashAddr != "" {
		host, port, err := net.SplitHostPort(o.LogstashAddr)
		if err != nil {
			return fmt.Errorf("logging: Options.LogstashAddr %q: %w", o.LogstashAddr, err)
		}
		if host == "" || port == "" {
			return fmt.Errorf("logging: Options.LogstashAddr %q: want host:port", o.LogstashAddr)
		}
	}
	if o.BufferSize < 0 {
		return fmt.Errorf("logging: Options.BufferSize %d is negative", o.BufferSize)
	}
	if o.DialTimeout < 0 {
		return fmt.Errorf("logging: Options.DialTimeout %s is negative", o.DialTimeout)
	}
	if o.WriteTimeout < 0 {
		return fmt.Errorf("logging: Options.WriteTimeout %s is negative", o.WriteTimeout)
	}
	if o.MaxBackoff < 0 {
		return fmt.Errorf("logging: Options.MaxBackoff %s is negative", o.MaxBackoff)
	}
	return nil
}

// withDefaults returns o with zero values replaced by the defaults.
func (o Options) withDefaults() Options {
	if o.Level == "" {
		o.Level = DefaultLevel
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.BufferSize == 0 {
		o.BufferSize = DefaultBufferSize
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	return o
}

// parseLevel accepts the four documented levels; empty means info.
func parseLevel(s string) (zapcore.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return zapcore.DebugLevel, nil
	case "", "info":
		return zapcore.InfoLevel, nil
	case "warn", "warning":
		return zapcore.WarnLevel, nil
	case "error":
		return zapcore.ErrorLevel, nil
	default:
		return 0, fmt.Errorf("logging: Options.Level %q is not one of debug, info, warn, error", s)
	}
}
