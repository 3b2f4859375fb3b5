package benchkit_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mymonit/mymonit/pkg/benchkit"
)

func TestParseProcessCPU(t *testing.T) {
	for _, tc := range []struct {
		name, stat string
		want       time.Duration
		wantErr    string
	}{
		{"plain", "42 (beam.smp) S 1 42 42 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 30 0 100 0 0",
			3250 * time.Millisecond, ""},
		{"name with spaces and parentheses", "7 (a (b) c) R 1 7 7 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 5 0 0",
			30 * time.Millisecond, ""},
		{"no parenthesis", "7 mariadbd S 1", 0, "malformed"},
		{"short", "7 (x) S 1 2 3", 0, "short"},
		{"not a number", "7 (x) S 1 7 7 0 -1 0 0 0 0 0 ten 2 0 0", 0, "invalid syntax"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := benchkit.ParseProcessCPU([]byte(tc.stat))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

// TestProcessGroups finds a child process by its command name and sees the
// CPU time it burns grow.
func TestProcessGroups(t *testing.T) {
	// A copy of sh under a name no other process has, spinning.
	dir := t.TempDir()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(sh)
	if err != nil {
		t.Fatal(err)
	}
	spinner := filepath.Join(dir, "benchkitspin")
	if err := os.WriteFile(spinner, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(spinner, "-c", "while :; do :; done")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	g := benchkit.FindProcesses("spinner", "no-such-command", "benchkitspin")
	if len(g.PIDs) != 1 || g.PIDs[0] != cmd.Process.Pid {
		t.Fatalf("found %v, want [%d]", g.PIDs, cmd.Process.Pid)
	}
	none := benchkit.FindProcesses("none", "no-such-command")
	if len(none.PIDs) != 0 {
		t.Fatalf("found %v for a command that does not run", none.PIDs)
	}

	before := benchkit.SampleProcesses(g, none)
	if _, ok := before["none"]; ok {
		t.Error("an empty group has a reading")
	}
	deadline := time.Now().Add(10 * time.Second)
	var used time.Duration
	for used < 50*time.Millisecond && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		used = benchkit.SampleProcesses(g).Since(before)["spinner"]
	}
	if used < 50*time.Millisecond {
		t.Fatalf("the spinning process used %v of CPU in 10 s, want at least 50ms", used)
	}

	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if s := benchkit.SampleProcesses(g); len(s) != 0 {
		t.Errorf("a group whose process is gone still reads %v", s)
	}
}

func TestProcessSampleSince(t *testing.T) {
	a := benchkit.ProcessSample{"broker": time.Second, "database": 2 * time.Second, "gone": time.Second}
	b := benchkit.ProcessSample{"broker": 3 * time.Second, "database": time.Second, "new": time.Second}
	got := b.Since(a)
	want := benchkit.ProcessSample{"broker": 2 * time.Second}
	if len(got) != len(want) || got["broker"] != want["broker"] {
		t.Fatalf("got %v, want %v (a counter that went back, or is read once, is left out)", got, want)
	}
}
