package main_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/mymonit/mymonit/pkg/config"
	"github.com/mymonit/mymonit/pkg/measure"
	"github.com/mymonit/mymonit/pkg/queue"
	"github.com/mymonit/mymonit/pkg/storage"
	"github.com/mymonit/mymonit/pkg/testenv"
)

// binary is the ingest command built once for all tests, run as a real
// process so that tests can kill it.
var binary string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "ingest-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "ingest")
	out, err := exec.Command("go", "build", "-race", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build ingest: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// env is one test's isolated world: a fresh database and its own queue names
// on the real servers.
type env struct {
	t     *testing.T
	dsn   string
	amqp  queue.Config
	db    *sql.DB
	store *storage.Store
	pub   *queue.Publisher
	extra []string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, dsn: testenv.MySQLDatabase(t)}
	e.amqp = testenv.QueueConfig(t, "e2e")
	ctx := context.Background()
	db, err := storage.Open(ctx, storage.Config{DSN: e.dsn, MaxOpenConns: 4, MaxIdleConns: 4, ConnMaxLifetime: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := storage.Migrate(ctx, db, zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	e.db = db
	e.store = storage.NewStore(storage.StoreParams{DB: db})
	if _, err := e.store.CreateExperiment(ctx, storage.Experiment{Slug: "atlas", Name: "ATLAS"}); err != nil {
		t.Fatal(err)
	}
	e.pub = queue.NewPublisher(queue.PublisherParams{Config: e.amqp, Logger: zap.NewNop(), Producer: "e2e", DeclareTopology: true})
	t.Cleanup(func() { e.pub.Close() })
	// Declare the whole topology before anything is published, so that
	// nothing published before ingest first starts is unroutable.
	if out, err := e.command("migrate"); err != nil {
		t.Fatalf("ingest migrate: %v\n%s", err, out)
	}
	return e
}

func (e *env) environ(httpAddr string) []string {
	env := append(os.Environ(), config.Environ(e.amqp)...)
	return append(env,
		"MYMONIT_MYSQL_DSN="+e.dsn,
		"MYMONIT_INGEST_HTTP_ADDR="+httpAddr,
		"MYMONIT_INGEST_FLUSH_INTERVAL=20ms",
		"MYMONIT_LOG_LEVEL=info",
	)
}

// command runs an ingest subcommand to completion.
func (e *env) command(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(e.environ("127.0.0.1:0"), e.extra...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// proc is a running ingest service.
type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	addr string
	out  *testenv.Buffer
	done chan error
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// start runs `ingest serve` and waits until it is ready.
func (e *env) start() *proc {
	e.t.Helper()
	p := &proc{t: e.t, addr: freeAddr(e.t), out: &testenv.Buffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(binary, "serve")
	p.cmd.Env = append(e.environ(p.addr), e.extra...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	e.t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if e.t.Failed() {
			e.t.Logf("ingest output:\n%s", tail(p.out.String(), 4000))
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.done:
			e.t.Fatalf("ingest exited while starting: %v\n%s", err, p.out.String())
		default:
		}
		resp, err := http.Get("http://" + p.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.t.Fatalf("ingest not ready within 30s:\n%s", p.out.String())
	return nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// kill sends SIGKILL and reaps the process.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM and returns the exit error.
func (p *proc) stop(timeout time.Duration) error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		return err
	case <-time.After(timeout):
		p.t.Fatalf("ingest did not stop within %v after SIGTERM", timeout)
		return nil
	}
}

// series of the generated stream: measure i is sensor s(i%sensors) at
// t0+i ms with value i.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

const sensors = 10

func gen(i int) measure.Measure {
	return measure.Measure{Experiment: "atlas", Sensor: fmt.Sprintf("detector/s%d", i%sensors),
		Time: t0.Add(time.Duration(i) * time.Millisecond), Value: float64(i), Unit: "V"}
}

// encode encodes measures [from, to) in messages of perMsg measures (perMsg
// 1 gives single-measure messages).
func encode(from, to, perMsg int) ([]queue.Message, error) {
	var out []queue.Message
	for i := from; i < to; i += perMsg {
		var body []byte
		var err error
		if perMsg == 1 {
			body, err = measure.EncodeOne(gen(i))
		} else {
			ms := make([]measure.Measure, 0, perMsg)
			for j := i; j < min(i+perMsg, to); j++ {
				ms = append(ms, gen(j))
			}
			body, err = measure.Encode(ms)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, queue.Message{RoutingKey: measure.RoutingKey("atlas"), Body: body, ContentType: measure.ContentType})
	}
	return out, nil
}

func messages(t *testing.T, from, to, perMsg int) []queue.Message {
	t.Helper()
	msgs, err := encode(from, to, perMsg)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

func (e *env) publish(msgs []queue.Message) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for len(msgs) > 0 {
		n := min(len(msgs), 500)
		if err := e.pub.Publish(ctx, msgs[:n]...); err != nil {
			e.t.Fatalf("publish: %v", err)
		}
		msgs = msgs[n:]
	}
}

// count returns the number of measure rows, retrying while the database
// restarts.
func (e *env) count() int64 {
	e.t.Helper()
	var n int64
	for range 100 {
		err := e.db.QueryRow("SELECT COUNT(*) FROM measures").Scan(&n)
		if err == nil {
			return n
		}
		time.Sleep(200 * time.Millisecond)
	}
	e.t.Fatal("database unreachable for 20s")
	return 0
}

// waitRows waits until exactly n rows are present, then verifies every row of
// the generated stream [0, n): present once, right sensor, time and value.
func (e *env) waitRows(n int, timeout time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	var got int64
	for time.Now().Before(deadline) {
		if got = e.count(); got >= int64(n) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got != int64(n) {
		e.t.Fatalf("rows = %d, want %d", got, n)
	}
	e.verify(n)
}

func (e *env) verify(n int) {
	e.t.Helper()
	rows, err := e.db.Query(`SELECT s.sensor, m.time, m.value, m.unit FROM measures m JOIN series s ON s.id = m.series_id
		JOIN experiments x ON x.id = s.experiment_id WHERE x.slug = 'atlas'`)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	seen := make([]bool, n)
	bad := 0
	for rows.Next() {
		var sensor, unit string
		var ts time.Time
		var v float64
		if err := rows.Scan(&sensor, &ts, &v, &unit); err != nil {
			e.t.Fatal(err)
		}
		i := int(v)
		if i < 0 || i >= n || seen[i] {
			bad++
			continue
		}
		seen[i] = true
		want := gen(i)
		if sensor != want.Sensor || !ts.Equal(want.Time) || unit != "V" {
			bad++
		}
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	missing := 0
	for _, s := range seen {
		if !s {
			missing++
		}
	}
	if bad > 0 || missing > 0 {
		e.t.Fatalf("%d rows wrong or doubled, %d measures missing", bad, missing)
	}
}

func TestEndToEndSingleAndBatched(t *testing.T) {
	e := newEnv(t)
	a := e.start()
	b := e.start() // two replicas share the queue
	const n = 6000
	e.publish(messages(t, 0, 1000, 1))     // single-measure messages
	e.publish(messages(t, 1000, n, 100))   // batches of 100
	e.publish(messages(t, 2000, 2500, 50)) // a re-publish of measures already sent: no new rows
	e.waitRows(n, time.Minute)
	for _, p := range []*proc{a, b} {
		if err := p.stop(30 * time.Second); err != nil {
			t.Errorf("ingest exit after SIGTERM: %v", err)
		}
	}
	// Nothing was left unacked: a fresh consumer finds the queue empty.
	if depth := queueDepth(t, e.amqp); depth != 0 {
		t.Errorf("%d messages left on the queue after a graceful stop", depth)
	}
}

func queueDepth(t *testing.T, cfg queue.Config) int {
	t.Helper()
	n, err := queue.Depth(context.Background(), cfg, cfg.Queue)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// stream publishes measures [0, n) in messages of mixed sizes from a
// goroutine; wait returns when all were confirmed.
func (e *env) stream(n int, pace time.Duration) (wait func()) {
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		sizes := []int{1, 1, 1, 7, 50, 100}
		for i, k := 0, 0; i < n; k++ {
			size := min(sizes[k%len(sizes)], n-i)
			msgs, err := encode(i, i+size, size)
			if err == nil {
				err = e.pub.Publish(ctx, msgs...)
			}
			if err != nil {
				done <- err
				return
			}
			i += size
			time.Sleep(pace)
		}
		done <- nil
	}()
	return func() {
		e.t.Helper()
		if err := <-done; err != nil {
			e.t.Fatalf("stream publish: %v", err)
		}
	}
}

func TestSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: run without -short")
	}
	e := newEnv(t)
	const n = 30000
	wait := e.stream(n, 3*time.Millisecond)
	for round := range 6 {
		p := e.start()
		time.Sleep(time.Duration(300+round*100) * time.Millisecond)
		p.kill()
	}
	wait()
	final := e.start()
	e.waitRows(n, 2*time.Minute)
	if err := final.stop(30 * time.Second); err != nil {
		t.Errorf("final ingest exit: %v", err)
	}
	if strings.Contains(final.out.String(), "panic") {
		t.Error("ingest panicked")
	}
}

// restartAllowed gates the tests that restart the machine's servers.
func restartAllowed(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("server restart test: run without -short")
	}
	if os.Getenv("MYMONIT_TEST_RESTART_SERVERS") != "1" {
		if os.Getenv("CI") != "" {
			t.Fatal("MYMONIT_TEST_RESTART_SERVERS=1 is required in CI (make test sets it)")
		}
		t.Skip("set MYMONIT_TEST_RESTART_SERVERS=1 to let this test restart the local RabbitMQ and MariaDB (make test does)")
	}
}

func runCmd(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func waitPort(t *testing.T, addr string, up bool, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		if (err == nil) == up {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s not %s within %v", addr, map[bool]string{true: "up", false: "down"}[up], timeout)
}

func TestSurvivesRabbitMQRestart(t *testing.T) {
	restartAllowed(t)
	e := newEnv(t)
	p := e.start()
	const n = 20000
	wait := e.stream(n, 2*time.Millisecond)
	time.Sleep(time.Second)
	runCmd(t, "rabbitmqctl", "stop_app")
	time.Sleep(2 * time.Second)
	runCmd(t, "rabbitmqctl", "start_app")
	runCmd(t, "rabbitmqctl", "await_startup")
	wait()
	e.waitRows(n, 2*time.Minute)
	if err := p.stop(30 * time.Second); err != nil {
		t.Errorf("ingest exit: %v", err)
	}
}

func TestSurvivesMariaDBRestart(t *testing.T) {
	restartAllowed(t)
	e := newEnv(t)
	p := e.start()
	const n = 20000
	wait := e.stream(n, 2*time.Millisecond)
	time.Sleep(time.Second)
	runCmd(t, "mysqladmin", "-uroot", "-h127.0.0.1", "shutdown")
	waitPort(t, "127.0.0.1:3306", false, 60*time.Second)
	time.Sleep(time.Second)
	runCmd(t, "bash", "../../scripts/services.sh", "mariadb")
	wait()
	e.waitRows(n, 2*time.Minute)
	if err := p.stop(30 * time.Second); err != nil {
		t.Errorf("ingest exit: %v", err)
	}
}

// TestWindowSizedBySmallMessages: after 1000 single-measure messages the
// ingest binary restarts its consumer with a window sized to them (the
// default 24 MiB of ~2.2 KiB messages, above the 2000 it starts with), and
// every measure is stored exactly once across the restart.
func TestWindowSizedBySmallMessages(t *testing.T) {
	e := newEnv(t)
	const n = 5000
	e.publish(messages(t, 0, n, 1))
	p := e.start()
	e.waitRows(n, time.Minute)
	if err := p.stop(30 * time.Second); err != nil {
		t.Errorf("ingest exit after SIGTERM: %v", err)
	}
	e.verify(n)
	out := p.out.String()
	var resize string
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "resizing the prefetch window") {
			resize = line
			break
		}
	}
	if resize == "" {
		t.Fatalf("no window resize logged:\n%s", tail(out, 4000))
	}
	var got struct {
		Prefetch int `json:"queue.prefetch"`
		Before   int `json:"queue.prefetch_before"`
	}
	if err := json.Unmarshal([]byte(resize), &got); err != nil {
		t.Fatalf("resize log line: %v: %s", err, resize)
	}
	if got.Before != 2000 || got.Prefetch < 5000 || got.Prefetch > 20000 {
		t.Errorf("window resized from %d to %d, want from 2000 to between 5000 and 20000", got.Before, got.Prefetch)
	}
	if !strings.Contains(out, "consumer restarted with a new prefetch") {
		t.Errorf("consumer restart not logged:\n%s", tail(out, 4000))
	}
	if depth := queueDepth(t, e.amqp); depth != 0 {
		t.Errorf("%d messages left on the queue", depth)
	}
}
