package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/mymonit/mymonit/pkg/benchkit"
	"github.com/mymonit/mymonit/pkg/measure"
	"github.com/mymonit/mymonit/pkg/queue"
)

// latencyFigures are the results of the latency phase.
type latencyFigures struct {
	targetRate   float64 // measures/s asked for
	achievedRate float64 // measures/s published
	samples      int
	p50, p99     time.Duration
	max          time.Duration
}

// publishWorkers is the number of concurrent Publish calls of the latency
// phase; each waits for its confirm, so one alone could not keep the pace.
const publishWorkers = 8

// commitWait bounds how long the latency phase waits for the last commits
// once publishing stopped, and for the warm-up message.
const commitWait = 30 * time.Second

// benchLatency measures publish→commit latency below saturation. Ingest runs
// in this process so that the pipeline's OnCommit hook sees each committed
// measure. Batched messages are published at rate measures/s for the phase
// duration, each measure's time being the instant its message was built
// for publishing (unique per series, microseconds); OnCommit records now −
// time for every measure.
func (w *world) benchLatency(ctx context.Context, rate float64) (_ latencyFigures, err error) {
	if err := w.emptyMeasures(ctx); err != nil {
		return latencyFigures{}, err
	}
	cfg, cleanup, err := w.newTopology()
	defer func() { err = errors.Join(err, cleanup()) }()
	if err != nil {
		return latencyFigures{}, err
	}
	set, err := w.settings(cfg)
	if err != nil {
		return latencyFigures{}, err
	}
	stopProf, err := benchkit.StartCPUProfile(w.opts.cpuProf, phaseLatency)
	if err != nil {
		return latencyFigures{}, err
	}
	defer func() { err = errors.Join(err, stopProf()) }()
	rec := &latencyRecorder{}
	ing, err := startInProcess(ctx, set, rec.observe, w.log)
	if err != nil {
		return latencyFigures{}, err
	}
	defer func() { err = errors.Join(err, ing.stop()) }()
	pub := queue.NewPublisher(queue.PublisherParams{Config: cfg, Logger: w.log, Producer: "ingestbench"})
	defer func() { err = errors.Join(err, pub.Close()) }()
	if err := pub.Connect(ctx); err != nil {
		return latencyFigures{}, err
	}

	// Warm up: the first batch resolves the series and opens connections.
	gen := &stampGen{per: w.opts.perMessage}
	warm, err := gen.next()
	if err != nil {
		return latencyFigures{}, err
	}
	if err := pub.Publish(ctx, warm); err != nil {
		return latencyFigures{}, fmt.Errorf("latency warm-up: %w", err)
	}
	if err := rec.waitFor(ctx, w.opts.perMessage); err != nil {
		return latencyFigures{}, fmt.Errorf("latency warm-up: %w", err)
	}
	rec.reset()

	sent, elapsed, err := pace(ctx, pub, gen, rate/float64(w.opts.perMessage), w.opts.latencyDuration)
	if err != nil {
		return latencyFigures{}, err
	}
	if err := rec.waitFor(ctx, sent*w.opts.perMessage); err != nil {
		return latencyFigures{}, err
	}
	f := rec.figures()
	f.targetRate = rate
	f.achievedRate = float64(sent*w.opts.perMessage) / elapsed.Seconds()
	return f, nil
}

// stampGen builds batched messages whose measures carry the instant the
// message was built: one measure per sensor, the time strictly increasing
// from message to message at microsecond precision.
type stampGen struct {
	per int

	mu   sync.Mutex
	last time.Time
	seq  int
}

func (g *stampGen) next() (queue.Message, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	t := time.Now().UTC().Truncate(time.Microsecond)
	if !t.After(g.last) {
		t = g.last.Add(time.Microsecond)
	}
	g.last = t
	ms := make([]measure.Measure, g.per)
	for j := range ms {
		ms[j] = measure.Measure{Experiment: experiment, Sensor: sensorName(j), Time: t, Value: float64(g.seq), Unit: "V"}
	}
	g.seq++
	body, err := encode(ms, g.per == 1)
	if err != nil {
		return queue.Message{}, err
	}
	return measureMessage(body), nil
}

// pace publishes messages from gen at msgRate messages/s for d through
// publishWorkers concurrent publishers, and returns how many were published
// and confirmed and how long publishing took. A message is built, and its
// measures stamped, by the publisher that sends it, right before the send:
// when the publishers fall behind, the wait is not counted as latency, and
// the rate achieved shows it.
func pace(ctx context.Context, pub *queue.Publisher, gen *stampGen, msgRate float64, d time.Duration) (int, time.Duration, error) {
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	due := make(chan struct{}, 1024)
	var (
		wg      sync.WaitGroup
		errOnce sync.Once
		runErr  error
	)
	fail := func(err error) { errOnce.Do(func() { runErr = err; cancel() }) }
	for range publishWorkers {
		wg.Go(func() {
			for range due {
				m, err := gen.next()
				if err != nil {
					fail(err)
					continue
				}
				if err := pub.Publish(pctx, m); err != nil {
					fail(fmt.Errorf("latency: publish: %w", err))
				}
			}
		})
	}
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	sent := 0
loop:
	for {
		select {
		case <-pctx.Done():
			break loop
		case <-tick.C:
		}
		el := time.Since(start)
		if el >= d {
			break loop
		}
		for n := int(msgRate*el.Seconds()) + 1 - sent; n > 0; n-- {
			select {
			case due <- struct{}{}:
				sent++
			case <-pctx.Done():
				break loop
			}
		}
	}
	close(due)
	wg.Wait()
	elapsed := time.Since(start)
	switch {
	case runErr != nil:
		return 0, 0, runErr
	case ctx.Err() != nil:
		return 0, 0, ctx.Err()
	}
	return sent, elapsed, nil
}

// latencyRecorder collects now − time of every committed measure.
type latencyRecorder struct {
	mu      sync.Mutex
	n       int
	samples []time.Duration
}

func (r *latencyRecorder) observe(ms []measure.Measure) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range ms {
		r.samples = append(r.samples, now.Sub(m.Time))
	}
	r.n += len(ms)
}

// reset forgets what was recorded.
func (r *latencyRecorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n, r.samples = 0, nil
}

// waitFor waits until n measures were committed since the last reset.
func (r *latencyRecorder) waitFor(ctx context.Context, n int) error {
	deadline := time.Now().Add(commitWait)
	for {
		r.mu.Lock()
		got := r.n
		r.mu.Unlock()
		switch {
		case got >= n:
			return nil
		case ctx.Err() != nil:
			return fmt.Errorf("%d of %d measures committed: %w", got, n, ctx.Err())
		case time.Now().After(deadline):
			return fmt.Errorf("%d of %d measures committed after waiting %v", got, n, commitWait)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// figures returns the percentiles (nearest rank) of the samples.
func (r *latencyRecorder) figures() latencyFigures {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := latencyFigures{samples: len(r.samples)}
	if len(r.samples) == 0 {
		return f
	}
	f.p50, f.p99, f.max = benchkit.Percentile(r.samples, 50), benchkit.Percentile(r.samples, 99), slices.Max(r.samples)
	return f
}
