package mqtt

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mymonit/mymonit/pkg/measure"
)

// Payload formats a rule accepts (see the package documentation).
const (
	PayloadAuto    = "auto"
	PayloadNumber  = "number"
	PayloadJSON    = "json"
	PayloadMeasure = "measure"
)

// RuleSpec is one mapping rule as the rules file writes it.
type RuleSpec struct {
	// Topic is an MQTT topic filter, subscribed with QoS 1; its + and #
	// wildcards are captured for the templates.
	Topic string `yaml:"topic"`
	// Experiment and Sensor are templates: {1}, {2}... are the topic levels
	// matched by the filter's + wildcards, in order, {#} the levels matched
	// by # joined with /, {topic} the whole topic.
	Experiment string `yaml:"experiment"`
	Sensor     string `yaml:"sensor"`
	// Unit is the unit of the values, unless the payload gives one.
	Unit string `yaml:"unit"`
	// Tags are templates too; tags in the payload are added over them.
	Tags map[string]string `yaml:"tags"`
	// Payload is auto (default), number, json or measure.
	Payload string `yaml:"payload"`
}

// Rule is a compiled RuleSpec.
type Rule struct {
	Spec       RuleSpec
	filter     []string
	experiment template
	sensor     template
	tags       map[string]template
	line       int
}

// Rules map topics and payloads to measures: the first rule whose topic
// filter matches a topic applies.
type Rules struct {
	rules []Rule
}

// rulesFile is the layout of the rules file.
type rulesFile struct {
	Rules []RuleSpec `yaml:"rules"`
}

// ParseRules reads a rules file, YAML or JSON:
//
//	rules:
//	  - topic: lab/+/+/temperature
//	    experiment: "{1}"
//	    sensor: "{2}/temperature"
//	    unit: degC
//	    tags: {room: "{2}"}
//	    payload: auto
//
// Unknown fields are refused; every error names the rule (by its position
// and line) and the field.
func ParseRules(data []byte) (*Rules, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f rulesFile
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("no rules: the file is empty")
		}
		return nil, err
	}
	var nodes struct {
		Rules []yaml.Node `yaml:"rules"`
	}
	_ = yaml.Unmarshal(data, &nodes)
	if len(f.Rules) == 0 {
		return nil, errors.New("no rules: list them under rules:")
	}
	rs := &Rules{}
	var errs []error
	for i, spec := range f.Rules {
		line := 0
		if i < len(nodes.Rules) {
			line = nodes.Rules[i].Line
		}
		r, problems := compile(spec)
		if len(problems) > 0 {
			where := fmt.Sprintf("rules[%d]", i)
			if line > 0 {
				where += fmt.Sprintf(" (line %d)", line)
			}
			for _, err := range problems {
				errs = append(errs, fmt.Errorf("%s: %w", where, err))
			}
			continue
		}
		r.line = line
		rs.rules = append(rs.rules, r)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return rs, nil
}

// NewRules compiles rules given in code, in order.
func NewRules(specs ...RuleSpec) (*Rules, error) {
	rs := &Rules{}
	for i, s := range specs {
		r, problems := compile(s)
		if len(problems) > 0 {
			return nil, fmt.Errorf("rules[%d]: %w", i, errors.Join(problems...))
		}
		rs.rules = append(rs.rules, r)
	}
	if len(rs.rules) == 0 {
		return nil, errors.New("no rules")
	}
	return rs, nil
}

// Filters returns the distinct topic filters of the rules, in order: what
// the bridge subscribes to.
func (rs *Rules) Filters() []string {
	var out []string
	seen := map[string]bool{}
	for _, r := range rs.rules {
		if !seen[r.Spec.Topic] {
			seen[r.Spec.Topic] = true
			out = append(out, r.Spec.Topic)
		}
	}
	return out
}

func compile(s RuleSpec) (Rule, []error) {
	var errs []error
	r := Rule{Spec: s}
	plus, hash := 0, false
	if s.Topic == "" {
		errs = append(errs, errors.New("topic: missing"))
	} else {
		levels, err := parseFilter(s.Topic)
		if err != nil {
			errs = append(errs, fmt.Errorf("topic %q: %w", s.Topic, err))
		}
		r.filter = levels
		for _, l := range levels {
			switch l {
			case "+":
				plus++
			case "#":
				hash = true
			}
		}
	}
	var err error
	if s.Experiment == "" {
		errs = append(errs, errors.New("experiment: missing"))
	} else if r.experiment, err = parseTemplate(s.Experiment, plus, hash); err != nil {
		errs = append(errs, fmt.Errorf("experiment: %w", err))
	} else if r.experiment.literal() {
		if err := measure.ValidateExperiment(s.Experiment); err != nil {
			errs = append(errs, err)
		}
	}
	if s.Sensor == "" {
		errs = append(errs, errors.New("sensor: missing"))
	} else if r.sensor, err = parseTemplate(s.Sensor, plus, hash); err != nil {
		errs = append(errs, fmt.Errorf("sensor: %w", err))
	}
	if len(s.Unit) > measure.MaxUnitBytes {
		errs = append(errs, fmt.Errorf("unit %q: longer than %d bytes", s.Unit, measure.MaxUnitBytes))
	}
	if len(s.Tags) > measure.MaxTags {
		errs = append(errs, fmt.Errorf("tags: %d tags, at most %d", len(s.Tags), measure.MaxTags))
	}
	for k, v := range s.Tags {
		if k == "" || len(k) > measure.MaxTagKeyBytes {
			errs = append(errs, fmt.Errorf("tags: key %q must be 1 to %d bytes", k, measure.MaxTagKeyBytes))
		}
		t, err := parseTemplate(v, plus, hash)
		if err != nil {
			errs = append(errs, fmt.Errorf("tags: %s: %w", k, err))
			continue
		}
		if r.tags == nil {
			r.tags = map[string]template{}
		}
		r.tags[k] = t
	}
	switch s.Payload {
	case "":
		r.Spec.Payload = PayloadAuto
	case PayloadAuto, PayloadNumber, PayloadJSON, PayloadMeasure:
	default:
		errs = append(errs, fmt.Errorf("payload %q: must be auto, number, json or measure", s.Payload))
	}
	return r, errs
}

// parseFilter splits an MQTT topic filter into levels and checks the
// wildcards: + alone in its level, # alone in the last level.
func parseFilter(f string) ([]string, error) {
	levels := strings.Split(f, "/")
	for i, l := range levels {
		switch {
		case l == "#" && i != len(levels)-1:
			return nil, errors.New("# must be the last level")
		case l != "#" && strings.Contains(l, "#"):
			return nil, errors.New("# must stand alone in its level")
		case l != "+" && strings.Contains(l, "+"):
			return nil, errors.New("+ must stand alone in its level")
		}
	}
	return levels, nil
}

// match reports whether topic matches the rule's filter and returns the
// levels its + wildcards matched and the rest matched by #.
func (r *Rule) match(topic string) (plus []string, rest string, ok bool) {
	levels := strings.Split(topic, "/")
	for i, f := range r.filter {
		switch f {
		case "#":
			if i == 0 && strings.HasPrefix(topic, "$") {
				return nil, "", false // wildcards do not match $SYS topics
			}
			return plus, strings.Join(levels[i:], "/"), true
		case "+":
			if i >= len(levels) || (i == 0 && strings.HasPrefix(topic, "$")) {
				return nil, "", false
			}
			plus = append(plus, levels[i])
		default:
			if i >= len(levels) || levels[i] != f {
				return nil, "", false
			}
		}
	}
	if len(levels) != len(r.filter) {
		return nil, "", false
	}
	return plus, "", true
}

// template is a string with {1}, {#} and {topic} references.
type template []part

type part struct {
	text string // literal, when ref == refNone
	ref  int    // refNone, refHash, refTopic, or the 1-based + index
}

const (
	refNone  = 0
	refHash  = -1
	refTopic = -2
)

var refPattern = regexp.MustCompile(`\{[^{}]*\}`)

func parseTemplate(s string, plus int, hash bool) (template, error) {
	var t template
	last := 0
	for _, loc := range refPattern.FindAllStringIndex(s, -1) {
		if loc[0] > last {
			t = append(t, part{text: s[last:loc[0]]})
		}
		name := s[loc[0]+1 : loc[1]-1]
		switch {
		case name == "topic":
			t = append(t, part{ref: refTopic})
		case name == "#":
			if !hash {
				return nil, fmt.Errorf("{#} but the topic filter has no # wildcard")
			}
			t = append(t, part{ref: refHash})
		default:
			n, err := strconv.Atoi(name)
			if err != nil || n < 1 {
				return nil, fmt.Errorf("unknown reference {%s}: use {1}..{%d} for the + wildcards, {#} or {topic}", name, max(plus, 1))
			}
			if n > plus {
				return nil, fmt.Errorf("{%d} but the topic filter has %d + wildcards", n, plus)
			}
			t = append(t, part{ref: n})
		}
		last = loc[1]
	}
	if last < len(s) {
		t = append(t, part{text: s[last:]})
	}
	return t, nil
}

func (t template) literal() bool {
	for _, p := range t {
		if p.ref != refNone {
			return false
		}
	}
	return true
}

func (t template) expand(topic string, plus []string, rest string) string {
	if len(t) == 1 && t[0].ref == refNone {
		return t[0].text
	}
	var b strings.Builder
	for _, p := range t {
		switch p.ref {
		case refNone:
			b.WriteString(p.text)
		case refHash:
			b.WriteString(rest)
		case refTopic:
			b.WriteString(topic)
		default:
			b.WriteString(plus[p.ref-1])
		}
	}
	return b.String()
}

// Mapped is what one MQTT message maps to.
type Mapped struct {
	// Measures to publish. They are not validated yet: the sink refuses
	// the invalid ones with a reason.
	Measures []measure.Measure
	// Rejected are the items of a v1 batch payload that break the contract,
	// with reasons naming the item; the other items are in Measures.
	Rejected []measure.Rejection
	// Rule is the position of the rule that matched.
	Rule int
}

// ErrNoRule is returned by Map for a topic no rule matches.
var ErrNoRule = errors.New("no rule matches the topic")

// Map applies the first matching rule to a message: it returns the measures
// of the payload, or an error saying why the message cannot be used
// (ErrNoRule, or a *PayloadError). received is the time of measures whose
// payload gives none.
func (rs *Rules) Map(topic string, payload []byte, received time.Time) (Mapped, error) {
	for i := range rs.rules {
		r := &rs.rules[i]
		plus, rest, ok := r.match(topic)
		if !ok {
			continue
		}
		out := Mapped{Rule: i}
		p, err := parsePayload(payload, r.Spec.Payload)
		if err != nil {
			return out, err
		}
		if p.contract != nil {
			out.Measures, out.Rejected = p.contract.Measures, p.contract.Rejected
			return out, nil
		}
		m := measure.Measure{
			Experiment: r.experiment.expand(topic, plus, rest),
			Sensor:     r.sensor.expand(topic, plus, rest),
			Time:       p.time,
			Value:      p.value,
			Unit:       r.Spec.Unit,
		}
		if m.Time.IsZero() {
			m.Time = received.UTC()
		}
		if p.unit != "" {
			m.Unit = p.unit
		}
		if len(r.tags)+len(p.tags) > 0 {
			m.Tags = make(map[string]string, len(r.tags)+len(p.tags))
			for k, t := range r.tags {
				m.Tags[k] = t.expand(topic, plus, rest)
			}
			for k, v := range p.tags {
				m.Tags[k] = v
			}
		}
		out.Measures = []measure.Measure{m}
		return out, nil
	}
	return Mapped{Rule: -1}, ErrNoRule
}
