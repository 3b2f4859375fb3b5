package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/mymonit/mymonit/pkg/benchkit"
)

// Phase names, for progress lines and profile files.
const (
	phaseRange      = "range"
	phaseExport     = "export"
	phaseConcurrent = "concurrent"
)

// bench is one run: its world, the API under test and the figures so far.
type bench struct {
	opts *options
	w    *world
	api  *api
	res  *results
	say  func(string, ...any)
}

// runBench sets up the database and the API, runs the rounds and evaluates
// the goals. Progress goes to progress; everything it created is removed
// before it returns (except a -keep database), whatever happened.
func runBench(ctx context.Context, opts *options, progress io.Writer) (_ *results, err error) {
	say := func(format string, args ...any) { fmt.Fprintf(progress, "apibench: "+format+"\n", args...) }
	res := newResults(opts)

	w, cleanup, err := newWorld(ctx, opts, say)
	defer func() {
		if cerr := cleanup(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("cleanup: %w", cerr))
		}
	}()
	if err != nil {
		return nil, err
	}
	res.Setup.Database, res.Setup.Reused = w.dbName, w.reused
	if !w.reused {
		say("database %s: loading %s measures of %d sensors with %s, %d connections",
			w.dbName, benchkit.Thousands(float64(opts.measures)), opts.sensors, opts.loader, opts.loadConns)
		f, err := w.load(ctx, progress)
		if err != nil {
			return nil, err
		}
		res.Setup.Load = &f
		say("loaded %s rows in %.1f s: %s rows/s%s", benchkit.Thousands(float64(f.Rows)), f.Seconds, benchkit.Thousands(f.RowsPerS), busyNote(f.Busy))
	}

	a, stopAPI, err := startAPI(ctx, w, opts.clients, say)
	defer func() {
		if serr := stopAPI(); serr != nil {
			err = errors.Join(err, fmt.Errorf("stop the API: %w", serr))
		}
	}()
	if err != nil {
		return nil, err
	}
	res.Setup.EmulatorHost, res.Setup.EmulatorStartSeconds = a.emulatorHost, a.emulatorStart.Seconds()
	say("API on %s (bypassed authentication: %s), scientist signed in", a.real.Addr(), a.bypassed.Addr())

	b := &bench{opts: opts, w: w, api: a, res: res, say: say}
	for round := 1; round <= opts.rounds; round++ {
		say("round %d of %d", round, opts.rounds)
		// -cpuprofile profiles each phase of the last round, into the file
		// name with the phase before the extension.
		prof := ""
		if round == opts.rounds {
			prof = opts.cpuProf
		}
		for _, p := range []struct {
			name string
			run  func(context.Context, int) error
		}{
			{phaseRange, b.rangeRound},
			{phaseExport, b.exportRound},
			{phaseConcurrent, b.concurrentRound},
		} {
			stopProf, err := benchkit.StartCPUProfile(prof, p.name)
			if err != nil {
				return nil, err
			}
			err = p.run(ctx, round)
			if perr := stopProf(); perr != nil {
				err = errors.Join(err, perr)
			}
			if err != nil {
				return nil, fmt.Errorf("%s, round %d: %w", p.name, round, err)
			}
		}
	}
	res.evaluate()
	res.Host.LoadEnd = benchkit.LoadAvg()
	return res, nil
}

// rotate returns the order of n variants for call k: each variant takes
// each place in turn.
func rotate(n, k int) []int {
	order := make([]int, n)
	for i := range order {
		order[i] = (i + k) % n
	}
	return order
}
