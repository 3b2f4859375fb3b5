package benchkit

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// RateStat is a rate measured in one or more rounds.
type RateStat struct {
	Median float64   `json:"median"`
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
	Rounds []float64 `json:"rounds"`
	// MachineBusy is, per round, the fraction of all the machine's CPUs
	// that was busy while the rate was timed (-1: unknown). Near 1, the
	// phase was CPU-bound, by itself or by other work on the machine.
	MachineBusy []float64 `json:"machine_cpu_busy"`
}

// Add returns s (nil: a new RateStat) with the rate v of one more round,
// timed while the fraction busy of the machine's CPUs were busy (kept to
// two decimals).
func (s *RateStat) Add(v, busy float64) *RateStat {
	if s == nil {
		s = &RateStat{}
	}
	s.Rounds = append(s.Rounds, v)
	s.MachineBusy = append(s.MachineBusy, math.Round(busy*100)/100)
	s.Median, s.Min, s.Max = Median(s.Rounds), slices.Min(s.Rounds), slices.Max(s.Rounds)
	return s
}

// Spread formats the range of the rounds for a report, " [min–max]" with
// Thousands, or "" for one round or none.
func (s *RateStat) Spread() string {
	if s == nil || len(s.Rounds) < 2 {
		return ""
	}
	return fmt.Sprintf(" [%s–%s]", Thousands(s.Min), Thousands(s.Max))
}

// PairedRatio is the median over rounds of num/den, round by round: each
// round of num divided by the round of den that ran next to it, so that
// other work on the machine drifting between rounds cancels out. It is NaN
// when either has no round.
func PairedRatio(num, den *RateStat) float64 {
	var ratios []float64
	for i := range min(len(num.Rounds), len(den.Rounds)) {
		ratios = append(ratios, num.Rounds[i]/den.Rounds[i])
	}
	if len(ratios) == 0 {
		return math.NaN()
	}
	return Median(ratios)
}

// Median of vs (not empty): the middle value, or the mean of the two
// middle values.
func Median(vs []float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	return (s[(n-1)/2] + s[n/2]) / 2
}

// Percentile is the p-th percentile (0 < p ≤ 100) of ds by nearest rank,
// 0 when ds is empty. ds is not modified.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// Thousands formats v rounded to a whole number with comma separators.
func Thousands(v float64) string {
	s := strconv.FormatInt(int64(math.Round(v)), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
