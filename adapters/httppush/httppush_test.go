package httppush_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap/zaptest"

	"github.com/mymonit/mymonit/adapters/httppush"
	"github.com/mymonit/mymonit/adapters/internal/amqptest"
	"github.com/mymonit/mymonit/adapters/sink"
	"github.com/mymonit/mymonit/pkg/measure"
	"github.com/mymonit/mymonit/pkg/queue"
)

func TestKeys(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "keys.json")
	key, hash, err := httppush.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(key, httppush.KeyPrefix) || len(key) < 40 || strings.Contains(hash, key) {
		t.Fatalf("key %q hash %q", key, hash)
	}
	if err := httppush.AddProducer(path, httppush.Producer{Name: "lab", KeySHA256: hash, Experiments: []string{"atlas"}, Rate: 10, Burst: 10}); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), key) {
		t.Error("the keys file holds the key in clear")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("keys file mode %v, want 0600", fi.Mode().Perm())
	}
	keys, err := httppush.LoadKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := keys.Lookup(key); !ok || p.Name != "lab" {
		t.Errorf("Lookup(key) = %+v, %v", p, ok)
	}
	if _, ok := keys.Lookup(key + "x"); ok {
		t.Error("a wrong key was accepted")
	}

	tests := []struct {
		name string
		p    httppush.Producer
		want string
	}{
		{"duplicate name", httppush.Producer{Name: "lab", KeySHA256: hash, Experiments: []string{"x"}, Rate: 1, Burst: 1}, `name "lab" is used twice`},
		{"bad hash", httppush.Producer{Name: "b", KeySHA256: "abc", Experiments: []string{"x"}, Rate: 1, Burst: 1}, "key_sha256 is not 64 hex digits"},
		{"no experiments", httppush.Producer{Name: "c", KeySHA256: hash, Rate: 1, Burst: 1}, "experiments is empty"},
		{"bad experiment", httppush.Producer{Name: "d", KeySHA256: hash, Experiments: []string{"Bad"}, Rate: 1, Burst: 1}, `experiment "Bad"`},
		{"no rate", httppush.Producer{Name: "e", KeySHA256: hash, Experiments: []string{"x"}}, "must be positive"},
	}
	for _, tc := range tests {
		if err := httppush.AddProducer(path, tc.p); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	if err := httppush.RemoveProducer(path, "lab"); err != nil {
		t.Fatal(err)
	}
	if _, err := httppush.LoadKeys(filepath.Join(t.TempDir(), "missing.json")); err == nil || !strings.Contains(err.Error(), "key create") {
		t.Errorf("missing file: %v", err)
	}
}

type env struct {
	cfg queue.Config
	url string
	key string // allows atlas and cms, 100/s burst 5
}

func newEnv(t *testing.T) *env {
	t.Helper()
	cfg := amqptest.Config(t)
	log := zaptest.NewLogger(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	pub := queue.NewPublisher(queue.PublisherParams{Config: cfg, Logger: log, Producer: "httppush"})
	t.Cleanup(func() { _ = pub.Close() })
	if err := pub.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	ss := sink.DefaultSettings()
	ss.FlushInterval = 5 * time.Millisecond
	s, err := sink.New(sink.Params{Settings: ss, Publisher: pub, Producer: "httppush", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	path := filepath.Join(t.TempDir(), "keys.json")
	key, hash, err := httppush.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	// A rate this low refills one token per 1000 s: the test sees the
	// burst only, whatever the machine's speed.
	if err := httppush.AddProducer(path, httppush.Producer{Name: "lab", KeySHA256: hash, Experiments: []string{"atlas", "cms"}, Rate: 0.001, Burst: 5}); err != nil {
		t.Fatal(err)
	}
	srv, err := httppush.NewServer(httppush.Settings{HTTPAddr: "127.0.0.1:0", KeysFile: path}, s, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop(context.Background()) })
	return &env{cfg: cfg, url: "http://" + srv.Addr() + "/v1/measures", key: key}
}

func (e *env) post(t *testing.T, key, ctype, body string) (int, httppush.Response) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.url, strings.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var r httppush.Response
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("status %d body %q: %v", resp.StatusCode, raw, err)
	}
	return resp.StatusCode, r
}

// TestPushEndToEnd posts a mixed batch (good, invalid, forbidden), then
// exhausts the rate limit, and reads exactly the good measures back from
// RabbitMQ.
func TestPushEndToEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	body := `{"measures":[
		{"experiment":"atlas","sensor":"t1","time":"2026-11-23T10:00:00Z","value":21.5,"unit":"C","tags":{"rack":"r3"}},
		{"experiment":"atlas","sensor":"t2","time":"2026-11-23T10:00:00Z","value":"NaN"},
		{"experiment":"cms","sensor":"t3","time":"2026-11-23T10:00:01Z","value":1},
		{"experiment":"lhcb","sensor":"t4","time":"2026-11-23T10:00:02Z","value":2}
	]}`
	code, r := e.post(t, e.key, "application/json", body)
	if code != http.StatusBadRequest || r.Accepted != 2 {
		t.Fatalf("mixed batch: %d %+v, want 400 with 2 accepted", code, r)
	}
	want := []httppush.Rejected{
		{Index: 1, Reason: `measure 1: value: must be a finite number, got "NaN"`},
		{Index: 3, Reason: `measure 3: experiment "lhcb" is not allowed for producer "lab"`},
	}
	if diff := cmp.Diff(want, r.Rejected); diff != "" {
		t.Errorf("rejected (-want +got):\n%s", diff)
	}
	code, r = e.post(t, e.key, "", `{"experiment":"cms","sensor":"t5","time":"2026-11-23T10:00:03Z","value":3}`)
	if code != http.StatusOK || r.Accepted != 1 || len(r.Rejected) != 0 {
		t.Fatalf("single measure: %d %+v", code, r)
	}
	// 3 of the burst of 5 are spent: 3 more are refused, all of them.
	batch3 := `{"measures":[{"experiment":"cms","sensor":"x","time":"2026-11-23T10:00:04Z","value":1},{"experiment":"cms","sensor":"y","time":"2026-11-23T10:00:04Z","value":1},{"experiment":"cms","sensor":"z","time":"2026-11-23T10:00:04Z","value":1}]}`
	code, r = e.post(t, e.key, "", batch3)
	if code != http.StatusTooManyRequests || !strings.Contains(r.Error, "rate limit") {
		t.Errorf("over the rate: %d %+v, want 429", code, r)
	}
	tsA := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	wantMs := []measure.Measure{
		{Experiment: "atlas", Sensor: "t1", Time: tsA, Value: 21.5, Unit: "C", Tags: map[string]string{"rack": "r3"}},
		{Experiment: "cms", Sensor: "t3", Time: tsA.Add(time.Second), Value: 1},
		{Experiment: "cms", Sensor: "t5", Time: tsA.Add(3 * time.Second), Value: 3},
	}
	got := amqptest.Measures(t, amqptest.Collect(t, e.cfg, len(wantMs)))
	if diff := cmp.Diff(amqptest.Sort(wantMs), amqptest.Sort(got)); diff != "" {
		t.Errorf("measures on the queue (-want +got):\n%s", diff)
	}
}

// TestPushRefused covers the refusals of a whole request.
func TestPushRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	good := `{"experiment":"atlas","sensor":"t","time":"2026-11-23T10:00:00Z","value":1}`
	six := `{"measures":[` + strings.TrimSuffix(strings.Repeat(good+",", 6), ",") + `]}`
	tests := []struct {
		name, key, ctype, body string
		status                 int
		msg                    string
	}{
		{"no key", "", "", good, 401, "missing API key"},
		{"unknown key", httppush.KeyPrefix + "nope", "", good, 401, "unknown API key"},
		{"not json", e.key, "", "hello", 400, "not JSON"},
		{"wrong shape", e.key, "", `{"measures":[]}`, 400, "empty"},
		{"content type", e.key, "text/plain", good, 415, `Content-Type "text/plain"`},
		{"over the burst", e.key, "", six, 413, "exceed the burst"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, r := e.post(t, tc.key, tc.ctype, tc.body)
			if code != tc.status || !strings.Contains(r.Error, tc.msg) {
				t.Errorf("%d %q, want %d %q", code, r.Error, tc.status, tc.msg)
			}
		})
	}
}
