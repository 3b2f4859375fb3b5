package measure

import (
	"math"
	"strconv"
)

// AppendFloat appends a finite float as encoding/json writes it: the
// shortest text that reads back to the same float64, in exponent form
// below 1e-6 and from 1e21 on (e-7, not e-07).
func AppendFloat(b []byte, f float64) []byte {
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		b = strconv.AppendFloat(b, f, 'e', -1, 64)
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
		return b
	}
	return AppendDecimal(b, f)
}

// maxShortDecimals is the most decimals appendShortDecimal tries.
const maxShortDecimals = 6

var pow10 = [maxShortDecimals + 1]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6}

// AppendDecimal appends f as strconv.AppendFloat(b, f, 'f', -1, 64) does,
// faster for the usual measured value, one of a few decimals.
func AppendDecimal(b []byte, f float64) []byte {
	if out, ok := appendShortDecimal(b, f); ok {
		return out
	}
	return strconv.AppendFloat(b, f, 'f', -1, 64)
}

// appendShortDecimal appends f when it is the float nearest to a decimal of
// at most maxShortDecimals decimals whose digits, decimal point left out,
// stay below 2^50; it reports false, appending nothing, for any other
// value (and for zeros, infinities and NaN).
//
// That text is the one strconv writes. Below 2^52 the decimals of k places
// lie further apart than the floats near f, so at most one of them reads
// back to f; trying k = 0, 1, 2, ... finds the fewest decimals, hence the
// shortest text. The check is exact: i and 10^k are exact floats and IEEE
// division rounds to nearest, as parsing does. Below 2^50, f × 10^k lies
// within 1/8 of that decimal's digits i, so rounding the product finds i
// whatever the product's own rounding error.
func appendShortDecimal(b []byte, f float64) ([]byte, bool) {
	a := math.Abs(f)
	if !(a >= 1e-6 && a < 1<<50) { // also false for NaN
		return b, false
	}
	for k, p := range pow10 {
		x := math.Round(a * p)
		if x >= 1<<50 {
			return b, false
		}
		if x/p != a {
			continue
		}
		if f < 0 {
			b = append(b, '-')
		}
		return appendScaled(b, uint64(x), k), true
	}
	return b, false
}

// appendScaled appends i / 10^k in decimal, with k decimals (k > 0) or
// none.
func appendScaled(b []byte, i uint64, k int) []byte {
	var buf [24]byte
	n := len(buf)
	for d := 0; d < k; d++ {
		n--
		buf[n] = byte('0' + i%10)
		i /= 10
	}
	if k > 0 {
		n--
		buf[n] = '.'
	}
	for {
		n--
		buf[n] = byte('0' + i%10)
		i /= 10
		if i == 0 {
			break
		}
	}
	return append(b, buf[n:]...)
}
