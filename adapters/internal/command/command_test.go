package command_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"

	"github.com/mymonit/mymonit/adapters/internal/command"
	"github.com/mymonit/mymonit/adapters/sink"
	"github.com/mymonit/mymonit/pkg/testenv"
)

// parseConfig is the configuration struct of the command TestParse runs.
type parseConfig struct {
	Size int    `env:"MYMONIT_CMDTEST_SIZE" default:"10" min:"1" help:"how many at once"`
	Name string `env:"MYMONIT_CMDTEST_NAME" default:"lab" help:"what to call it"`
}

const parseHead = "usage: cmdtest [flags]\n\nDoes what a test command does.\n"

// parseHelp is the whole -help of the command TestParse runs, with the
// defaults of the environment.
const parseHelp = parseHead + `
Flags (each overrides the environment variable it names):
  -name string
    	what to call it (MYMONIT_CMDTEST_NAME) (default "lab")
  -size int
    	how many at once (MYMONIT_CMDTEST_SIZE) (default 10)

Environment (NAME_FILE reads the value from a file):
  MYMONIT_CMDTEST_SIZE (default 10)
    	how many at once
  MYMONIT_CMDTEST_NAME (default lab)
    	what to call it
`

// TestParse runs Parse and Exit as a command's main does and checks the
// convention every adapter command follows: what goes to stdout and stderr
// and the exit status, in the order help, bad flag, stray argument, bad
// environment.
func TestParse(t *testing.T) {
	badEnv := map[string]string{"MYMONIT_CMDTEST_SIZE": "lots"}
	tests := []struct {
		name     string
		env      map[string]string
		args     []string
		usage    command.Usage
		checkErr error // what check returns
		wantCode int
		// wantStdout and wantStderr are the whole outputs, unless
		// contains is set: then each line of them must appear.
		wantStdout, wantStderr string
		contains               bool
		wantCfg                parseConfig // when wantCode is 0 and there is no help
		wantArgs               []string
	}{
		{
			name: "-help prints the usage to stdout", args: []string{"-help"},
			wantCode: 0, wantStdout: parseHelp,
		},
		{
			name: "-h", args: []string{"-h"},
			wantCode: 0, wantStdout: parseHelp,
		},
		{
			name: "--help after a flag", args: []string{"-size", "3", "--help"},
			wantCode: 0, wantStdout: parseHead, contains: true,
		},
		{
			name: "-help with a bad environment", env: badEnv, args: []string{"-help"},
			wantCode: 0, contains: true,
			wantStdout: parseHead + "Flags (each overrides the environment variable it names):\n" +
				"Environment (NAME_FILE reads the value from a file):\n  MYMONIT_CMDTEST_SIZE (default 10)\n",
		},
		{
			name: "bad flag", args: []string{"-nope"},
			wantCode:   2,
			wantStderr: "flag provided but not defined: -nope\nrun cmdtest -help for the flags and the environment\n",
		},
		{
			name: "bad flag value with the command's hint", args: []string{"-size", "x"},
			usage:      command.Usage{Hint: "the flags and the mapping"},
			wantCode:   2,
			wantStderr: `invalid value "x" for flag -size: parse error` + "\nrun cmdtest -help for the flags and the mapping\n",
		},
		{
			name: "bad flag comes before a bad environment", env: badEnv, args: []string{"-nope"},
			wantCode:   2,
			wantStderr: "flag provided but not defined: -nope\nrun cmdtest -help for the flags and the environment\n",
		},
		{
			name: "stray argument", args: []string{"-size", "3", "extra", "more"},
			wantCode:   2,
			wantStderr: `cmdtest: unexpected argument "extra" (run cmdtest -help)` + "\n",
		},
		{
			name: "stray argument comes before a bad environment", env: badEnv, args: []string{"extra"},
			wantCode:   2,
			wantStderr: `cmdtest: unexpected argument "extra" (run cmdtest -help)` + "\n",
		},
		{
			name: "bad environment", env: badEnv,
			wantCode:   1,
			wantStderr: "cmdtest: configuration:\nMYMONIT_CMDTEST_SIZE=\"lots\"",
			contains:   true,
		},
		{
			name: "check refuses the flags", args: []string{"-size", "0"},
			checkErr:   errors.New("MYMONIT_CMDTEST_SIZE (-size): 0 is below 1"),
			wantCode:   1,
			wantStderr: "cmdtest: configuration:\nMYMONIT_CMDTEST_SIZE (-size): 0 is below 1\n",
		},
		{
			name: "good input: flags override the environment", env: map[string]string{"MYMONIT_CMDTEST_NAME": "env", "MYMONIT_CMDTEST_SIZE": "5"},
			args:     []string{"-name", "flag"},
			wantCode: 0, wantCfg: parseConfig{Size: 5, Name: "flag"}, wantArgs: []string{},
		},
		{
			name: "arguments of a command that takes them", args: []string{"-size", "3", "a.csv", "-"},
			usage:    command.Usage{Args: true},
			wantCode: 0, wantCfg: parseConfig{Size: 3, Name: "lab"}, wantArgs: []string{"a.csv", "-"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var stdout, stderr bytes.Buffer
			var cfg parseConfig
			fs := flag.NewFlagSet("cmdtest", flag.ContinueOnError)
			fs.SetOutput(&stderr)
			u := tt.usage
			u.Head = parseHead
			err := command.Parse(fs, tt.args, &stdout, u, &cfg, func(fs *flag.FlagSet) {
				fs.IntVar(&cfg.Size, "size", cfg.Size, "how many at once (MYMONIT_CMDTEST_SIZE)")
				fs.StringVar(&cfg.Name, "name", cfg.Name, "what to call it (MYMONIT_CMDTEST_NAME)")
			}, func() error { return tt.checkErr })
			code := command.Exit("cmdtest", err, &stderr)

			if code != tt.wantCode {
				t.Errorf("exit status %d, want %d (error %v)", code, tt.wantCode, err)
			}
			for _, o := range []struct {
				name      string
				got, want string
			}{{"stdout", stdout.String(), tt.wantStdout}, {"stderr", stderr.String(), tt.wantStderr}} {
				if !tt.contains || o.want == "" {
					if diff := cmp.Diff(o.want, o.got); diff != "" {
						t.Errorf("%s (-want +got):\n%s", o.name, diff)
					}
					continue
				}
				for line := range strings.Lines(o.want) {
					if !strings.Contains(o.got, line) {
						t.Errorf("%s lacks %q:\n%s", o.name, line, o.got)
					}
				}
			}
			if err != nil {
				return
			}
			if diff := cmp.Diff(tt.wantCfg, cfg); diff != "" {
				t.Errorf("configuration (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantArgs, fs.Args()); diff != "" {
				t.Errorf("arguments (-want +got):\n%s", diff)
			}
		})
	}
}

// TestExit maps run's errors to exit statuses and prints those not yet
// printed.
func TestExit(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantCode   int
		wantStderr string
	}{
		{"nil", nil, 0, ""},
		{"help", flag.ErrHelp, 0, ""},
		{"usage error already printed", command.ErrUsage, 2, ""},
		{"usage error to print", command.Usagef("name at least one %s", "FILE"), 2, "cmdtest: name at least one FILE\n"},
		{"other error", errors.New("start: refused"), 1, "cmdtest: start: refused\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			if code := command.Exit("cmdtest", tt.err, &stderr); code != tt.wantCode {
				t.Errorf("exit status %d, want %d", code, tt.wantCode)
			}
			if diff := cmp.Diff(tt.wantStderr, stderr.String()); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
		})
	}
}

// TestServerServe runs an adapter application on the test broker with each
// Server setting and reads the log lines where they should go: the given
// Stdout, else os.Stdout.
func TestServerServe(t *testing.T) {
	tests := []struct {
		name         string
		toWriter     bool // set Server.Stdout
		started      []zap.Field
		stopping     string
		wantStarted  map[string]any // fields of the started line besides config
		wantStopping string
	}{
		{
			name:         "zero value logs to os.Stdout",
			wantStarted:  map[string]any{},
			wantStopping: "shutting down: flushing and waiting for confirms",
		},
		{
			name:         "Stdout receives the logs",
			toWriter:     true,
			wantStarted:  map[string]any{},
			wantStopping: "shutting down: flushing and waiting for confirms",
		},
		{
			name:         "Started fields come before the configuration",
			toWriter:     true,
			started:      []zap.Field{zap.Strings("targets", []string{"a", "b"})},
			wantStarted:  map[string]any{"targets": []any{"a", "b"}},
			wantStopping: "shutting down: flushing and waiting for confirms",
		},
		{
			name:         "Stopping replaces the shutdown message",
			toWriter:     true,
			stopping:     "shutting down: publishing what was scraped",
			wantStarted:  map[string]any{},
			wantStopping: "shutting down: publishing what was scraped",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := sink.Config{Sink: sink.DefaultSettings()}
			cfg.Log.Level = "info"
			cfg.AMQP = testenv.QueueConfig(t, "mymonit_test_command")
			cfg.Sink.HTTPAddr = ""

			stdoutFile := swapStdout(t)
			var writer testenv.Buffer
			s := command.Server{Started: tt.started, Stopping: tt.stopping}
			logs, other := func() string { return readFile(t, stdoutFile) }, writer.String
			if tt.toWriter {
				s.Stdout = &writer
				logs, other = writer.String, func() string { return readFile(t, stdoutFile) }
			}

			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- s.Serve(ctx, cfg, cfg, "cmdtest") }()
			deadline := time.After(30 * time.Second)
			for !strings.Contains(logs(), `"message":"cmdtest started"`) {
				select {
				case err := <-done:
					t.Fatalf("Serve returned before it started: %v\n%s", err, logs())
				case <-deadline:
					cancel()
					<-done
					t.Fatalf("no started line in the logs after 30s:\n%s\nother output:\n%s", logs(), other())
				case <-time.After(10 * time.Millisecond):
				}
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("Serve: %v\n%s", err, logs())
			}

			out := logs()
			raw, started := logLine(t, out, "cmdtest started")
			if _, ok := started["config"]; !ok {
				t.Errorf("started line has no config: %s", raw)
			}
			got := map[string]any{}
			for k := range tt.wantStarted {
				got[k] = started[k]
				if strings.Index(raw, `"`+k+`":`) > strings.Index(raw, `"config":`) {
					t.Errorf("started line has %s after config: %s", k, raw)
				}
			}
			if diff := cmp.Diff(tt.wantStarted, got); diff != "" {
				t.Errorf("started line fields (-want +got):\n%s", diff)
			}
			logLine(t, out, tt.wantStopping)
			if o := other(); o != "" {
				t.Errorf("logs went to the other output too:\n%s", o)
			}
		})
	}
}

// swapStdout points os.Stdout at a file until the test ends and returns
// the file's path.
func swapStdout(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "stdout")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	orig := os.Stdout
	os.Stdout = f
	t.Cleanup(func() {
		os.Stdout = orig
		_ = f.Close()
	})
	return path
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// logLine returns the JSON log line of out whose message is msg, raw and
// decoded.
func logLine(t *testing.T, out, msg string) (string, map[string]any) {
	t.Helper()
	for line := range strings.Lines(out) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, line)
		}
		if m["message"] == msg {
			return line, m
		}
	}
	t.Fatalf("no log line with message %q:\n%s", msg, out)
	return "", nil
}
