package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/mymonit/mymonit/pkg/measure"
	"github.com/mymonit/mymonit/pkg/queue"
	"github.com/mymonit/mymonit/pkg/storage"
	"github.com/mymonit/mymonit/services/ingest/internal/pipeline"
)

// fakeStore keeps rows in memory. failures makes the next calls of
// UpsertMeasures fail with the given errors; refuse makes any batch holding a
// row with that value fail permanently.
type fakeStore struct {
	mu       sync.Mutex
	exps     map[string]int64
	series   map[storage.SeriesKey]int64
	rows     map[[2]any]storage.Row
	commits  int
	failures []error
	refuse   float64
}

func newFakeStore(exps ...string) *fakeStore {
	s := &fakeStore{exps: map[string]int64{}, series: map[storage.SeriesKey]int64{}, rows: map[[2]any]storage.Row{}, refuse: -1}
	for i, e := range exps {
		s.exps[e] = int64(i + 1)
	}
	return s
}

func (s *fakeStore) ExperimentIDs(_ context.Context, slugs []string) (map[string]int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int64{}
	for _, sl := range slugs {
		if id, ok := s.exps[sl]; ok {
			out[sl] = id
		}
	}
	return out, nil
}

func (s *fakeStore) EnsureSeries(_ context.Context, keys []storage.SeriesKey) (map[storage.SeriesKey]int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[storage.SeriesKey]int64{}
	for _, k := range keys {
		id, ok := s.series[k]
		if !ok {
			id = int64(len(s.series) + 1)
			s.series[k] = id
		}
		out[k] = id
	}
	return out, nil
}

func (s *fakeStore) UpsertMeasures(_ context.Context, rows []storage.Row) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.failures) > 0 {
		err := s.failures[0]
		s.failures = s.failures[1:]
		return err
	}
	for _, r := range rows {
		if r.Value == s.refuse {
			return &mysql.MySQLError{Number: 1366, Message: "Incorrect double value"}
		}
	}
	for _, r := range rows {
		s.rows[[2]any{r.SeriesID, r.Time.UnixMicro()}] = r
	}
	s.commits++
	return nil
}

func (s *fakeStore) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rows)
}

type fakePublisher struct {
	mu   sync.Mutex
	msgs []queue.Message
	fail int
}

func (p *fakePublisher) Publish(_ context.Context, msgs ...queue.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail > 0 {
		p.fail--
		return errors.New("broker unreachable")
	}
	p.msgs = append(p.msgs, msgs...)
	return nil
}

func (p *fakePublisher) reasons() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, m := range p.msgs {
		out = append(out, fmt.Sprint(m.Headers[queue.HeaderReason]))
	}
	return out
}

// acker records acks like a broker channel would.
type acker struct {
	mu    sync.Mutex
	acked uint64 // highest tag acked with multiple
	calls int
	err   error
}

func (a *acker) Ack(tag uint64, multiple bool) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err != nil {
		return a.err
	}
	if !multiple {
		return errors.New("expected ack multiple")
	}
	if tag < a.acked {
		return fmt.Errorf("ack of %d after %d", tag, a.acked)
	}
	a.acked = tag
	a.calls++
	return nil
}
func (a *acker) Nack(uint64, bool, bool) error { return errors.New("unexpected nack") }
func (a *acker) Reject(uint64, bool) error     { return errors.New("unexpected reject") }

func (a *acker) state() (uint64, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.acked, a.calls
}

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func m(exp, sensor string, sec int, v float64) measure.Measure {
	return measure.Measure{Experiment: exp, Sensor: sensor, Time: t0.Add(time.Duration(sec) * time.Second), Value: v}
}

func body(t *testing.T, ms ...measure.Measure) []byte {
	t.Helper()
	if len(ms) == 1 {
		b, err := measure.EncodeOne(ms[0])
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	b, err := measure.Encode(ms)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// run feeds bodies through Handle as one session and returns when Handle does.
func run(t *testing.T, p *pipeline.Pipeline, ack *acker, bodies ...[]byte) {
	t.Helper()
	ch := make(chan amqp.Delivery, len(bodies))
	for i, b := range bodies {
		ch <- amqp.Delivery{Acknowledger: ack, DeliveryTag: uint64(i + 1), Body: b, ContentType: "application/json",
			RoutingKey: "experiment.x", MessageId: fmt.Sprint("m", i+1)}
	}
	close(ch)
	done := make(chan struct{})
	go func() { p.Handle(context.Background(), ch); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Handle did not return")
	}
}

func newPipeline(s *fakeStore, pub *fakePublisher, batch int) *pipeline.Pipeline {
	return pipeline.New(pipeline.Params{Store: s, Publisher: pub, Options: pipeline.Options{
		BatchSize: batch, FlushInterval: 5 * time.Millisecond, RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond}})
}

func TestHandleCommitsAndAcksEverything(t *testing.T) {
	s := newFakeStore("atlas")
	pub := &fakePublisher{}
	ack := &acker{}
	var bodies [][]byte
	for i := range 50 {
		bodies = append(bodies, body(t, m("atlas", "t", i, float64(i))))
	}
	bodies = append(bodies, body(t, m("atlas", "u", 1, 1), m("atlas", "u", 2, 2), m("atlas", "t", 3, 33)))
	run(t, newPipeline(s, pub, 10), ack, bodies...)

	if got := s.count(); got != 52 { // t:0..49 (t:3 rewritten), u:1, u:2
		t.Errorf("rows = %d, want 52", got)
	}
	if tag, calls := ack.state(); tag != 51 || calls < 5 {
		t.Errorf("acked up to %d in %d calls, want 51 in ≥5 (ack multiple per batch)", tag, calls)
	}
	if len(pub.msgs) != 0 {
		t.Errorf("dead letters: %v", pub.reasons())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.rows {
		if r.Time.Equal(t0.Add(3*time.Second)) && r.SeriesID == 1 && r.Value != 33 {
			t.Errorf("t@3 = %v, want the later write 33", r.Value)
		}
	}
}

func TestPoisonIsDeadLetteredAndSiblingsKept(t *testing.T) {
	s := newFakeStore("atlas")
	pub := &fakePublisher{}
	ack := &acker{}
	mixed := []byte(`{"measures":[
		{"experiment":"atlas","sensor":"a","time":"2026-11-23T10:00:00Z","value":1},
		{"experiment":"atlas","sensor":"a","time":"2026-11-23T10:00:01Z","value":"NaN"},
		{"experiment":"nope","sensor":"a","time":"2026-11-23T10:00:02Z","value":3},
		{"experiment":"atlas","sensor":"a","time":"2026-11-23T10:00:03Z","value":4}]}`)
	core, logs := observer.New(zap.InfoLevel)
	p := pipeline.New(pipeline.Params{Store: s, Publisher: pub, Logger: zap.New(core), Options: pipeline.Options{
		BatchSize: 100, FlushInterval: 5 * time.Millisecond, RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond}})
	run(t, p, ack,
		[]byte(`not json`),
		mixed,
		[]byte(`{"measures":[]}`),
		body(t, m("atlas", "b", 0, 7)),
	)
	if got := s.count(); got != 3 {
		t.Errorf("rows = %d, want 3 (two good siblings of the mixed batch and the last message)", got)
	}
	if tag, _ := ack.state(); tag != 4 {
		t.Errorf("acked up to %d, want 4", tag)
	}
	reasons := pub.reasons()
	if len(reasons) != 3 {
		t.Fatalf("dead letters = %q, want 3 (garbage, mixed batch's bad items, empty batch)", reasons)
	}
	for _, want := range []string{"measure 1: value", `measure 2: experiment "nope" is not registered`} {
		if !strings.Contains(reasons[1], want) {
			t.Errorf("mixed batch reason %q lacks %q", reasons[1], want)
		}
	}
	dec, err := measure.Decode(pub.msgs[1].Body)
	if err != nil {
		t.Fatalf("dead letter body of the mixed batch: %v", err)
	}
	if n := len(dec.Measures) + len(dec.Rejected); n != 2 {
		t.Errorf("dead letter of the mixed batch holds %d items, want the 2 rejected", n)
	}
	if pub.msgs[0].Headers[queue.HeaderOriginalMessageID] != "m1" || string(pub.msgs[0].Body) != "not json" {
		t.Errorf("garbage dead letter = %+v", pub.msgs[0])
	}
	// One log line per dead letter, for the audit dashboard.
	var lines []string
	for _, e := range logs.FilterMessage("dead letter").All() {
		f := e.ContextMap()
		lines = append(lines, fmt.Sprintf("%v %v %v %v", f["event.action"], f["mymonit.dead_letter.kind"], f["mymonit.dead_letter.items"], f["mymonit.dead_letter.message_id"]))
	}
	want := []string{
		"measure.dead_letter malformed_message 1 m1",
		"measure.dead_letter invalid_measure 2 m2", // tie between invalid and unknown: by name
		"measure.dead_letter malformed_message 1 m3",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("dead letter log lines:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

func TestDatabaseRefusalIsolatesTheMeasure(t *testing.T) {
	s := newFakeStore("atlas")
	s.refuse = 666
	pub := &fakePublisher{}
	ack := &acker{}
	run(t, newPipeline(s, pub, 100), ack,
		body(t, m("atlas", "a", 0, 1), m("atlas", "a", 1, 666), m("atlas", "a", 2, 3)),
		body(t, m("atlas", "b", 0, 4)),
	)
	if got := s.count(); got != 3 {
		t.Errorf("rows = %d, want 3", got)
	}
	if r := pub.reasons(); len(r) != 1 || !strings.Contains(r[0], "measure 1: refused by the database") {
		t.Errorf("dead letters = %q", r)
	}
	if tag, _ := ack.state(); tag != 2 {
		t.Errorf("acked up to %d, want 2", tag)
	}
}

func TestRetriesUntilTheDatabaseAndBrokerAreBack(t *testing.T) {
	s := newFakeStore("atlas")
	s.failures = []error{mysql.ErrInvalidConn, &mysql.MySQLError{Number: 1213, Message: "Deadlock"}}
	pub := &fakePublisher{fail: 2}
	ack := &acker{}
	p := newPipeline(s, pub, 100)
	run(t, p, ack, body(t, m("atlas", "a", 0, 1)), []byte(`{}`))
	if got := s.count(); got != 1 {
		t.Errorf("rows = %d, want 1", got)
	}
	if len(pub.msgs) != 1 {
		t.Errorf("dead letters = %d, want 1", len(pub.msgs))
	}
	if tag, _ := ack.state(); tag != 2 {
		t.Errorf("acked up to %d, want 2", tag)
	}
	if !p.Healthy() {
		t.Error("pipeline unhealthy after recovery")
	}
}

func TestShutdownAbandonsWithoutAckWhenTheDatabaseStaysDown(t *testing.T) {
	s := newFakeStore("atlas")
	for range 1000 {
		s.failures = append(s.failures, mysql.ErrInvalidConn)
	}
	ack := &acker{}
	p := pipeline.New(pipeline.Params{Store: s, Publisher: &fakePublisher{}, Options: pipeline.Options{
		BatchSize: 1, DrainTimeout: 50 * time.Millisecond, RetryMin: time.Millisecond, RetryMax: 2 * time.Millisecond}})
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan amqp.Delivery, 1)
	ch <- amqp.Delivery{Acknowledger: ack, DeliveryTag: 1, Body: body(t, m("atlas", "a", 0, 1))}
	done := make(chan struct{})
	go func() { p.Handle(ctx, ch); close(done) }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	close(ch)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Handle did not give up after the drain timeout")
	}
	if tag, _ := ack.state(); tag != 0 {
		t.Errorf("acked %d although nothing was committed", tag)
	}
	if p.Healthy() {
		t.Error("pipeline reports healthy while the database is down")
	}
}

func TestReasonIsBounded(t *testing.T) {
	var rs []string
	for i := range 30 {
		rs = append(rs, fmt.Sprintf("measure %d: bad", i))
	}
	got := pipeline.Reason(rs)
	if !strings.HasSuffix(got, "; and 10 more") || strings.Contains(got, "measure 20") {
		t.Errorf("Reason = %q", got)
	}
}
