// Package command runs an adapter command: configuration from the
// environment and flags with a usage text, then the fx application until the
// process is told to stop.
package command

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"slices"

	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"
	"go.uber.org/zap"

	"github.com/mymonit/mymonit/adapters/sink"
	"github.com/mymonit/mymonit/pkg/config"
	"github.com/mymonit/mymonit/pkg/logging"
	"github.com/mymonit/mymonit/pkg/queue"
)

// ErrUsage is returned after a usage error was printed; main exits 2
// without printing it again.
var ErrUsage = errors.New("usage")

// Parse loads cfg (a pointer to the command's configuration struct) from the
// environment, lets bind define flags on fs that override it, and parses
// args. -h prints usage, the flags and the environment variables of cfg, and
// returns flag.ErrHelp. check validates the result after the flags.
func Parse(fs *flag.FlagSet, args []string, usage string, cfg any, bind func(*flag.FlagSet), check func() error) error {
	out := fs.Output()
	fs.Usage = func() {
		fmt.Fprint(out, usage)
		fmt.Fprintf(out, "\nFlags (each overrides the environment variable it names):\n")
		fs.PrintDefaults()
		fmt.Fprintf(out, "\nEnvironment (NAME_FILE reads the value from a file):\n")
		for _, f := range config.Fields(cfg) {
			def := ""
			if f.Default != "" {
				def = " (default " + f.Default + ")"
			}
			fmt.Fprintf(out, "  %s%s\n    \t%s\n", f.Env, def, f.Help)
		}
	}
	help := slices.ContainsFunc(args, func(a string) bool { return a == "-h" || a == "-help" || a == "--help" })
	loadErr := config.Load(cfg)
	if help {
		// Show the help even when the environment is wrong.
		bind(fs)
		fs.Usage()
		return flag.ErrHelp
	}
	if loadErr != nil {
		return fmt.Errorf("configuration:\n%w", loadErr)
	}
	bind(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return ErrUsage
	}
	if err := check(); err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	return nil
}

// App returns the fx options of an adapter named producer: the shared
// modules (logging, queue publisher, sink with health and metrics) and the
// adapter's own options.
func App(cfg sink.Config, producer string, opts ...fx.Option) []fx.Option {
	return append([]fx.Option{
		sink.Supply(cfg, producer, Version()),
		fx.WithLogger(func(l *zap.Logger) fxevent.Logger {
			return &fxevent.ZapLogger{Logger: l.Named("fx").WithOptions(zap.IncreaseLevel(zap.WarnLevel))}
		}),
		logging.Module,
		queue.Module,
		sink.Module,
	}, opts...)
}

// Serve starts the application, logs the configuration, waits for ctx and
// stops it, letting the sink flush and wait for confirms up to the shutdown
// timeout. It logs to os.Stdout; Server.Serve changes that and the start
// and stop lines.
func Serve(ctx context.Context, cfg sink.Config, all any, producer string, opts ...fx.Option) error {
	return Server{}.Serve(ctx, cfg, all, producer, opts...)
}

// defaultStopping is the message Serve logs when ctx is done.
const defaultStopping = "shutting down: flushing and waiting for confirms"

// Server is what a command may change in how Serve runs it; the zero value
// runs it as Serve does.
type Server struct {
	// Stdout receives the log lines. Nil means os.Stdout.
	Stdout io.Writer
	// Started are fields logged on the "<producer> started" line, before
	// the configuration.
	Started []zap.Field
	// Stopping is the message logged when ctx is done. Empty means
	// "shutting down: flushing and waiting for confirms".
	Stopping string
}

// Serve starts the application of App(cfg, producer, opts...), logs
// "<producer> started" with s.Started and all (the command's whole
// configuration, secrets masked), waits for ctx, logs s.Stopping and stops
// the application, letting the sink flush and wait for confirms up to the
// shutdown timeout.
func (s Server) Serve(ctx context.Context, cfg sink.Config, all any, producer string, opts ...fx.Option) error {
	var log *zap.Logger
	appOpts := append(App(cfg, producer, opts...), fx.Populate(&log))
	if s.Stdout != nil {
		appOpts = append(appOpts, fx.Decorate(func(o logging.Options) logging.Options {
			o.Stdout = s.Stdout
			return o
		}))
	}
	a := fx.New(appOpts...)
	if err := a.Err(); err != nil {
		return err
	}
	startCtx, cancel := context.WithTimeout(ctx, a.StartTimeout())
	defer cancel()
	if err := a.Start(startCtx); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	log.Info(producer+" started", append(slices.Clip(s.Started), zap.Any("config", config.Describe(all)))...)
	<-ctx.Done()
	log.Info(cmp.Or(s.Stopping, defaultStopping))
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.Sink.ShutdownTimeout+a.StopTimeout())
	defer cancel()
	return a.Stop(stopCtx)
}

// Version is the module version stamped by the Go toolchain.
func Version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "dev"
}

// Exit turns run's error into an exit code, printing it unless it is a usage
// error already shown.
func Exit(name string, err error, stderr io.Writer) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, ErrUsage):
		return 2
	default:
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
}
