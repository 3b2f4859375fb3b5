package main

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/prometheus/common/expfmt"

	"github.com/mymonit/mymonit/adapters/internal/amqptest"
	"github.com/mymonit/mymonit/adapters/internal/command"
	"github.com/mymonit/mymonit/pkg/measure"
	"github.com/mymonit/mymonit/pkg/queue"
	"github.com/mymonit/mymonit/pkg/testenv"
)

const textExposition = `# TYPE lab_requests_total counter
lab_requests_total{code="200"} 7 1700000000000
lab_requests_total{code="500"} 1 1700000000000
# TYPE lab_latency_seconds histogram
lab_latency_seconds_bucket{le="0.1"} 3 1700000000000
lab_latency_seconds_bucket{le="+Inf"} 4 1700000000000
lab_latency_seconds_sum 0.5 1700000000000
lab_latency_seconds_count 4 1700000000000
# TYPE lab_temp gauge
lab_temp NaN 1700000000000
lab_uptime_seconds 42
`

const omExposition = `# TYPE lab_jobs counter
lab_jobs_total 5 1700000000.5
lab_jobs_created 1600000000
# TYPE lab_rpc summary
lab_rpc{quantile="0.5"} 0.2 1700000000.5
lab_rpc_sum 3 1700000000.5
lab_rpc_count 10 1700000000.5
# EOF
`

// TestScrapeToQueue runs the command against exporters serving the text
// format and OpenMetrics and a failing one, and reads exactly the expected
// measures from a queue bound to the measures exchange.
func TestScrapeToQueue(t *testing.T) {
	q := amqptest.Config(t)
	mux := http.NewServeMux()
	mux.HandleFunc("/text", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", string(expfmt.FmtText))
		fmt.Fprint(w, textExposition)
	})
	mux.HandleFunc("/om", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", string(expfmt.FmtOpenMetrics_1_0_0))
		fmt.Fprint(w, omExposition)
	})
	mux.HandleFunc("/down", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	file := filepath.Join(t.TempDir(), "targets.yaml")
	targets := fmt.Sprintf(`targets:
  - {url: %[1]s/text, experiment: e2e-a, labels: {instance: text}}
  - {url: %[1]s/down, experiment: e2e-a, labels: {instance: down}}
  - {url: %[1]s/om, experiment: e2e-b}
`, srv.URL)
	if err := os.WriteFile(file, []byte(targets), 0o600); err != nil {
		t.Fatal(err)
	}
	adapterEnv(t, q)

	var logs testenv.Buffer
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	before := time.Now().UTC()
	go func() { done <- run(ctx, []string{"-config", file, "-interval", "1h"}, &logs, &logs) }()

	ts := time.UnixMilli(1700000000000).UTC()
	om := time.UnixMilli(1700000000500).UTC()
	want := []measure.Measure{
		{Experiment: "e2e-a", Sensor: `lab_latency_seconds_bucket{instance="text",le="+Inf"}`, Time: ts, Value: 4, Tags: map[string]string{"instance": "text", "le": "+Inf"}},
		{Experiment: "e2e-a", Sensor: `lab_latency_seconds_bucket{instance="text",le="0.1"}`, Time: ts, Value: 3, Tags: map[string]string{"instance": "text", "le": "0.1"}},
		{Experiment: "e2e-a", Sensor: `lab_latency_seconds_count{instance="text"}`, Time: ts, Value: 4, Tags: map[string]string{"instance": "text"}},
		{Experiment: "e2e-a", Sensor: `lab_latency_seconds_sum{instance="text"}`, Time: ts, Value: 0.5, Tags: map[string]string{"instance": "text"}},
		{Experiment: "e2e-a", Sensor: `lab_requests_total{code="200",instance="text"}`, Time: ts, Value: 7, Tags: map[string]string{"code": "200", "instance": "text"}},
		{Experiment: "e2e-a", Sensor: `lab_requests_total{code="500",instance="text"}`, Time: ts, Value: 1, Tags: map[string]string{"code": "500", "instance": "text"}},
		{Experiment: "e2e-a", Sensor: `lab_uptime_seconds{instance="text"}`, Value: 42, Tags: map[string]string{"instance": "text"}}, // time: the scrape's
		{Experiment: "e2e-b", Sensor: "lab_jobs_total", Time: om, Value: 5},
		{Experiment: "e2e-b", Sensor: "lab_rpc_count", Time: om, Value: 10},
		{Experiment: "e2e-b", Sensor: "lab_rpc_sum", Time: om, Value: 3},
		{Experiment: "e2e-b", Sensor: `lab_rpc{quantile="0.5"}`, Time: om, Value: 0.2, Tags: map[string]string{"quantile": "0.5"}},
	}
	got := amqptest.CollectMeasures(t, q, len(want))
	after := time.Now().UTC()
	waitForLog(t, &logs, `"message":"scrape failed"`)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v\n%s", err, logs.String())
	}

	slices.SortFunc(got, func(a, b measure.Measure) int {
		return cmp.Or(strings.Compare(a.Experiment, b.Experiment), strings.Compare(a.Sensor, b.Sensor))
	})
	for i := range got {
		if got[i].Sensor == `lab_uptime_seconds{instance="text"}` {
			if got[i].Time.Before(before.Truncate(time.Microsecond)) || got[i].Time.After(after) {
				t.Errorf("sample without a timestamp has time %s, not the scrape's (between %s and %s)", got[i].Time, before, after)
			}
			got[i].Time = time.Time{}
		}
	}
	if diff := gocmp.Diff(want, got); diff != "" {
		t.Errorf("measures on the queue (-want +got):\n%s", diff)
	}
	if n, err := queue.Depth(context.Background(), q, q.Queue); err != nil || n != 0 {
		t.Errorf("queue holds %d more messages (err %v): measures published more than once", n, err)
	}
	out := logs.String()
	for _, w := range []string{
		`"message":"scrape failed"`, srv.URL + "/down", `"reason":"http_status"`, "503",
		`"message":"samples rejected"`, `"first.sensor":"lab_temp{instance=\"text\"}"`, "value: must be a finite number, got NaN",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("logs do not contain %s:\n%s", w, out)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("targets:\n  - url: http://h/m\n    experiment: ok\n  - url: http://h/m\n    experimnt: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string // on stderr
		code int
	}{
		{"no targets file", nil, nil, "MYMONIT_PROMSCRAPE_CONFIG (-config) is required", 1},
		{"missing file", nil, []string{"-config", filepath.Join(dir, "nope.yaml")}, "nope.yaml: no such file", 1},
		{"unknown field named with its line", nil, []string{"-config", bad}, "line 5: field experimnt not found", 1},
		{"bad environment value", map[string]string{"MYMONIT_PROMSCRAPE_INTERVAL": "soon"}, []string{"-config", bad}, `MYMONIT_PROMSCRAPE_INTERVAL="soon"`, 1},
		{"timeout longer than interval", nil, []string{"-config", bad, "-interval", "1s", "-timeout", "2s"}, "MYMONIT_PROMSCRAPE_TIMEOUT (-timeout) 2s is longer than", 1},
		{"bad sink flag", nil, []string{"-config", bad, "-batch-size", "0"}, "MYMONIT_ADAPTER_BATCH_SIZE (-batch-size)", 1},
		{"stray argument", nil, []string{"extra"}, `promscrape: unexpected argument "extra" (run promscrape -help)`, 2},
		{"bad flag", nil, []string{"-config", bad, "-intervall", "1s"}, "flag provided but not defined: -intervall\nrun promscrape -help for the flags, the targets file and the mapping\n", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), tt.args, &stdout, &stderr)
			code := command.Exit("promscrape", err, &stderr)
			if code != tt.code || !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("exit status %d, stderr:\n%s\nwant %d and stderr saying %q", code, stderr.String(), tt.code, tt.want)
			}
			if stdout.Len() > 0 {
				t.Errorf("stdout: %s", stdout.String())
			}
		})
	}
}

func TestHelpExplainsTheMapping(t *testing.T) {
	t.Setenv("MYMONIT_PROMSCRAPE_INTERVAL", "soon") // the help shows all the same
	var out, stderr bytes.Buffer
	err := run(t.Context(), []string{"-help"}, &out, &stderr)
	if code := command.Exit("promscrape", err, &stderr); code != 0 || stderr.Len() > 0 {
		t.Fatalf("-help: exit status %d, stderr:\n%s", code, stderr.String())
	}
	for _, w := range []string{"targets:", "name_bucket{le=", "quantile", "exported_<name>", "MYMONIT_PROMSCRAPE_CONFIG", "-interval", "MYMONIT_AMQP_URL"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("help does not mention %s", w)
		}
	}
}

// adapterEnv points the command at the test topology.
func adapterEnv(t *testing.T, q queue.Config) {
	for k, v := range map[string]string{
		"MYMONIT_AMQP_URL":               q.URL,
		"MYMONIT_AMQP_EXCHANGE":          q.Exchange,
		"MYMONIT_AMQP_QUEUE":             q.Queue,
		"MYMONIT_AMQP_DEAD_EXCHANGE":     q.DeadExchange,
		"MYMONIT_AMQP_DEAD_QUEUE":        q.DeadQueue,
		"MYMONIT_AMQP_QUEUE_TYPE":        q.QueueType,
		"MYMONIT_ADAPTER_HTTP_ADDR":      "127.0.0.1:0",
		"MYMONIT_ADAPTER_FLUSH_INTERVAL": "5ms",
	} {
		t.Setenv(k, v)
	}
}

// waitForLog waits until the logs contain s.
func waitForLog(t *testing.T, logs *testenv.Buffer, s string) {
	t.Helper()
	for !strings.Contains(logs.String(), s) {
		if t.Context().Err() != nil {
			t.Fatalf("logs never contained %s:\n%s", s, logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
