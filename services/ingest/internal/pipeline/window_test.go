package pipeline_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/mymonit/mymonit/services/ingest/internal/pipeline"
)

// fakeWindow records the windows the pipeline asks for.
type fakeWindow struct {
	prefetch int
	set      []int
}

func (w *fakeWindow) Prefetch() int { return w.prefetch }
func (w *fakeWindow) SetPrefetch(n int) {
	w.set = append(w.set, n)
}

// deliveries returns n single-measure deliveries whose bodies are padded
// with trailing white space to size bytes.
func deliveries(t *testing.T, brk *broker, n, size int) chan amqp.Delivery {
	t.Helper()
	ch := make(chan amqp.Delivery, n)
	for i := range n {
		b := body(t, m("atlas", fmt.Sprintf("s%d", i%10), i, float64(i)))
		if pad := size - len(b); pad > 0 {
			b = append(b, strings.Repeat(" ", pad)...)
		}
		ch <- amqp.Delivery{Acknowledger: brk, DeliveryTag: uint64(i + 1), ContentType: "application/json", Body: b}
	}
	close(ch)
	return ch
}

func TestWindowSizedByMessages(t *testing.T) {
	const windowBytes = 1 << 20
	for _, tc := range []struct {
		name     string
		prefetch int // in force
		messages int
		size     int   // body bytes
		want     []int // windows asked for
	}{
		{name: "small messages get a larger window", prefetch: 100, messages: pipeline.SizeAfter, size: 200,
			want: []int{windowBytes / (200 + pipeline.MessageOverhead)}},
		{name: "large messages get a window that bounds memory", prefetch: 1000, messages: pipeline.SizeAfter, size: 8 << 10,
			want: []int{windowBytes / (8<<10 + pipeline.MessageOverhead)}},
		{name: "within 1.5 times of the window: kept", prefetch: 400, messages: pipeline.SizeAfter, size: 200},
		{name: "sized once per session", prefetch: 100, messages: 3 * pipeline.SizeAfter, size: 200,
			want: []int{windowBytes / (200 + pipeline.MessageOverhead)}},
		{name: "not before SizeAfter messages", prefetch: 100, messages: pipeline.SizeAfter - 1, size: 200},
		{name: "huge messages: the floor", prefetch: 1000, messages: pipeline.SizeAfter, size: 64 << 10,
			want: []int{pipeline.DefaultMinPrefetch}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newFakeStore("atlas")
			brk := newBroker(uint64(tc.messages))
			win := &fakeWindow{prefetch: tc.prefetch}
			p := pipeline.New(pipeline.Params{Store: s, Publisher: &fakePublisher{}, Window: win, Options: pipeline.Options{
				BatchSize: 5000, FlushInterval: time.Hour, WindowBytes: windowBytes}})
			p.Handle(context.Background(), deliveries(t, brk, tc.messages, tc.size))
			if !slices.Equal(win.set, tc.want) {
				t.Errorf("windows asked for %v, want %v", win.set, tc.want)
			}
			if got := brk.ackedTags(); len(got) != tc.messages {
				t.Errorf("acked %d deliveries, want all %d", len(got), tc.messages)
			}
		})
	}
}

// A resize within a minute of the last is not asked for: traffic that
// alternates between small and large messages does not restart the
// consumer over and over.
func TestWindowResizedAtMostOncePerMinute(t *testing.T) {
	s := newFakeStore("atlas")
	win := &fakeWindow{prefetch: 100}
	p := pipeline.New(pipeline.Params{Store: s, Publisher: &fakePublisher{}, Window: win, Options: pipeline.Options{
		BatchSize: 5000, FlushInterval: time.Hour, WindowBytes: 1 << 20}})
	p.Handle(context.Background(), deliveries(t, newBroker(pipeline.SizeAfter), pipeline.SizeAfter, 200))
	if len(win.set) != 1 {
		t.Fatalf("first session asked for %v, want one window", win.set)
	}
	win.prefetch = win.set[0]
	p.Handle(context.Background(), deliveries(t, newBroker(pipeline.SizeAfter), pipeline.SizeAfter, 8<<10))
	if len(win.set) != 1 {
		t.Errorf("second session within the minute asked for %v, want no resize", win.set[1:])
	}
}

// With a Window, a batch closes at the window divided by writers + 1
// messages, so that the batches in flight fit the window.
func TestBatchMessagesFollowTheWindow(t *testing.T) {
	s := newFakeStore("atlas")
	brk := newBroker(7)
	win := &fakeWindow{prefetch: 9} // 3 writers + 1: batches of 9/4 = 2 messages
	p := pipeline.New(pipeline.Params{Store: s, Publisher: &fakePublisher{}, Window: win, Options: pipeline.Options{
		BatchSize: 1000, Writers: 3, FlushInterval: time.Hour}})
	p.Handle(context.Background(), deliveries(t, brk, 7, 0))
	if brk.multiples != 4 || brk.singles != 0 {
		t.Errorf("%d multiple and %d single acks, want 4 batches (2+2+2+1 messages)", brk.multiples, brk.singles)
	}
	if len(win.set) != 0 {
		t.Errorf("asked for windows %v without WindowBytes", win.set)
	}
}
