package main

import (
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestCPUCostString(t *testing.T) {
	c := cpuCost{partyClient: 7.44, partyBroker: 9.8, partyDatabase: 0.06}
	if got, want := c.String(), "broker 9.8 + database 0.1 + client 7.4 = 17.3 µs"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestCPUBudget(t *testing.T) {
	for _, tc := range []struct {
		name          string
		drain, single []cpuCost
		want          *cpuBudget
	}{
		{
			name:   "medians per party; the single/drain ceiling",
			drain:  []cpuCost{{"broker": 10, "client": 8}, {"broker": 12, "client": 10}, {"broker": 11, "client": 9}},
			single: []cpuCost{{"broker": 11, "client": 15, "database": 6}, {"broker": 11, "client": 13, "database": 4}},
			want: &cpuBudget{Drain: cpuCost{"broker": 11, "client": 9},
				Single: cpuCost{"broker": 11, "client": 14}, Ceiling: 0.8},
		},
		{
			name:   "a party read in both phases counts in both",
			drain:  []cpuCost{{"broker": 10, "client": 10, "database": 0}},
			single: []cpuCost{{"broker": 10, "client": 20, "database": 10}},
			want: &cpuBudget{Drain: cpuCost{"broker": 10, "client": 10, "database": 0},
				Single: cpuCost{"broker": 10, "client": 20, "database": 10}, Ceiling: 0.5},
		},
		{
			name:   "incomplete rounds are left out",
			drain:  []cpuCost{{"client": 1}, {"broker": 10, "client": 10}},
			single: []cpuCost{{"broker": 10, "client": 30}, {"database": 3}},
			want:   &cpuBudget{Drain: cpuCost{"broker": 10, "client": 10}, Single: cpuCost{"broker": 10, "client": 30}, Ceiling: 0.5},
		},
		{name: "no broker read (a remote broker)", drain: []cpuCost{{"client": 9}}, single: []cpuCost{{"client": 15}}},
		{name: "no single-measure round", drain: []cpuCost{{"broker": 10, "client": 9}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := newCPUBudget(tc.drain, tc.single)
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b float64) bool { return math.Abs(a-b) < 1e-9 })); diff != "" {
				t.Errorf("budget (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSpanClock(t *testing.T) {
	start := time.Unix(1000, 0)
	at := func(ms int) time.Time { return start.Add(time.Duration(ms) * time.Millisecond) }
	for _, tc := range []struct {
		name     string
		n        int
		counts   []int // observed at 0, 100, 200, … ms
		wantRate float64
		wantErr  bool
	}{
		// Steady span 200..800: starts at the first count ≥ 200 (300 at
		// 200 ms), ends at the first later count ≥ 800 (900 at 500 ms).
		{name: "from the first count past a fifth to the first past four fifths", n: 1000,
			counts: []int{100, 150, 300, 500, 700, 900, 1000}, wantRate: 600 / 0.3},
		{name: "exact boundaries", n: 1000, counts: []int{200, 400, 600, 800}, wantRate: 600 / 0.3},
		{name: "one jump over the whole span", n: 1000, counts: []int{0, 1000}, wantErr: true},
		{name: "never reaches four fifths", n: 1000, counts: []int{100, 300, 700}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newSpanClock(tc.n, cpuMeter{})
			for i, n := range tc.counts {
				c.observe(at(100*i), n)
			}
			got, err := c.rate()
			if tc.wantErr {
				if err == nil {
					t.Fatalf("rate %v, want an error", got)
				}
				return
			}
			if err != nil || math.Abs(got-tc.wantRate) > 1e-6 {
				t.Fatalf("rate %v, %v; want %v", got, err, tc.wantRate)
			}
		})
	}
}
