package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mymonit/mymonit/pkg/benchkit"
	"github.com/mymonit/mymonit/pkg/config"
	"github.com/mymonit/mymonit/pkg/queue"
)

// ingestModule is the module path of the ingest service.
const ingestModule = "github.com/mymonit/mymonit/services/ingest"

// committedMetric counts the measures ingest committed to the database.
const committedMetric = "mymonit_ingest_measures_committed_total"

// findIngestModule returns the directory of the ingest module: dir when
// given, else the first ingest module found walking up from the working
// directory (or its services/ingest) and then from this source file, else
// what `go list -m` says.
func findIngestModule(ctx context.Context, dir string) (string, error) {
	if dir != "" {
		if !isIngestModule(dir) {
			return "", fmt.Errorf("-ingest-dir %s: no go.mod of %s there", dir, ingestModule)
		}
		return filepath.Abs(dir)
	}
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		starts = append(starts, filepath.Dir(file))
	}
	for _, s := range starts {
		for d := s; ; d = filepath.Dir(d) {
			for _, c := range []string{d, filepath.Join(d, "services", "ingest")} {
				if isIngestModule(c) {
					return c, nil
				}
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	out, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", ingestModule).Output()
	if d := strings.TrimSpace(string(out)); err == nil && isIngestModule(d) {
		return d, nil
	}
	return "", fmt.Errorf("cannot find the %s module: run from services/ingest or pass -ingest-dir", ingestModule)
}

// isIngestModule reports whether dir holds the go.mod of the ingest module.
func isIngestModule(dir string) bool {
	f, err := os.Open(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`) == ingestModule
		}
	}
	return false
}

// buildIngest builds the ingest binary of module dir into tmp.
func buildIngest(ctx context.Context, dir, tmp string) (string, error) {
	bin := filepath.Join(tmp, "ingest")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ingest in %s: %w\n%s", dir, err, out)
	}
	return bin, nil
}

// ingestVars returns the MYMONIT_* variables that point an ingest process
// at the run's database and the topology cfg, followed by the -env
// overrides (later entries win).
func (w *world) ingestVars(cfg queue.Config, httpAddr string) []string {
	vars := append(config.Environ(cfg),
		"MYMONIT_MYSQL_DSN="+w.dsn,
		"MYMONIT_INGEST_HTTP_ADDR="+httpAddr,
		"MYMONIT_LOG_LEVEL=warn",
	)
	return append(vars, w.opts.env...)
}

// processEnv is this process's environment without its MYMONIT_* variables
// (a developer's settings must not leak into the measurement), plus vars.
func processEnv(vars []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MYMONIT_") {
			env = append(env, kv)
		}
	}
	return append(env, vars...)
}

// freeAddr returns a 127.0.0.1 address with a port free right now.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// ingestProc is a running `ingest serve` process.
type ingestProc struct {
	cmd    *exec.Cmd
	addr   string
	out    *tailBuffer
	client *http.Client
	done   chan struct{} // closed when the process was reaped
	err    error         // of Wait; read after done
}

// startIngest starts `bin serve` with env, its operational endpoints on
// addr. The caller must call stop.
func startIngest(bin string, env []string, addr string) (*ingestProc, error) {
	p := &ingestProc{
		cmd:    exec.Command(bin, "serve"),
		addr:   addr,
		out:    &tailBuffer{max: 16 << 10},
		client: &http.Client{Timeout: time.Second},
		done:   make(chan struct{}),
	}
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start ingest: %w", err)
	}
	go func() {
		defer close(p.done)
		p.err = p.cmd.Wait()
	}()
	return p, nil
}

// stopTimeout bounds a graceful stop before the process is killed.
const stopTimeout = 45 * time.Second

// stop sends SIGTERM, waits for the exit (killing the process after
// stopTimeout) and reports an unclean exit.
func (p *ingestProc) stop() error {
	select {
	case <-p.done:
		return p.exitError()
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(stopTimeout)
	defer t.Stop()
	select {
	case <-p.done:
		return p.exitError()
	case <-t.C:
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("ingest did not stop within %v of SIGTERM; killed%s", stopTimeout, p.output())
	}
}

// exitError reports an unclean exit, with the process's last output. Call
// it once done is closed.
func (p *ingestProc) exitError() error {
	if p.err != nil {
		return fmt.Errorf("ingest exited: %w%s", p.err, p.output())
	}
	return nil
}

// output returns the process's last output as a suffix for an error
// message, or "" when it printed nothing.
func (p *ingestProc) output() string {
	if s := p.out.String(); s != "" {
		return "\ningest output:\n" + s
	}
	return ""
}

// committed reads the committed-measures counter from /metrics.
func (p *ingestProc) committed(ctx context.Context) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.addr+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), committedMetric+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read /metrics: %w", err)
	}
	return 0, fmt.Errorf("/metrics has no %s", committedMetric)
}

// peakRSS returns the peak resident set size (VmHWM) of the process in
// bytes, as Linux reports it in /proc/<pid>/status.
func (p *ingestProc) peakRSS() (int64, error) {
	return vmHWM(p.cmd.Process.Pid)
}

func vmHWM(pid int) (int64, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, fmt.Errorf("peak RSS: %w", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(v)
			if len(f) != 2 || f[1] != "kB" {
				return 0, fmt.Errorf("peak RSS: unexpected line %q", line)
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("peak RSS: %w", err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("peak RSS: no VmHWM in /proc status")
}

// cpuTime returns the CPU time (user + system, all threads) the process
// used so far, from /proc/<pid>/stat.
func (p *ingestProc) cpuTime() (time.Duration, error) {
	return benchkit.ProcessCPU(p.cmd.Process.Pid)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	mu  sync.Mutex
	b   []byte
}

var _ io.Writer = (*tailBuffer)(nil)

// Write implements io.Writer.
func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

// String returns what is kept.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(bytes.TrimSpace(t.b))
}
