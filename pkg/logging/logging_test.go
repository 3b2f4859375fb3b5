package logging_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"

	"github.com/mymonit/mymonit/pkg/logging"
)

const hangGuard = 20 * time.Second

func newLogging(t testing.TB, o logging.Options) *logging.Logging {
	t.Helper()
	if o.Service == "" {
		o.Service = "logging-test"
	}
	l, err := logging.New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = l.Close(ctx)
	})
	return l
}

// waitStats waits until the shipper's counters satisfy ok, failing the
// test after hangGuard.
func waitStats(t testing.TB, l *logging.Logging, ok func(logging.ShipperStats) bool) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for !ok(l.Stats()) {
		if time.Now().After(deadline) {
			t.Fatalf("Stats() = %+v: condition not reached within %s", l.Stats(), hangGuard)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func closeLogging(t testing.TB, l *logging.Logging, timeout time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var err error
	within(t, hangGuard, "Close", func() { err = l.Close(ctx) })
	return err
}

func TestOptionsValidate(t *testing.T) {
	valid := logging.Options{Service: "api"}
	tests := []struct {
		name    string
		modify  func(*logging.Options)
		wantErr string // substring naming the option; empty for valid
	}{
		{"minimal", func(*logging.Options) {}, ""},
		{"all levels", func(o *logging.Options) { o.Level = "DEBUG" }, ""},
		{"logstash", func(o *logging.Options) { o.LogstashAddr = "logstash:5000" }, ""},
		{"no service", func(o *logging.Options) { o.Service = " " }, "Options.Service"},
		{"unknown level", func(o *logging.Options) { o.Level = "verbose" }, "Options.Level"},
		{"fatal is not offered", func(o *logging.Options) { o.Level = "fatal" }, "Options.Level"},
		{"addr without port", func(o *logging.Options) { o.LogstashAddr = "logstash" }, "Options.LogstashAddr"},
		{"addr without host", func(o *logging.Options) { o.LogstashAddr = ":5000" }, "Options.LogstashAddr"},
		{"negative buffer", func(o *logging.Options) { o.BufferSize = -1 }, "Options.BufferSize"},
		{"negative dial timeout", func(o *logging.Options) { o.DialTimeout = -time.Second }, "Options.DialTimeout"},
		{"negative write timeout", func(o *logging.Options) { o.WriteTimeout = -time.Second }, "Options.WriteTimeout"},
		{"negative backoff", func(o *logging.Options) { o.MaxBackoff = -time.Second }, "Options.MaxBackoff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := valid
			tt.modify(&o)
			err := o.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate() = %v, want an error naming %s", err, tt.wantErr)
			}
			if _, err := logging.New(o); err == nil {
				t.Fatalf("New accepted options Validate rejects")
			}
		})
	}
}

func TestLevel(t *testing.T) {
	var out safeBuffer
	l := newLogging(t, logging.Options{Stdout: &out, Level: "warn"})
	log := l.Logger()
	log.Info("info-hidden")
	log.Warn("warn-shown")
	l.Level().SetLevel(zap.DebugLevel)
	log.Debug("debug-shown")
	var got []string
	for _, m := range jsonLines(t, out.Bytes()) {
		got = append(got, m["message"].(string))
	}
	if diff := cmp.Diff([]string{"warn-shown", "debug-shown"}, got); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
}

// The audit logger writes at info whatever the level, to both sinks, and
// redacts like the root logger.
func TestAuditIgnoresTheLevel(t *testing.T) {
	srv := startLineServer(t, "127.0.0.1:0")
	var out safeBuffer
	l := newLogging(t, logging.Options{Stdout: &out, Level: "error", LogstashAddr: srv.Addr()})
	l.Logger().Info("info-hidden")
	l.Audit().Debug("audit-debug-hidden")
	l.Audit().Info("audit-shown", logging.Audit("user.create", logging.OutcomeSuccess), zap.String("note", "by ada@example.org"))
	l.Level().SetLevel(zap.DebugLevel)
	l.Audit().Debug("audit-debug-shown")
	srv.WaitFor(t, `"message":"audit-debug-shown"`, hangGuard)

	var got []string
	for _, m := range jsonLines(t, out.Bytes()) {
		if m["log.logger"] == "logging.shipper" { // the shipper's own reports
			continue
		}
		got = append(got, m["message"].(string))
		if m["message"] == "audit-shown" {
			if m["event.category"] != logging.CategoryAudit {
				t.Errorf("audit line without event.category audit: %v", m)
			}
			if strings.Contains(fmt.Sprint(m), "ada@example.org") {
				t.Errorf("audit line not redacted: %v", m)
			}
		}
	}
	if diff := cmp.Diff([]string{"audit-shown", "audit-debug-shown"}, got); diff != "" {
		t.Errorf("stdout messages (-want +got):\n%s", diff)
	}
	srv.WaitFor(t, `"message":"audit-shown"`, hangGuard)
}

func TestECSLines(t *testing.T) {
	srv := startLineServer(t, "127.0.0.1:0")
	var out safeBuffer
	l := newLogging(t, logging.Options{
		Service: "ingest", Version: "1.2.3", Stdout: &out, LogstashAddr: srv.Addr(),
		Fields: []zap.Field{zap.String("service.environment", "test")},
	})
	log := l.Logger().Named("batcher")
	log.Info("stored", zap.Int("rows", 1000), logging.Audit("measures.read", logging.OutcomeSuccess), logging.UserID("u-1"))
	log.Error("commit", zap.Error(errors.New("deadlock")))
	log.Info("last")
	srv.WaitFor(t, `"message":"last"`, hangGuard)

	lines := jsonLines(t, srv.Raw())
	if len(lines) != 3 {
		t.Fatalf("received %d lines, want 3:\n%s", len(lines), srv.Raw())
	}
	for i, m := range lines {
		ts, ok := m["@timestamp"].(string)
		if !ok || !strings.HasSuffix(ts, "Z") {
			t.Errorf("line %d: @timestamp = %v, want RFC 3339 UTC", i, m["@timestamp"])
		} else if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
			t.Errorf("line %d: @timestamp: %v", i, err)
		}
		origin, _ := m["log.origin"].(map[string]any)
		if name, _ := origin["file.name"].(string); name != "logging/logging_test.go" {
			t.Errorf("line %d: log.origin.file.name = %v", i, origin["file.name"])
		}
		if line, _ := origin["file.line"].(float64); line <= 0 {
			t.Errorf("line %d: log.origin.file.line = %v", i, origin["file.line"])
		}
		for k, want := range map[string]any{
			"ecs.version":         logging.ECSVersion,
			"service.name":        "ingest",
			"service.version":     "1.2.3",
			"service.environment": "test",
			"log.logger":          "batcher",
		} {
			if m[k] != want {
				t.Errorf("line %d: %s = %v, want %v", i, k, m[k], want)
			}
		}
	}
	first := lines[0]
	for k, want := range map[string]any{
		"log.level": "info", "message": "stored", "rows": 1000.0,
		"event.kind": "event", "event.category": logging.CategoryAudit, "event.action": "measures.read",
		"event.outcome": logging.OutcomeSuccess, "user.id": "u-1",
	} {
		if first[k] != want {
			t.Errorf("line 0: %s = %v, want %v", k, first[k], want)
		}
	}
	if _, ok := first["error.stack_trace"]; ok {
		t.Errorf("info line has error.stack_trace")
	}
	second := lines[1]
	if second["log.level"] != "error" {
		t.Errorf("line 1: log.level = %v", second["log.level"])
	}
	if st, _ := second["error.stack_trace"].(string); !strings.Contains(st, "TestECSLines") {
		t.Errorf("line 1: error.stack_trace = %q, want the caller's stack", st)
	}
	wantErr := map[string]any{"message": "deadlock", "type": "*errors.errorString"}
	if diff := cmp.Diff(wantErr, second["error"]); diff != "" {
		t.Errorf("line 1: error (-want +got):\n%s", diff)
	}

	// stdout gets the very same lines, and the shipper's own reports.
	var stdout []string
	for _, line := range strings.SplitAfter(string(out.Bytes()), "\n") {
		if !strings.Contains(line, `"log.logger":"logging.shipper"`) {
			stdout = append(stdout, line)
		}
	}
	if diff := cmp.Diff(string(srv.Raw()), strings.Join(stdout, "")); diff != "" {
		t.Errorf("stdout differs from what Logstash received (-logstash +stdout):\n%s", diff)
	}
	// The server can read a line before the shipper counts it.
	waitStats(t, l, func(st logging.ShipperStats) bool { return st.Sent == 3 })
	if st := l.Stats(); st.Sent != 3 || st.Dropped != 0 || !st.Connected {
		t.Errorf("Stats() = %+v, want 3 sent, none dropped, connected", st)
	}
}

func TestReconnect(t *testing.T) {
	srv := startLineServer(t, "127.0.0.1:0")
	addr := srv.Addr()
	l, err := logging.New(logging.Options{
		Service: "api", Stdout: &safeBuffer{}, LogstashAddr: addr, MaxBackoff: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer closeLogging(t, l, 5*time.Second)
	log := l.Logger()

	log.Info("before")
	srv.WaitFor(t, `"message":"before"`, hangGuard)
	srv.Close()

	srv2 := startLineServer(t, addr)
	// Lines logged while the shipper notices the loss may be gone (nothing
	// acknowledges them); later ones must arrive on the new connection.
	deadline := time.Now().Add(hangGuard)
	for i := 0; !bytes.Contains(srv2.Raw(), []byte(`"message":"after"`)); i++ {
		if time.Now().After(deadline) {
			t.Fatalf("no line reached the reopened listener; stats %+v", l.Stats())
		}
		log.Info("after", zap.Int("i", i))
		time.Sleep(10 * time.Millisecond)
	}
	if st := l.Stats(); st.Reconnects < 1 || !st.Connected {
		t.Errorf("Stats() = %+v, want at least one reconnect and connected", st)
	}
	if bytes.Contains(srv2.Raw(), []byte(`"message":"before"`)) {
		t.Errorf("a line sent before the reconnection was sent again")
	}
}

// TestSlowLogstash checks that the caller never waits for Logstash: with
// the port closed or a peer that never reads, logging many lines returns,
// overflowing lines are dropped and counted, stdout still has them all, and
// Close returns within its context.
func TestSlowLogstash(t *testing.T) {
	const (
		maxLines = 1000000
		stalled  = 300 * time.Millisecond // no line sent for that long: the writer is blocked
	)
	payload := strings.Repeat("x", 2048)
	tests := []struct {
		name string
		addr func(t *testing.T) string
	}{
		{"down", func(t *testing.T) string { return closedAddr(t) }},
		{"black-holed", func(t *testing.T) string { return startBlackHole(t).Addr() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out safeBuffer
			l := newLogging(t, logging.Options{
				Stdout: &out, LogstashAddr: tt.addr(t), BufferSize: 64,
				WriteTimeout: time.Minute, // a write into the black hole blocks until Close aborts it
			})
			log := l.Logger()
			// Log until a thousand lines were dropped and nothing is sent
			// any more: the black hole first absorbs what the kernel
			// buffers hold.
			lines := 0
			within(t, hangGuard, "logging", func() {
				lastSent, since := uint64(0), time.Now()
				for lines < maxLines {
					log.Info("line", zap.Int("i", lines), zap.String("payload", payload))
					lines++
					st := l.Stats()
					if st.Sent != lastSent {
						lastSent, since = st.Sent, time.Now()
					}
					if st.Dropped >= 1000 && time.Since(since) > stalled {
						return
					}
				}
			})
			st := l.Stats()
			if st.Dropped < 1000 {
				t.Fatalf("after %d lines, Stats() = %+v, want at least 1000 dropped", lines, st)
			}
			var logged int
			for _, line := range bytes.SplitAfter(out.Bytes(), []byte("\n")) {
				if bytes.Contains(line, []byte(`"message":"line"`)) {
					logged++
				}
			}
			if logged != lines {
				t.Errorf("stdout has %d lines, want %d", logged, lines)
			}

			err := closeLogging(t, l, 300*time.Millisecond)
			if tt.name == "black-holed" && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Close() = %v, want the context's deadline (the black hole never drains)", err)
			}
			st = l.Stats()
			if st.Sent+st.Dropped != uint64(lines) {
				t.Errorf("after Close: sent %d + dropped %d != %d lines logged", st.Sent, st.Dropped, lines)
			}
			if st.Connected {
				t.Errorf("after Close: still connected")
			}
			t.Logf("%d lines logged: %+v", lines, st)
		})
	}
}

func TestCloseDrainsQueue(t *testing.T) {
	srv := startLineServer(t, "127.0.0.1:0")
	l := newLogging(t, logging.Options{Stdout: &safeBuffer{}, LogstashAddr: srv.Addr(), BufferSize: 10000})
	const n = 5000
	for i := range n {
		l.Logger().Info("queued", zap.Int("i", i))
	}
	if err := closeLogging(t, l, 10*time.Second); err != nil {
		t.Fatalf("Close: %v", err)
	}
	st := l.Stats()
	if st.Sent != n || st.Dropped != 0 {
		t.Errorf("Stats() after Close = %+v, want %d sent, 0 dropped", st, n)
	}
	srv.WaitFor(t, fmt.Sprintf(`"i":%d}`, n-1), hangGuard)
	if got := bytes.Count(srv.Raw(), []byte("\n")); got != n {
		t.Errorf("server received %d lines, want %d", got, n)
	}

	// Closed: later lines still reach stdout but are dropped for Logstash.
	l.Logger().Info("after close")
	if got := l.Stats().Dropped; got != 1 {
		t.Errorf("Dropped after logging once past Close = %d, want 1", got)
	}
	if err := closeLogging(t, l, time.Second); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestCollector(t *testing.T) {
	srv := startLineServer(t, "127.0.0.1:0")
	l := newLogging(t, logging.Options{Stdout: &safeBuffer{}, LogstashAddr: srv.Addr()})
	l.Logger().Info("one")
	l.Logger().Info("two")
	waitStats(t, l, func(st logging.ShipperStats) bool { return st.Sent == 2 })

	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(l.Collector()); err != nil {
		t.Fatalf("Register: %v", err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch {
			case m.GetCounter() != nil:
				got[mf.GetName()] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				got[mf.GetName()] = m.GetGauge().GetValue()
			}
		}
	}
	want := map[string]float64{
		"mymonit_log_lines_shipped_total":      2,
		"mymonit_log_lines_dropped_total":      0,
		"mymonit_log_shipper_reconnects_total": 0,
		"mymonit_log_shipper_connected":        1,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
}

func TestStdoutOnly(t *testing.T) {
	var out safeBuffer
	l := newLogging(t, logging.Options{Stdout: &out})
	l.Logger().Info("alone")
	if got := len(jsonLines(t, out.Bytes())); got != 1 {
		t.Errorf("stdout has %d lines, want 1", got)
	}
	if diff := cmp.Diff(logging.ShipperStats{}, l.Stats()); diff != "" {
		t.Errorf("Stats without Logstash (-want +got):\n%s", diff)
	}
	if err := closeLogging(t, l, time.Second); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestModule(t *testing.T) {
	srv := startLineServer(t, "127.0.0.1:0")
	var out safeBuffer
	var l *logging.Logging
	app := fxtest.New(t,
		fx.Supply(logging.Options{Service: "fx", Stdout: &out, LogstashAddr: srv.Addr()}),
		logging.Module,
		fx.Populate(&l),
		fx.Invoke(func(log *zap.Logger) { log.Info("from fx") }),
		fx.Invoke(fx.Annotate(func(log *zap.Logger) { log.Info("audit from fx") }, fx.ParamTags(`name:"audit"`))),
	)
	app.RequireStart()
	srv.WaitFor(t, `"message":"from fx"`, hangGuard)
	app.RequireStop()

	for _, msg := range []string{"from fx", "audit from fx"} {
		if !bytes.Contains(out.Bytes(), []byte(`"message":"`+msg+`"`)) {
			t.Errorf("stdout lacks %q, logged through a provided logger", msg)
		}
	}
	// OnStop closed the shipper: a later line is dropped for Logstash.
	before := l.Stats().Dropped
	l.Logger().Info("after stop")
	if got := l.Stats().Dropped; got != before+1 {
		t.Errorf("Dropped after stop = %d, want %d: the module did not close Logging", got, before+1)
	}
}

func TestModuleRejectsBadOptions(t *testing.T) {
	err := fx.ValidateApp(
		fx.NopLogger,
		fx.Supply(logging.Options{Service: "fx", Level: "loud"}),
		logging.Module,
		fx.Invoke(func(*zap.Logger) {}),
	)
	if err != nil {
		t.Fatalf("ValidateApp: %v", err) // the graph is valid; construction fails later
	}
	app := fx.New(
		fx.NopLogger,
		fx.Supply(logging.Options{Service: "fx", Level: "loud"}),
		logging.Module,
		fx.Invoke(func(*zap.Logger) {}),
	)
	if err := app.Err(); err == nil || !strings.Contains(err.Error(), "Options.Level") {
		t.Errorf("app.Err() = %v, want the invalid level named", err)
	}
}
