package measure

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Decoded is what Decode read from a usable message.
type Decoded struct {
	// Measures are the valid measures, in message order.
	Measures []Measure
	// Rejected are the items that broke the contract, in message order.
	Rejected []Rejection
	// Batch is set when the message was a batch {"measures":[...]}.
	Batch bool
}

// Rejection is one item of a message that Decode refused.
type Rejection struct {
	// Index is the item's position in the batch; 0 for a single measure.
	Index int
	// Raw is a copy of the item's JSON.
	Raw json.RawMessage
	// Reason says what is wrong, in words, for example
	// `measure 3: value: must be a finite number, got "NaN"`.
	Reason string
}

// maxDepth bounds the nesting of JSON in a message. The contract needs 4
// levels (batch, array, measure, tags).
const maxDepth = 64

// Decode reads a message body holding one measure or a batch. It returns an
// error only when the message is unusable as a whole; invalid items are
// returned in Decoded.Rejected next to their valid siblings. The package
// documentation lists the rules.
func Decode(body []byte) (Decoded, error) {
	if len(body) > MaxMessageBytes {
		return Decoded{}, fmt.Errorf("message is %d bytes, larger than the limit of %d bytes", len(body), MaxMessageBytes)
	}
	d := decoder{buf: body}
	out, err := d.message()
	if err != nil {
		return Decoded{}, err
	}
	return out, nil
}

// decoder is a single-pass scanner over one message.
type decoder struct {
	buf     []byte
	pos     int
	depth   int
	scratch []byte // unescaped string content
	strs    interner
	sensor  string // last sensor, shared by consecutive items of a series
	it      item
}

// item is the state of the measure being decoded.
type item struct {
	m        Measure
	seen     uint8
	problems problems
}

// Fields of a measure, as bits of item.seen.
const (
	seenExperiment uint8 = 1 << iota
	seenSensor
	seenTime
	seenValue
	seenUnit
	seenTags
)

// syntaxError is a message that is not JSON.
type syntaxError struct {
	msg string
	off int
}

func (e *syntaxError) Error() string {
	return fmt.Sprintf("not JSON: %s at byte %d", e.msg, e.off)
}

// message decodes the top level: one measure or a batch.
func (d *decoder) message() (Decoded, error) {
	d.ws()
	if d.pos == len(d.buf) {
		return Decoded{}, errors.New("empty message: expected a measure object or a batch {\"measures\":[...]}")
	}
	if c := d.buf[d.pos]; c != '{' {
		k := kindOf(c)
		if err := d.skip(); err != nil {
			return Decoded{}, err
		}
		if err := d.end(); err != nil {
			return Decoded{}, err
		}
		return Decoded{}, fmt.Errorf("message is a JSON %s: expected a measure object or a batch {\"measures\":[...]}", k)
	}

	start := d.pos
	d.pos++
	d.depth++
	d.it.reset()
	var (
		out         Decoded
		sawMeasures bool
		sawOther    bool
		other       string // first top-level field other than "measures"
	)
	if err := d.members(func(key []byte) error {
		if string(key) == "measures" {
			if sawMeasures {
				return errors.New(`batch has "measures" twice`)
			}
			sawMeasures = true
			return d.batch(&out)
		}
		if !sawOther {
			sawOther, other = true, string(key)
		}
		return d.field(key)
	}); err != nil {
		return Decoded{}, err
	}
	d.depth--
	end := d.pos
	if err := d.end(); err != nil {
		return Decoded{}, err
	}

	switch {
	case sawMeasures && sawOther:
		if isField(other) {
			return Decoded{}, fmt.Errorf(`message mixes a batch ("measures") with the measure field %s: send one measure or {"measures":[...]}`, quote(other))
		}
		return Decoded{}, fmt.Errorf(`batch has unknown field %s: a batch holds only "measures"`, quote(other))
	case sawMeasures:
		out.Batch = true
		return out, nil
	}
	if m, ok := d.finish(); ok {
		out.Measures = []Measure{m}
	} else {
		out.Rejected = []Rejection{{Raw: clone(d.buf[start:end]), Reason: d.it.problems.String()}}
	}
	return out, nil
}

// isField reports whether name is a field of a measure.
func isField(name string) bool {
	switch name {
	case "experiment", "sensor", "time", "value", "unit", "tags":
		return true
	}
	return false
}

// batch decodes the array of a batch into out.
func (d *decoder) batch(out *Decoded) error {
	d.ws()
	if d.pos >= len(d.buf) || d.buf[d.pos] != '[' {
		k := d.peek()
		if err := d.skip(); err != nil {
			return err
		}
		return fmt.Errorf(`"measures" must be an array of measures, got %s`, k)
	}
	d.pos++
	if d.depth++; d.depth > maxDepth {
		return d.tooDeep()
	}
	d.ws()
	if d.pos < len(d.buf) && d.buf[d.pos] == ']' {
		return errors.New(`empty batch: "measures" has no items`)
	}
	// Every valid measure takes at least ~70 bytes; guess from the size
	// instead of growing the slice item by item.
	out.Measures = make([]Measure, 0, min(len(d.buf)/96+1, MaxBatch))
	for index := 0; ; index++ {
		if index == MaxBatch {
			return fmt.Errorf("batch has more than %d measures: split it", MaxBatch)
		}
		d.ws()
		start := d.pos
		m, ok, err := d.item()
		if err != nil {
			return err
		}
		if ok {
			out.Measures = append(out.Measures, m)
		} else {
			out.Rejected = append(out.Rejected, Rejection{
				Index:  index,
				Raw:    clone(d.buf[start:d.pos]),
				Reason: "measure " + strconv.Itoa(index) + ": " + d.it.problems.String(),
			})
		}
		d.ws()
		if d.pos >= len(d.buf) {
			return d.unexpected()
		}
		switch d.buf[d.pos] {
		case ',':
			d.pos++
		case ']':
			d.pos++
			d.depth--
			if len(out.Measures) == 0 {
				out.Measures = nil
			}
			return nil
		default:
			return d.unexpected()
		}
	}
}

// item decodes one measure of a batch; ok is false when it breaks a rule
// (d.it.problems says how).
func (d *decoder) item() (Measure, bool, error) {
	d.it.reset()
	if d.pos >= len(d.buf) || d.buf[d.pos] != '{' {
		k := d.peek()
		if err := d.skip(); err != nil {
			return Measure{}, false, err
		}
		d.it.problems.add("must be a JSON object, got " + k)
		return Measure{}, false, nil
	}
	d.pos++
	if d.depth++; d.depth > maxDepth {
		return Measure{}, false, d.tooDeep()
	}
	if err := d.members(d.field); err != nil {
		return Measure{}, false, err
	}
	d.depth--
	m, ok := d.finish()
	return m, ok, nil
}

// finish checks that the required fields were present.
func (d *decoder) finish() (Measure, bool) {
	it := &d.it
	for _, f := range [...]struct {
		bit  uint8
		name string
	}{
		{seenExperiment, `missing field "experiment"`},
		{seenSensor, `missing field "sensor"`},
		{seenTime, `missing field "time"`},
		{seenValue, `missing field "value"`},
	} {
		if it.seen&f.bit == 0 {
			it.problems.add(f.name)
		}
	}
	if !it.problems.ok() {
		return Measure{}, false
	}
	return it.m, true
}

// members reads the members of an object whose '{' was consumed, through
// the closing '}'. For each member it calls fn with the unescaped key (valid
// only during the call) and d.pos at the value, which fn must read.
func (d *decoder) members(fn func(key []byte) error) error {
	d.ws()
	if d.pos < len(d.buf) && d.buf[d.pos] == '}' {
		d.pos++
		return nil
	}
	for {
		d.ws()
		if d.pos >= len(d.buf) || d.buf[d.pos] != '"' {
			return d.unexpected()
		}
		key, err := d.str()
		if err != nil {
			return err
		}
		if err := d.expect(':'); err != nil {
			return err
		}
		d.ws()
		if err := fn(key); err != nil {
			return err
		}
		d.ws()
		if d.pos >= len(d.buf) {
			return d.unexpected()
		}
		switch d.buf[d.pos] {
		case ',':
			d.pos++
		case '}':
			d.pos++
			return nil
		default:
			return d.unexpected()
		}
	}
}

// field decodes the value of one field of the current measure.
func (d *decoder) field(key []byte) error {
	it := &d.it
	var bit uint8
	switch string(key) {
	case "experiment":
		bit = seenExperiment
	case "sensor":
		bit = seenSensor
	case "time":
		bit = seenTime
	case "value":
		bit = seenValue
	case "unit":
		bit = seenUnit
	case "tags":
		bit = seenTags
	default:
		it.problems.add("unknown field " + quote(string(key)))
		return d.skip()
	}
	if it.seen&bit != 0 {
		it.problems.add("duplicate field " + quote(string(key)))
		return d.skip()
	}
	it.seen |= bit

	switch bit {
	case seenExperiment:
		b, ok, err := d.stringValue("experiment", false)
		if err != nil || !ok {
			return err
		}
		it.m.Experiment = d.strs.get(b)
		it.problems.add(checkExperiment(it.m.Experiment))
	case seenSensor:
		b, ok, err := d.stringValue("sensor", false)
		if err != nil || !ok {
			return err
		}
		if string(b) != d.sensor {
			d.sensor = string(b)
		}
		it.m.Sensor = d.sensor
		it.problems.add(checkSensor(it.m.Sensor))
	case seenUnit:
		b, ok, err := d.stringValue("unit", true)
		if err != nil || !ok {
			return err
		}
		it.m.Unit = d.strs.get(b)
		it.problems.add(checkUnit(it.m.Unit))
	case seenTime:
		b, ok, err := d.stringValue("time", false)
		if err != nil || !ok {
			return err
		}
		t, problem := parseTime(b)
		it.m.Time = t
		it.problems.add(problem)
	case seenValue:
		return d.value()
	case seenTags:
		return d.tags()
	}
	return nil
}

// stringValue reads a string field; a value of another type is a problem
// (and so is null, unless the field is optional). ok reports a string.
func (d *decoder) stringValue(name string, optional bool) (b []byte, ok bool, err error) {
	if d.pos < len(d.buf) && d.buf[d.pos] == '"' {
		b, err := d.str()
		return b, err == nil, err
	}
	k := d.peek()
	if err := d.skip(); err != nil {
		return nil, false, err
	}
	if !(optional && k == "null") {
		d.it.problems.add(name + ": must be a string, got " + k)
	}
	return nil, false, nil
}

// value reads the value field.
func (d *decoder) value() error {
	it := &d.it
	if d.pos < len(d.buf) && (d.buf[d.pos] == '-' || '0' <= d.buf[d.pos] && d.buf[d.pos] <= '9') {
		num, err := d.number()
		if err != nil {
			return err
		}
		f, err := strconv.ParseFloat(string(num), 64)
		if err != nil || math.IsInf(f, 0) {
			// The syntax was checked, so only the range can be wrong.
			it.problems.add("value: " + quote(string(num)) + " is out of float64 range")
			return nil
		}
		it.m.Value = f
		return nil
	}
	if d.pos < len(d.buf) && d.buf[d.pos] == '"' {
		b, err := d.str()
		if err != nil {
			return err
		}
		if isNonFinite(b) {
			it.problems.add("value: must be a finite number, got " + quote(string(b)))
		} else {
			it.problems.add("value: must be a number, got string " + quote(string(b)))
		}
		return nil
	}
	k := d.peek()
	if err := d.skip(); err != nil {
		return err
	}
	it.problems.add("value: must be a number, got " + k)
	return nil
}

// isNonFinite reports whether s spells NaN or an infinity, the way other
// encoders write them.
func isNonFinite(s []byte) bool {
	if len(s) > 0 && (s[0] == '+' || s[0] == '-') {
		s = s[1:]
	}
	switch strings.ToLower(string(s)) {
	case "nan", "inf", "infinity":
		return true
	}
	return false
}

// tags reads the tags field.
func (d *decoder) tags() error {
	it := &d.it
	if d.pos >= len(d.buf) || d.buf[d.pos] != '{' {
		k := d.peek()
		if err := d.skip(); err != nil {
			return err
		}
		if k != "null" {
			it.problems.add("tags: must be an object, got " + k)
		}
		return nil
	}
	d.pos++
	if d.depth++; d.depth > maxDepth {
		return d.tooDeep()
	}
	var tags map[string]string
	n := 0
	err := d.members(func(kb []byte) error {
		if n++; n == MaxTags+1 {
			it.problems.add(tooManyTags())
		}
		key := d.strs.get(kb)
		if d.pos >= len(d.buf) || d.buf[d.pos] != '"' {
			k := d.peek()
			if err := d.skip(); err != nil {
				return err
			}
			it.problems.add("tags: value of " + quote(key) + " must be a string, got " + k)
			return nil
		}
		vb, err := d.str()
		if err != nil {
			return err
		}
		if n > MaxTags {
			return nil
		}
		if p := checkTagKey(key); p != "" {
			it.problems.add(p)
			return nil
		}
		if len(vb) > MaxTagValueBytes || !utf8.Valid(vb) {
			it.problems.add(checkTagValue(key, string(vb)))
			return nil
		}
		if tags == nil {
			tags = make(map[string]string, 4)
		} else if _, dup := tags[key]; dup {
			it.problems.add("tags: duplicate key " + quote(key))
			return nil
		}
		tags[key] = d.strs.get(vb)
		return nil
	})
	if err != nil {
		return err
	}
	d.depth--
	if len(tags) > 0 {
		it.m.Tags = tags
	}
	return nil
}

func (it *item) reset() {
	it.m = Measure{}
	it.seen = 0
	it.problems.reset()
}

// Scanner primitives. Each leaves d.pos after what it read.

// ws skips whitespace.
func (d *decoder) ws() {
	for d.pos < len(d.buf) {
		switch d.buf[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// end checks that only whitespace follows the top-level value.
func (d *decoder) end() error {
	d.ws()
	if d.pos != len(d.buf) {
		return &syntaxError{"unexpected data after the top-level value", d.pos}
	}
	return nil
}

// expect consumes c after optional whitespace.
func (d *decoder) expect(c byte) error {
	d.ws()
	if d.pos < len(d.buf) && d.buf[d.pos] == c {
		d.pos++
		return nil
	}
	return d.unexpected()
}

func (d *decoder) unexpected() error {
	if d.pos >= len(d.buf) {
		return &syntaxError{"unexpected end of message", d.pos}
	}
	return &syntaxError{"unexpected character " + quoteChar(d.buf[d.pos]), d.pos}
}

func (d *decoder) tooDeep() error {
	return fmt.Errorf("message nests JSON deeper than %d levels at byte %d", maxDepth, d.pos)
}

func quoteChar(c byte) string {
	if c == '\'' {
		return `'\''`
	}
	if c < utf8.RuneSelf {
		return strconv.QuoteRuneToASCII(rune(c))
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

// kindOf names the JSON type a value starting with c has.
func kindOf(c byte) string {
	switch {
	case c == '"':
		return "string"
	case c == '{':
		return "object"
	case c == '[':
		return "array"
	case c == 't' || c == 'f':
		return "boolean"
	case c == 'n':
		return "null"
	case c == '-' || '0' <= c && c <= '9':
		return "number"
	}
	return "invalid value"
}

// peek names the type of the value at d.pos.
func (d *decoder) peek() string {
	if d.pos >= len(d.buf) {
		return "nothing"
	}
	return kindOf(d.buf[d.pos])
}

// str reads a string at d.pos (an opening quote) and returns its content,
// unescaped. The result aliases d.buf or d.scratch and is valid until the
// next read.
func (d *decoder) str() ([]byte, error) {
	start := d.pos + 1
	i := start
	for i < len(d.buf) {
		c := d.buf[i]
		switch {
		case c == '"':
			d.pos = i + 1
			return d.buf[start:i], nil
		case c == '\\':
			return d.escapedStr(start)
		case c < 0x20:
			return nil, &syntaxError{"control character in string", i}
		}
		i++
	}
	d.pos = i
	return nil, d.unexpected()
}

// escapedStr reads the rest of a string that contains escapes.
func (d *decoder) escapedStr(start int) ([]byte, error) {
	out := d.scratch[:0]
	i := start
	for i < len(d.buf) {
		c := d.buf[i]
		switch {
		case c == '"':
			d.pos = i + 1
			d.scratch = out
			return out, nil
		case c < 0x20:
			return nil, &syntaxError{"control character in string", i}
		case c != '\\':
			out = append(out, c)
			i++
			continue
		}
		if i+1 >= len(d.buf) {
			break
		}
		switch e := d.buf[i+1]; e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hex4(d.buf[i+2:])
			if !ok {
				return nil, &syntaxError{`invalid \u escape in string`, i}
			}
			i += 6
			if utf16.IsSurrogate(r) {
				// A valid pair makes one rune; anything else is U+FFFD,
				// as encoding/json does.
				if i+1 < len(d.buf) && d.buf[i] == '\\' && d.buf[i+1] == 'u' {
					if r2, ok := hex4(d.buf[i+2:]); ok {
						if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
							i += 6
							out = utf8.AppendRune(out, dec)
							continue
						}
					}
				}
				r = utf8.RuneError
			}
			out = utf8.AppendRune(out, r)
			continue
		default:
			return nil, &syntaxError{"invalid escape " + quoteChar(e) + " in string", i}
		}
		i += 2
	}
	d.pos = len(d.buf)
	return nil, d.unexpected()
}

// hex4 parses the four hex digits of a \u escape.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// number reads a number at d.pos and returns its text.
func (d *decoder) number() ([]byte, error) {
	b := d.buf
	start := d.pos
	i := start
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for i++; i < len(b) && '0' <= b[i] && b[i] <= '9'; i++ {
		}
	default:
		d.pos = i
		return nil, d.unexpected()
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			d.pos = i
			return nil, d.unexpected()
		}
		for ; i < len(b) && '0' <= b[i] && b[i] <= '9'; i++ {
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			d.pos = i
			return nil, d.unexpected()
		}
		for ; i < len(b) && '0' <= b[i] && b[i] <= '9'; i++ {
		}
	}
	d.pos = i
	return b[start:i], nil
}

// literal reads true, false or null.
func (d *decoder) literal(word string) error {
	for i := 0; i < len(word); i++ {
		if d.pos >= len(d.buf) || d.buf[d.pos] != word[i] {
			return d.unexpected()
		}
		d.pos++
	}
	return nil
}

// skip reads and discards the value at d.pos, checking its syntax.
func (d *decoder) skip() error {
	d.ws()
	if d.pos >= len(d.buf) {
		return d.unexpected()
	}
	switch c := d.buf[d.pos]; {
	case c == '"':
		_, err := d.str()
		return err
	case c == '{':
		d.pos++
		if d.depth++; d.depth > maxDepth {
			return d.tooDeep()
		}
		if err := d.members(func([]byte) error { return d.skip() }); err != nil {
			return err
		}
		d.depth--
		return nil
	case c == '[':
		d.pos++
		if d.depth++; d.depth > maxDepth {
			return d.tooDeep()
		}
		d.ws()
		if d.pos < len(d.buf) && d.buf[d.pos] == ']' {
			d.pos++
			d.depth--
			return nil
		}
		for {
			if err := d.skip(); err != nil {
				return err
			}
			d.ws()
			if d.pos >= len(d.buf) {
				return d.unexpected()
			}
			switch d.buf[d.pos] {
			case ',':
				d.pos++
			case ']':
				d.pos++
				d.depth--
				return nil
			default:
				return d.unexpected()
			}
		}
	case c == 't':
		return d.literal("true")
	case c == 'f':
		return d.literal("false")
	case c == 'n':
		return d.literal("null")
	case c == '-' || '0' <= c && c <= '9':
		_, err := d.number()
		return err
	}
	return d.unexpected()
}

// interner shares the strings of short values that repeat within a message,
// such as the experiment, the unit and tag names and values.
type interner struct {
	s    [16]string
	next int
}

// maxInterned bounds the length of interned strings.
const maxInterned = 64

func (in *interner) get(b []byte) string {
	if len(b) > maxInterned {
		return string(b)
	}
	for _, s := range in.s {
		if string(b) == s {
			return s
		}
	}
	s := string(b)
	in.s[in.next] = s
	in.next = (in.next + 1) % len(in.s)
	return s
}

func clone(b []byte) json.RawMessage {
	return append(json.RawMessage(nil), b...)
}
