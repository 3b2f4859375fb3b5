package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/mymonit/mymonit/pkg/measure"
	"github.com/mymonit/mymonit/pkg/queue"
	"github.com/mymonit/mymonit/pkg/storage"
	"github.com/mymonit/mymonit/pkg/testenv"
	"github.com/mymonit/mymonit/services/api/internal/auth"
	"github.com/mymonit/mymonit/services/api/internal/auth/authtest"
	"github.com/mymonit/mymonit/services/api/internal/httpapi"
	"github.com/mymonit/mymonit/services/api/internal/live"
)

// liveEnv is an API whose live streams are fed by a real Tap on RabbitMQ.
type liveEnv struct {
	*env
	cfg queue.Config
	pub *queue.Publisher
	reg *prometheus.Registry
}

func newLiveEnv(t *testing.T, recheck time.Duration, opts ...func(*httpapi.Params)) *liveEnv {
	t.Helper()
	url := testenv.AMQP(t)
	cfg := queue.Config{URL: url, Exchange: testenv.Name("api_live")}
	testenv.Cleanup(t, url, nil, []string{cfg.Exchange})
	tap := queue.NewTap(queue.TapParams{Config: cfg, Logger: zaptest.NewLogger(t)})
	reg := prometheus.NewRegistry()
	hub, err := live.NewHub(live.Params{Source: tap, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tap.Run(ctx, hub.Deliver) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("tap: %v", err)
		}
	})
	for deadline := time.Now().Add(20 * time.Second); !tap.Connected(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the tap did not connect")
		}
	}
	e := newEnv(t, append([]func(*httpapi.Params){func(p *httpapi.Params) { p.Live = hub; p.LiveRecheck = recheck }}, opts...)...)
	pub := queue.NewPublisher(queue.PublisherParams{Config: cfg, Logger: zaptest.NewLogger(t)})
	t.Cleanup(func() { _ = pub.Close() })
	return &liveEnv{env: e, cfg: cfg, pub: pub, reg: reg}
}

func (le *liveEnv) publish(t *testing.T, ms ...measure.Measure) {
	t.Helper()
	b, err := measure.Encode(ms)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Unroutable: nobody watches the experiment, which a test may mean.
	if err := le.pub.Publish(ctx, queue.Message{RoutingKey: queue.RoutingKey(ms[0].Experiment), Body: b}); err != nil && !errors.Is(err, queue.ErrUnroutable) {
		t.Fatalf("publish: %v", err)
	}
}

func (le *liveEnv) watchers(t *testing.T) float64 {
	t.Helper()
	mfs, err := le.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "mymonit_api_live_watchers" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("no watchers gauge")
	return 0
}

// sse is one Server-Sent Event.
type sse struct{ event, data string }

// stream is an open live stream.
type stream struct {
	resp   *http.Response
	events chan sse
	cancel context.CancelFunc
}

// openStream opens a live stream and fails unless it is a 200 event stream.
func (le *liveEnv) openStream(t *testing.T, token, path string) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, "GET", le.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		body := make([]byte, 2048)
		n, _ := resp.Body.Read(body)
		t.Fatalf("open %s: %d %s: %s", path, resp.StatusCode, resp.Header.Get("Content-Type"), body[:n])
	}
	s := &stream{resp: resp, events: make(chan sse, 100), cancel: cancel}
	go func() {
		defer close(s.events)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var ev sse
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.event != "" {
					s.events <- ev
				}
				ev = sse{}
			case strings.HasPrefix(line, "event: "):
				ev.event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.data = strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	return s
}

// next returns the next event, failing after a while.
func (s *stream) next(t *testing.T) (sse, bool) {
	t.Helper()
	select {
	case ev, ok := <-s.events:
		return ev, ok
	case <-time.After(20 * time.Second):
		t.Fatal("no event within 20s")
		return sse{}, false
	}
}

func (s *stream) expect(t *testing.T, event string) sse {
	t.Helper()
	ev, ok := s.next(t)
	if !ok {
		t.Fatalf("stream closed, want a %q event", event)
	}
	if ev.event != event {
		t.Fatalf("event %q %s, want %q", ev.event, ev.data, event)
	}
	return ev
}

// expectClosed checks the server closed the stream.
func (s *stream) expectClosed(t *testing.T) {
	t.Helper()
	if ev, ok := s.next(t); ok {
		t.Fatalf("event %q %s after the end, want the stream closed", ev.event, ev.data)
	}
}

func liveMeasure(exp, sensor string, v float64, sec int) measure.Measure {
	return measure.Measure{Experiment: exp, Sensor: sensor, Time: time.Date(2026, 11, 23, 10, 0, sec, 0, time.UTC), Value: v, Unit: "K"}
}

func TestLiveStreamMeasuresThenRevocation(t *testing.T) {
	le := newLiveEnv(t, time.Hour) // no periodic re-check: the admin change alone must end it
	ctx := testCtx(t)
	admin := le.signUp(storage.RoleAdmin)
	sci := le.signUp(storage.RoleScientist)
	exp, err := le.store.CreateExperiment(ctx, storage.Experiment{Slug: "cryo", Name: "Cryo"})
	if err != nil {
		t.Fatal(err)
	}
	if err := le.store.AddMembership(ctx, exp.ID, sci.user.ID); err != nil {
		t.Fatal(err)
	}

	s := le.openStream(t, sci.token, "/v1/experiments/cryo/measures/live?sensor=temp/a&sensor=temp/b")
	if got := s.expect(t, "ready").data; got != `{"experiment":"cryo"}` {
		t.Fatalf("ready data %s", got)
	}
	le.publish(t, liveMeasure("cryo", "temp/a", 4.2, 1), liveMeasure("cryo", "pressure", 1e-6, 1), liveMeasure("cryo", "temp/b", 4.3, 1))
	le.publish(t, liveMeasure("other", "temp/a", 99, 1)) // another experiment: never shown
	le.publish(t, liveMeasure("cryo", "temp/a", 4.1, 2))

	var got []string
	for range 3 {
		ev := s.expect(t, "measure")
		var m struct {
			Experiment, Sensor, Time, Unit string
			Value                          float64
		}
		if err := json.Unmarshal([]byte(ev.data), &m); err != nil {
			t.Fatalf("measure event %s: %v", ev.data, err)
		}
		got = append(got, fmt.Sprintf("%s %s %s %g %s", m.Experiment, m.Sensor, m.Time, m.Value, m.Unit))
	}
	want := []string{
		"cryo temp/a 2026-11-23T10:00:01.000000Z 4.2 K",
		"cryo temp/b 2026-11-23T10:00:01.000000Z 4.3 K",
		"cryo temp/a 2026-11-23T10:00:02.000000Z 4.1 K",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("measures:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// The admin removes the scientist: the open stream ends at once with a
	// reason, and a new one is refused.
	wantStatus(t, "remove member", le.do("DELETE", fmt.Sprintf("/v1/experiments/cryo/members/%d", sci.user.ID), admin.token, nil), http.StatusNoContent)
	if got := s.expect(t, "end").data; !strings.Contains(got, "membership") {
		t.Fatalf("end reason %s, want one naming the membership", got)
	}
	s.expectClosed(t)
	wantStatus(t, "stream after removal", le.do("GET", "/v1/experiments/cryo/measures/live", sci.token, nil), http.StatusForbidden)
	waitWatchers(t, le, 0)
	if !strings.Contains(le.logs.String(), `"event.action":"measures.live.open"`) {
		t.Error("no audit event for the live read")
	}
}

func TestLiveStreamPeriodicRecheckAndClientGone(t *testing.T) {
	le := newLiveEnv(t, 100*time.Millisecond)
	ctx := testCtx(t)
	sci := le.signUp(storage.RoleScientist)
	aud := le.signUp(storage.RoleAuditor)
	exp, err := le.store.CreateExperiment(ctx, storage.Experiment{Slug: "beam", Name: "Beam"})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []account{sci, aud} {
		if err := le.store.AddMembership(ctx, exp.ID, u.user.ID); err != nil {
			t.Fatal(err)
		}
	}
	sciStream := le.openStream(t, sci.token, "/v1/experiments/beam/measures/live")
	sciStream.expect(t, "ready")
	audStream := le.openStream(t, aud.token, "/v1/experiments/beam/measures/live")
	audStream.expect(t, "ready")
	waitWatchers(t, le, 2)

	le.publish(t, liveMeasure("beam", "current", 0.5, 1))
	sciStream.expect(t, "measure")
	audStream.expect(t, "measure")

	// Removed behind this server's back (another replica): the periodic
	// re-check ends the stream.
	if err := le.store.RemoveMembership(ctx, exp.ID, sci.user.ID); err != nil {
		t.Fatal(err)
	}
	sciStream.expect(t, "end")
	sciStream.expectClosed(t)

	// The auditor hangs up: its subscription goes away.
	audStream.cancel()
	waitWatchers(t, le, 0)

	// Shutdown ends the open streams with a reason, rather than waiting.
	audStream = le.openStream(t, aud.token, "/v1/experiments/beam/measures/live")
	audStream.expect(t, "ready")
	le.api.EndStreams()
	if got := audStream.expect(t, "end").data; !strings.Contains(got, "shutting down") {
		t.Fatalf("end reason %s", got)
	}
	audStream.expectClosed(t)
	waitWatchers(t, le, 0)
}

func TestLiveStreamValidationAndUnavailable(t *testing.T) {
	down := &downSource{}
	hub, err := live.NewHub(live.Params{Source: down})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(p *httpapi.Params) { p.Live = hub })
	admin := e.signUp(storage.RoleAdmin)
	if _, err := e.store.CreateExperiment(testCtx(t), storage.Experiment{Slug: "x1", Name: "x"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		query string
		param string
	}{
		{"?sensor=", "query.sensor"},
		{"?since=now", "query.since"},
		{"?sensor=" + strings.Repeat("s", 129), "query.sensor"},
	} {
		r := e.do("GET", "/v1/experiments/x1/measures/live"+tc.query, admin.token, nil)
		wantStatus(t, tc.query, r, http.StatusBadRequest)
		if p := r.problem(t); len(p.InvalidParams) != 1 || p.InvalidParams[0].Name != tc.param {
			t.Errorf("%s: invalid params %+v, want %s", tc.query, p.InvalidParams, tc.param)
		}
	}
	r := e.do("GET", "/v1/experiments/x1/measures/live", admin.token, nil)
	wantStatus(t, "broker down", r, http.StatusServiceUnavailable)
	if r.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	if p := r.problem(t); !strings.Contains(p.Detail, "broker") {
		t.Errorf("detail %q does not say why", p.Detail)
	}
}

type downSource struct{}

func (downSource) Bind(string) error   { return nil }
func (downSource) Unbind(string) error { return nil }
func (downSource) Connected() bool     { return false }

func waitWatchers(t *testing.T, le *liveEnv, n float64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for le.watchers(t) != n {
		if time.Now().After(deadline) {
			t.Fatalf("live watchers = %v, want %v", le.watchers(t), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// shortTokens makes every token expire soon after it is verified.
type shortTokens struct {
	httpapi.Verifier
	ttl time.Duration
}

func (v shortTokens) Verify(ctx context.Context, header string) (auth.Identity, error) {
	id, err := v.Verifier.Verify(ctx, header)
	id.ExpiresAt = time.Now().Add(v.ttl)
	return id, err
}

// A stream lives no longer than its token: it ends when the token expires,
// and when a re-check finds the account disabled.
func TestLiveStreamEndsWithTheToken(t *testing.T) {
	openMember := func(t *testing.T, le *liveEnv) (account, *stream) {
		t.Helper()
		ctx := testCtx(t)
		sci := le.signUp(storage.RoleScientist)
		exp, err := le.store.CreateExperiment(ctx, storage.Experiment{Slug: "tok", Name: "x"})
		if err != nil {
			t.Fatal(err)
		}
		if err := le.store.AddMembership(ctx, exp.ID, sci.user.ID); err != nil {
			t.Fatal(err)
		}
		s := le.openStream(t, sci.token, "/v1/experiments/tok/measures/live")
		s.expect(t, "ready")
		return sci, s
	}
	t.Run("expiry", func(t *testing.T) {
		// No periodic re-check: the expiry alone must end it.
		le := newLiveEnv(t, time.Hour, func(p *httpapi.Params) { p.Verifier = shortTokens{p.Verifier, 500 * time.Millisecond} })
		_, s := openMember(t, le)
		if got := s.expect(t, "end").data; !strings.Contains(got, "token expired") {
			t.Fatalf("end reason %s", got)
		}
		s.expectClosed(t)
	})
	t.Run("disabled account", func(t *testing.T) {
		le := newLiveEnv(t, 100*time.Millisecond, func(p *httpapi.Params) {
			cfg := auth.DefaultConfig(authtest.ProjectID)
			cfg.Mode, cfg.CacheTTL = auth.ModeTest, 0 // every check asks the emulator
			v, err := auth.NewVerifier(context.Background(), auth.Params{Config: cfg})
			if err != nil {
				t.Fatal(err)
			}
			p.Verifier = v
		})
		sci, s := openMember(t, le)
		le.publish(t, liveMeasure("tok", "t", 1, 1))
		s.expect(t, "measure")
		le.emu.Disable(t, sci.fb.UID)
		if got := s.expect(t, "end").data; !strings.Contains(got, "revoked") {
			t.Fatalf("end reason %s", got)
		}
		s.expectClosed(t)
	})
}
