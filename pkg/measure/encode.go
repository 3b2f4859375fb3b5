package measure

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// Encode validates the measures and encodes them as a batch message,
// {"measures":[...]}. It refuses an empty batch, more than MaxBatch
// measures, an invalid measure (naming its index) and a result larger than
// MaxMessageBytes.
func Encode(ms []Measure) ([]byte, error) {
	switch {
	case len(ms) == 0:
		return nil, errors.New("encode: empty batch")
	case len(ms) > MaxBatch:
		return nil, fmt.Errorf("encode: %d measures, more than the %d a batch may hold", len(ms), MaxBatch)
	}
	for i, m := range ms {
		if err := m.Validate(); err != nil {
			return nil, fmt.Errorf("encode: measure %d: %w", i, err)
		}
	}
	b := make([]byte, 0, 16+len(ms)*160)
	b = append(b, `{"measures":[`...)
	for i, m := range ms {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendMeasure(b, m)
	}
	b = append(b, "]}"...)
	if len(b) > MaxMessageBytes {
		return nil, fmt.Errorf("encode: batch of %d measures takes %d bytes, more than the limit of %d: split it", len(ms), len(b), MaxMessageBytes)
	}
	return b, nil
}

// EncodeOne validates m and encodes it as a single-measure message.
func EncodeOne(m Measure) ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return appendMeasure(make([]byte, 0, 160), m), nil
}

// EncodeRaw wraps items, typically the Raw of Rejections, in a batch
// message so that only the bad items of a batch are dead-lettered. The
// items are written as they are: they must each be one JSON value, and
// there should be at least one (Decode refuses an empty batch).
func EncodeRaw(items []json.RawMessage) []byte {
	n := len(`{"measures":[]}`) + len(items)
	for _, it := range items {
		n += len(it)
	}
	b := make([]byte, 0, n)
	b = append(b, `{"measures":[`...)
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, it...)
	}
	return append(b, "]}"...)
}

// appendMeasure appends the JSON of a valid measure.
func appendMeasure(b []byte, m Measure) []byte {
	b = append(b, `{"experiment":`...)
	b = appendString(b, m.Experiment)
	b = append(b, `,"sensor":`...)
	b = appendString(b, m.Sensor)
	b = append(b, `,"time":"`...)
	b = AppendTime(b, m.Time)
	b = append(b, `","value":`...)
	b = AppendFloat(b, m.Value)
	if m.Unit != "" {
		b = append(b, `,"unit":`...)
		b = appendString(b, m.Unit)
	}
	if len(m.Tags) > 0 {
		keys := make([]string, 0, len(m.Tags))
		for k := range m.Tags {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, `,"tags":{`...)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendString(b, m.Tags[k])
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

// appendString appends s as a JSON string. s is valid UTF-8 (validated
// before encoding); control characters, quotes and backslashes are escaped.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
