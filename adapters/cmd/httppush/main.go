// Command httppush receives v1 measure messages posted over HTTP by
// producers holding API keys, and publishes them to RabbitMQ; it also
// manages the keys. Run it with -h for the details.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"

	"go.uber.org/fx"

	"github.com/mymonit/mymonit/adapters/httppush"
	"github.com/mymonit/mymonit/adapters/internal/command"
	"github.com/mymonit/mymonit/adapters/sink"
)

const usage = `usage: httppush [serve] [flags]
       httppush key create -name NAME -experiments EXP[,EXP...] [-rate R] [-burst B] [-keys-file F]
       httppush key list [-keys-file F]
       httppush key revoke -name NAME [-keys-file F]

serve (the default) receives measures and publishes them to RabbitMQ:

  POST /v1/measures     (-listen, default :8187)
  Authorization: Bearer <API key>   (or X-API-Key: <API key>)
  Content-Type: application/json
  body: one v1 measure or a batch, exactly as on the queue:
    {"experiment":"atlas","sensor":"t1","time":"2026-11-23T10:00:00Z","value":21.5,"unit":"C","tags":{"rack":"r3"}}
    {"measures":[{...},{...}]}

Mapping: none; the body is the v1 contract and each measure is published as
sent (batched with others of the same experiment).

Each producer's key allows a list of experiments and a rate limit in measures
per second with a burst (the largest request). Answers, always JSON
{"accepted":N,"rejected":[{"index":I,"reason":"..."}],"error":"..."}:
  200  every measure published and confirmed by RabbitMQ
  400  some measures refused, each by index with its reason (a contract
       rule, or an experiment the key does not allow); the others ARE
       published, so do not resend them; or a body that is not a message
  401  missing or unknown key       413  larger than 4 MiB or the burst
  415  not application/json        429  rate limit: wait Retry-After
  503  not confirmed: send again (repeats overwrite themselves)

Keys are random 256-bit strings (mmk_...); the keys file stores only their
SHA-256 and is compared in constant time. 'key create' prints the key once.
Restart serve to load a changed keys file.
`

// hint completes the line "run httppush -help for ..." after a bad flag.
const hint = "the flags, the key commands and the answers"

// Config is everything httppush reads from the environment.
type Config struct {
	Adapter  sink.Config
	HTTPPush httppush.Settings
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(command.Exit("httppush", err, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "key" {
		return keyCmd(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "serve" {
		args = args[1:]
	}
	var cfg Config
	fs := flag.NewFlagSet("httppush", flag.ContinueOnError)
	fs.SetOutput(stderr)
	err := command.Parse(fs, args, stdout, command.Usage{Head: usage, Hint: hint}, &cfg, func(fs *flag.FlagSet) {
		cfg.Adapter.BindFlags(fs)
		cfg.HTTPPush.BindFlags(fs)
	}, func() error { return cfg.Adapter.Check() }) // a closure: the method value would copy cfg before it is loaded
	if err != nil {
		return err
	}
	return command.Serve(ctx, cfg.Adapter, cfg, "httppush",
		fx.Supply(cfg.HTTPPush),
		httppush.Module,
		fx.Invoke(func(*httppush.Server) {}),
	)
}

func keyCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return command.ErrUsage
	}
	sub, args := args[0], args[1:]
	var (
		name, exps string
		rate       float64
		burst      int
		bind       func(fs *flag.FlagSet)
	)
	switch sub {
	case "create":
		bind = func(fs *flag.FlagSet) {
			fs.StringVar(&name, "name", "", "producer name (required)")
			fs.StringVar(&exps, "experiments", "", `comma-separated experiments the key may publish to, or "*" (required)`)
			fs.Float64Var(&rate, "rate", 1000, "sustained measures per second")
			fs.IntVar(&burst, "burst", 10000, "most measures at once, and the largest request")
		}
	case "list":
		bind = func(*flag.FlagSet) {}
	case "revoke":
		bind = func(fs *flag.FlagSet) {
			fs.StringVar(&name, "name", "", "producer whose key is removed (required)")
		}
	default:
		fmt.Fprintf(stderr, "httppush: unknown key command %q\n\n%s", sub, usage)
		return command.ErrUsage
	}
	var set httppush.Settings
	fs := flag.NewFlagSet("httppush key "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	err := command.Parse(fs, args, stdout, command.Usage{Head: usage, Hint: hint}, &set, func(fs *flag.FlagSet) {
		fs.StringVar(&set.KeysFile, "keys-file", set.KeysFile, "keys file (MYMONIT_HTTPPUSH_KEYS_FILE)")
		bind(fs)
	}, nil)
	if err != nil {
		return err
	}
	switch sub {
	case "create":
		var list []string
		for _, e := range strings.Split(exps, ",") {
			if e = strings.TrimSpace(e); e != "" {
				list = append(list, e)
			}
		}
		key, hash, err := httppush.NewKey()
		if err != nil {
			return err
		}
		if err := httppush.AddProducer(set.KeysFile, httppush.Producer{Name: name, KeySHA256: hash, Experiments: list, Rate: rate, Burst: burst}); err != nil {
			return fmt.Errorf("create key: %w", err)
		}
		fmt.Fprintf(stderr, "producer %q added to %s; its key is shown once, store it now (restart httppush to load it):\n", name, set.KeysFile)
		fmt.Fprintln(stdout, key)
		return nil
	case "list":
		keys, err := httppush.LoadKeys(set.KeysFile)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tEXPERIMENTS\tRATE/s\tBURST")
		for _, p := range keys.Producers() {
			fmt.Fprintf(tw, "%s\t%s\t%g\t%d\n", p.Name, strings.Join(p.Experiments, ","), p.Rate, p.Burst)
		}
		return tw.Flush()
	default: // revoke
		if err := httppush.RemoveProducer(set.KeysFile, name); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "producer %q removed from %s (restart httppush to apply)\n", name, set.KeysFile)
		return nil
	}
}
