package health_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mymonit/mymonit/pkg/health"
)

func TestServer(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "mymonit_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Add(3)
	s := health.New(health.Options{Addr: "127.0.0.1:0", Gatherer: reg})
	var dbErr error
	s.AddCheck("database", func(context.Context) error { return dbErr })
	s.AddCheck("broker", func(context.Context) error { return nil })
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Error(err)
		}
	})
	base := "http://" + s.Addr()

	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz = %d", code)
	}
	code, body := get("/readyz")
	if code != 200 {
		t.Errorf("/readyz with passing checks = %d %s", code, body)
	}
	dbErr = errors.New("connection refused")
	code, body = get("/readyz")
	if code != 503 {
		t.Errorf("/readyz with a failing check = %d", code)
	}
	var got struct {
		Ready  bool
		Checks map[string]string
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if got.Ready || got.Checks["database"] != "connection refused" || got.Checks["broker"] != "ok" {
		t.Errorf("/readyz body = %+v", got)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "mymonit_test_total 3") {
		t.Errorf("/metrics = %d %q", code, body)
	}
	if diff := cmp.Diff([]string{"GET /healthz", "GET /readyz", "GET /metrics"}, s.Routes()); diff != "" {
		t.Errorf("Routes (-want +got):\n%s", diff)
	}
	for _, rt := range s.Routes() {
		if code, _ := get(strings.TrimPrefix(rt, "GET ")); code == http.StatusNotFound {
			t.Errorf("%s is not served", rt)
		}
	}
}

func TestStartFailsOnTakenPort(t *testing.T) {
	a := health.New(health.Options{Addr: "127.0.0.1:0"})
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	defer a.Stop(context.Background())
	b := health.New(health.Options{Addr: a.Addr()})
	if err := b.Start(); err == nil {
		b.Stop(context.Background())
		t.Fatal("second server on the same port started")
	}
}
