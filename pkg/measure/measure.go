package measure

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ContentType is the AMQP content type of a measure message.
const ContentType = "application/json"

// RoutingKeyPrefix starts the routing key of every measure message.
const RoutingKeyPrefix = "experiment."

// Limits of the v1 contract.
const (
	// MaxMessageBytes bounds the size of a whole message body.
	MaxMessageBytes = 4 << 20
	// MaxBatch bounds the number of measures in a batch.
	MaxBatch = 10000
	// ExperimentPattern is the syntax of an experiment name.
	ExperimentPattern = `^[a-z0-9][a-z0-9._-]{0,63}$`
	// MaxExperimentBytes bounds the length of an experiment name.
	MaxExperimentBytes = 64
	// MaxSensorBytes bounds the length of a sensor name.
	MaxSensorBytes = 128
	// MaxUnitBytes bounds the length of a unit.
	MaxUnitBytes = 16
	// MaxTags bounds the number of tags of a measure.
	MaxTags = 32
	// MaxTagKeyBytes bounds the length of a tag name.
	MaxTagKeyBytes = 64
	// MaxTagValueBytes bounds the length of a tag value.
	MaxTagValueBytes = 256
	// MinYear is the earliest UTC year of a measure's time.
	MinYear = 1970
	// MaxYear is the latest UTC year of a measure's time.
	MaxYear = 9999
)

// Measure is one reading of one sensor of one experiment. It is identified
// by (Experiment, Sensor, Time), with Time in UTC at microsecond precision.
type Measure struct {
	// Experiment is the registered experiment's name (ExperimentPattern).
	Experiment string
	// Sensor names the series within the experiment, such as
	// "hv/module-12/current".
	Sensor string
	// Time is when the value was measured. Decode returns it in UTC,
	// truncated to the microsecond; Encode normalises it the same way.
	Time time.Time
	// Value is the reading, a finite number.
	Value float64
	// Unit is the optional unit of Value, such as "uA".
	Unit string
	// Tags are optional labels of the reading. Decode returns nil for none.
	Tags map[string]string
}

// RoutingKey returns the routing key of messages about the experiment.
func RoutingKey(experiment string) string {
	return RoutingKeyPrefix + experiment
}

// Validate reports the ways m breaks the v1 rules, joined with "; ", each
// naming the field (for example `value: must be a finite number, got NaN`),
// or nil when m may be published. The first four problems are listed and
// the rest counted. Validate accepts any time zone and sub-microsecond
// precision; Encode normalises both.
func (m Measure) Validate() error {
	var p problems
	p.add(checkExperiment(m.Experiment))
	p.add(checkSensor(m.Sensor))
	if m.Time.IsZero() {
		p.add("time: missing")
	} else {
		p.add(checkYear(m.Time.UTC()))
	}
	if math.IsNaN(m.Value) || math.IsInf(m.Value, 0) {
		p.add("value: must be a finite number, got " + strconv.FormatFloat(m.Value, 'g', -1, 64))
	}
	p.add(checkUnit(m.Unit))
	if len(m.Tags) > 0 {
		var tagProblems []string
		if len(m.Tags) > MaxTags {
			tagProblems = append(tagProblems, tooManyTags())
		}
		for k, v := range m.Tags {
			if s := checkTagKey(k); s != "" {
				tagProblems = append(tagProblems, s)
			}
			if s := checkTagValue(k, v); s != "" {
				tagProblems = append(tagProblems, s)
			}
		}
		slices.Sort(tagProblems) // map order is random; reasons should not be
		for _, s := range tagProblems {
			p.add(s)
		}
	}
	return p.err()
}

// ValidateExperiment reports whether name is a valid experiment name, with
// a reason when it is not.
func ValidateExperiment(name string) error {
	if s := checkExperiment(name); s != "" {
		return errors.New(s)
	}
	return nil
}

// maxProblems bounds the problems listed for one measure.
const maxProblems = 4

// problems collects the rule violations of one measure.
type problems struct {
	list  []string
	extra int
}

func (p *problems) add(s string) {
	switch {
	case s == "":
	case len(p.list) < maxProblems:
		p.list = append(p.list, s)
	default:
		p.extra++
	}
}

func (p *problems) reset() {
	p.list = p.list[:0]
	p.extra = 0
}

func (p *problems) ok() bool { return len(p.list) == 0 }

func (p *problems) String() string {
	s := strings.Join(p.list, "; ")
	if p.extra > 0 {
		s += fmt.Sprintf("; and %d more", p.extra)
	}
	return s
}

func (p *problems) err() error {
	if p.ok() {
		return nil
	}
	return errors.New(p.String())
}

// tooManyTags is the problem of a measure with more than MaxTags tags.
func tooManyTags() string {
	return "tags: more than " + strconv.Itoa(MaxTags) + " entries"
}

// The check functions return "" or the problem, prefixed with the field.

func checkExperiment(s string) string {
	if s == "" {
		return "experiment: must not be empty"
	}
	ok := len(s) <= MaxExperimentBytes
	for i := 0; ok && i < len(s); i++ {
		c := s[i]
		ok = 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || i > 0 && (c == '.' || c == '_' || c == '-')
	}
	if !ok {
		return "experiment: " + quote(s) + " must match " + ExperimentPattern
	}
	return ""
}

func checkSensor(s string) string {
	switch {
	case s == "":
		return "sensor: must not be empty"
	case len(s) > MaxSensorBytes:
		return fmt.Sprintf("sensor: is %d bytes, longer than %d", len(s), MaxSensorBytes)
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return fmt.Sprintf("sensor: contains control character %U", c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return "sensor: is not valid UTF-8"
		}
		if 0x80 <= r && r < 0xa0 {
			return fmt.Sprintf("sensor: contains control character %U", r)
		}
		i += size
	}
	return ""
}

func checkUnit(s string) string {
	switch {
	case len(s) > MaxUnitBytes:
		return fmt.Sprintf("unit: is %d bytes, longer than %d", len(s), MaxUnitBytes)
	case !utf8.ValidString(s):
		return "unit: is not valid UTF-8"
	}
	return ""
}

func checkTagKey(k string) string {
	switch {
	case k == "":
		return "tags: empty key"
	case len(k) > MaxTagKeyBytes:
		return fmt.Sprintf("tags: key %s is %d bytes, longer than %d", quote(k), len(k), MaxTagKeyBytes)
	case !utf8.ValidString(k):
		return "tags: key " + quote(k) + " is not valid UTF-8"
	}
	return ""
}

func checkTagValue(k, v string) string {
	switch {
	case len(v) > MaxTagValueBytes:
		return fmt.Sprintf("tags: value of %s is %d bytes, longer than %d", quote(k), len(v), MaxTagValueBytes)
	case !utf8.ValidString(v):
		return "tags: value of " + quote(k) + " is not valid UTF-8"
	}
	return ""
}

// checkYear checks the UTC year of t.
func checkYear(t time.Time) string {
	if y := t.Year(); y < MinYear || y > MaxYear {
		return fmt.Sprintf("time: %s is out of range: the UTC year must be from %d to %d",
			t.Format(time.RFC3339Nano), MinYear, MaxYear)
	}
	return ""
}

// maxQuoted bounds the bytes of input quoted in a reason.
const maxQuoted = 64

// quote quotes input for a reason, truncated to maxQuoted bytes.
func quote(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	cut := maxQuoted
	for cut > maxQuoted-utf8.UTFMax && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "…"
}
