package mqtt_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mymonit/mymonit/adapters/mqtt"
	"github.com/mymonit/mymonit/pkg/measure"
)

var received = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

const rulesYAML = `
rules:
  - topic: lab/+/+/temperature
    experiment: "{1}"
    sensor: "{2}/temperature"
    unit: degC
    tags: {room: "{2}", src: mqtt}
  - topic: plant/#
    experiment: plant
    sensor: "{#}"
  - topic: raw/+
    experiment: raw
    sensor: "{topic}"
    payload: number
  - topic: contract/#
    experiment: unused
    sensor: unused
    payload: measure
  - topic: "#"
    experiment: catchall
    sensor: "{#}"
    payload: json
`

func TestMap(t *testing.T) {
	rules, err := mqtt.ParseRules([]byte(rulesYAML))
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm.UTC()
	}
	tests := []struct {
		name     string
		topic    string
		payload  string
		want     []measure.Measure
		rejected []string
		rule     int
	}{
		{
			name: "plain number, + wildcards captured", topic: "lab/atlas-pixel/r3/temperature", payload: " 21.5\n",
			want: []measure.Measure{{Experiment: "atlas-pixel", Sensor: "r3/temperature", Time: received, Value: 21.5, Unit: "degC", Tags: map[string]string{"room": "r3", "src": "mqtt"}}},
		},
		{
			name: "JSON object: time, unit and tags from the payload", topic: "lab/cms/r1/temperature",
			payload: `{"value": -3e-2, "time": "2026-11-23T11:00:00.5+01:00", "unit": "K", "tags": {"probe": "p1", "src": "probe"}}`,
			want:    []measure.Measure{{Experiment: "cms", Sensor: "r1/temperature", Time: at("2026-11-23T10:00:00.5Z"), Value: -0.03, Unit: "K", Tags: map[string]string{"room": "r1", "src": "probe", "probe": "p1"}}},
		},
		{
			name: "JSON object with Unix seconds", topic: "plant/hall/a/power", payload: `{"value": 7, "time": 1700000000.25}`,
			want: []measure.Measure{{Experiment: "plant", Sensor: "hall/a/power", Time: at("2023-11-14T22:13:20.25Z"), Value: 7}},
			rule: 1,
		},
		{
			name: "# matches the parent level too", topic: "plant", payload: "1",
			want: []measure.Measure{{Experiment: "plant", Sensor: "", Time: received, Value: 1}},
			rule: 1,
		},
		{
			name: "{topic}", topic: "raw/x1", payload: "42",
			want: []measure.Measure{{Experiment: "raw", Sensor: "raw/x1", Time: received, Value: 42}},
			rule: 2,
		},
		{
			name: "v1 measure published as it is", topic: "lab/x/y/temperature",
			payload: `{"experiment":"atlas","sensor":"s1","time":"2026-11-23T10:00:00Z","value":1.25}`,
			want:    []measure.Measure{{Experiment: "atlas", Sensor: "s1", Time: at("2026-11-23T10:00:00Z"), Value: 1.25}},
		},
		{
			name: "v1 batch, the bad item rejected beside the good one", topic: "contract/a",
			payload:  `{"measures":[{"experiment":"atlas","sensor":"s1","time":"2026-11-23T10:00:00Z","value":1},{"experiment":"atlas","sensor":"s2","time":"2026-11-23T10:00:00Z","value":"NaN"}]}`,
			want:     []measure.Measure{{Experiment: "atlas", Sensor: "s1", Time: at("2026-11-23T10:00:00Z"), Value: 1}},
			rejected: []string{`measure 1: value: must be a finite number, got "NaN"`},
			rule:     3,
		},
		{
			name: "JSON number in json mode", topic: "misc/a/b", payload: "3.5",
			want: []measure.Measure{{Experiment: "catchall", Sensor: "misc/a/b", Time: received, Value: 3.5}},
			rule: 4,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := rules.Map(tt.topic, []byte(tt.payload), received)
			if err != nil {
				t.Fatal(err)
			}
			if got.Rule != tt.rule {
				t.Errorf("rule %d applied, want %d", got.Rule, tt.rule)
			}
			if diff := cmp.Diff(tt.want, got.Measures); diff != "" {
				t.Errorf("measures (-want +got):\n%s", diff)
			}
			var reasons []string
			for _, r := range got.Rejected {
				reasons = append(reasons, r.Reason)
			}
			if diff := cmp.Diff(tt.rejected, reasons); diff != "" {
				t.Errorf("rejected (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMapBadPayloads(t *testing.T) {
	rules, err := mqtt.ParseRules([]byte(rulesYAML))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		topic, payload, reason string
	}{
		{"lab/a/b/temperature", "", "payload: empty"},
		{"lab/a/b/temperature", "  \n", "payload: empty"},
		{"lab/a/b/temperature", "warm", `payload: "warm" is not a number`},
		{"lab/a/b/temperature", "NaN", `payload: "NaN" is not a number`},
		{"lab/a/b/temperature", "0x10", `payload: "0x10" is not a number`},
		{"lab/a/b/temperature", "1e999", `payload: "1e999" is not a number`},
		{"lab/a/b/temperature", `"21.5"`, "payload: a JSON string: want a number, an object with value, or a v1 measure"},
		{"lab/a/b/temperature", `[1]`, "payload: a JSON array"},
		{"lab/a/b/temperature", `{"value": "21"}`, `payload: value: must be a JSON number, got "\"21\""`},
		{"lab/a/b/temperature", `{"value": 1, "tags": {"a": 1}}`, "payload: json: cannot unmarshal number into Go struct field"},
		{"lab/a/b/temperature", `{"valeu": 21}`, `payload: json: unknown field "valeu"`},
		{"lab/a/b/temperature", `{"unit": "K"}`, "payload: value: missing"},
		{"lab/a/b/temperature", `{"value": 1, "time": "yesterday"}`, `payload: time: "yesterday" is not RFC 3339`},
		{"lab/a/b/temperature", `{"value": 1, "time": -5}`, `payload: time: "-5" Unix seconds is out of range`},
		{"lab/a/b/temperature", `{"value": 1`, "payload: not JSON"},
		{"lab/a/b/temperature", `{"measures": []}`, "payload: v1 measure:"},
		{"raw/x", `{"value": 1}`, `payload: "{\"value\": 1}" is not a number`},
		{"contract/x", `21`, "payload: v1 measure:"},
	}
	for _, tt := range tests {
		t.Run(tt.payload, func(t *testing.T) {
			_, err := rules.Map(tt.topic, []byte(tt.payload), received)
			var pe *mqtt.PayloadError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v, want a *PayloadError", err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error %q does not say %q", err, tt.reason)
			}
		})
	}
}

func TestMapNoRule(t *testing.T) {
	rules, err := mqtt.NewRules(mqtt.RuleSpec{Topic: "lab/+", Experiment: "lab", Sensor: "{1}"}, mqtt.RuleSpec{Topic: "#", Experiment: "all", Sensor: "{#}"})
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{"$SYS/broker/uptime", "$SYS"} {
		if _, err := rules.Map(topic, []byte("1"), received); !errors.Is(err, mqtt.ErrNoRule) {
			t.Errorf("%s: error %v, want ErrNoRule (wildcards do not match $ topics)", topic, err)
		}
	}
	only, err := mqtt.NewRules(mqtt.RuleSpec{Topic: "lab/+", Experiment: "lab", Sensor: "{1}"})
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{"lab", "lab/a/b", "other/a"} {
		if _, err := only.Map(topic, []byte("1"), received); !errors.Is(err, mqtt.ErrNoRule) {
			t.Errorf("%s: error %v, want ErrNoRule", topic, err)
		}
	}
	if got := rules.Filters(); !cmp.Equal(got, []string{"lab/+", "#"}) {
		t.Errorf("filters %v", got)
	}
}

func TestParseRulesErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		want []string
	}{
		{"empty", "", []string{"no rules"}},
		{"unknown field with its line", "rules:\n  - topic: a\n    experiment: e\n    sensr: s\n", []string{"line 4", "sensr"}},
		{
			"every bad field named with its rule and line",
			"rules:\n" +
				"  - topic: a/#/b\n    experiment: e\n    sensor: s\n" +
				"  - topic: a/+\n    experiment: \"{2}\"\n    sensor: \"{#}\"\n    tags: {k: \"{x}\"}\n    payload: xml\n" +
				"  - topic: a\n    experiment: Bad\n    unit: a-very-long-unit-name\n",
			[]string{
				`rules[0] (line 2): topic "a/#/b": # must be the last level`,
				`rules[1] (line 5): experiment: {2} but the topic filter has 1 + wildcards`,
				`rules[1] (line 5): sensor: {#} but the topic filter has no # wildcard`,
				`rules[1] (line 5): tags: k: unknown reference {x}`,
				`rules[1] (line 5): payload "xml": must be auto, number, json or measure`,
				`rules[2] (line 10): experiment: "Bad" must match`,
				`rules[2] (line 10): sensor: missing`,
				`rules[2] (line 10): unit "a-very-long-unit-name": longer than 16 bytes`,
			},
		},
		{"+ inside a level", "rules:\n  - {topic: a+/b, experiment: e, sensor: s}\n", []string{"+ must stand alone"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := mqtt.ParseRules([]byte(tt.file))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
		})
	}
}
