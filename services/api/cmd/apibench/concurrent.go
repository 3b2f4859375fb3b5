package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mymonit/mymonit/pkg/benchkit"
)

// Concurrent variants, in their order of rotation.
const (
	concHealthz = iota
	concBypassed
	concCached
	concVariants
)

// smallReadLimit is the page size of the small read.
const smallReadLimit = 10

// concurrentRound runs each variant for -duration with -clients clients,
// in rotated order.
func (b *bench) concurrentRound(ctx context.Context, round int) error {
	r := b.res.concurrentResult(b.opts)
	small := url.Values{"sensor": {sensorName(0)}, "limit": {fmt.Sprint(smallReadLimit)}}
	for _, v := range rotate(concVariants, round-1) {
		var (
			name string
			dst  **benchkit.RateStat
			mk   func(ctx context.Context) (*http.Request, error)
		)
		switch v {
		case concHealthz:
			name, dst = "GET /healthz", &r.Healthz
			mk = func(ctx context.Context) (*http.Request, error) {
				return http.NewRequestWithContext(ctx, http.MethodGet, "http://"+b.api.real.Addr()+"/healthz", nil)
			}
		case concBypassed:
			name, dst = "small read, authentication bypassed", &r.Bypassed
			mk = func(ctx context.Context) (*http.Request, error) {
				return b.api.request(ctx, b.api.bypassed, measuresPath(), small, "application/json")
			}
		case concCached:
			name, dst = "small read, cached Firebase token", &r.Cached
			mk = func(ctx context.Context) (*http.Request, error) {
				return b.api.request(ctx, b.api.real, measuresPath(), small, "application/json")
			}
		}
		// One request per client first, untimed: the connections exist
		// before the clock starts.
		if _, err := hammer(ctx, b.api.client, b.opts.clients, 0, mk); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		cpu := benchkit.ReadCPU(benchkit.CPUAllFields)
		f, err := hammer(ctx, b.api.client, b.opts.clients, b.opts.duration, mk)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		busy := benchkit.BusySince(cpu)
		*dst = (*dst).Add(f.rate, busy)
		b.say("concurrent: %s, %d clients: %s req/s (%s requests in %.1f s)%s",
			name, b.opts.clients, benchkit.Thousands(f.rate), benchkit.Thousands(float64(f.requests)), f.elapsed.Seconds(), busyNote(busy))
	}
	return nil
}

// hammerFigures are the figures of one concurrent run.
type hammerFigures struct {
	requests int64
	elapsed  time.Duration
	rate     float64
}

// hammer runs clients goroutines that send requests made by mk one after
// the other, each reading the answer to the end, until d has passed (d 0:
// one request each). Any answer other than 200 stops the run with an
// error.
func hammer(ctx context.Context, client *http.Client, clients int, d time.Duration, mk func(context.Context) (*http.Request, error)) (hammerFigures, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		total atomic.Int64
		wg    sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	for range clients {
		wg.Go(func() {
			for ctx.Err() == nil {
				if err := once(ctx, client, mk); err != nil {
					cancel(err)
					return
				}
				total.Add(1)
				if !time.Now().Before(deadline) {
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := context.Cause(ctx); err != nil {
		return hammerFigures{}, err
	}
	n := total.Load()
	return hammerFigures{requests: n, elapsed: elapsed, rate: float64(n) / elapsed.Seconds()}, nil
}

// once sends one request and reads the answer to the end.
func once(ctx context.Context, client *http.Client, mk func(context.Context) (*http.Request, error)) error {
	req, err := mk(ctx)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		return fmt.Errorf("%s %s: %s: %s", req.Method, req.URL.Path, resp.Status, body)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}
