package mqtt_test

import (
	"errors"
	"math"
	"testing"

	"github.com/mymonit/mymonit/adapters/mqtt"
)

// FuzzMap maps any topic and payload with the rules of TestMap and checks
// that Map never panics, fails only with ErrNoRule or a *PayloadError, and
// returns finite values with a time whenever it succeeds.
func FuzzMap(f *testing.F) {
	rules, err := mqtt.ParseRules([]byte(rulesYAML))
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []struct{ topic, payload string }{
		{"lab/a/b/temperature", "21.5"},
		{"lab/a/b/temperature", `{"value": 1, "time": 1700000000.5, "unit": "K", "tags": {"a": "b"}}`},
		{"lab/a/b/temperature", `{"value": 1, "time": "2026-11-23T10:00:00Z"}`},
		{"plant/x/y", `{"experiment":"e","sensor":"s","time":"2026-11-23T10:00:00Z","value":1}`},
		{"contract/x", `{"measures":[{"experiment":"e","sensor":"s","time":"2026-11-23T10:00:00Z","value":1}]}`},
		{"raw/x", "-1e-3"},
		{"misc", "[1]"},
		{"$SYS/x", "1"},
	} {
		f.Add(s.topic, []byte(s.payload))
	}
	f.Fuzz(func(t *testing.T, topic string, payload []byte) {
		got, err := rules.Map(topic, payload, received)
		if err != nil {
			var pe *mqtt.PayloadError
			if !errors.Is(err, mqtt.ErrNoRule) && !errors.As(err, &pe) {
				t.Fatalf("unexpected error type %T: %v", err, err)
			}
			if err.Error() == "" || err.Error() == "payload: " {
				t.Fatal("error without a reason")
			}
			return
		}
		for _, m := range got.Measures {
			if math.IsNaN(m.Value) || math.IsInf(m.Value, 0) {
				t.Fatalf("value not finite: %+v", m)
			}
			if m.Time.IsZero() {
				t.Fatalf("measure without a time: %+v", m)
			}
		}
		for _, r := range got.Rejected {
			if r.Reason == "" {
				t.Fatalf("rejection without a reason: %+v", r)
			}
		}
	})
}
