package queue_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/zap/zaptest"

	"github.com/mymonit/mymonit/pkg/queue"
	"github.com/mymonit/mymonit/pkg/testenv"
)

// tapRecorder collects what a Tap hands over.
type tapRecorder struct {
	mu   sync.Mutex
	got  []string // routing key + " " + body
	more chan struct{}
}

func newTapRecorder() *tapRecorder { return &tapRecorder{more: make(chan struct{}, 1)} }

func (r *tapRecorder) fn(key string, body []byte) {
	r.mu.Lock()
	r.got = append(r.got, key+" "+string(body))
	r.mu.Unlock()
	select {
	case r.more <- struct{}{}:
	default:
	}
}

func (r *tapRecorder) snapshot() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

// waitFor waits until the recorder holds want (in order) or fails.
func (r *tapRecorder) waitFor(t *testing.T, want ...string) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		got := r.snapshot()
		if len(got) >= len(want) {
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("tap got %q, want %q", got, want)
				}
			}
			if len(got) > len(want) {
				t.Fatalf("tap got %q, want only %q", got, want)
			}
			return
		}
		select {
		case <-r.more:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("tap got %q, want %q", got, want)
		}
	}
}

func publishRaw(t *testing.T, cfg queue.Config, experiment, body string) {
	t.Helper()
	ch := amqpChannel(t, cfg.URL)
	if err := ch.Confirm(false); err != nil {
		t.Fatalf("confirm mode: %v", err)
	}
	conf, err := ch.PublishWithDeferredConfirmWithContext(testCtx(t, 10*time.Second), cfg.Exchange, queue.RoutingKey(experiment), false, false, amqp.Publishing{Body: []byte(body)})
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	if ok, err := conf.WaitContext(testCtx(t, 10*time.Second)); !ok || err != nil {
		t.Fatalf("publish not confirmed: %v %v", ok, err)
	}
}

func startTap(t *testing.T, tap *queue.Tap, rec *tapRecorder) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tap.Run(ctx, rec.fn) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	waitConnected(t, tap, true)
}

func waitConnected(t *testing.T, tap *queue.Tap, want bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for tap.Connected() != want {
		if time.Now().After(deadline) {
			t.Fatalf("tap Connected() stayed %v", !want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTapReceivesOnlyBoundExperiments(t *testing.T) {
	cfg := testConfig(t, queue.QueueTypeQuorum)
	tap := queue.NewTap(queue.TapParams{Config: cfg, Logger: zaptest.NewLogger(t)})
	if err := tap.Bind("alpha"); err != nil { // before Run: kept for the first session
		t.Fatalf("Bind before Run: %v", err)
	}
	rec := newTapRecorder()
	startTap(t, tap, rec)

	publishRaw(t, cfg, "beta", "b1") // not bound: never seen
	publishRaw(t, cfg, "alpha", "a1")
	rec.waitFor(t, "experiment.alpha a1")

	if err := tap.Bind("beta"); err != nil {
		t.Fatalf("Bind: %v", err)
	}
	publishRaw(t, cfg, "beta", "b2")
	rec.waitFor(t, "experiment.alpha a1", "experiment.beta b2")

	if err := tap.Unbind("alpha"); err != nil {
		t.Fatalf("Unbind: %v", err)
	}
	publishRaw(t, cfg, "alpha", "a2")
	publishRaw(t, cfg, "beta", "b3")
	rec.waitFor(t, "experiment.alpha a1", "experiment.beta b2", "experiment.beta b3")
}

func TestTapRebindsAfterConnectionLoss(t *testing.T) {
	cfg := testConfig(t, queue.QueueTypeQuorum)
	px, viaProxy := testenv.StartProxy(t, cfg.URL)
	tcfg := cfg
	tcfg.URL = viaProxy
	tap := queue.NewTap(queue.TapParams{Config: tcfg, Logger: zaptest.NewLogger(t), Backoff: queue.Backoff{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond}})
	rec := newTapRecorder()
	startTap(t, tap, rec)
	if err := tap.Bind("gamma"); err != nil {
		t.Fatalf("Bind: %v", err)
	}
	publishRaw(t, cfg, "gamma", "g1")
	rec.waitFor(t, "experiment.gamma g1")

	if n := px.Cut(); n == 0 {
		t.Fatal("the tap had no connection through the proxy")
	}
	// Copies published while the tap reconnects are lost by design; keep
	// publishing until one arrives through the new session's binding.
	deadline := time.Now().Add(20 * time.Second)
	for i := 2; len(rec.snapshot()) < 2; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("no copy arrived after the connection loss; got %q", rec.snapshot())
		}
		publishRaw(t, cfg, "gamma", fmt.Sprintf("g%d", i))
		select {
		case <-rec.more:
		case <-time.After(200 * time.Millisecond):
		}
	}
	got := rec.snapshot()
	if got[0] != "experiment.gamma g1" || !strings.HasPrefix(got[1], "experiment.gamma g") {
		t.Fatalf("tap got %q", got)
	}
}

func TestTapBadURL(t *testing.T) {
	tap := queue.NewTap(queue.TapParams{Config: queue.Config{URL: "http://nope", Exchange: "x"}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := tap.Run(ctx, func(string, []byte) {})
	if err == nil || ctx.Err() != nil {
		t.Fatalf("Run with a bad URL: err %v, want an immediate error", err)
	}
}
