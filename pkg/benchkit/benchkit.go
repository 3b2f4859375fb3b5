// Package benchkit serves the project's benchmark commands (apibench,
// ingestbench, adapterbench): the main function, the host and CPU figures
// read from /proc, rates over rounds and their ratios, percentiles, the
// checks against goals, per-phase CPU profiles and the JSON report.
//
// The figures are for a report, not for control: what cannot be read
// (another OS, a missing /proc file) is reported as unknown (-1) rather than
// failing the run.
package benchkit

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
)

// Main runs a benchmark command: run gets the command-line arguments,
// stdout and stderr, and a context cancelled by SIGINT or SIGTERM. When run
// fails, other than for -h, Main prints "name: error" to stderr and exits
// with status 1; otherwise it returns.
func Main(name string, run func(ctx context.Context, args []string, stdout, stderr io.Writer) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if code := exitStatus(name, err, os.Stderr); code != 0 {
		os.Exit(code)
	}
}

// exitStatus reports err of the command name on stderr and returns the exit
// status: 0 for no error or flag.ErrHelp (flag printed the usage), else 1.
func exitStatus(name string, err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintln(stderr, name+":", err)
	return 1
}

// AtLeast returns the error of an integer flag (named with its dash,
// "-rounds") whose value v is below min, or nil. errors.Join drops the
// nils of a list of them.
func AtLeast(flag string, v, min int) error {
	if v < min {
		return fmt.Errorf("%s is %d, must be at least %d", flag, v, min)
	}
	return nil
}

// WriteJSON writes v as indented JSON, without escaping <, > and &.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

// StartCPUProfile starts a CPU profile of one phase into the file name
// file with the phase inserted before its extension (cpu.prof, phase range:
// cpu.range.prof). It returns the function that stops the profile and
// closes the file. With file "" both do nothing.
func StartCPUProfile(file, phase string) (stop func() error, err error) {
	if file == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(profileName(file, phase))
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		return nil, errors.Join(fmt.Errorf("cpu profile: %w", err), f.Close())
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}

// profileName inserts phase before the extension of file.
func profileName(file, phase string) string {
	ext := filepath.Ext(file)
	return strings.TrimSuffix(file, ext) + "." + phase + ext
}
