package queue_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/zap/zaptest"

	"github.com/mymonit/mymonit/pkg/queue"
	"github.com/mymonit/mymonit/pkg/testenv"
)

// A consumer interface declared with the plain func type, as a service
// would, is satisfied by *queue.Consumer (Handler is an alias).
var _ interface {
	Run(ctx context.Context, handle func(ctx context.Context, deliveries <-chan amqp.Delivery)) error
	Connected() bool
} = (*queue.Consumer)(nil)

func newConsumer(t testing.TB, cfg queue.Config, mod func(*queue.ConsumerParams)) *queue.Consumer {
	t.Helper()
	p := queue.ConsumerParams{
		Config:  cfg,
		Logger:  zaptest.NewLogger(t),
		Backoff: queue.Backoff{Initial: 5 * time.Millisecond, Max: 100 * time.Millisecond},
	}
	if mod != nil {
		mod(&p)
	}
	c := queue.NewConsumer(p)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// publishIDs publishes one message per id, directly to the broker.
func publishIDs(t testing.TB, cfg queue.Config, ids ...string) {
	t.Helper()
	pub := newPublisher(t, cfg, nil)
	msgs := make([]queue.Message, len(ids))
	for i, id := range ids {
		msgs[i] = queue.Message{RoutingKey: queue.RoutingKey("e"), MessageID: id, Body: []byte(id)}
	}
	if err := pub.Publish(testCtx(t, 30*time.Second), msgs...); err != nil {
		t.Fatalf("Publish: %v", err)
	}
}

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%04d", prefix, i)
	}
	return out
}

// runConsumer runs c.Run in a goroutine and returns a function that stops it
// and returns Run's error.
func runConsumer(t testing.TB, c *queue.Consumer, handle queue.Handler) (stop func() error) {
	t.Helper()
	cancel, wait := startConsumer(t, c, handle)
	return func() error {
		cancel()
		return wait()
	}
}

// startConsumer runs c.Run in a goroutine; cancel cancels its context, wait
// waits for it to return.
func startConsumer(t testing.TB, c *queue.Consumer, handle queue.Handler) (cancel func(), wait func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx, handle) }()
	var once sync.Once
	var err error
	wait = func() error {
		once.Do(func() {
			select {
			case err = <-errc:
			case <-time.After(30 * time.Second):
				err = errors.New("Run did not return")
			}
		})
		return err
	}
	t.Cleanup(func() {
		cancel()
		_ = wait()
	})
	return cancel, wait
}

// TestConsumerAckMultipleAndRedelivery acks half of the deliveries with one
// multiple ack, drops the session, and checks that exactly the unacked ones
// are redelivered to the next session.
func TestConsumerAckMultipleAndRedelivery(t *testing.T) {
	for _, qt := range []string{"quorum", "classic"} {
		t.Run(qt, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(t, qt)
			px, viaProxy := testenv.StartProxy(t, cfg.URL)
			ccfg := cfg
			ccfg.URL = viaProxy
			reg := prometheus.NewRegistry()
			c := newConsumer(t, ccfg, func(p *queue.ConsumerParams) { p.DeclareTopology = true; p.Prefetch = 100; p.Registerer = reg })
			if err := c.Connect(testCtx(t, 10*time.Second)); err != nil {
				t.Fatalf("Connect: %v", err)
			}
			all := ids("m", 10)
			publishIDs(t, cfg, all...)

			type session struct {
				ids         []string
				redelivered []bool
				lateAckErr  error
				connected   bool
			}
			sessions := make(chan session, 2)
			firstFull := make(chan struct{})
			n := 0
			stop := runConsumer(t, c, func(ctx context.Context, deliveries <-chan amqp.Delivery) {
				n++
				var s session
				s.connected = c.Connected()
				var held []amqp.Delivery
				for d := range deliveries {
					s.ids = append(s.ids, d.MessageId)
					s.redelivered = append(s.redelivered, d.Redelivered)
					switch {
					case n == 1:
						held = append(held, d)
						switch len(held) {
						case 5:
							if err := d.Ack(true); err != nil {
								t.Errorf("ack multiple: %v", err)
							}
						case 10:
							// Dead-letter the last one: once it is in the
							// dead queue, the broker has processed the
							// multiple ack sent before it.
							if err := d.Nack(false, false); err != nil {
								t.Errorf("nack: %v", err)
							}
							close(firstFull)
						}
					default:
						if err := d.Ack(false); err != nil {
							t.Errorf("ack: %v", err)
						}
						if len(s.ids) == 4 {
							sessions <- s // the test stops Run now
						}
					}
				}
				if n == 1 {
					select {
					case <-ctx.Done():
					case <-time.After(10 * time.Second):
						t.Errorf("handler context not done after the session was lost")
					}
					s.lateAckErr = held[8].Ack(false)
					sessions <- s
				}
			})
			select {
			case <-firstFull:
			case <-time.After(20 * time.Second):
				t.Fatalf("first session did not get the 10 messages")
			}
			waitDepth(t, cfg.URL, cfg.DeadQueue, 1)
			if px.Cut() == 0 {
				t.Fatalf("nothing to cut: consumer not connected through the proxy")
			}
			first, second := <-sessions, <-sessions
			if err := stop(); err != nil {
				t.Fatalf("Run = %v, want nil", err)
			}

			if diff := cmp.Diff(all, first.ids); diff != "" {
				t.Errorf("first session (-want +got):\n%s", diff)
			}
			if !first.connected {
				t.Errorf("Connected() = false during a session")
			}
			if !errors.Is(first.lateAckErr, amqp.ErrClosed) {
				t.Errorf("ack after the session was lost = %v, want amqp.ErrClosed", first.lateAckErr)
			}
			sort.Strings(second.ids)
			if diff := cmp.Diff(all[5:9], second.ids); diff != "" {
				t.Errorf("redelivered messages (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]bool{true, true, true, true}, second.redelivered); diff != "" {
				t.Errorf("Redelivered flags (-want +got):\n%s", diff)
			}
			if c.Connected() {
				t.Errorf("Connected() = true after Run returned")
			}
			if got := counterValue(t, reg, "mymonit_queue_consumer_reconnects_total"); got != 1 {
				t.Errorf("reconnects = %v, want 1", got)
			}
			if d := depth(t, cfg.URL, cfg.Queue); d != 0 {
				t.Errorf("queue holds %d messages after all were acked", d)
			}
		})
	}
}

// TestConsumerReconnectMidStream cuts the consumer's connection twice while
// messages stream in: it must re-establish and get every message.
func TestConsumerReconnectMidStream(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "quorum")
	declare(t, cfg)
	px, viaProxy := testenv.StartProxy(t, cfg.URL)
	ccfg := cfg
	ccfg.URL = viaProxy
	reg := prometheus.NewRegistry()
	c := newConsumer(t, ccfg, func(p *queue.ConsumerParams) { p.Prefetch = 200; p.Registerer = reg })

	const n = 3000
	var (
		mu   sync.Mutex
		seen = map[string]bool{}
	)
	count := make(chan int, n*2)
	stop := runConsumer(t, c, func(ctx context.Context, deliveries <-chan amqp.Delivery) {
		// Ack multiple per 50, or when nothing more is waiting.
		pending := 0
		for d := range deliveries {
			mu.Lock()
			seen[d.MessageId] = true
			k := len(seen)
			mu.Unlock()
			count <- k
			if pending++; pending == 50 || len(deliveries) == 0 {
				_ = d.Ack(true) // fails after a loss: ignored, as the contract says
				pending = 0
			}
		}
	})

	pubDone := make(chan error, 1)
	go func() {
		pub := newPublisher(t, cfg, nil)
		all := ids("s", n)
		for i := 0; i < n; i += 100 {
			msgs := make([]queue.Message, 100)
			for j := range msgs {
				msgs[j] = queue.Message{RoutingKey: queue.RoutingKey("e"), MessageID: all[i+j]}
			}
			if err := pub.Publish(context.Background(), msgs...); err != nil {
				pubDone <- err
				return
			}
		}
		pubDone <- nil
	}()

	cuts := map[int]bool{n / 4: true, n / 2: true}
	timeout := time.After(45 * time.Second)
	for got := 0; got < n; {
		select {
		case got = <-count:
			if cuts[got] {
				delete(cuts, got)
				px.Cut()
			}
		case <-timeout:
			t.Fatalf("consumer got %d of %d messages", got, n)
		}
	}
	if err := <-pubDone; err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if !c.Connected() {
		t.Errorf("Connected() = false while consuming")
	}
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if got := counterValue(t, reg, "mymonit_queue_consumer_reconnects_total"); got < 2 {
		t.Errorf("reconnects = %v, want >= 2", got)
	}
	if d := depth(t, cfg.URL, cfg.Queue); d != 0 {
		t.Errorf("%d messages left in the queue", d)
	}
}

// TestConsumerGracefulShutdown cancels Run while the handler holds unacked
// deliveries: the handler can still ack them, and after Run returned every
// message is either acked or back in the queue.
func TestConsumerGracefulShutdown(t *testing.T) {
	for _, qt := range []string{"quorum", "classic"} {
		t.Run(qt, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(t, qt)
			declare(t, cfg)
			const n = 100
			publishIDs(t, cfg, ids("g", n)...)
			c := newConsumer(t, cfg, func(p *queue.ConsumerParams) { p.Prefetch = n })

			first := make(chan struct{})
			cancelled := make(chan struct{})
			var (
				acked   int
				ackErrs []error
				ctxDone bool
			)
			cancel, wait := startConsumer(t, c, func(ctx context.Context, deliveries <-chan amqp.Delivery) {
				for d := range deliveries {
					if acked == 0 {
						close(first)
						<-cancelled // hold the first delivery until Run's ctx is done
					}
					if err := d.Ack(false); err != nil {
						ackErrs = append(ackErrs, err)
						continue
					}
					acked++
				}
				ctxDone = ctx.Err() != nil
			})
			<-first
			cancel()
			// Give Run time to cancel the consumer while the handler still
			// holds the first delivery (the test holds either way).
			time.Sleep(100 * time.Millisecond)
			close(cancelled)
			if err := wait(); err != nil {
				t.Fatalf("Run = %v, want nil", err)
			}
			if len(ackErrs) > 0 {
				t.Errorf("acks during the graceful shutdown failed: %v", ackErrs)
			}
			if acked < 1 {
				t.Errorf("acked %d, want the in-flight delivery acked", acked)
			}
			if ctxDone {
				t.Errorf("handler context was done during a graceful shutdown")
			}
			if d := depth(t, cfg.URL, cfg.Queue); d != n-acked {
				t.Errorf("queue holds %d messages, want %d - %d acked = %d", d, n, acked, n-acked)
			}
		})
	}
}

// TestConsumerDrainTimeout: a handler that does not finish is cancelled after
// the drain timeout and its unacked deliveries return to the queue.
func TestConsumerDrainTimeout(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "classic")
	declare(t, cfg)
	publishIDs(t, cfg, ids("d", 5)...)
	c := newConsumer(t, cfg, func(p *queue.ConsumerParams) { p.DrainTimeout = 200 * time.Millisecond })
	got := make(chan struct{})
	abandoned := make(chan bool, 1)
	stop := runConsumer(t, c, func(ctx context.Context, deliveries <-chan amqp.Delivery) {
		<-deliveries
		close(got)
		<-ctx.Done() // stuck work, abandoned when ctx is done
		abandoned <- true
		for range deliveries {
		}
	})
	<-got
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	select {
	case <-abandoned:
	default:
		t.Errorf("handler context not cancelled after the drain timeout")
	}
	if d := depth(t, cfg.URL, cfg.Queue); d != 5 {
		t.Errorf("queue holds %d messages, want all 5 back", d)
	}
}

func TestConsumerErrors(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "classic")
	handler := func(ctx context.Context, deliveries <-chan amqp.Delivery) {
		for range deliveries {
		}
	}

	t.Run("bad URL", func(t *testing.T) {
		bad := cfg
		bad.URL = "http://guest:guest@127.0.0.1/"
		err := newConsumer(t, bad, nil).Run(testCtx(t, 10*time.Second), handler)
		if err == nil {
			t.Errorf("Run with a bad URL = nil, want an error")
		}
	})
	t.Run("unreachable retries until ctx", func(t *testing.T) {
		bad := cfg
		bad.URL = "amqp://guest:guest@127.0.0.1:1/"
		c := newConsumer(t, bad, nil)
		if err := c.Connect(testCtx(t, 5*time.Second)); err == nil {
			t.Errorf("Connect to a closed port succeeded")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		if err := c.Run(ctx, handler); err != nil {
			t.Errorf("Run = %v, want nil once ctx is done", err)
		}
		if ctx.Err() == nil {
			t.Errorf("Run returned before ctx was done")
		}
	})
	t.Run("missing queue without declare", func(t *testing.T) {
		if err := newConsumer(t, cfg, nil).Connect(testCtx(t, 5*time.Second)); err == nil {
			t.Errorf("Connect to a missing queue succeeded")
		}
	})
	t.Run("nil handler", func(t *testing.T) {
		if err := newConsumer(t, cfg, nil).Run(testCtx(t, 5*time.Second), nil); err == nil {
			t.Errorf("Run(nil) = nil")
		}
	})
	t.Run("twice", func(t *testing.T) {
		declare(t, cfg)
		c := newConsumer(t, cfg, nil)
		started := make(chan struct{})
		var once sync.Once
		stop := runConsumer(t, c, func(ctx context.Context, deliveries <-chan amqp.Delivery) {
			once.Do(func() { close(started) })
			handler(ctx, deliveries)
		})
		<-started
		if err := c.Run(testCtx(t, 5*time.Second), handler); err == nil {
			t.Errorf("second concurrent Run = nil, want an error")
		}
		if err := stop(); err != nil {
			t.Errorf("Run = %v", err)
		}
	})
}

// TestConsumerSetPrefetch: a new window ends the running session
// gracefully (the handler acks what it got and returns) and the next session
// gets the new window at once; no message is lost or delivered twice.
func TestConsumerSetPrefetch(t *testing.T) {
	cfg := testConfig(t, "quorum")
	declare(t, cfg)
	const n = 300
	publishIDs(t, cfg, ids("w", n)...)
	c := newConsumer(t, cfg, func(p *queue.ConsumerParams) { p.Prefetch = 10 })
	if got := c.Prefetch(); got != 10 {
		t.Fatalf("Prefetch() before Run = %d, want 10", got)
	}

	var (
		sessions  int
		windows   []int // deliveries held unacked before the broker stopped sending, per session
		prefetchs []int // Prefetch() seen by each session
		seen      = map[string]int{}
		ackErrs   []error
	)
	all := make(chan struct{})
	// held reads deliveries without acking until none arrives for a while,
	// and returns them: the session's window.
	held := func(deliveries <-chan amqp.Delivery) (got []amqp.Delivery, open bool) {
		for {
			select {
			case d, ok := <-deliveries:
				if !ok {
					return got, false
				}
				got = append(got, d)
			case <-time.After(300 * time.Millisecond):
				return got, true
			}
		}
	}
	ack := func(ds []amqp.Delivery) {
		for _, d := range ds {
			seen[string(d.Body)]++
		}
		if len(ds) > 0 {
			if err := ds[len(ds)-1].Ack(true); err != nil {
				ackErrs = append(ackErrs, err)
			}
		}
		if len(seen) == n {
			select {
			case <-all:
			default:
				close(all)
			}
		}
	}
	stop := runConsumer(t, c, func(ctx context.Context, deliveries <-chan amqp.Delivery) {
		sessions++
		prefetchs = append(prefetchs, c.Prefetch())
		got, open := held(deliveries)
		windows = append(windows, len(got))
		if sessions == 1 {
			c.SetPrefetch(50)
		}
		for open {
			var more []amqp.Delivery
			more, open = held(deliveries)
			got = append(got, more...)
			ack(got)
			got = got[:0]
		}
		ack(got)
	})
	select {
	case <-all:
	case <-time.After(30 * time.Second):
		t.Fatalf("consumed %d of %d messages in 30 s", len(seen), n)
	}
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if len(ackErrs) > 0 {
		t.Errorf("acks failed: %v", ackErrs)
	}
	if diff := cmp.Diff([]int{10, 50}, windows); diff != "" {
		t.Errorf("windows per session (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int{10, 50}, prefetchs); diff != "" {
		t.Errorf("Prefetch() per session (-want +got):\n%s", diff)
	}
	for id, k := range seen {
		if k != 1 {
			t.Errorf("message %s delivered %d times, want once", id, k)
		}
	}
	if d := depth(t, cfg.URL, cfg.Queue); d != 0 {
		t.Errorf("queue holds %d messages, want 0", d)
	}
}
