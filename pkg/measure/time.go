package measure

import "time"

// maxTimeBytes bounds the length of a time string; the longest useful one,
// with nanoseconds and an offset, has 35 bytes.
const maxTimeBytes = 64

// parseTime parses an RFC 3339 date-time (RFC 3339 section 5.6) and returns
// it in UTC, truncated to the microsecond, or the problem in words (with the
// "time: " prefix).
func parseTime(b []byte) (time.Time, string) {
	fail := func(detail string) (time.Time, string) {
		s := "time: " + quote(string(b)) + " is not RFC 3339"
		if detail != "" {
			s += ": " + detail
		}
		return time.Time{}, s
	}
	const minLen = len("2006-01-02T15:04:05Z")
	if len(b) < minLen || len(b) > maxTimeBytes {
		return fail("")
	}
	year, ok1 := digits(b[0:4])
	month, ok2 := digits(b[5:7])
	day, ok3 := digits(b[8:10])
	hour, ok4 := digits(b[11:13])
	minute, ok5 := digits(b[14:16])
	sec, ok6 := digits(b[17:19])
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 ||
		b[4] != '-' || b[7] != '-' || (b[10] != 'T' && b[10] != 't') || b[13] != ':' || b[16] != ':' {
		return fail("")
	}

	i := 19
	nsec := 0
	if b[i] == '.' {
		i++
		start := i
		for ; i < len(b) && '0' <= b[i] && b[i] <= '9'; i++ {
			if i-start < 9 {
				nsec = nsec*10 + int(b[i]-'0')
			}
		}
		n := i - start
		if n == 0 {
			return fail("")
		}
		for ; n < 9; n++ {
			nsec *= 10
		}
	}
	if i >= len(b) {
		return fail("")
	}

	offset := 0 // seconds east of UTC
	switch b[i] {
	case 'Z', 'z':
		i++
	case '+', '-':
		if len(b)-i != len("+07:00") || b[i+3] != ':' {
			return fail("")
		}
		oh, okh := digits(b[i+1 : i+3])
		om, okm := digits(b[i+4 : i+6])
		if !okh || !okm {
			return fail("")
		}
		if oh > 23 || om > 59 {
			return fail("offset out of range")
		}
		offset = oh*3600 + om*60
		if b[i] == '-' {
			offset = -offset
		}
		i += len("+07:00")
	default:
		return fail("")
	}
	if i != len(b) {
		return fail("")
	}

	switch {
	case month < 1 || month > 12:
		return fail("month out of range")
	case day < 1 || day > daysIn(month, year):
		return fail("day out of range")
	case hour > 23:
		return fail("hour out of range")
	case minute > 59:
		return fail("minute out of range")
	case sec > 59:
		return fail("second out of range")
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec-nsec%1000, time.UTC)
	if offset != 0 {
		t = t.Add(-time.Duration(offset) * time.Second)
	}
	if s := checkYear(t); s != "" {
		return time.Time{}, s
	}
	return t, ""
}

// digits parses a run of ASCII digits.
func digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// AppendTime appends t in UTC as RFC 3339 with exactly six fractional
// digits, e.g. 2026-11-23T10:00:00.123456Z, the form of the contract (and
// of the API). The year must be 0-9999, which every stored time is.
func AppendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	hour, minute, sec := t.Clock()
	micro := t.Nanosecond() / 1000
	b = append2(b, year/100)
	b = append2(b, year%100)
	b = append(b, '-')
	b = append2(b, int(month))
	b = append(b, '-')
	b = append2(b, day)
	b = append(b, 'T')
	b = append2(b, hour)
	b = append(b, ':')
	b = append2(b, minute)
	b = append(b, ':')
	b = append2(b, sec)
	b = append(b, '.')
	b = append2(b, micro/10000)
	b = append2(b, micro/100%100)
	b = append2(b, micro%100)
	return append(b, 'Z')
}

// TimeWriter appends times as AppendTime does, faster for a run of times
// of one day (a sensor's measures, read in time order): it keeps the date
// of the last time and works out only the time of day of the next. The
// zero value is ready to use; a TimeWriter is not safe for concurrent use.
type TimeWriter struct {
	day  int64    // days since 1970-01-01 of date
	date [11]byte // 2006-01-02T
	ok   bool     // date holds day
}

// Append appends t as AppendTime does.
func (w *TimeWriter) Append(b []byte, t time.Time) []byte {
	us := t.UnixMicro()
	sec := floorDiv(us, 1_000_000)
	micro := int(us - sec*1_000_000)
	day := floorDiv(sec, 86400)
	sod := int(sec - day*86400)
	if !w.ok || day != w.day {
		year, month, d := t.UTC().Date()
		put2(w.date[0:], year/100)
		put2(w.date[2:], year%100)
		w.date[4] = '-'
		put2(w.date[5:], int(month))
		w.date[7] = '-'
		put2(w.date[8:], d)
		w.date[10] = 'T'
		w.day, w.ok = day, true
	}
	b = append(b, w.date[:]...)
	b = append2(b, sod/3600)
	b = append(b, ':')
	b = append2(b, sod/60%60)
	b = append(b, ':')
	b = append2(b, sod%60)
	b = append(b, '.')
	b = append2(b, micro/10000)
	b = append2(b, micro/100%100)
	b = append2(b, micro%100)
	return append(b, 'Z')
}

// floorDiv is a / b rounded toward minus infinity (b > 0).
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

// twoDigits holds 00 to 99, two bytes each.
const twoDigits = "0001020304050607080910111213141516171819" +
	"2021222324252627282930313233343536373839" +
	"4041424344454647484950515253545556575859" +
	"6061626364656667686970717273747576777879" +
	"8081828384858687888990919293949596979899"

// put2 writes v (0-99) as two decimal digits at the start of dst.
func put2(dst []byte, v int) {
	dst[0], dst[1] = twoDigits[2*v], twoDigits[2*v+1]
}

// append2 appends v (0-99) as two decimal digits.
func append2(b []byte, v int) []byte {
	return append(b, twoDigits[2*v], twoDigits[2*v+1])
}
