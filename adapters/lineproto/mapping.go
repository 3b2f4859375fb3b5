package lineproto

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/influxdata/line-protocol/v2/lineprotocol"

	"github.com/mymonit/mymonit/pkg/measure"
)

// ExperimentTag is the tag that names a line's experiment; it is removed
// from the measure's tags.
const ExperimentTag = "experiment"

// AllTags, as the only item of Mapping.SensorTags, puts every tag in the
// sensor name.
const AllTags = "*"

// Mapping turns line-protocol entries into measures:
//
//   - each numeric field (float, integer, unsigned) of a line is one measure;
//     string and boolean fields are refused with a reason (or, with
//     IgnoreNonNumeric, dropped silently and only counted);
//   - sensor = <measurement>.<field>, followed by ",<tag>=<value>" for each
//     tag named in SensorTags that the line has, in tag-key order (the
//     InfluxDB series key), so that series differing only by tags stay
//     distinct: cpu,host=a usage=1 → "cpu.usage,host=a";
//   - tags: every tag of the line except "experiment";
//   - experiment: the line's "experiment" tag, else the request's
//     experiment (v1 db= or v2 bucket=), else DefaultExperiment; a line
//     with none is refused;
//   - time: the line's timestamp in the request's precision, or the time
//     of receipt when it has none.
type Mapping struct {
	// DefaultExperiment is used by lines with no experiment tag in requests
	// without db/bucket (and UDP datagrams).
	DefaultExperiment string
	// SensorTags lists the tags whose values join the sensor name; [AllTags]
	// means all of them, nil none.
	SensorTags []string
	// IgnoreNonNumeric drops string and boolean fields without reporting them.
	IgnoreNonNumeric bool
}

// Batch is how one request or datagram is to be read.
type Batch struct {
	// Experiment from the request (db or bucket parameter); may be empty.
	Experiment string
	// Precision of the timestamps.
	Precision Precision
	// Now is the time of lines without a timestamp.
	Now time.Time
}

// LineError reports a line, or a field of a line, that was refused.
type LineError struct {
	// Line is the 1-based line number in the request body.
	Line int
	// Text is the line, cut to 120 bytes.
	Text string
	// Reason says what is wrong.
	Reason string
	// Kind is the metric reason: parse_error, non_numeric, no_experiment,
	// invalid.
	Kind string
}

// Error implements error.
func (e LineError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Reason) }

// Rejection kinds, the reason label of mymonit_adapter_measures_rejected_total.
const (
	KindParse        = "parse_error"
	KindNonNumeric   = "non_numeric"
	KindNoExperiment = "no_experiment"
	KindInvalid      = "invalid"
)

// Parsed is the result of Parse.
type Parsed struct {
	// Measures in body order.
	Measures []measure.Measure
	// Lines holds the line number of each measure.
	Lines []int
	// Errors in line order.
	Errors []LineError
	// Ignored counts the non-numeric fields dropped by IgnoreNonNumeric.
	Ignored int
	// texts maps a line number to its text, for lines that produced
	// measures (to report a measure the contract refuses).
	texts map[int][]byte
}

// Text returns the text of line n, cut for reports.
func (p Parsed) Text(n int) string { return cut(p.texts[n]) }

// Parse reads a line-protocol body. Blank lines and comments (#) are
// skipped. It never fails as a whole: each bad line is reported in Errors and
// the good ones are returned. The measures are not validated against the v1
// contract (the sink does that).
func (m Mapping) Parse(body []byte, b Batch) Parsed {
	var p Parsed
	allTags := len(m.SensorTags) == 1 && m.SensorTags[0] == AllTags
	for n := 1; len(body) > 0; n++ {
		line := body
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		trimmed := bytes.TrimLeft(line, " \t")
		if len(trimmed) == 0 || trimmed[0] == '#' {
			continue
		}
		before := len(p.Measures)
		errs := m.parseLine(&p, line, b, allTags, n)
		for _, e := range errs {
			e.Line, e.Text = n, cut(line)
			p.Errors = append(p.Errors, e)
		}
		if len(p.Measures) > before {
			if p.texts == nil {
				p.texts = make(map[int][]byte)
			}
			p.texts[n] = line
		}
	}
	return p
}

func (m Mapping) parseLine(p *Parsed, line []byte, b Batch, allTags bool, n int) []LineError {
	d := lineprotocol.NewDecoderWithBytes(line)
	if !d.Next() {
		return []LineError{{Reason: "empty entry", Kind: KindParse}}
	}
	name, err := d.Measurement()
	if err != nil {
		return []LineError{parseError(err)}
	}
	meas := string(name)
	var tags map[string]string
	var keys []string
	exp := ""
	for {
		k, v, err := d.NextTag()
		if err != nil {
			return []LineError{parseError(err)}
		}
		if k == nil {
			break
		}
		if string(k) == ExperimentTag {
			exp = string(v)
			continue
		}
		if tags == nil {
			tags = make(map[string]string)
		}
		tags[string(k)] = string(v)
		keys = append(keys, string(k))
	}
	type field struct {
		name string
		val  float64
	}
	var fields []field
	var errs []LineError
	for {
		k, v, err := d.NextField()
		if err != nil {
			return []LineError{parseError(err)}
		}
		if k == nil {
			break
		}
		switch v.Kind() {
		case lineprotocol.Float:
			fields = append(fields, field{string(k), v.FloatV()})
		case lineprotocol.Int:
			fields = append(fields, field{string(k), float64(v.IntV())})
		case lineprotocol.Uint:
			fields = append(fields, field{string(k), float64(v.UintV())})
		default:
			if m.IgnoreNonNumeric {
				p.Ignored++
				continue
			}
			errs = append(errs, LineError{
				Reason: fmt.Sprintf("field %q: %s value %s is not a number", k, strings.ToLower(v.Kind().String()), cutString(v.String())),
				Kind:   KindNonNumeric,
			})
		}
	}
	raw, err := d.TimeBytes()
	if err != nil {
		return []LineError{parseError(err)}
	}
	ts := b.Now
	if raw != nil {
		ts, err = b.Precision.parse(raw)
		if err != nil {
			return []LineError{{Reason: "timestamp: " + err.Error(), Kind: KindParse}}
		}
	}
	if exp == "" {
		exp = b.Experiment
	}
	if exp == "" {
		exp = m.DefaultExperiment
	}
	if exp == "" && len(fields) > 0 {
		return append(errs, LineError{
			Reason: `no experiment: add an "experiment" tag, the db (v1) or bucket (v2) parameter, or set MYMONIT_LINEPROTO_EXPERIMENT`,
			Kind:   KindNoExperiment,
		})
	}
	if len(fields) == 0 {
		return errs
	}
	slices.Sort(keys)
	var suffix strings.Builder
	for _, k := range keys {
		if allTags || slices.Contains(m.SensorTags, k) {
			suffix.WriteByte(',')
			suffix.WriteString(k)
			suffix.WriteByte('=')
			suffix.WriteString(tags[k])
		}
	}
	for _, f := range fields {
		p.Measures = append(p.Measures, measure.Measure{
			Experiment: exp,
			Sensor:     meas + "." + f.name + suffix.String(),
			Time:       ts,
			Value:      f.val,
			Tags:       tags,
		})
		p.Lines = append(p.Lines, n)
	}
	return errs
}

func parseError(err error) LineError {
	var de *lineprotocol.DecodeError
	if errors.As(err, &de) {
		return LineError{Reason: cutTo(fmt.Sprintf("column %d: %v", de.Column, de.Err), 300), Kind: KindParse}
	}
	return LineError{Reason: cutTo(err.Error(), 300), Kind: KindParse}
}

func cut(b []byte) string {
	return cutString(string(b))
}

// cutString makes s valid UTF-8 and shortens it to at most 120 bytes on a
// rune boundary, marking the cut with "…".
func cutString(s string) string {
	return cutTo(s, 120)
}

func cutTo(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) > max {
		i := max
		for i > 0 && !utf8.RuneStart(s[i]) {
			i--
		}
		s = s[:i] + "…"
	}
	return s
}

// Precision is the unit of line-protocol timestamps.
type Precision time.Duration

// Precisions.
const (
	Nanosecond  = Precision(time.Nanosecond)
	Microsecond = Precision(time.Microsecond)
	Millisecond = Precision(time.Millisecond)
	Second      = Precision(time.Second)
	Minute      = Precision(time.Minute)
	Hour        = Precision(time.Hour)
)

// ParsePrecision reads a precision parameter: InfluxDB v2's ns, us, ms, s
// and v1's n, u, ms, s, m, h (both sets on both endpoints); "" is ns.
func ParsePrecision(s string) (Precision, error) {
	switch s {
	case "", "n", "ns":
		return Nanosecond, nil
	case "u", "us", "µ", "µs":
		return Microsecond, nil
	case "ms":
		return Millisecond, nil
	case "s":
		return Second, nil
	case "m":
		return Minute, nil
	case "h":
		return Hour, nil
	}
	return 0, fmt.Errorf("precision %q: want ns, us, ms or s (v1 also n, u, m, h)", s)
}

func (p Precision) parse(raw []byte) (time.Time, error) {
	v, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not an integer", cut(raw))
	}
	unit := int64(p)
	if unit <= 0 { // the zero Precision is nanoseconds
		unit = 1
	}
	if unit >= int64(time.Second) {
		per := unit / int64(time.Second)
		if v > math.MaxInt64/per || v < math.MinInt64/per {
			return time.Time{}, fmt.Errorf("%d is out of range", v)
		}
		return time.Unix(v*per, 0).UTC(), nil
	}
	per := int64(time.Second) / unit
	return time.Unix(v/per, (v%per)*unit).UTC(), nil
}
