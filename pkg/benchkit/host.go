package benchkit

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Host describes the machine of a run.
type Host struct {
	CPUs      int    `json:"cpus"`
	GOOS      string `json:"goos"`
	GOARCH    string `json:"goarch"`
	GoVersion string `json:"go_version"`
	Started   string `json:"started"`
	// LoadStart and LoadEnd are the 1-minute load averages when the run
	// started and ended: a load above the CPU count means other work
	// competed with the benchmark and the figures are low.
	LoadStart float64 `json:"load_start"`
	LoadEnd   float64 `json:"load_end"`
}

// NewHost describes this machine now, LoadStart included; the caller sets
// LoadEnd when the run ends.
func NewHost() Host {
	return Host{
		CPUs:      runtime.NumCPU(),
		GOOS:      runtime.GOOS,
		GOARCH:    runtime.GOARCH,
		GoVersion: runtime.Version(),
		Started:   time.Now().UTC().Format(time.RFC3339),
		LoadStart: LoadAvg(),
	}
}

// LoadAvg returns the 1-minute load average, or -1 when unknown.
func LoadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	return parseLoadAvg(string(b))
}

// parseLoadAvg returns the first field of /proc/loadavg, or -1.
func parseLoadAvg(s string) float64 {
	f := strings.Fields(s)
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}

// CPUFields selects the fields of /proc/stat's cpu line a CPUSample sums.
type CPUFields int

const (
	// CPUNoGuest sums user to steal and leaves out guest and guest_nice,
	// which Linux already counts in user and nice.
	CPUNoGuest CPUFields = iota
	// CPUAllFields sums every field, guest time included a second time.
	CPUAllFields
)

// CPUSample is a reading of the machine's CPU time counters: the first
// line of /proc/stat, in USER_HZ ticks summed over all CPUs. The zero
// CPUSample is an unknown reading.
type CPUSample struct {
	busy, total uint64
	fields      CPUFields
	ok          bool
}

// ReadCPU reads the machine's CPU time counters; the zero CPUSample when
// they cannot be read.
func ReadCPU(fields CPUFields) CPUSample {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return CPUSample{}
	}
	return parseCPU(string(b), fields)
}

// parseCPU reads the cpu line at the start of stat, the text of /proc/stat.
func parseCPU(stat string, fields CPUFields) CPUSample {
	line, _, _ := strings.Cut(stat, "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return CPUSample{}
	}
	s := CPUSample{fields: fields}
	for i, v := range f[1:] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return CPUSample{}
		}
		if fields == CPUNoGuest && i >= 8 { // guest, guest_nice
			break
		}
		s.total += n
		if i != 3 && i != 4 { // idle, iowait
			s.busy += n
		}
	}
	s.ok = true
	return s
}

// BusySince returns the fraction of all the machine's CPUs that was busy
// between a and now (read with the fields of a), or -1 when unknown.
func BusySince(a CPUSample) float64 {
	return busyBetween(a, ReadCPU(a.fields))
}

// busyBetween is the busy fraction of the CPU time from a to b, or -1.
func busyBetween(a, b CPUSample) float64 {
	if !a.ok || !b.ok || b.total <= a.total {
		return -1
	}
	return float64(b.busy-a.busy) / float64(b.total-a.total)
}
