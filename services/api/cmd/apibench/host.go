package main

import (
	"bytes"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"
)

// hostInfo describes the machine of the run.
type hostInfo struct {
	CPUs      int    `json:"cpus"`
	GOOS      string `json:"goos"`
	GOARCH    string `json:"goarch"`
	GoVersion string `json:"go_version"`
	Started   string `json:"started"`
	// LoadStart and LoadEnd are the 1-minute load averages when the run
	// started and ended: above the CPU count, other work competed with the
	// benchmark and the figures are low.
	LoadStart float64 `json:"load_start"`
	LoadEnd   float64 `json:"load_end"`
}

func newHostInfo() hostInfo {
	return hostInfo{
		CPUs:      runtime.NumCPU(),
		GOOS:      runtime.GOOS,
		GOARCH:    runtime.GOARCH,
		GoVersion: runtime.Version(),
		Started:   time.Now().UTC().Format(time.RFC3339),
		LoadStart: loadAvg(),
	}
}

// loadAvg is the 1-minute load average, -1 when unknown.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}

// cpuSample is the machine's CPU time counters (all CPUs, clock ticks).
type cpuSample struct {
	busy, total uint64
	ok          bool
}

// readCPU reads the first line of /proc/stat.
func readCPU() cpuSample {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuSample{}
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 5 || f[0] != "cpu" {
		return cpuSample{}
	}
	var s cpuSample
	for i, v := range f[1:] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return cpuSample{}
		}
		s.total += n
		if i != 3 && i != 4 { // idle, iowait
			s.busy += n
		}
	}
	s.ok = true
	return s
}

// busySince is the fraction of all CPUs that was busy since a, -1 when
// unknown.
func busySince(a cpuSample) float64 {
	b := readCPU()
	if !a.ok || !b.ok || b.total <= a.total {
		return -1
	}
	return float64(b.busy-a.busy) / float64(b.total-a.total)
}

// rss is the resident set size of this process in bytes, 0 when unknown.
func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0
	}
	return pages * int64(os.Getpagesize())
}

// heapMetric is the bytes of heap objects, live or not yet swept: the
// heap in use.
const heapMetric = "/memory/classes/heap/objects:bytes"

// heapInUse reads heapMetric.
func heapInUse() int64 {
	s := []metrics.Sample{{Name: heapMetric}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return int64(s[0].Value.Uint64())
}

// memPeak samples the heap in use and the RSS every 10 ms until stopped.
type memPeak struct {
	stop     chan struct{}
	finished chan struct{}
	heap     int64
	rss      int64
	samples  int
}

// startMemPeak starts sampling.
func startMemPeak() *memPeak {
	m := &memPeak{stop: make(chan struct{}), finished: make(chan struct{}), heap: heapInUse(), rss: rss()}
	go func() {
		defer close(m.finished)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-m.stop:
				return
			case <-t.C:
				m.heap, m.rss = max(m.heap, heapInUse()), max(m.rss, rss())
				m.samples++
			}
		}
	}()
	return m
}

// end stops sampling and returns the peaks and the number of samples.
func (m *memPeak) end() (heap, rss int64, samples int) {
	close(m.stop)
	<-m.finished
	return m.heap, m.rss, m.samples
}
