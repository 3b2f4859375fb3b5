// Package command runs an adapter command: the command line they all share
// (Parse and Exit: configuration from the environment and flags, -help on
// stdout, exit status 2 for a usage error and 1 for any other), then the fx
// application until the process is told to stop.
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

// ErrUsage marks a command-line error: Exit exits 2 for it. Returned bare,
// it means the error was already printed; an error made by Usagef is printed
// by Exit.
var ErrUsage = errors.New("usage")

// Usagef returns a command-line error with the formatted message: Exit
// prints it as "<name>: <message>" and exits 2.
func Usagef(format string, a ...any) error {
	return usageError(fmt.Sprintf(format, a...))
}

type usageError string

func (e usageError) Error() string { return string(e) }

func (e usageError) Is(target error) bool { return target == ErrUsage }

// Usage is what a command shows of itself on its command line.
type Usage struct {
	// Head is the text -help prints before the flags: the synopsis and
	// what the command does.
	Head string
	// Hint completes the line "run <name> -help for <Hint>" printed after
	// a bad flag. Empty means "the flags and the environment".
	Hint string
	// Args allows positional arguments (fs.Args()); without it the first
	// one is a usage error.
	Args bool
}

// Parse is the command line of every adapter command. It loads cfg (a
// pointer to the command's configuration struct) from the environment, lets
// bind define flags on fs that override it, parses args and runs check
// (which may be nil) on the result. The command's name is fs.Name(); errors
// go to fs.Output(), its standard error. In this order:
//
//   - -h, -help or --help prints u.Head, the flags and the environment
//     variables of cfg with their defaults and help to stdout and returns
//     flag.ErrHelp (Exit: 0), even when the environment is invalid;
//   - a bad flag: the flag package's error line and the hint line
//     "run <name> -help for <u.Hint>" on standard error, and ErrUsage (Exit: 2);
//   - a positional argument, unless u.Args: a Usagef error
//     `unexpected argument "x" (run <name> -help)` (Exit: 2);
//   - an invalid environment, or check's error: "configuration:\n" and the
//     errors, one a line (Exit: 1).
func Parse(fs *flag.FlagSet, args []string, stdout io.Writer, u Usage, cfg any, bind func(*flag.FlagSet), check func() error) error {
	name := fs.Name()
	loadErr := config.Load(cfg) // reported after the flags, so that -help works
	bind(fs)
	fs.Usage = func() {} // the help goes to stdout and a bad flag gets the hint, below
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout, fs, u.Head, cfg)
			return flag.ErrHelp
		}
		fmt.Fprintf(fs.Output(), "run %s -help for %s\n", name, cmp.Or(u.Hint, "the flags and the environment"))
		return ErrUsage
	}
	if !u.Args && fs.NArg() > 0 {
		return Usagef("unexpected argument %q (run %s -help)", fs.Arg(0), name)
	}
	if loadErr != nil {
		return fmt.Errorf("configuration:\n%w", loadErr)
	}
	if check == nil {
		return nil
	}
	if err := check(); err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	return nil
}

// printUsage writes head, the flags of fs and the environment variables of
// cfg to w.
func printUsage(w io.Writer, fs *flag.FlagSet, head string, cfg any) {
	fmt.Fprint(w, head)
	fmt.Fprintf(w, "\nFlags (each overrides the environment variable it names):\n")
	errOut := fs.Output()
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(errOut)
	fmt.Fprintf(w, "\nEnvironment (NAME_FILE reads the value from a file):\n")
	for _, f := range config.Fields(cfg) {
		def := ""
		if f.Default != "" {
			def = " (default " + f.Default + ")"
		}
		fmt.Fprintf(w, "  %s%s\n    \t%s\n", f.Env, def, f.Help)
	}
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

// Exit turns run's error into the exit status, printing the error as
// "<name>: <error>" on stderr unless it was already printed: 0 for nil and
// flag.ErrHelp, 2 for a usage error (ErrUsage, Usagef), 1 for any other.
func Exit(name string, err error, stderr io.Writer) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, ErrUsage):
		if err != ErrUsage {
			fmt.Fprintf(stderr, "%s: %v\n", name, err)
		}
		return 2
	default:
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
}
