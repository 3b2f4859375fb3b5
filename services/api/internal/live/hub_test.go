package live_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap/zaptest"

	"github.com/mymonit/mymonit/pkg/measure"
	"github.com/mymonit/mymonit/pkg/queue"
	"github.com/mymonit/mymonit/pkg/testenv"
	"github.com/mymonit/mymonit/services/api/internal/live"
)

// fakeSource records bindings.
type fakeSource struct {
	mu       sync.Mutex
	bound    []string
	log      []string
	down     bool
	failBind bool
}

func (f *fakeSource) Bind(e string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failBind {
		return errors.New("channel closed")
	}
	f.bound = append(f.bound, e)
	f.log = append(f.log, "bind "+e)
	return nil
}

func (f *fakeSource) Unbind(e string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bound = slices.DeleteFunc(f.bound, func(s string) bool { return s == e })
	f.log = append(f.log, "unbind "+e)
	return nil
}

func (f *fakeSource) Connected() bool { f.mu.Lock(); defer f.mu.Unlock(); return !f.down }

func body(t *testing.T, ms ...measure.Measure) []byte {
	t.Helper()
	b, err := measure.Encode(ms)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return b
}

func m(experiment, sensor string, v float64) measure.Measure {
	return measure.Measure{Experiment: experiment, Sensor: sensor, Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Value: v}
}

func TestHubBindsOnFirstAndUnbindsOnLastWatcher(t *testing.T) {
	src := &fakeSource{}
	h, err := live.NewHub(live.Params{Source: src, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	a1, err := h.Subscribe("alpha")
	if err != nil {
		t.Fatal(err)
	}
	a2, _ := h.Subscribe("alpha")
	b, _ := h.Subscribe("beta")
	a1.Close()
	a1.Close() // twice is harmless
	a2.Close()
	b.Close()
	want := []string{"bind alpha", "bind beta", "unbind alpha", "unbind beta"}
	if !slices.Equal(src.log, want) {
		t.Fatalf("source calls %q, want %q", src.log, want)
	}
}

func TestHubSubscribeErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  *fakeSource
		want error
	}{
		{"broker down", &fakeSource{down: true}, live.ErrUnavailable},
		{"bind fails", &fakeSource{failBind: true}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, _ := live.NewHub(live.Params{Source: tc.src})
			_, err := h.Subscribe("alpha")
			if err == nil {
				t.Fatal("Subscribe succeeded")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			// A failed subscribe leaves nothing behind: the next one binds.
			tc.src.down, tc.src.failBind = false, false
			s, err := h.Subscribe("alpha")
			if err != nil {
				t.Fatalf("Subscribe after recovery: %v", err)
			}
			s.Close()
			if !slices.Equal(tc.src.log, []string{"bind alpha", "unbind alpha"}) {
				t.Fatalf("source calls %q", tc.src.log)
			}
		})
	}
}

func TestHubDeliverFiltersAndDrops(t *testing.T) {
	reg := prometheus.NewRegistry()
	h, _ := live.NewHub(live.Params{Source: &fakeSource{}, Buffer: 2, Registerer: reg})
	alpha, _ := h.Subscribe("alpha")
	defer alpha.Close()
	slow, _ := h.Subscribe("alpha")
	defer slow.Close()

	h.Deliver(queue.RoutingKey("alpha"), body(t, m("alpha", "t1", 1), m("beta", "x", 9), m("alpha", "t2", 2)))
	h.Deliver(queue.RoutingKey("beta"), body(t, m("beta", "x", 3)))  // nobody watches beta
	h.Deliver(queue.RoutingKey("alpha"), []byte(`{not json`))        // undecodable
	h.Deliver(queue.RoutingKey("alpha"), body(t, m("beta", "x", 4))) // body names another experiment
	h.Deliver("other.alpha", body(t, m("alpha", "t3", 5)))           // not a measures routing key
	got := <-alpha.C()
	if len(got) != 2 || got[0].Sensor != "t1" || got[1].Sensor != "t2" || got[1].Value != 2 {
		t.Fatalf("alpha got %+v, want t1=1 and t2=2 only", got)
	}
	select {
	case extra := <-alpha.C():
		t.Fatalf("unexpected delivery %+v", extra)
	default:
	}

	// slow never reads: its buffer holds 2, the rest are dropped and counted.
	for i := range 4 {
		h.Deliver(queue.RoutingKey("alpha"), body(t, m("alpha", "t", float64(i))))
	}
	if n := slow.Dropped(); n != 3 { // 1 from above + 4 now, 2 buffered
		t.Fatalf("slow dropped %d, want 3", n)
	}
	if n := slow.Dropped(); n != 0 {
		t.Fatalf("Dropped does not reset: %d", n)
	}
	if n, err := testutil.GatherAndCount(reg, "mymonit_api_live_dropped_total"); err != nil || n != 1 {
		t.Fatalf("dropped metric series: %d, %v", n, err)
	}
	if n := alpha.Dropped(); n != 2 { // it read the first message, then got 4 with room for 2
		t.Fatalf("alpha dropped %d, want 2", n)
	}
	if v := metricValue(t, reg, "mymonit_api_live_dropped_total"); v != 5 {
		t.Fatalf("mymonit_api_live_dropped_total = %v, want 5", v)
	}
	if v := metricValue(t, reg, "mymonit_api_live_undecodable_total"); v != 1 {
		t.Fatalf("mymonit_api_live_undecodable_total = %v, want 1", v)
	}
}

// TestHubWithTap runs the hub on a real queue.Tap and RabbitMQ.
func TestHubWithTap(t *testing.T) {
	url := testenv.AMQP(t)
	cfg := queue.Config{URL: url, Exchange: testenv.Name("live_measures")}
	testenv.Cleanup(t, url, nil, []string{cfg.Exchange})
	tap := queue.NewTap(queue.TapParams{Config: cfg, Logger: zaptest.NewLogger(t)})
	h, err := live.NewHub(live.Params{Source: tap, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tap.Run(ctx, h.Deliver) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("tap Run: %v", err)
		}
	}()
	for deadline := time.Now().Add(20 * time.Second); !tap.Connected(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("tap never connected")
		}
	}
	s, err := h.Subscribe("exp-1")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	pub := queue.NewPublisher(queue.PublisherParams{Config: cfg, Logger: zaptest.NewLogger(t)})
	defer pub.Close()
	pctx, pcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer pcancel()
	if err := pub.Publish(pctx, queue.Message{RoutingKey: queue.RoutingKey("exp-1"), Body: body(t, m("exp-1", "temp", 21.5))}); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	select {
	case got := <-s.C():
		if len(got) != 1 || got[0].Sensor != "temp" || got[0].Value != 21.5 {
			t.Fatalf("got %+v", got)
		}
	case <-pctx.Done():
		t.Fatal("no live measure arrived")
	}
}

func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			var v float64
			for _, m := range mf.GetMetric() {
				v += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
			return v
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
