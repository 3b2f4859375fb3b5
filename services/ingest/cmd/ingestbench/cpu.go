package main

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/mymonit/mymonit/pkg/benchkit"
)

// The parties whose CPU time a phase accounts for: the local RabbitMQ node,
// the local MariaDB/MySQL server, and the client (the raw consumer of the
// drain, or ingest).
const (
	partyBroker   = "broker"
	partyDatabase = "database"
	partyClient   = "client"
)

// localServers finds the broker and database processes running on this
// machine. A server that runs elsewhere is not found, and its party is not
// accounted for.
func localServers() []benchkit.ProcessGroup {
	return []benchkit.ProcessGroup{
		benchkit.FindProcesses(partyBroker, "beam.smp"),
		benchkit.FindProcesses(partyDatabase, "mariadbd", "mysqld"),
	}
}

// cpuMeter reads the CPU time used so far by each party of a phase.
type cpuMeter struct {
	servers []benchkit.ProcessGroup
	client  func() (time.Duration, error)
}

// cpuReading is what a cpuMeter read at one moment.
type cpuReading struct {
	at       benchkit.ProcessSample
	client   time.Duration
	clientOK bool
}

func (m cpuMeter) read() cpuReading {
	r := cpuReading{at: benchkit.SampleProcesses(m.servers...)}
	if m.client != nil {
		c, err := m.client()
		r.client, r.clientOK = c, err == nil
	}
	return r
}

// cpuCost is the CPU time each party spent per item of a phase (message or
// measure), in µs, for the parties that could be read.
type cpuCost map[string]float64

// costSince is the cost per item of the n items handled from a to now.
func (m cpuMeter) costSince(a cpuReading, n int) cpuCost {
	b := m.read()
	c := cpuCost{}
	if n <= 0 {
		return c
	}
	per := func(d time.Duration) float64 { return 1e6 * d.Seconds() / float64(n) }
	for party, d := range b.at.Since(a.at) {
		c[party] = per(d)
	}
	if a.clientOK && b.clientOK && b.client >= a.client {
		c[partyClient] = per(b.client - a.client)
	}
	return c
}

// complete reports whether c holds the broker and the client, the parties
// every queue phase has.
func (c cpuCost) complete() bool {
	_, broker := c[partyBroker]
	_, client := c[partyClient]
	return broker && client
}

// total is the sum over the parties.
func (c cpuCost) total() float64 {
	var t float64
	for _, v := range c {
		t += v
	}
	return t
}

// String lists the parties and their sum: "broker 9.8 + database 0.1 +
// client 7.4 = 17.3 µs".
func (c cpuCost) String() string {
	parties := make([]string, 0, len(c))
	for p := range c {
		parties = append(parties, p)
	}
	order := map[string]int{partyBroker: 0, partyDatabase: 1, partyClient: 2}
	sort.Slice(parties, func(i, j int) bool { return order[parties[i]] < order[parties[j]] })
	terms := make([]string, len(parties))
	for i, p := range parties {
		terms[i] = fmt.Sprintf("%s %.1f", p, c[p])
	}
	return fmt.Sprintf("%s = %.1f µs", strings.Join(terms, " + "), c.total())
}

// medianCost is the median per party of the complete costs of the rounds,
// nil when none is complete.
func medianCost(rounds []cpuCost) cpuCost {
	byParty := map[string][]float64{}
	for _, c := range rounds {
		if !c.complete() {
			continue
		}
		for p, v := range c {
			byParty[p] = append(byParty[p], v)
		}
	}
	if len(byParty) == 0 {
		return nil
	}
	out := cpuCost{}
	for p, vs := range byParty {
		out[p] = benchkit.Median(vs)
	}
	return out
}

// cpuBudget compares the CPU cost per message of the drain baseline and of
// single-measure ingest. When both phases keep the machine's CPUs equally
// busy, their rates are in the inverse ratio of their costs: Ceiling is the
// single/drain ratio the CPUs allow, whatever the pipeline's design.
type cpuBudget struct {
	Drain   cpuCost `json:"drain_us_per_message"`
	Single  cpuCost `json:"single_us_per_message"`
	Ceiling float64 `json:"single_vs_drain_ceiling"`
}

// newCPUBudget returns the budget of the rounds, nil when either phase has
// no complete cost.
func newCPUBudget(drain, single []cpuCost) *cpuBudget {
	d, s := medianCost(drain), medianCost(single)
	if d == nil || s == nil || s.total() <= 0 {
		return nil
	}
	// Compare the same parties: the database may be read in one phase only.
	for p := range d {
		if _, ok := s[p]; !ok {
			delete(d, p)
		}
	}
	for p := range s {
		if _, ok := d[p]; !ok {
			delete(s, p)
		}
	}
	return &cpuBudget{Drain: d, Single: s, Ceiling: round2(d.total() / s.total())}
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }
