package main

import (
	"os"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"
)

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
