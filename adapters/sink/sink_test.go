package sink_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap/zaptest"

	"github.com/mymonit/mymonit/adapters/sink"
	"github.com/mymonit/mymonit/pkg/config"
	"github.com/mymonit/mymonit/pkg/measure"
	"github.com/mymonit/mymonit/pkg/queue"
)

// fakePublisher records what it is asked to publish. While hold is set,
// Publish waits for a value on release (or its context).
type fakePublisher struct {
	mu      sync.Mutex
	msgs    []queue.Message
	calls   int
	hold    chan struct{}
	failKey string // routing key reported unroutable
}

func (f *fakePublisher) Publish(ctx context.Context, msgs ...queue.Message) error {
	if f.hold != nil {
		select {
		case <-f.hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	var bad []int
	for i, m := range msgs {
		if m.RoutingKey == f.failKey {
			bad = append(bad, i)
			continue
		}
		f.msgs = append(f.msgs, m)
	}
	if len(bad) > 0 {
		return &queue.UnroutableError{Indexes: bad, RoutingKey: f.failKey}
	}
	return nil
}

func (f *fakePublisher) published(t *testing.T) map[string][]int {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string][]int{}
	for _, m := range f.msgs {
		d, err := measure.Decode(m.Body)
		if err != nil {
			t.Fatalf("published body does not decode: %v", err)
		}
		if m.ContentType != measure.ContentType || m.MessageID == "" {
			t.Errorf("message envelope: %+v", m)
		}
		for _, ms := range d.Measures {
			if measure.RoutingKey(ms.Experiment) != m.RoutingKey {
				t.Errorf("routing key %s carries experiment %s", m.RoutingKey, ms.Experiment)
			}
		}
		out[m.RoutingKey] = append(out[m.RoutingKey], len(d.Measures))
	}
	return out
}

func mk(exp string, i int) measure.Measure {
	return measure.Measure{
		Experiment: exp,
		Sensor:     fmt.Sprintf("s%d", i),
		Time:       time.Date(2026, 1, 2, 3, 4, 5, i*1000, time.UTC),
		Value:      float64(i),
	}
}

func newSink(t *testing.T, set sink.Settings, pub sink.Publisher, reg prometheus.Registerer) *sink.Sink {
	t.Helper()
	s, err := sink.New(sink.Params{Settings: set, Publisher: pub, Producer: "test", Logger: zaptest.NewLogger(t), Registerer: reg})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestBatching(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		batchSize int
		adds      [][]measure.Measure
		want      map[string][]int // routing key -> measures per message (sorted by publication)
	}{
		{
			name:      "closes by count, rest on close",
			batchSize: 3,
			adds:      [][]measure.Measure{{mk("a", 0), mk("a", 1), mk("a", 2), mk("a", 3), mk("a", 4), mk("a", 5), mk("a", 6)}},
			want:      map[string][]int{"experiment.a": {3, 3, 1}},
		},
		{
			name:      "one experiment per message",
			batchSize: 2,
			adds:      [][]measure.Measure{{mk("a", 0), mk("b", 0), mk("a", 1), mk("b", 1), mk("c", 0)}},
			want:      map[string][]int{"experiment.a": {2}, "experiment.b": {2}, "experiment.c": {1}},
		},
		{
			name:      "measures of several calls share a message",
			batchSize: 4,
			adds:      [][]measure.Measure{{mk("a", 0)}, {mk("a", 1), mk("a", 2)}, {mk("a", 3)}},
			want:      map[string][]int{"experiment.a": {4}},
		},
		{
			name:      "single-measure messages",
			batchSize: 1,
			adds:      [][]measure.Measure{{mk("a", 0), mk("a", 1)}},
			want:      map[string][]int{"experiment.a": {1, 1}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pub := &fakePublisher{}
			set := sink.DefaultSettings()
			set.BatchSize = tc.batchSize
			set.FlushInterval = time.Minute // only count and Close close messages
			set.InFlight = 1
			s := newSink(t, set, pub, nil)
			var tickets []*sink.Ticket
			for _, ms := range tc.adds {
				tk, err := s.Add(ctxT(t), ms...)
				if err != nil {
					t.Fatalf("Add: %v", err)
				}
				tickets = append(tickets, tk)
			}
			if err := s.Close(ctxT(t)); err != nil {
				t.Fatalf("Close: %v", err)
			}
			for i, tk := range tickets {
				if err := tk.Wait(ctxT(t)); err != nil {
					t.Errorf("ticket %d: %v", i, err)
				}
			}
			if diff := cmp.Diff(tc.want, pub.published(t)); diff != "" {
				t.Errorf("messages (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFlushInterval(t *testing.T) {
	t.Parallel()
	pub := &fakePublisher{}
	set := sink.DefaultSettings()
	set.FlushInterval = 5 * time.Millisecond
	s := newSink(t, set, pub, nil)
	tk, err := s.Add(ctxT(t), mk("a", 0), mk("a", 1))
	if err != nil {
		t.Fatal(err)
	}
	// The sink stays open: only the timer can close this message.
	if err := tk.Wait(ctxT(t)); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if diff := cmp.Diff(map[string][]int{"experiment.a": {2}}, pub.published(t)); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
}

func TestInvalidMeasuresRejected(t *testing.T) {
	t.Parallel()
	pub := &fakePublisher{}
	reg := prometheus.NewRegistry()
	s := newSink(t, sink.DefaultSettings(), pub, reg)
	bad := mk("a", 1)
	bad.Value = math.NaN()
	badExp := mk("Not Valid", 2)
	tk, err := s.Add(ctxT(t), mk("a", 0), bad, badExp, mk("a", 3))
	if err != nil {
		t.Fatal(err)
	}
	if got := tk.Queued(); got != 2 {
		t.Errorf("Queued = %d, want 2", got)
	}
	rej := tk.Rejected()
	if len(rej) != 2 || rej[0].Index != 1 || !strings.Contains(rej[0].Reason, "value") || rej[1].Index != 2 || !strings.Contains(rej[1].Reason, "experiment") {
		t.Errorf("Rejected = %+v", rej)
	}
	if err := s.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := tk.Wait(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string][]int{"experiment.a": {2}}, pub.published(t)); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
	s.Reject("parse_error", 3)
	for name, want := range map[string]float64{
		"mymonit_adapter_measures_received_total":  7,
		"mymonit_adapter_measures_published_total": 2,
		"mymonit_adapter_messages_published_total": 1,
	} {
		if got := counter(t, reg, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	want := `
# HELP mymonit_adapter_measures_rejected_total Items refused or not published, by reason.
# TYPE mymonit_adapter_measures_rejected_total counter
mymonit_adapter_measures_rejected_total{adapter="test",reason="invalid"} 2
mymonit_adapter_measures_rejected_total{adapter="test",reason="parse_error"} 3
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "mymonit_adapter_measures_rejected_total"); err != nil {
		t.Error(err)
	}
}

// counter reads a counter of reg.
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

func TestDefaultSettingsMatchTags(t *testing.T) {
	t.Parallel()
	var got sink.Settings
	if err := config.LoadFrom(func(string) (string, bool) { return "", false }, nil, &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(sink.DefaultSettings(), got); diff != "" {
		t.Errorf("DefaultSettings differ from the tag defaults (-func +tags):\n%s", diff)
	}
}

func TestBackpressure(t *testing.T) {
	t.Parallel()
	pub := &fakePublisher{hold: make(chan struct{})}
	set := sink.DefaultSettings()
	set.BatchSize = 2
	set.Buffer = 4
	set.FlushInterval = time.Millisecond
	s := newSink(t, set, pub, nil)
	first, err := s.Add(ctxT(t), mk("a", 0), mk("a", 1), mk("a", 2), mk("a", 3))
	if err != nil {
		t.Fatalf("Add within the buffer: %v", err)
	}
	if got := s.Buffered(); got != 4 {
		t.Errorf("Buffered = %d, want 4", got)
	}
	// The buffer is full and nothing is confirmed: Add waits, then gives up
	// with its context.
	ctx, cancel := context.WithCancel(ctxT(t))
	cancel()
	tk, err := s.Add(ctx, mk("a", 4), mk("a", 5))
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "buffer full") {
		t.Errorf("Add on a full buffer: %v, want buffer full and context.Canceled", err)
	}
	if tk.Queued() != 0 {
		t.Errorf("Queued = %d, want 0", tk.Queued())
	}
	select {
	case <-tk.Done():
	default:
		t.Error("a ticket with nothing queued is not done")
	}
	// Confirming makes room: a waiting Add proceeds.
	added := make(chan error, 1)
	go func() {
		tk, err := s.Add(ctxT(t), mk("a", 6), mk("a", 7))
		if err == nil {
			err = tk.Wait(ctxT(t))
		}
		added <- err
	}()
	close(pub.hold)
	if err := first.Wait(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := <-added; err != nil {
		t.Fatalf("Add after room was made: %v", err)
	}
	if err := s.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string][]int{"experiment.a": {2, 2, 2}}, pub.published(t)); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
}

func TestAddLargerThanBuffer(t *testing.T) {
	t.Parallel()
	pub := &fakePublisher{}
	set := sink.DefaultSettings()
	set.BatchSize = 10
	set.Buffer = 20
	s := newSink(t, set, pub, nil)
	ms := make([]measure.Measure, 95)
	for i := range ms {
		ms[i] = mk("a", i)
	}
	tk, err := s.Add(ctxT(t), ms...)
	if err != nil {
		t.Fatal(err)
	}
	if err := tk.Wait(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, n := range pub.published(t)["experiment.a"] {
		total += n
	}
	if total != 95 {
		t.Errorf("published %d measures, want 95", total)
	}
}

func TestUnroutableFailsTicket(t *testing.T) {
	t.Parallel()
	pub := &fakePublisher{failKey: "experiment.b"}
	s := newSink(t, sink.DefaultSettings(), pub, nil)
	ta, err := s.Add(ctxT(t), mk("a", 0))
	if err != nil {
		t.Fatal(err)
	}
	tb, err := s.Add(ctxT(t), mk("b", 0))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := ta.Wait(ctxT(t)); err != nil {
		t.Errorf("routable ticket: %v", err)
	}
	if err := tb.Wait(ctxT(t)); !errors.Is(err, queue.ErrUnroutable) {
		t.Errorf("unroutable ticket: %v, want ErrUnroutable", err)
	}
}

func TestCloseGivesUp(t *testing.T) {
	t.Parallel()
	pub := &fakePublisher{hold: make(chan struct{})} // never confirms
	s := newSink(t, sink.DefaultSettings(), pub, nil)
	tk, err := s.Add(ctxT(t), mk("a", 0))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close: %v, want DeadlineExceeded", err)
	}
	if err := tk.Wait(ctxT(t)); err == nil {
		t.Error("a measure never confirmed has a successful ticket")
	}
	if _, err := s.Add(ctxT(t), mk("a", 1)); !errors.Is(err, sink.ErrClosed) {
		t.Errorf("Add after Close: %v, want ErrClosed", err)
	}
}

func TestCloseReleasesWaitingAdd(t *testing.T) {
	t.Parallel()
	pub := &fakePublisher{hold: make(chan struct{})}
	set := sink.DefaultSettings()
	set.BatchSize = 1
	set.Buffer = 1
	s := newSink(t, set, pub, nil)
	if _, err := s.Add(ctxT(t), mk("a", 0)); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := s.Add(ctxT(t), mk("a", 1))
		errc <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_ = s.Close(ctx)
	if err := <-errc; !errors.Is(err, sink.ErrClosed) {
		t.Errorf("waiting Add: %v, want ErrClosed", err)
	}
}

func TestSettingsValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		mod  func(*sink.Settings)
		want string // substring of the error; empty: valid
	}{
		{"defaults", func(*sink.Settings) {}, ""},
		{"batch too large", func(s *sink.Settings) { s.BatchSize = 10001 }, "MYMONIT_ADAPTER_BATCH_SIZE (-batch-size): 10001 is not between 1 and 10000"},
		{"zero buffer", func(s *sink.Settings) { s.Buffer = 0 }, "MYMONIT_ADAPTER_BUFFER (-buffer)"},
		{"buffer below batch", func(s *sink.Settings) { s.Buffer = 10 }, "smaller than MYMONIT_ADAPTER_BATCH_SIZE"},
		{"flush too short", func(s *sink.Settings) { s.FlushInterval = time.Microsecond }, "MYMONIT_ADAPTER_FLUSH_INTERVAL"},
		{"no in-flight", func(s *sink.Settings) { s.InFlight = 0 }, "MYMONIT_ADAPTER_IN_FLIGHT"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := sink.DefaultSettings()
			tc.mod(&s)
			err := s.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Validate: %v, want %q", err, tc.want)
			}
		})
	}
}
