package main

import (
	"errors"
	"time"

	"github.com/mymonit/mymonit/pkg/benchkit"
)

// steadySpan returns the counts between which a queue phase of n items is
// timed: from a fifth of them to four fifths. The queue is prefilled, so in
// between the broker still holds messages and the client's prefetch window
// is full at both ends: every item counted was delivered and handled
// within the span. Timed from the first item instead, a client that
// commits (or acks) a batch well after its delivery would have a window of
// deliveries made before the clock started counted in its favour, and
// timed to the last, the window drained at the end with nothing left to
// deliver would count against it.
func steadySpan(n int) (from, to int) { return n / 5, n - n/5 }

// spanClock times the steady span of a phase from a count that grows: its
// rate, how busy the machine's CPUs were, and the CPU cost per item of the
// parties its meter reads.
type spanClock struct {
	from, to int
	meter    cpuMeter

	started, done bool
	t0, t1        time.Time
	c0, c1        int
	cpu           benchkit.CPUSample
	at            cpuReading
	busy          float64
	cost          cpuCost
}

func newSpanClock(n int, meter cpuMeter) *spanClock {
	from, to := steadySpan(n)
	return &spanClock{from: from, to: to, meter: meter}
}

// observe records that the count reached c at now, and reports whether the
// span is complete. The span starts at the first count of at least from
// and ends at the first later count of at least to.
func (s *spanClock) observe(now time.Time, c int) bool {
	switch {
	case s.done:
	case !s.started:
		if c >= s.from {
			s.started, s.t0, s.c0 = true, now, c
			s.cpu, s.at = benchkit.ReadCPU(benchkit.CPUNoGuest), s.meter.read()
		}
	case c >= s.to && c > s.c0:
		s.done, s.t1, s.c1 = true, now, c
		s.busy, s.cost = benchkit.BusySince(s.cpu), s.meter.costSince(s.at, c-s.c0)
	}
	return s.done
}

// errSpanNotTimed is the error of a phase too short to time.
var errSpanNotTimed = errors.New("the phase was too short to time its steady part (a fifth to four fifths of it): raise its size")

// rate is the items per second over the span.
func (s *spanClock) rate() (float64, error) {
	if !s.done {
		return 0, errSpanNotTimed
	}
	return perSecond(s.c1-s.c0, s.t1.Sub(s.t0))
}
