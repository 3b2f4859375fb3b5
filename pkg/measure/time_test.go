package measure_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/mymonit/mymonit/pkg/measure"
)

// TestAppendTime compares AppendTime with time.Format over the years the
// contract allows, in UTC and in other zones.
func TestAppendTime(t *testing.T) {
	const layout = "2006-01-02T15:04:05.000000Z07:00"
	times := []time.Time{
		time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(2026, 11, 23, 10, 0, 0, 123456789, time.UTC),
		time.Date(2024, 2, 29, 9, 8, 7, 1000, time.FixedZone("CET", 3600)),
		time.Date(1970, 1, 1, 0, 0, 0, 999, time.UTC),
	}
	rng := rand.New(rand.NewPCG(1, 2))
	lo, hi := times[0].UnixMicro(), times[1].UnixMicro()
	for range 10000 {
		times = append(times, time.UnixMicro(lo+rng.Int64N(hi-lo)).In(time.FixedZone("", 60*(rng.IntN(1440)-720))))
	}
	for _, tm := range times {
		want := tm.UTC().Format(layout)
		if got := string(measure.AppendTime([]byte("x"), tm)); got != "x"+want {
			t.Fatalf("AppendTime(%v) = %q, want %q", tm, got, "x"+want)
		}
	}
}

// TestTimeWriter compares TimeWriter with AppendTime over runs of times:
// steps within a day, across midnight, backwards, and before 1970.
func TestTimeWriter(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	lo := time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	hi := time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC).UnixMicro()
	var w measure.TimeWriter
	us := time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC).UnixMicro()
	for i := range 200_000 {
		switch i % 4 {
		case 0:
			us += rng.Int64N(2_000_000) // within the second or the next
		case 1:
			us += rng.Int64N(3_600_000_000) // up to an hour on
		case 2:
			us -= rng.Int64N(90_000_000_000) // back, maybe to the day before
		default:
			if rng.IntN(50) == 0 {
				us = lo + rng.Int64N(hi-lo) // anywhere
			}
		}
		us = min(max(us, lo), hi)
		tm := time.UnixMicro(us).In(time.FixedZone("", 3600*(rng.IntN(25)-12)))
		want := measure.AppendTime([]byte("x"), tm)
		if got := w.Append([]byte("x"), tm); string(got) != string(want) {
			t.Fatalf("step %d: Append(%v) = %q, want %q", i, tm, got, want)
		}
	}
}
