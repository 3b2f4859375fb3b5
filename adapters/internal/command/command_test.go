package command_test

import (
	"context"
	"encoding/json"
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
