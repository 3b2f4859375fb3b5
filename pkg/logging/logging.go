package logging

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// DefaultVersion is written as service.version when Options.Version is
// empty.
const DefaultVersion = "unknown"

// Logging owns a service's logger and its sinks: stdout, always, and
// Logstash when configured. Build it with New, hand Logger to the
// components, and Close it last at shutdown.
type Logging struct {
	logger    *zap.Logger
	audit     *zap.Logger
	level     zap.AtomicLevel
	stdout    zapcore.WriteSyncer
	shipper   *Shipper // nil without LogstashAddr
	collector *collector
}

// New validates o and builds the logger: ECS JSON lines, redacted (see
// NewRedactingCore), written to o.Stdout and, when o.LogstashAddr is set,
// queued for Logstash. It does not wait for Logstash; Close stops the
// shipping goroutine it starts.
func New(o Options) (*Logging, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	lvl, err := parseLevel(o.Level)
	if err != nil {
		return nil, err
	}
	if o.Version == "" {
		o.Version = DefaultVersion
	}
	l := &Logging{
		level:  zap.NewAtomicLevelAt(lvl),
		stdout: zapcore.Lock(stdoutSyncer{o.Stdout}),
	}
	l.collector = newCollector(l)

	enc := zapcore.NewJSONEncoder(EncoderConfig())
	stdoutCore := zapcore.NewCore(enc, l.stdout, l.level)
	// Audit events are written at info whatever the level: a level set to
	// quiet the logs must not drop the audit trail.
	auditLevel := zap.LevelEnablerFunc(func(lvl zapcore.Level) bool { return lvl >= zapcore.InfoLevel || l.level.Enabled(lvl) })
	auditCore := zapcore.NewCore(enc.Clone(), l.stdout, auditLevel)
	static := []zap.Field{
		zap.String("ecs.version", ECSVersion),
		zap.String("service.name", o.Service),
		zap.String("service.version", o.Version),
	}
	zapOpts := []zap.Option{zap.AddCaller(), zap.AddStacktrace(zapcore.ErrorLevel)}

	core := stdoutCore
	if o.LogstashAddr != "" {
		// The shipper reports its connection changes to stdout only.
		reports := zap.New(NewRedactingCore(stdoutCore), zapOpts...).With(static...).Named("logging.shipper")
		sh, err := NewShipper(ShipperOptions{
			Addr:         o.LogstashAddr,
			BufferSize:   o.BufferSize,
			DialTimeout:  o.DialTimeout,
			WriteTimeout: o.WriteTimeout,
			MaxBackoff:   o.MaxBackoff,
			Logger:       reports,
		})
		if err != nil {
			return nil, err
		}
		l.shipper = sh
		// One encoding, two writers: both sinks get the same bytes, and
		// shipping costs the caller a copy and a channel send.
		both := zapcore.NewMultiWriteSyncer(l.stdout, sh)
		core = zapcore.NewCore(enc.Clone(), both, l.level)
		auditCore = zapcore.NewCore(enc.Clone(), both, auditLevel)
	}
	l.logger = zap.New(NewRedactingCore(core), zapOpts...).With(static...).With(o.Fields...)
	l.audit = zap.New(NewRedactingCore(auditCore), zapOpts...).With(static...).With(o.Fields...)
	return l, nil
}

// Logger returns the service's root logger. Name component loggers with
// Named (written as log.logger).
func (l *Logging) Logger() *zap.Logger { return l.logger }

// Audit returns the logger of audit events (see Audit): the same sinks,
// fields and redaction as Logger, but what is logged at info or above is
// always written, whatever the level, so that quieting the logs never drops
// the audit trail. Debug lines follow the level.
func (l *Logging) Audit() *zap.Logger { return l.audit }

// Level returns the level of both sinks; it can be changed at run time
// (zap.AtomicLevel is also an http.Handler).
func (l *Logging) Level() zap.AtomicLevel { return l.level }

// Stats returns the Logstash shipper's counters; zero without LogstashAddr.
func (l *Logging) Stats() ShipperStats {
	if l.shipper == nil {
		return ShipperStats{}
	}
	return l.shipper.Stats()
}

// Close syncs stdout and closes the shipper: queued lines are sent until ctx
// is done, then the goroutine is stopped and waited for (see
// Shipper.Close). The logger stays usable afterwards and writes to stdout
// only. Close is idempotent.
func (l *Logging) Close(ctx context.Context) error {
	var errs []error
	if err := l.stdout.Sync(); err != nil {
		errs = append(errs, fmt.Errorf("logging: sync stdout: %w", err))
	}
	if l.shipper != nil {
		if err := l.shipper.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// stdoutSyncer syncs writers that can be synced and ignores the errors of
// those that cannot (pipes, terminals), which fsync rejects.
type stdoutSyncer struct{ io.Writer }

func (s stdoutSyncer) Sync() error {
	ws, ok := s.Writer.(interface{ Sync() error })
	if !ok {
		return nil
	}
	err := ws.Sync()
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP) || errors.Is(err, syscall.ENOTTY) {
		return nil
	}
	return err
}
