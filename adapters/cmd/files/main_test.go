package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mymonit/mymonit/adapters/backfill"
	"github.com/mymonit/mymonit/adapters/internal/amqptest"
	"github.com/mymonit/mymonit/adapters/internal/command"
	"github.com/mymonit/mymonit/pkg/measure"
)

// TestFilesCommand runs the command on a CSV file with a bad row and on
// JSON lines from stdin, and reads exactly the good measures back from
// RabbitMQ, then runs it again: the completed file is skipped.
func TestFilesCommand(t *testing.T) {
	cfg := amqptest.Config(t)
	for k, v := range map[string]string{
		"MYMONIT_AMQP_URL": cfg.URL, "MYMONIT_AMQP_EXCHANGE": cfg.Exchange, "MYMONIT_AMQP_QUEUE": cfg.Queue,
		"MYMONIT_AMQP_DEAD_EXCHANGE": cfg.DeadExchange, "MYMONIT_AMQP_DEAD_QUEUE": cfg.DeadQueue, "MYMONIT_AMQP_QUEUE_TYPE": cfg.QueueType,
		"MYMONIT_LOG_LEVEL": "warn",
	} {
		t.Setenv(k, v)
	}
	dir := t.TempDir()
	csvPath := filepath.Join(dir, "hv.csv")
	if err := os.WriteFile(csvPath, []byte("sensor,time,value,unit,rack\nhv/1,2026-11-23T10:00:00Z,1.5,uA,r3\nhv/2,2026-11-23T10:00:00Z,,uA,r3\nhv/3,2026-11-23T10:00:01Z,2,,\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stdin := strings.NewReader(`{"experiment":"cms","sensor":"t","time":"2026-11-23T10:00:00Z","value":7}` + "\n")
	var stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := run(ctx, []string{"-experiment", "atlas", csvPath}, nil, io.Discard, &stderr)
	if !errors.Is(err, errBadRows) {
		t.Fatalf("run: %v, want the bad-rows error\n%s", err, stderr.String())
	}
	if err := run(ctx, []string{"-format", "jsonl", "-"}, stdin, io.Discard, &stderr); err != nil {
		t.Fatalf("run on stdin: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), csvPath+`:3: value: "" is not a number`) {
		t.Errorf("stderr lacks the bad row:\n%s", stderr.String())
	}
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	want := []measure.Measure{
		{Experiment: "atlas", Sensor: "hv/1", Time: t0, Value: 1.5, Unit: "uA", Tags: map[string]string{"rack": "r3"}},
		{Experiment: "atlas", Sensor: "hv/3", Time: t0.Add(time.Second), Value: 2},
		{Experiment: "cms", Sensor: "t", Time: t0, Value: 7},
	}
	got := amqptest.Measures(t, amqptest.Collect(t, cfg, len(want)))
	if diff := cmp.Diff(amqptest.Sort(want), amqptest.Sort(got)); diff != "" {
		t.Errorf("measures on the queue (-want +got):\n%s", diff)
	}
	cp, ok, err := backfill.ReadCheckpoint(csvPath + ".checkpoint")
	if err != nil || !ok || !cp.Complete || cp.Published != 2 || cp.BadRows != 1 {
		t.Fatalf("checkpoint %+v %v %v", cp, ok, err)
	}

	stderr.Reset()
	if err := run(ctx, []string{"-experiment", "atlas", csvPath}, nil, io.Discard, &stderr); err != nil {
		t.Fatalf("second run: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "already published entirely") {
		t.Errorf("second run did not skip the file:\n%s", stderr.String())
	}
}

func TestFilesUsage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"-h"}, nil, &stdout, &stderr); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	for _, want := range []string{"every other column is a tag", "checkpoint", "MYMONIT_FILES_TIME_FORMAT", "-restart"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
	if stderr.Len() > 0 {
		t.Errorf("help wrote to stderr:\n%s", stderr.String())
	}
	stderr.Reset()
	if err := run(context.Background(), []string{"data.txt"}, nil, &stdout, &stderr); err == nil || !strings.Contains(err.Error(), "give -format csv or jsonl") {
		t.Errorf("unknown extension: %v", err)
	}

	tests := []struct {
		name       string
		env        map[string]string
		args       []string
		code       int
		wantStderr string
	}{
		{"bad flag", nil, []string{"-formt", "csv", "a.csv"}, 2, "flag provided but not defined: -formt\nrun files -help for the flags, the formats and resuming\n"},
		{"no file", nil, []string{"-format", "csv"}, 2, "files: name at least one FILE, or - for stdin (-h for help)\n"},
		{"bad environment", map[string]string{"MYMONIT_FILES_TIME_FORMAT": "julian"}, []string{"a.csv"}, 1, "files: configuration:\nMYMONIT_FILES_TIME_FORMAT"},
		{"bad flag value", nil, []string{"-time-format", "julian", "a.csv"}, 1, "files: configuration:\nMYMONIT_FILES_TIME_FORMAT (-time-format) \"julian\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tt.args, nil, &stdout, &stderr)
			if code := command.Exit("files", err, &stderr); code != tt.code || !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("exit status %d, stderr:\n%s\nwant %d and stderr containing %q", code, stderr.String(), tt.code, tt.wantStderr)
			}
			if stdout.Len() > 0 {
				t.Errorf("stdout: %s", stdout.String())
			}
		})
	}
}
