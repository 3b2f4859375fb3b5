package measure_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mymonit/mymonit/pkg/measure"
)

// FuzzDecode checks the invariants of Decode on any input. The seeds under
// testdata/fuzz/FuzzDecode hold hand-written edge cases and inputs found by
// earlier fuzzing runs.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(obj()))
	f.Add([]byte(`{"measures":[` + obj("unit", `"uA"`, "tags", `{"rack":"r3"}`) + `,` + obj("value", `"NaN"`) + `]}`))

	f.Fuzz(func(t *testing.T, body []byte) {
		d, err := measure.Decode(body)

		// Syntax is checked as strictly as encoding/json does.
		if err == nil && !json.Valid(body) {
			t.Fatalf("Decode accepted invalid JSON")
		}
		if err != nil {
			if !cmp.Equal(d, measure.Decoded{}) {
				t.Fatalf("Decode returned data next to error %v", err)
			}
			if len(body) <= measure.MaxMessageBytes && json.Valid(body) && strings.HasPrefix(err.Error(), "not JSON") {
				t.Fatalf("Decode calls valid JSON %q", err)
			}
			return
		}

		// Accepted measures are valid and normalised.
		for i, m := range d.Measures {
			if err := m.Validate(); err != nil {
				t.Fatalf("accepted measure %d is invalid: %v", i, err)
			}
			if m.Time.Location() != time.UTC || m.Time.Nanosecond()%1000 != 0 {
				t.Fatalf("accepted measure %d has time %v, not UTC microseconds", i, m.Time)
			}
			if m.Tags != nil && len(m.Tags) == 0 {
				t.Fatalf("accepted measure %d has empty non-nil tags", i)
			}
		}
		for i, r := range d.Rejected {
			if !json.Valid(r.Raw) || r.Reason == "" {
				t.Fatalf("rejection %d: raw %q, reason %q", i, r.Raw, r.Reason)
			}
			if i > 0 && r.Index <= d.Rejected[i-1].Index {
				t.Fatalf("rejections out of order: %+v", d.Rejected)
			}
		}

		// Items: every item is accepted or rejected, in order, and accepted
		// items agree with encoding/json and with Decode on their own.
		var items []json.RawMessage
		if d.Batch {
			var top map[string]json.RawMessage
			if err := json.Unmarshal(body, &top); err != nil {
				t.Fatalf("encoding/json: %v", err)
			}
			if _, ok := top["measures"]; !ok || len(top) != 1 {
				t.Fatalf("batch accepted with top-level fields %v", keys(top))
			}
			if err := json.Unmarshal(top["measures"], &items); err != nil {
				t.Fatalf("encoding/json: %v", err)
			}
		} else {
			items = []json.RawMessage{bytes.TrimSpace(body)}
			if len(d.Measures)+len(d.Rejected) != 1 {
				t.Fatalf("single measure gave %d measures and %d rejections", len(d.Measures), len(d.Rejected))
			}
		}
		if len(d.Measures)+len(d.Rejected) != len(items) {
			t.Fatalf("%d items gave %d measures and %d rejections", len(items), len(d.Measures), len(d.Rejected))
		}
		next, r := 0, 0
		for i, item := range items {
			if r < len(d.Rejected) && d.Rejected[r].Index == i {
				if !bytes.Equal(d.Rejected[r].Raw, item) {
					t.Fatalf("rejection %d has raw %q, item is %q", i, d.Rejected[r].Raw, item)
				}
				r++
				continue
			}
			m := d.Measures[next]
			next++
			checkAgainstStdlib(t, item, m)
			if d.Batch {
				alone, err := measure.Decode(item)
				if err != nil || len(alone.Measures) != 1 || !cmp.Equal(alone.Measures[0], m) {
					t.Fatalf("item %d decodes alone to %+v, %v; in the batch to %+v", i, alone, err, m)
				}
			}
		}
		if r != len(d.Rejected) {
			t.Fatalf("rejections with indexes beyond the items: %+v", d.Rejected[r:])
		}

		// Round trip: accepted measures encode and decode to themselves.
		if len(d.Measures) == 0 {
			return
		}
		enc, err := measure.Encode(d.Measures)
		if err != nil {
			if strings.Contains(err.Error(), "more than the limit") {
				return
			}
			t.Fatalf("Encode of accepted measures: %v", err)
		}
		again, err := measure.Decode(enc)
		if err != nil {
			t.Fatalf("Decode of Encode: %v\n%s", err, enc)
		}
		want := measure.Decoded{Measures: d.Measures, Batch: true}
		if diff := cmp.Diff(want, again); diff != "" {
			t.Fatalf("round trip differs (-want +got):\n%s", diff)
		}
		one, err := measure.EncodeOne(d.Measures[0])
		if err != nil {
			t.Fatalf("EncodeOne: %v", err)
		}
		if again, err := measure.Decode(one); err != nil || len(again.Measures) != 1 || !cmp.Equal(again.Measures[0], d.Measures[0]) {
			t.Fatalf("EncodeOne round trip: %+v, %v", again, err)
		}
	})
}

// checkAgainstStdlib decodes an accepted item with encoding/json and
// time.Parse and compares.
func checkAgainstStdlib(t *testing.T, item []byte, m measure.Measure) {
	t.Helper()
	var std struct {
		Experiment, Sensor, Unit, Time string
		Value                          float64
		Tags                           map[string]string
	}
	if err := json.Unmarshal(item, &std); err != nil {
		t.Fatalf("encoding/json refuses accepted item %q: %v", item, err)
	}
	if len(std.Tags) == 0 {
		std.Tags = nil
	}
	got := struct {
		Experiment, Sensor, Unit string
		Value                    float64
		Tags                     map[string]string
	}{m.Experiment, m.Sensor, m.Unit, m.Value, m.Tags}
	want := struct {
		Experiment, Sensor, Unit string
		Value                    float64
		Tags                     map[string]string
	}{std.Experiment, std.Sensor, std.Unit, std.Value, std.Tags}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("item %q: encoding/json disagrees (-std +Decode):\n%s", item, diff)
	}
	st, err := time.Parse(time.RFC3339Nano, strings.ToUpper(std.Time))
	if err != nil {
		t.Fatalf("time.Parse refuses accepted time %q: %v", std.Time, err)
	}
	if !st.UTC().Truncate(time.Microsecond).Equal(m.Time) {
		t.Fatalf("time %q: time.Parse reads %v, Decode %v", std.Time, st, m.Time)
	}
}

func keys(m map[string]json.RawMessage) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
