package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
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

	"github.com/mymonit/mymonit/pkg/queue"
	"github.com/mymonit/mymonit/pkg/storage"
	"github.com/mymonit/mymonit/pkg/testenv"
)

var lineprotoBin, ingestBin string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "lineproto-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	lineprotoBin = filepath.Join(dir, "lineproto")
	ingestBin = filepath.Join(dir, "ingest")
	for _, b := range []struct{ out, dir string }{{lineprotoBin, "."}, {ingestBin, "../../../services/ingest"}} {
		cmd := exec.Command("go", "build", "-race", "-o", b.out, ".")
		cmd.Dir = b.dir
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", b.dir, err, out)
			return 1
		}
	}
	return m.Run()
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

// proc is a running service; it is killed when the test ends.
type proc struct {
	cmd  *exec.Cmd
	out  *testenv.Buffer
	done chan error
}

func start(t *testing.T, bin string, env []string, ready string, args ...string) *proc {
	t.Helper()
	p := &proc{out: &testenv.Buffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(bin), p.out.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.done:
			t.Fatalf("%s exited while starting: %v\n%s", bin, err, p.out.String())
		default:
		}
		if resp, err := http.Get(ready); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s not ready within 60s", bin)
	return nil
}

func (p *proc) stop(t *testing.T) error {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		return err
	case <-time.After(60 * time.Second):
		t.Fatal("no exit within 60s of SIGTERM")
		return nil
	}
}

// TestIntoMySQLExactlyOnce runs ingest and lineproto against a fresh
// database and topology, writes lines (one of them twice, one bad), and finds
// every good measure in MySQL exactly once.
func TestIntoMySQLExactlyOnce(t *testing.T) {
	dsn := testenv.MySQLDatabase(t)
	u := testenv.AMQP(t)
	amqp := queue.Config{
		URL: u, Exchange: testenv.Name("lp_measures"), Queue: testenv.Name("lp_ingest"),
		DeadExchange: testenv.Name("lp_dead"), DeadQueue: testenv.Name("lp_dead"), QueueType: "classic",
	}
	testenv.Cleanup(t, u, []string{amqp.Queue, amqp.DeadQueue}, []string{amqp.Exchange, amqp.DeadExchange})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	db, err := storage.Open(ctx, storage.Config{DSN: dsn, MaxOpenConns: 2, MaxIdleConns: 2, ConnMaxLifetime: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := storage.Migrate(ctx, db, zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	store := storage.NewStore(storage.StoreParams{DB: db})
	if _, err := store.CreateExperiment(ctx, storage.Experiment{Slug: "atlas", Name: "ATLAS"}); err != nil {
		t.Fatal(err)
	}
	common := []string{
		"MYMONIT_AMQP_URL=" + amqp.URL, "MYMONIT_AMQP_EXCHANGE=" + amqp.Exchange, "MYMONIT_AMQP_QUEUE=" + amqp.Queue,
		"MYMONIT_AMQP_DEAD_EXCHANGE=" + amqp.DeadExchange, "MYMONIT_AMQP_DEAD_QUEUE=" + amqp.DeadQueue,
		"MYMONIT_AMQP_QUEUE_TYPE=" + amqp.QueueType,
	}
	ingestAddr := freeAddr(t)
	start(t, ingestBin, append(common, "MYMONIT_MYSQL_DSN="+dsn, "MYMONIT_INGEST_HTTP_ADDR="+ingestAddr, "MYMONIT_INGEST_FLUSH_INTERVAL=20ms"),
		"http://"+ingestAddr+"/readyz", "serve")
	lpAddr, healthAddr := freeAddr(t), freeAddr(t)
	lp := start(t, lineprotoBin, append(common, "MYMONIT_ADAPTER_HTTP_ADDR="+healthAddr, "MYMONIT_LINEPROTO_SENSOR_TAGS=-"),
		"http://"+healthAddr+"/readyz", "-listen", lpAddr, "-flush-interval", "5ms")

	const n = 500
	var body strings.Builder
	for i := range n {
		fmt.Fprintf(&body, "detector,module=m%d hv=%d %d\n", i%10, i, 1700000000000+int64(i))
	}
	body.WriteString("detector hv=\n")                      // bad line
	fmt.Fprintf(&body, "detector hv=0 %d\n", 1700000000000) // repeats measure 0
	resp, err := http.Post("http://"+lpAddr+"/write?db=atlas&precision=ms", "text/plain", strings.NewReader(body.String()))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !bytes.Contains(raw, []byte(fmt.Sprintf(`"line":%d`, n+1))) {
		t.Fatalf("status %d %s, want 400 naming line %d", resp.StatusCode, raw, n+1)
	}

	var got int
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if err := db.QueryRow("SELECT COUNT(*) FROM measures").Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got >= n {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	verify(t, db, n)
	if err := lp.stop(t); err != nil {
		t.Errorf("lineproto exit after SIGTERM: %v", err)
	}
}

func verify(t *testing.T, db *sql.DB, n int) {
	t.Helper()
	rows, err := db.Query(`SELECT s.sensor, m.time, m.value FROM measures m JOIN series s ON s.id = m.series_id
		JOIN experiments x ON x.id = s.experiment_id WHERE x.slug = 'atlas'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	seen := make([]int, n)
	bad := 0
	for rows.Next() {
		var sensor string
		var ts time.Time
		var v float64
		if err := rows.Scan(&sensor, &ts, &v); err != nil {
			t.Fatal(err)
		}
		i := int(v)
		if i < 0 || i >= n || sensor != "detector.hv" || !ts.Equal(time.UnixMilli(1700000000000+int64(i))) {
			bad++
			continue
		}
		seen[i]++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for i, c := range seen {
		if c != 1 {
			t.Errorf("measure %d stored %d times", i, c)
		}
	}
	if bad > 0 {
		t.Errorf("%d unexpected rows", bad)
	}
}

// TestCommandLine checks -h explains the mapping on stdout, a bad
// environment is reported by variable name, and the exit statuses.
func TestCommandLine(t *testing.T) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(lineprotoBin, "-h")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		t.Fatalf("-h: %v\nstderr:\n%s", err, stderr.String())
	}
	for _, want := range []string{"<measurement>.<field>", "MYMONIT_LINEPROTO_SENSOR_TAGS", "MYMONIT_ADAPTER_BATCH_SIZE", "-batch-size", "good lines of the same request ARE"} {
		if !bytes.Contains(stdout.Bytes(), []byte(want)) {
			t.Errorf("-h lacks %q", want)
		}
	}
	cmd = exec.Command(lineprotoBin)
	cmd.Env = append(os.Environ(), "MYMONIT_ADAPTER_BATCH_SIZE=lots", "MYMONIT_LINEPROTO_EXPERIMENT=Bad Name")
	out, err := cmd.CombinedOutput()
	if code := exitCode(err); code != 1 {
		t.Fatalf("bad environment: exit status %d, want 1\n%s", code, out)
	}
	for _, want := range []string{"lineproto: configuration:\n", `MYMONIT_ADAPTER_BATCH_SIZE="lots"`, "MYMONIT_LINEPROTO_EXPERIMENT"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("error lacks %q:\n%s", want, out)
		}
	}
	out, err = exec.Command(lineprotoBin, "-batch-size", "0").CombinedOutput()
	if code := exitCode(err); code != 1 || !bytes.Contains(out, []byte("MYMONIT_ADAPTER_BATCH_SIZE (-batch-size): 0 is not between 1 and 10000")) {
		t.Errorf("-batch-size 0: exit status %d, want 1\n%s", code, out)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-batchsize", "10"}, "flag provided but not defined: -batchsize\nrun lineproto -help for the flags, the endpoints and the mapping\n"},
		{[]string{"-udp", ":8089", "extra"}, `lineproto: unexpected argument "extra" (run lineproto -help)` + "\n"},
	} {
		out, err := exec.Command(lineprotoBin, tt.args...).CombinedOutput()
		if code := exitCode(err); code != 2 || string(out) != tt.want {
			t.Errorf("%q: exit status %d, output:\n%s\nwant 2 and:\n%s", tt.args, code, out, tt.want)
		}
	}
}

// exitCode is the exit status of a finished command, given the error of
// its Run.
func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}
