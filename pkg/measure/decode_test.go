package measure_test

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mymonit/mymonit/pkg/measure"
)

// obj builds a measure object from the valid defaults: each pair of args
// replaces a field's raw JSON value, removes it when the value is "-", or
// appends a field the defaults lack (in the given order).
func obj(kv ...string) string {
	fields := []string{"experiment", "sensor", "time", "value"}
	vals := map[string]string{
		"experiment": `"atlas-pixel"`,
		"sensor":     `"hv/module-12/current"`,
		"time":       `"2026-11-23T10:00:00.123456Z"`,
		"value":      `1.25`,
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if _, ok := vals[kv[i]]; !ok {
			fields = append(fields, kv[i])
		}
		vals[kv[i]] = kv[i+1]
	}
	var parts []string
	for _, f := range fields {
		if v := vals[f]; v != "-" {
			parts = append(parts, fmt.Sprintf("%q:%s", f, v))
		}
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// base is the measure obj() describes with no arguments.
func base() measure.Measure {
	return measure.Measure{
		Experiment: "atlas-pixel",
		Sensor:     "hv/module-12/current",
		Time:       time.Date(2026, 11, 23, 10, 0, 0, 123456000, time.UTC),
		Value:      1.25,
	}
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err) // test data
	}
	return t.UTC()
}

func TestDecodeRules(t *testing.T) {
	long := func(n int) string { return `"` + strings.Repeat("a", n) + `"` }
	tags := func(n int) string {
		var kv []string
		for i := range n {
			kv = append(kv, fmt.Sprintf(`"k%d":"v"`, i))
		}
		return "{" + strings.Join(kv, ",") + "}"
	}
	tests := []struct {
		name   string
		body   string
		edit   func(*measure.Measure) // the accepted measure, from base()
		reason string                 // or the rejection reason
	}{
		{name: "valid", body: obj(), edit: func(*measure.Measure) {}},
		{name: "whitespace everywhere", body: " \n\t{ \"experiment\" : \"atlas-pixel\" ,\r\n\"sensor\":\"hv/module-12/current\" , \"time\" :\"2026-11-23T10:00:00.123456Z\", \"value\" : 1.25 } \n", edit: func(*measure.Measure) {}},
		{name: "fields in any order", body: `{"value":1.25,"time":"2026-11-23T10:00:00.123456Z","sensor":"hv/module-12/current","experiment":"atlas-pixel"}`, edit: func(*measure.Measure) {}},

		// experiment
		{name: "experiment one char", body: obj("experiment", `"a"`), edit: func(m *measure.Measure) { m.Experiment = "a" }},
		{name: "experiment digit first", body: obj("experiment", `"0x.y_z-9"`), edit: func(m *measure.Measure) { m.Experiment = "0x.y_z-9" }},
		{name: "experiment 64 bytes", body: obj("experiment", long(64)), edit: func(m *measure.Measure) { m.Experiment = strings.Repeat("a", 64) }},
		{name: "experiment 65 bytes", body: obj("experiment", long(65)), reason: `experiment: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"… must match ^[a-z0-9][a-z0-9._-]{0,63}$`},
		{name: "experiment empty", body: obj("experiment", `""`), reason: "experiment: must not be empty"},
		{name: "experiment upper case", body: obj("experiment", `"Atlas"`), reason: `experiment: "Atlas" must match ^[a-z0-9][a-z0-9._-]{0,63}$`},
		{name: "experiment dash first", body: obj("experiment", `"-atlas"`), reason: `experiment: "-atlas" must match ^[a-z0-9][a-z0-9._-]{0,63}$`},
		{name: "experiment dot first", body: obj("experiment", `".atlas"`), reason: `experiment: ".atlas" must match ^[a-z0-9][a-z0-9._-]{0,63}$`},
		{name: "experiment space", body: obj("experiment", `"atlas pixel"`), reason: `experiment: "atlas pixel" must match ^[a-z0-9][a-z0-9._-]{0,63}$`},
		{name: "experiment non-ASCII", body: obj("experiment", `"été"`), reason: `experiment: "été" must match ^[a-z0-9][a-z0-9._-]{0,63}$`},
		{name: "experiment number", body: obj("experiment", `7`), reason: "experiment: must be a string, got number"},
		{name: "experiment null", body: obj("experiment", `null`), reason: "experiment: must be a string, got null"},
		{name: "experiment missing", body: obj("experiment", "-"), reason: `missing field "experiment"`},
		{name: "experiment escaped", body: obj("experiment", `"atlas\u002dpixel"`), edit: func(*measure.Measure) {}},

		// sensor
		{name: "sensor unicode", body: obj("sensor", `"température/°C 🌡"`), edit: func(m *measure.Measure) { m.Sensor = "température/°C 🌡" }},
		{name: "sensor 128 bytes", body: obj("sensor", long(128)), edit: func(m *measure.Measure) { m.Sensor = strings.Repeat("a", 128) }},
		{name: "sensor 129 bytes", body: obj("sensor", long(129)), reason: "sensor: is 129 bytes, longer than 128"},
		{name: "sensor empty", body: obj("sensor", `""`), reason: "sensor: must not be empty"},
		{name: "sensor NUL", body: obj("sensor", `"a\u0000b"`), reason: "sensor: contains control character U+0000"},
		{name: "sensor tab", body: obj("sensor", `"a\tb"`), reason: "sensor: contains control character U+0009"},
		{name: "sensor DEL", body: obj("sensor", "\"a\x7fb\""), reason: "sensor: contains control character U+007F"},
		{name: "sensor C1 control", body: obj("sensor", `"a\u0085b"`), reason: "sensor: contains control character U+0085"},
		{name: "sensor invalid UTF-8", body: obj("sensor", "\"a\xffb\""), reason: "sensor: is not valid UTF-8"},
		{name: "sensor surrogate pair", body: obj("sensor", `"\ud83d\ude00"`), edit: func(m *measure.Measure) { m.Sensor = "😀" }},
		{name: "sensor lone surrogate is U+FFFD", body: obj("sensor", `"a\ud800b"`), edit: func(m *measure.Measure) { m.Sensor = "a\ufffdb" }},
		{name: "sensor all escapes", body: obj("sensor", `"\"\\\/x\u00e9"`), edit: func(m *measure.Measure) { m.Sensor = `"\/xé` }},
		{name: "sensor array", body: obj("sensor", `["a"]`), reason: "sensor: must be a string, got array"},
		{name: "sensor missing", body: obj("sensor", "-"), reason: `missing field "sensor"`},

		// time
		{name: "time without fraction", body: obj("time", `"2026-11-23T10:00:00Z"`), edit: func(m *measure.Measure) { m.Time = utc("2026-11-23T10:00:00Z") }},
		{name: "time one fractional digit", body: obj("time", `"2026-11-23T10:00:00.5Z"`), edit: func(m *measure.Measure) { m.Time = utc("2026-11-23T10:00:00.5Z") }},
		{name: "time nanoseconds truncated", body: obj("time", `"2026-11-23T10:00:00.123456999Z"`), edit: func(*measure.Measure) {}},
		{name: "time many digits truncated", body: obj("time", `"2026-11-23T10:00:00.1234569999999999Z"`), edit: func(*measure.Measure) {}},
		{name: "time offset normalised to UTC", body: obj("time", `"2026-11-23T11:30:00.123456+01:30"`), edit: func(*measure.Measure) {}},
		{name: "time negative offset crosses a day", body: obj("time", `"2026-11-22T23:00:00-11:00"`), edit: func(m *measure.Measure) { m.Time = utc("2026-11-23T10:00:00Z") }},
		{name: "time -00:00", body: obj("time", `"2026-11-23T10:00:00.123456-00:00"`), edit: func(*measure.Measure) {}},
		{name: "time lower case t and z", body: obj("time", `"2026-11-23t10:00:00.123456z"`), edit: func(*measure.Measure) {}},
		{name: "time escaped", body: obj("time", `"2026-11-23T10:00:00.123456\u005a"`), edit: func(*measure.Measure) {}},
		{name: "time leap day", body: obj("time", `"2024-02-29T00:00:00Z"`), edit: func(m *measure.Measure) { m.Time = utc("2024-02-29T00:00:00Z") }},
		{name: "time leap day 2000", body: obj("time", `"2000-02-29T00:00:00Z"`), edit: func(m *measure.Measure) { m.Time = utc("2000-02-29T00:00:00Z") }},
		{name: "time epoch", body: obj("time", `"1970-01-01T00:00:00Z"`), edit: func(m *measure.Measure) { m.Time = time.Unix(0, 0).UTC() }},
		{name: "time last microsecond", body: obj("time", `"9999-12-31T23:59:59.999999999Z"`), edit: func(m *measure.Measure) { m.Time = utc("9999-12-31T23:59:59.999999Z") }},
		{name: "time words", body: obj("time", `"yesterday"`), reason: `time: "yesterday" is not RFC 3339`},
		{name: "time date only", body: obj("time", `"2026-11-23"`), reason: `time: "2026-11-23" is not RFC 3339`},
		{name: "time space separator", body: obj("time", `"2026-11-23 10:00:00Z"`), reason: `time: "2026-11-23 10:00:00Z" is not RFC 3339`},
		{name: "time without offset", body: obj("time", `"2026-11-23T10:00:00"`), reason: `time: "2026-11-23T10:00:00" is not RFC 3339`},
		{name: "time empty fraction", body: obj("time", `"2026-11-23T10:00:00.Z"`), reason: `time: "2026-11-23T10:00:00.Z" is not RFC 3339`},
		{name: "time short offset", body: obj("time", `"2026-11-23T10:00:00+01"`), reason: `time: "2026-11-23T10:00:00+01" is not RFC 3339`},
		{name: "time trailing text", body: obj("time", `"2026-11-23T10:00:00Zulu"`), reason: `time: "2026-11-23T10:00:00Zulu" is not RFC 3339`},
		{name: "time unix seconds", body: obj("time", `1795428000`), reason: "time: must be a string, got number"},
		{name: "time month 13", body: obj("time", `"2026-13-01T00:00:00Z"`), reason: `time: "2026-13-01T00:00:00Z" is not RFC 3339: month out of range`},
		{name: "time month 0", body: obj("time", `"2026-00-01T00:00:00Z"`), reason: `time: "2026-00-01T00:00:00Z" is not RFC 3339: month out of range`},
		{name: "time November 31", body: obj("time", `"2026-11-31T00:00:00Z"`), reason: `time: "2026-11-31T00:00:00Z" is not RFC 3339: day out of range`},
		{name: "time February 29 2025", body: obj("time", `"2025-02-29T00:00:00Z"`), reason: `time: "2025-02-29T00:00:00Z" is not RFC 3339: day out of range`},
		{name: "time February 29 2100", body: obj("time", `"2100-02-29T00:00:00Z"`), reason: `time: "2100-02-29T00:00:00Z" is not RFC 3339: day out of range`},
		{name: "time day 0", body: obj("time", `"2026-11-00T00:00:00Z"`), reason: `time: "2026-11-00T00:00:00Z" is not RFC 3339: day out of range`},
		{name: "time hour 24", body: obj("time", `"2026-11-23T24:00:00Z"`), reason: `time: "2026-11-23T24:00:00Z" is not RFC 3339: hour out of range`},
		{name: "time minute 60", body: obj("time", `"2026-11-23T10:60:00Z"`), reason: `time: "2026-11-23T10:60:00Z" is not RFC 3339: minute out of range`},
		{name: "time leap second", body: obj("time", `"2016-12-31T23:59:60Z"`), reason: `time: "2016-12-31T23:59:60Z" is not RFC 3339: second out of range`},
		{name: "time offset 24h", body: obj("time", `"2026-11-23T10:00:00+24:00"`), reason: `time: "2026-11-23T10:00:00+24:00" is not RFC 3339: offset out of range`},
		{name: "time before 1970", body: obj("time", `"1969-12-31T23:59:59.999999Z"`), reason: "time: 1969-12-31T23:59:59.999999Z is out of range: the UTC year must be from 1970 to 9999"},
		{name: "time before 1970 in UTC", body: obj("time", `"1970-01-01T00:30:00+01:00"`), reason: "time: 1969-12-31T23:30:00Z is out of range: the UTC year must be from 1970 to 9999"},
		{name: "time after 9999 in UTC", body: obj("time", `"9999-12-31T23:00:00-01:00"`), reason: "time: 10000-01-01T00:00:00Z is out of range: the UTC year must be from 1970 to 9999"},
		{name: "time too long", body: obj("time", `"2026-11-23T10:00:00.`+strings.Repeat("1", 100)+`Z"`), reason: `time: "2026-11-23T10:00:00.11111111111111111111111111111111111111111111"… is not RFC 3339`},
		{name: "time missing", body: obj("time", "-"), reason: `missing field "time"`},

		// value
		{name: "value zero", body: obj("value", `0`), edit: func(m *measure.Measure) { m.Value = 0 }},
		{name: "value negative exponent", body: obj("value", `-12.5E-3`), edit: func(m *measure.Measure) { m.Value = -0.0125 }},
		{name: "value largest float64", body: obj("value", `1.7976931348623157e308`), edit: func(m *measure.Measure) { m.Value = math.MaxFloat64 }},
		{name: "value underflows to zero", body: obj("value", `1e-400`), edit: func(m *measure.Measure) { m.Value = 0 }},
		{name: "value integer", body: obj("value", `42`), edit: func(m *measure.Measure) { m.Value = 42 }},
		{name: "value beyond float64", body: obj("value", `1e309`), reason: `value: "1e309" is out of float64 range`},
		{name: "value beyond -float64", body: obj("value", `-2e308`), reason: `value: "-2e308" is out of float64 range`},
		{name: "value NaN string", body: obj("value", `"NaN"`), reason: `value: must be a finite number, got "NaN"`},
		{name: "value Infinity string", body: obj("value", `"-Infinity"`), reason: `value: must be a finite number, got "-Infinity"`},
		{name: "value inf string", body: obj("value", `"+inf"`), reason: `value: must be a finite number, got "+inf"`},
		{name: "value number as string", body: obj("value", `"1.25"`), reason: `value: must be a number, got string "1.25"`},
		{name: "value null", body: obj("value", `null`), reason: "value: must be a number, got null"},
		{name: "value bool", body: obj("value", `true`), reason: "value: must be a number, got boolean"},
		{name: "value object", body: obj("value", `{"v":1}`), reason: "value: must be a number, got object"},
		{name: "value missing", body: obj("value", "-"), reason: `missing field "value"`},

		// unit
		{name: "unit", body: obj("unit", `"µA"`), edit: func(m *measure.Measure) { m.Unit = "µA" }},
		{name: "unit empty", body: obj("unit", `""`), edit: func(*measure.Measure) {}},
		{name: "unit null", body: obj("unit", `null`), edit: func(*measure.Measure) {}},
		{name: "unit 16 bytes", body: obj("unit", long(16)), edit: func(m *measure.Measure) { m.Unit = strings.Repeat("a", 16) }},
		{name: "unit 17 bytes", body: obj("unit", long(17)), reason: "unit: is 17 bytes, longer than 16"},
		{name: "unit invalid UTF-8", body: obj("unit", "\"\xc3\""), reason: "unit: is not valid UTF-8"},
		{name: "unit number", body: obj("unit", `1`), reason: "unit: must be a string, got number"},

		// tags
		{name: "tags", body: obj("tags", `{"rack":"r3","crate":""}`), edit: func(m *measure.Measure) { m.Tags = map[string]string{"rack": "r3", "crate": ""} }},
		{name: "tags empty object is none", body: obj("tags", `{}`), edit: func(*measure.Measure) {}},
		{name: "tags null is none", body: obj("tags", `null`), edit: func(*measure.Measure) {}},
		{name: "tags 32 entries", body: obj("tags", tags(32)), edit: func(m *measure.Measure) {
			m.Tags = map[string]string{}
			for i := range 32 {
				m.Tags[fmt.Sprintf("k%d", i)] = "v"
			}
		}},
		{name: "tags 33 entries", body: obj("tags", tags(33)), reason: "tags: more than 32 entries"},
		{name: "tags key 64 bytes", body: obj("tags", `{`+long(64)+`:"v"}`), edit: func(m *measure.Measure) { m.Tags = map[string]string{strings.Repeat("a", 64): "v"} }},
		{name: "tags key 65 bytes", body: obj("tags", `{`+long(65)+`:"v"}`), reason: `tags: key "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"… is 65 bytes, longer than 64`},
		{name: "tags empty key", body: obj("tags", `{"":"v"}`), reason: "tags: empty key"},
		{name: "tags value 256 bytes", body: obj("tags", `{"k":`+long(256)+`}`), edit: func(m *measure.Measure) { m.Tags = map[string]string{"k": strings.Repeat("a", 256)} }},
		{name: "tags value 257 bytes", body: obj("tags", `{"k":`+long(257)+`}`), reason: `tags: value of "k" is 257 bytes, longer than 256`},
		{name: "tags key invalid UTF-8", body: obj("tags", "{\"\xff\":\"v\"}"), reason: `tags: key "\xff" is not valid UTF-8`},
		{name: "tags value invalid UTF-8", body: obj("tags", "{\"k\":\"\xff\"}"), reason: `tags: value of "k" is not valid UTF-8`},
		{name: "tags value number", body: obj("tags", `{"k":1}`), reason: `tags: value of "k" must be a string, got number`},
		{name: "tags value null", body: obj("tags", `{"k":null}`), reason: `tags: value of "k" must be a string, got null`},
		{name: "tags duplicate key", body: obj("tags", `{"k":"a","k":"b"}`), reason: `tags: duplicate key "k"`},
		{name: "tags array", body: obj("tags", `["k","v"]`), reason: "tags: must be an object, got array"},
		{name: "tags escaped", body: obj("tags", `{"r\u00e9":"a\nb"}`), edit: func(m *measure.Measure) { m.Tags = map[string]string{"ré": "a\nb"} }},

		// fields
		{name: "unknown field", body: obj("valeu", `1`), reason: `unknown field "valeu"`},
		{name: "field names are case-sensitive", body: obj("value", "-", "Value", `1`), reason: `unknown field "Value"; missing field "value"`},
		{name: "duplicate field", body: obj("value", `1`, "x", `0`, "value", `2`), reason: `unknown field "x"`},
		{name: "repeated field", body: `{"experiment":"a","experiment":"b","sensor":"s","time":"2026-11-23T10:00:00Z","value":1}`, reason: `duplicate field "experiment"`},
		{name: "unknown field with a deep value", body: obj("extra", `{"a":[1,{"b":[true,false,null]}]}`), reason: `unknown field "extra"`},
		{name: "empty object", body: `{}`, reason: `missing field "experiment"; missing field "sensor"; missing field "time"; missing field "value"`},
		{name: "all problems, bounded", body: `{"experiment":"X","sensor":"","time":"now","value":"NaN","unit":1,"tags":[]}`, reason: `experiment: "X" must match ^[a-z0-9][a-z0-9._-]{0,63}$; sensor: must not be empty; time: "now" is not RFC 3339; value: must be a finite number, got "NaN"; and 2 more`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := measure.Decode([]byte(tt.body))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if d.Batch {
				t.Error("Batch set for a single measure")
			}
			var want measure.Decoded
			if tt.edit != nil {
				m := base()
				tt.edit(&m)
				want.Measures = []measure.Measure{m}
			} else {
				raw := strings.TrimSpace(tt.body)
				want.Rejected = []measure.Rejection{{Index: 0, Raw: json.RawMessage(raw), Reason: tt.reason}}
			}
			if diff := cmp.Diff(want, d); diff != "" {
				t.Errorf("Decode(%s) differs (-want +got):\n%s", tt.body, diff)
			}
			// Validate agrees with Decode on accepted measures.
			for _, m := range d.Measures {
				if err := m.Validate(); err != nil {
					t.Errorf("accepted measure does not validate: %v", err)
				}
			}
		})
	}
}

func TestDecodeBatch(t *testing.T) {
	good := obj()
	other := obj("sensor", `"hv/module-13/current"`, "value", `2`, "unit", `"uA"`, "tags", `{"rack":"r3"}`)
	m2 := base()
	m2.Sensor, m2.Value, m2.Unit, m2.Tags = "hv/module-13/current", 2, "uA", map[string]string{"rack": "r3"}

	tests := []struct {
		name     string
		body     string
		measures []measure.Measure
		rejected []measure.Rejection
	}{
		{
			name:     "one item",
			body:     `{"measures":[` + good + `]}`,
			measures: []measure.Measure{base()},
		},
		{
			name:     "items in order",
			body:     "{\n \"measures\" : [ " + good + " ,\n" + other + " ] }\n",
			measures: []measure.Measure{base(), m2},
		},
		{
			name: "mixed batch keeps the good siblings",
			body: `{"measures":[` + strings.Join([]string{
				good,
				obj("time", `"yesterday"`),
				other,
				obj("value", `"NaN"`),
				obj("sensor", "-"),
				obj("valeu", `1`, "value", "-"),
			}, ",") + `]}`,
			measures: []measure.Measure{base(), m2},
			rejected: []measure.Rejection{
				{Index: 1, Raw: json.RawMessage(obj("time", `"yesterday"`)), Reason: `measure 1: time: "yesterday" is not RFC 3339`},
				{Index: 3, Raw: json.RawMessage(obj("value", `"NaN"`)), Reason: `measure 3: value: must be a finite number, got "NaN"`},
				{Index: 4, Raw: json.RawMessage(obj("sensor", "-")), Reason: `measure 4: missing field "sensor"`},
				{Index: 5, Raw: json.RawMessage(obj("valeu", `1`, "value", "-")), Reason: `measure 5: unknown field "valeu"; missing field "value"`},
			},
		},
		{
			name: "items that are not objects",
			body: `{"measures":[1, "x", null, true, [` + good + `], {"measures":[]}, ` + good + `]}`,
			rejected: []measure.Rejection{
				{Index: 0, Raw: json.RawMessage(`1`), Reason: "measure 0: must be a JSON object, got number"},
				{Index: 1, Raw: json.RawMessage(`"x"`), Reason: "measure 1: must be a JSON object, got string"},
				{Index: 2, Raw: json.RawMessage(`null`), Reason: "measure 2: must be a JSON object, got null"},
				{Index: 3, Raw: json.RawMessage(`true`), Reason: "measure 3: must be a JSON object, got boolean"},
				{Index: 4, Raw: json.RawMessage(`[` + good + `]`), Reason: "measure 4: must be a JSON object, got array"},
				{Index: 5, Raw: json.RawMessage(`{"measures":[]}`), Reason: `measure 5: unknown field "measures"; missing field "experiment"; missing field "sensor"; missing field "time"; and 1 more`},
			},
			measures: []measure.Measure{base()},
		},
		{
			name: "every item bad",
			body: `{"measures":[{}]}`,
			rejected: []measure.Rejection{
				{Index: 0, Raw: json.RawMessage(`{}`), Reason: `measure 0: missing field "experiment"; missing field "sensor"; missing field "time"; missing field "value"`},
			},
		},
		{
			name:     "escaped batch key",
			body:     `{"measur\u0065s":[` + good + `]}`,
			measures: []measure.Measure{base()},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := measure.Decode([]byte(tt.body))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			want := measure.Decoded{Measures: tt.measures, Rejected: tt.rejected, Batch: true}
			if diff := cmp.Diff(want, d); diff != "" {
				t.Errorf("Decode differs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeRejectsWholeMessage(t *testing.T) {
	good := obj()
	batch := func(n int) string {
		return `{"measures":[` + strings.TrimSuffix(strings.Repeat(good+",", n), ",") + `]}`
	}
	deep := obj("extra", strings.Repeat("[", 70)+strings.Repeat("]", 70))
	tests := []struct {
		name string
		body string
		want string
	}{
		{"empty", "", `empty message: expected a measure object or a batch {"measures":[...]}`},
		{"blank", " \n\t", `empty message: expected a measure object or a batch {"measures":[...]}`},
		{"null", "null", `message is a JSON null: expected a measure object or a batch {"measures":[...]}`},
		{"array", "[" + good + "]", `message is a JSON array: expected a measure object or a batch {"measures":[...]}`},
		{"number", "42", `message is a JSON number: expected a measure object or a batch {"measures":[...]}`},
		{"string", `"hello"`, `message is a JSON string: expected a measure object or a batch {"measures":[...]}`},
		{"text", "hello", "not JSON: unexpected character 'h' at byte 0"},
		{"truncated", `{"measures":[` + good, "not JSON: unexpected end of message at byte 123"},
		{"unclosed string", `{"experiment":"atl`, "not JSON: unexpected end of message at byte 18"},
		{"trailing data", good + " x", "not JSON: unexpected data after the top-level value at byte 111"},
		{"two objects", good + good, "not JSON: unexpected data after the top-level value at byte 110"},
		{"NaN literal", obj("value", "NaN"), "not JSON: unexpected character 'N' at byte 105"},
		{"leading zero", obj("value", "01"), "not JSON: unexpected character '1' at byte 106"},
		{"plus sign", obj("value", "+1"), "not JSON: unexpected character '+' at byte 105"},
		{"bare fraction", obj("value", "1."), "not JSON: unexpected character '}' at byte 107"},
		{"single quotes", `{'experiment':'a'}`, `not JSON: unexpected character '\'' at byte 1`},
		{"trailing comma", `{"measures":[` + good + `,]}`, "not JSON: unexpected character ']' at byte 124"},
		{"missing colon", `{"value" 1}`, "not JSON: unexpected character '1' at byte 9"},
		{"raw control character", "{\"sensor\":\"a\tb\"}", "not JSON: control character in string at byte 12"},
		{"invalid escape", `{"sensor":"a\qb"}`, `not JSON: invalid escape 'q' in string at byte 12`},
		{"short unicode escape", `{"sensor":"\u12"}`, `not JSON: invalid \u escape in string at byte 11`},
		{"invalid byte", "{\"value\":\xff}", "not JSON: unexpected character byte 0xff at byte 9"},
		{"deep nesting", deep, "message nests JSON deeper than 64 levels at byte 182"},
		{"deep nesting of the message", strings.Repeat("[", 100000), "message nests JSON deeper than 64 levels at byte 65"},
		{"empty batch", `{"measures":[]}`, `empty batch: "measures" has no items`},
		{"empty batch with blanks", `{"measures":[ ]}`, `empty batch: "measures" has no items`},
		{"batch null", `{"measures":null}`, `"measures" must be an array of measures, got null`},
		{"batch object", `{"measures":{}}`, `"measures" must be an array of measures, got object`},
		{"batch with unknown field", `{"measures":[` + good + `],"producer":"x"}`, `batch has unknown field "producer": a batch holds only "measures"`},
		{"batch mixed with a measure", `{"sensor":"s","measures":[` + good + `]}`, `message mixes a batch ("measures") with the measure field "sensor": send one measure or {"measures":[...]}`},
		{"batch with an empty field name", `{"":1,"measures":[` + good + `]}`, `batch has unknown field "": a batch holds only "measures"`},
		{"batch twice", `{"measures":[` + good + `],"measures":[` + good + `]}`, `batch has "measures" twice`},
		{"batch too large", batch(measure.MaxBatch + 1), "batch has more than 10000 measures: split it"},
		{"message too large", `{"measures":[` + strings.Repeat(" ", measure.MaxMessageBytes) + `]}`, "message is 4194319 bytes, larger than the limit of 4194304 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := measure.Decode([]byte(tt.body))
			if err == nil {
				t.Fatalf("Decode accepted the message: %+v", d)
			}
			if err.Error() != tt.want {
				t.Errorf("Decode error\n got: %s\nwant: %s", err, tt.want)
			}
			if !cmp.Equal(d, measure.Decoded{}) {
				t.Errorf("Decode returned data with an error: %+v", d)
			}
		})
	}
}

func TestDecodeMaxBatch(t *testing.T) {
	ms := sample(measure.MaxBatch)
	body, err := measure.Encode(ms)
	if err != nil {
		t.Fatal(err)
	}
	d, err := measure.Decode(body)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ms, d.Measures); diff != "" {
		t.Errorf("a full batch differs after a round trip (-want +got):\n%s", diff)
	}
}

// The reasons of rejections stay short enough for a message header.
func TestDecodeReasonsAreBounded(t *testing.T) {
	huge := strings.Repeat("x", 100000)
	body := fmt.Sprintf(`{"%s":1,"experiment":"%s","sensor":"%s","time":"%s","value":"%s","unit":"%s","tags":{"%s":"%s"}}`,
		huge, huge, huge, huge, huge, huge, huge, huge)
	d, err := measure.Decode([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Rejected) != 1 {
		t.Fatalf("got %d rejections, want 1", len(d.Rejected))
	}
	if n := len(d.Rejected[0].Reason); n > 1024 {
		t.Errorf("reason is %d bytes: %s", n, d.Rejected[0].Reason)
	}
}

// A rejection's Raw does not alias the message body.
func TestDecodeRawIsACopy(t *testing.T) {
	body := []byte(`{"measures":[{"value":1}]}`)
	d, err := measure.Decode(body)
	if err != nil || len(d.Rejected) != 1 {
		t.Fatalf("Decode: %+v, %v", d, err)
	}
	for i := range body {
		body[i] = ' '
	}
	if got := string(d.Rejected[0].Raw); got != `{"value":1}` {
		t.Errorf("Raw changed with the body: %q", got)
	}
}
