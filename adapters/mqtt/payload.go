package mqtt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mymonit/mymonit/pkg/measure"
)

// PayloadError says why a payload cannot be used.
type PayloadError struct {
	Reason string
}

func (e *PayloadError) Error() string { return "payload: " + e.Reason }

func payloadErr(format string, args ...any) error {
	return &PayloadError{Reason: fmt.Sprintf(format, args...)}
}

// payload is a parsed message payload: a value with optional time, unit and
// tags, or a v1 contract message.
type payload struct {
	value    float64
	time     time.Time
	unit     string
	tags     map[string]string
	contract *measure.Decoded
}

// parsePayload reads a payload in the given format (see the package
// documentation).
func parsePayload(b []byte, format string) (payload, error) {
	trimmed := bytes.TrimSpace(b)
	if len(trimmed) == 0 {
		return payload{}, payloadErr("empty")
	}
	isObject := trimmed[0] == '{'
	switch format {
	case PayloadNumber:
		return parseNumber(trimmed)
	case PayloadJSON:
		if !isObject {
			return parseJSONNumber(trimmed)
		}
		return parseObject(trimmed)
	case PayloadMeasure:
		return parseContract(b)
	}
	// auto
	if !isObject {
		if trimmed[0] == '[' || trimmed[0] == '"' {
			return payload{}, payloadErr("a JSON %s: want a number, an object with value, or a v1 measure", jsonKind(trimmed[0]))
		}
		return parseNumber(trimmed)
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &keys); err != nil {
		return payload{}, payloadErr("not JSON: %s", jsonError(err))
	}
	if _, ok := keys["experiment"]; ok {
		return parseContract(b)
	}
	if _, ok := keys["measures"]; ok {
		return parseContract(b)
	}
	return parseObject(trimmed)
}

func jsonKind(c byte) string {
	if c == '[' {
		return "array"
	}
	return "string"
}

// parseNumber reads a plain decimal number such as 21.5, -3 or 1e-6.
func parseNumber(b []byte) (payload, error) {
	s := string(b)
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || strings.ContainsAny(s, "_xXpP") || !isDecimal(s) {
		return payload{}, payloadErr("%s is not a number", quote(s))
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return payload{}, payloadErr("value: must be a finite number, got %s", quote(s))
	}
	return payload{value: v}, nil
}

// isDecimal refuses what ParseFloat accepts beyond decimal numbers: NaN,
// Inf, hexadecimal and underscores.
func isDecimal(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9', c == '.', c == '-', c == '+', c == 'e', c == 'E':
		default:
			return false
		}
	}
	return true
}

func parseJSONNumber(b []byte) (payload, error) {
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return payload{}, payloadErr("want a JSON number or object: %s", jsonError(err))
	}
	return parseNumber([]byte(n))
}

// object is the JSON object form of a payload.
type object struct {
	Value json.RawMessage   `json:"value"`
	Time  json.RawMessage   `json:"time"`
	Unit  string            `json:"unit"`
	Tags  map[string]string `json:"tags"`
}

func parseObject(b []byte) (payload, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var o object
	if err := dec.Decode(&o); err != nil {
		return payload{}, payloadErr("%s", jsonError(err))
	}
	if dec.More() {
		return payload{}, payloadErr("more than one JSON value")
	}
	if len(o.Value) == 0 || string(o.Value) == "null" {
		return payload{}, payloadErr("value: missing")
	}
	if o.Value[0] == '"' || o.Value[0] == '{' || o.Value[0] == '[' || o.Value[0] == 't' || o.Value[0] == 'f' {
		return payload{}, payloadErr("value: must be a JSON number, got %s", quote(string(o.Value)))
	}
	p, err := parseNumber(o.Value)
	if err != nil {
		var pe *PayloadError
		if errors.As(err, &pe) && !strings.HasPrefix(pe.Reason, "value:") {
			return payload{}, payloadErr("value: %s", pe.Reason)
		}
		return payload{}, err
	}
	if len(o.Time) > 0 && string(o.Time) != "null" {
		t, err := parseTime(o.Time)
		if err != nil {
			return payload{}, err
		}
		p.time = t
	}
	p.unit = o.Unit
	p.tags = o.Tags
	return p, nil
}

// parseTime reads an RFC 3339 string or a number of Unix seconds.
func parseTime(raw json.RawMessage) (time.Time, error) {
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return time.Time{}, payloadErr("time: %s", jsonError(err))
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return time.Time{}, payloadErr("time: %s is not RFC 3339", quote(s))
		}
		return t.UTC(), nil
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || !isDecimal(string(raw)) {
		return time.Time{}, payloadErr("time: want an RFC 3339 string or Unix seconds, got %s", quote(string(raw)))
	}
	if f < 0 || f >= 253402300800 { // 10000-01-01
		return time.Time{}, payloadErr("time: %s Unix seconds is out of range", quote(string(raw)))
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(math.Round(frac*1e6))*1000).UTC(), nil
}

func parseContract(b []byte) (payload, error) {
	d, err := measure.Decode(b)
	if err != nil {
		return payload{}, payloadErr("v1 measure: %v", err)
	}
	return payload{contract: &d}, nil
}

// jsonError shortens encoding/json's messages.
func jsonError(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("invalid JSON at byte %d: %v", se.Offset, se)
	}
	return err.Error()
}

// quote quotes input for a reason, truncated to keep reasons short.
func quote(s string) string {
	const max = 64
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut]) + "..."
	}
	return strconv.Quote(s)
}
