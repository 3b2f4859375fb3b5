package measure_test

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/mymonit/mymonit/pkg/measure"
)

// floatCases are values at the edges of the fast decimal path and beyond
// it.
func floatCases() []float64 {
	vs := []float64{0, math.Copysign(0, -1), 1, -1, 20.31, 0.1, 0.2, 0.3, 1e-6, 1e-7, 9.999999e-7, 0.000001, 0.0000015,
		123456.789, 1 << 52, 1<<52 - 1, 1<<52 + 1, 1 << 53, 4503599627370495.5, 450359962737049.55,
		1e15, 1e16, 1e20, 1e21, 1e22, math.MaxFloat64, math.SmallestNonzeroFloat64, 5e-324, 2.5, 0.5, 1.5,
		0.15, 0.25, 0.35, 1.005, 2.675, 1234567.8901234, 0.1 + 0.2, 100, 1e6, 3.0000000000000004}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 200_000 {
		// Decimals of k places, as sensors report them, and arbitrary
		// floats.
		k := rng.IntN(9)
		i := rng.Int64N(1 << uint(rng.IntN(54)))
		v := float64(i) / math.Pow10(k)
		if rng.IntN(2) == 0 {
			v = -v
		}
		vs = append(vs, v, math.Float64frombits(rng.Uint64()), rng.NormFloat64()*math.Pow(10, float64(rng.IntN(40)-20)))
	}
	return vs
}

func TestAppendDecimal(t *testing.T) {
	for _, v := range floatCases() {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		want := strconv.AppendFloat([]byte("x"), v, 'f', -1, 64)
		if got := measure.AppendDecimal([]byte("x"), v); string(got) != string(want) {
			t.Fatalf("AppendDecimal(%b) = %q, want %q", v, got, want)
		}
	}
}

func TestAppendFloat(t *testing.T) {
	for _, v := range floatCases() {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if got := measure.AppendFloat(nil, v); string(got) != string(want) {
			t.Fatalf("AppendFloat(%b) = %q, want %q as encoding/json writes it", v, got, want)
		}
	}
}

func FuzzAppendDecimal(f *testing.F) {
	for _, v := range floatCases()[:64] {
		f.Add(math.Float64bits(v))
	}
	f.Fuzz(func(t *testing.T, bits uint64) {
		v := math.Float64frombits(bits)
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return
		}
		want := strconv.AppendFloat(nil, v, 'f', -1, 64)
		if got := measure.AppendDecimal(nil, v); string(got) != string(want) {
			t.Fatalf("AppendDecimal(%b) = %q, want %q", v, got, want)
		}
	})
}
