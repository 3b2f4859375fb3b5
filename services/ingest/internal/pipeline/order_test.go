package pipeline_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/mymonit/mymonit/pkg/storage"
	"github.com/mymonit/mymonit/services/ingest/internal/pipeline"
)

// gateStore commits the batch holding value v only once gate v is opened,
// and never the batches of the values in fail (their commits fail as a lost
// connection does, so the pipeline retries them until it gives up). It
// records the order in which batches committed.
type gateStore struct {
	*fakeStore

	mu      sync.Mutex
	gates   map[float64]chan struct{}
	fail    map[float64]bool
	order   []float64        // first value of each committed batch
	entered map[float64]bool // batches that reached UpsertMeasures
	changed chan struct{}    // closed and replaced on every commit
}

func newGateStore(fail ...float64) *gateStore {
	s := &gateStore{fakeStore: newFakeStore("atlas"), gates: map[float64]chan struct{}{},
		fail: map[float64]bool{}, entered: map[float64]bool{}, changed: make(chan struct{})}
	for _, v := range fail {
		s.fail[v] = true
	}
	return s
}

func (s *gateStore) gate(v float64) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.gates[v]
	if !ok {
		g = make(chan struct{})
		s.gates[v] = g
	}
	return g
}

func (s *gateStore) open(v float64) { close(s.gate(v)) }

func (s *gateStore) UpsertMeasures(ctx context.Context, rows []storage.Row) error {
	v := rows[0].Value
	s.mu.Lock()
	s.entered[v] = true
	fail := s.fail[v]
	s.mu.Unlock()
	if fail {
		return mysql.ErrInvalidConn
	}
	<-s.gate(v)
	if err := s.fakeStore.UpsertMeasures(ctx, rows); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.order = append(s.order, v)
	close(s.changed)
	s.changed = make(chan struct{})
	return nil
}

// waitCommitted waits until the batch of value v committed.
func (s *gateStore) waitCommitted(t *testing.T, v float64) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		s.mu.Lock()
		done, ch := slices.Contains(s.order, v), s.changed
		s.mu.Unlock()
		if done {
			return
		}
		select {
		case <-ch:
		case <-timeout:
			t.Fatalf("batch %v never committed", v)
		}
	}
}

func (s *gateStore) hasEntered(v float64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.entered[v]
}

func (s *gateStore) committedOrder() []float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.order)
}

// broker acknowledges deliveries as a RabbitMQ channel does: ack(multiple)
// of tag n acks every unacked delivery up to n, and acking a delivery that
// is not outstanding is an error (PRECONDITION_FAILED, which would close the
// channel). refuse lists tags whose ack fails as on a lost channel.
type broker struct {
	mu         sync.Mutex
	delivered  uint64
	acked      map[uint64]bool
	refuse     map[uint64]bool
	multiples  int
	singles    int
	violations []string
}

func newBroker(delivered uint64, refuse ...uint64) *broker {
	b := &broker{delivered: delivered, acked: map[uint64]bool{}, refuse: map[uint64]bool{}}
	for _, r := range refuse {
		b.refuse[r] = true
	}
	return b
}

func (b *broker) Ack(tag uint64, multiple bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.refuse[tag] {
		return amqp.ErrClosed
	}
	if tag == 0 || tag > b.delivered || b.acked[tag] {
		b.violations = append(b.violations, fmt.Sprintf("ack of tag %d that is not outstanding", tag))
		return nil
	}
	if !multiple {
		b.singles++
		b.acked[tag] = true
		return nil
	}
	b.multiples++
	for t := uint64(1); t <= tag; t++ {
		b.acked[t] = true
	}
	return nil
}

func (b *broker) Nack(tag uint64, _, _ bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.violations = append(b.violations, fmt.Sprintf("nack of %d", tag))
	return nil
}

func (b *broker) Reject(tag uint64, _ bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.violations = append(b.violations, fmt.Sprintf("reject of %d", tag))
	return nil
}

func (b *broker) ackedTags() []uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []uint64
	for t := uint64(1); t <= b.delivered; t++ {
		if b.acked[t] {
			out = append(out, t)
		}
	}
	return out
}

// Batches commit concurrently in whatever order the database finishes them,
// but their acks keep delivery order, and a batch that is not committed is
// never acked, in particular not by a later batch's ack(multiple).
func TestOrderedAcksOfConcurrentWriters(t *testing.T) {
	for _, tc := range []struct {
		name    string
		writers int
		release []float64 // gate opening order; after each, wait for its commit (not for failing ones)
		fail    []float64 // batches whose commits fail until the pipeline gives up
		refuse  []uint64  // deliveries whose ack fails
		want    []uint64  // acked deliveries
		singles bool      // some deliveries were acked one by one
	}{
		{name: "in order", writers: 3, release: []float64{1, 2, 3, 4, 5},
			want: []uint64{1, 2, 3, 4, 5}},
		{name: "reversed within the writers", writers: 3, release: []float64{3, 2, 1, 5, 4},
			want: []uint64{1, 2, 3, 4, 5}},
		{name: "later batch first", writers: 2, release: []float64{2, 1, 4, 3, 5},
			want: []uint64{1, 2, 3, 4, 5}},
		{name: "one writer", writers: 1, release: []float64{1, 2, 3, 4, 5},
			want: []uint64{1, 2, 3, 4, 5}},
		{name: "middle batch abandoned, successors committed first", writers: 3, fail: []float64{2}, release: []float64{3, 1, 4, 5},
			want: []uint64{1, 3, 4, 5}, singles: true},
		{name: "middle batch abandoned after predecessor", writers: 2, fail: []float64{2}, release: []float64{1, 3, 4, 5},
			want: []uint64{1, 3, 4, 5}, singles: true},
		{name: "first batch abandoned", writers: 3, fail: []float64{1}, release: []float64{3, 2, 4, 5},
			want: []uint64{2, 3, 4, 5}, singles: true},
		{name: "last batch abandoned", writers: 2, fail: []float64{5}, release: []float64{2, 1, 3, 4},
			want: []uint64{1, 2, 3, 4}},
		{name: "two batches abandoned", writers: 3, fail: []float64{2, 4}, release: []float64{3, 1, 5},
			want: []uint64{1, 3, 5}, singles: true},
		{name: "ack refused, successor committed first", writers: 3, refuse: []uint64{2}, release: []float64{3, 2, 1, 4, 5},
			want: []uint64{1, 3, 4, 5}, singles: true},
		{name: "first ack refused", writers: 2, refuse: []uint64{1}, release: []float64{2, 1, 3, 4, 5},
			want: []uint64{2, 3, 4, 5}, singles: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 5
			s := newGateStore(tc.fail...)
			brk := newBroker(n, tc.refuse...)
			p := pipeline.New(pipeline.Params{Store: s, Publisher: &fakePublisher{}, Options: pipeline.Options{
				BatchSize: 1, Writers: tc.writers, DrainTimeout: 50 * time.Millisecond,
				RetryMin: time.Millisecond, RetryMax: 2 * time.Millisecond}})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if len(tc.fail) > 0 {
				// A batch is abandoned only once shutdown waited the drain
				// timeout; the others commit and ack meanwhile.
				cancel()
			}
			ch := make(chan amqp.Delivery, n)
			for i := range n {
				ch <- amqp.Delivery{Acknowledger: brk, DeliveryTag: uint64(i + 1), ContentType: "application/json",
					Body: body(t, m("atlas", "s", i, float64(i+1)))}
			}
			close(ch)
			done := make(chan struct{})
			go func() { p.Handle(ctx, ch); close(done) }()
			for _, v := range tc.release {
				s.open(v)
				s.waitCommitted(t, v)
			}
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Handle did not return")
			}

			if brk.violations != nil {
				t.Errorf("broker violations: %q", brk.violations)
			}
			if got := brk.ackedTags(); !slices.Equal(got, tc.want) {
				t.Errorf("acked %v, want %v", got, tc.want)
			}
			if singles := brk.singles > 0; singles != tc.singles {
				t.Errorf("%d single and %d multiple acks; want single acks: %v", brk.singles, brk.multiples, tc.singles)
			}
			if got, want := s.committedOrder(), tc.release; !slices.Equal(got, want) {
				t.Errorf("commit order %v, want the release order %v", got, want)
			}
		})
	}
}

// A measure repeated in a later batch is written after the earlier one,
// although the later batch's commit could finish first: the later write
// wins, as with one writer.
func TestLaterWriteOfAnIdentityWins(t *testing.T) {
	s := newGateStore()
	brk := newBroker(3)
	p := pipeline.New(pipeline.Params{Store: s, Publisher: &fakePublisher{}, Options: pipeline.Options{
		BatchSize: 1, Writers: 3, RetryMin: time.Millisecond, RetryMax: 2 * time.Millisecond}})
	ch := make(chan amqp.Delivery, 3)
	for i, ms := range [][]byte{
		body(t, m("atlas", "dup", 0, 1)),
		body(t, m("atlas", "dup", 0, 2)), // same identity as batch 1
		body(t, m("atlas", "other", 0, 3)),
	} {
		ch <- amqp.Delivery{Acknowledger: brk, DeliveryTag: uint64(i + 1), ContentType: "application/json", Body: ms}
	}
	close(ch)
	done := make(chan struct{})
	go func() { p.Handle(context.Background(), ch); close(done) }()

	// Batch 2 may commit at once; batch 3, independent, commits while
	// batch 1 is still open, so the writers did run concurrently.
	s.open(2)
	s.open(3)
	s.waitCommitted(t, 3)
	if s.hasEntered(2) {
		t.Error("batch 2 reached the database before batch 1, which holds the same measure, was written")
	}
	s.open(1)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Handle did not return")
	}
	if got := s.committedOrder(); !slices.Equal(got, []float64{3, 1, 2}) {
		t.Errorf("commit order %v, want [3 1 2]", got)
	}
	s.fakeStore.mu.Lock()
	dup := s.rows[[2]any{s.series[storage.SeriesKey{ExperimentID: 1, Sensor: "dup"}], t0.UnixMicro()}]
	s.fakeStore.mu.Unlock()
	if dup.Value != 2 {
		t.Errorf("dup@t0 = %v, want the later write 2", dup.Value)
	}
	if got := brk.ackedTags(); !slices.Equal(got, []uint64{1, 2, 3}) {
		t.Errorf("acked %v, want [1 2 3]", got)
	}
}

// A batch also closes at the window / (writers + 1) messages, so that the
// batches in flight fit the prefetch window however few measures each
// message holds.
func TestBatchClosesAtWindowShare(t *testing.T) {
	s := newFakeStore("atlas")
	brk := newBroker(7)
	win := &fakeWindow{prefetch: 9} // 2 writers + 1: batches of 3 messages
	p := pipeline.New(pipeline.Params{Store: s, Publisher: &fakePublisher{}, Window: win, Options: pipeline.Options{
		BatchSize: 1000, Writers: 2, FlushInterval: time.Hour}})
	ch := make(chan amqp.Delivery, 7)
	for i := range 7 {
		ch <- amqp.Delivery{Acknowledger: brk, DeliveryTag: uint64(i + 1), ContentType: "application/json",
			Body: body(t, m("atlas", "s", i, float64(i)))}
	}
	close(ch)
	p.Handle(context.Background(), ch)
	if got := brk.ackedTags(); len(got) != 7 {
		t.Errorf("acked %v, want all 7", got)
	}
	if brk.multiples != 3 || brk.singles != 0 {
		t.Errorf("%d multiple and %d single acks, want 3 batches (3+3+1 messages) acked with multiple", brk.multiples, brk.singles)
	}
	if s.count() != 7 {
		t.Errorf("rows = %d, want 7", s.count())
	}
}
