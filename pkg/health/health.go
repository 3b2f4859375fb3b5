// Package health serves the operational endpoints every MyMONIT process
// exposes: /healthz (the process is alive), /readyz (every readiness check
// passes: it can do its work now) and /metrics (Prometheus).
package health

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/mymonit/mymonit/pkg/httpserve"
)

// Check reports whether one dependency is usable; a nil error means ready.
type Check func(ctx context.Context) error

// Options configure a Server.
type Options struct {
	// Addr is the listen address, e.g. ":9101" or "127.0.0.1:0".
	Addr string
	// Gatherer is served at /metrics; nil serves an empty registry.
	Gatherer prometheus.Gatherer
	// CheckTimeout bounds each readiness check (default 2s).
	CheckTimeout time.Duration
	Logger       *zap.Logger
}

// Server is the operational HTTP server.
type Server struct {
	opts   Options
	log    *zap.Logger
	mu     sync.Mutex
	checks map[string]Check
	routes []string
	srv    *http.Server
	run    *httpserve.Server
}

// New returns a server; call Start to listen.
func New(o Options) *Server {
	if o.CheckTimeout <= 0 {
		o.CheckTimeout = 2 * time.Second
	}
	if o.Gatherer == nil {
		o.Gatherer = prometheus.NewRegistry()
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	s := &Server{opts: o, log: o.Logger, checks: make(map[string]Check)}
	mux := http.NewServeMux()
	for _, rt := range []struct {
		pattern string
		h       http.Handler
	}{
		{"GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		})},
		{"GET /readyz", http.HandlerFunc(s.ready)},
		{"GET /metrics", promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{})},
	} {
		mux.Handle(rt.pattern, rt.h)
		s.routes = append(s.routes, rt.pattern)
	}
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	s.run = httpserve.New(s.srv, o.Addr, "operational endpoints", o.Logger)
	return s
}

// AddCheck registers a readiness check under name.
func (s *Server) AddCheck(name string, c Check) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks[name] = c
}

// Routes returns the patterns the handler serves ("GET /healthz"...), for a
// service that documents them.
func (s *Server) Routes() []string { return slices.Clone(s.routes) }

// Handler returns the server's handler (for tests and embedding).
func (s *Server) Handler() http.Handler { return s.srv.Handler }

// Start listens synchronously, so a taken port fails at once, then serves in
// a goroutine that Stop waits for.
func (s *Server) Start() error { return s.run.Start() }

// Addr is the address Start listens on.
func (s *Server) Addr() string { return s.run.Addr() }

// Stop shuts the server down gracefully and waits for it.
func (s *Server) Stop(ctx context.Context) error { return s.run.Stop(ctx) }

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	names := make([]string, 0, len(s.checks))
	for n := range s.checks {
		names = append(names, n)
	}
	checks := make(map[string]Check, len(s.checks))
	for n, c := range s.checks {
		checks[n] = c
	}
	s.mu.Unlock()
	sort.Strings(names)

	status := http.StatusOK
	out := make(map[string]string, len(names))
	for _, n := range names {
		ctx, cancel := context.WithTimeout(r.Context(), s.opts.CheckTimeout)
		err := checks[n](ctx)
		cancel()
		if err != nil {
			status = http.StatusServiceUnavailable
			out[n] = err.Error()
		} else {
			out[n] = "ok"
		}
	}
	writeJSON(w, status, map[string]any{"ready": status == http.StatusOK, "checks": out})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
