package httpapi

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/mymonit/mymonit/pkg/httpserve"
	"github.com/mymonit/mymonit/pkg/storage"
	"github.com/mymonit/mymonit/services/api/internal/auth"
)

// Verifier checks the Authorization header of a request; *auth.Verifier is
// the implementation. Errors wrap auth.ErrUnauthenticated or
// auth.ErrUnavailable.
type Verifier interface {
	Verify(ctx context.Context, authorizationHeader string) (auth.Identity, error)
}

// AccountDeleter deletes Firebase accounts, for DELETE
// /v1/users/{id}?firebase=true; deleting an account that does not exist
// succeeds. *auth.Accounts implements it.
type AccountDeleter interface {
	DeleteUser(ctx context.Context, uid string) error
}

// Params are what New needs. Store, Verifier and Logger are required.
type Params struct {
	Store    *storage.Store
	Verifier Verifier
	Logger   *zap.Logger
	// Audit writes the audit events (logging.Logging.Audit, which no level
	// setting silences); nil writes them with Logger.
	Audit *zap.Logger
	// Accounts, when set, lets DELETE /v1/users/{id}?firebase=true delete
	// the Firebase account; without it that request is 501.
	Accounts AccountDeleter
	// Fallback serves what is not under /v1 (/healthz, /readyz, /metrics);
	// nil answers 404.
	Fallback http.Handler
	// Addr is the listen address of Start (e.g. ":8080").
	Addr string
	// Live feeds GET /v1/experiments/{id}/measures/live; nil answers 503
	// there.
	Live LiveFeed
	// LiveRecheck is how often an open live stream re-checks that its
	// caller may still read the experiment; 0 means DefaultLiveRecheck.
	LiveRecheck time.Duration
}

// Server is the REST API.
type Server struct {
	store    *storage.Store
	verifier Verifier
	accounts AccountDeleter
	log      *zap.Logger
	auditLog *zap.Logger
	spec     []byte       // the OpenAPI document as JSON
	handler  http.Handler // the whole API, with the fallback
	routes   []route

	live        LiveFeed
	liveRecheck time.Duration
	liveAccess  *broadcast    // notified on admin changes
	shutdown    chan struct{} // closed when Stop begins, ending live streams
	stopOnce    sync.Once

	addr string
	run  *httpserve.Server // set by Start
}

// New builds the API. It parses the embedded OpenAPI document and fails if
// it is not valid.
func New(p Params) (*Server, error) {
	if p.Store == nil || p.Verifier == nil || p.Logger == nil {
		return nil, errors.New("httpapi: Store, Verifier and Logger are required")
	}
	spec, err := specJSON()
	if err != nil {
		return nil, err
	}
	s := &Server{
		store:    p.Store,
		verifier: p.Verifier,
		accounts: p.Accounts,
		log:      p.Logger,
		auditLog: p.Audit,
		spec:     spec,
		addr:     p.Addr,

		live:        p.Live,
		liveRecheck: p.LiveRecheck,
		liveAccess:  newBroadcast(),
		shutdown:    make(chan struct{}),
	}
	if s.auditLog == nil {
		s.auditLog = p.Logger
	}
	if s.liveRecheck <= 0 {
		s.liveRecheck = DefaultLiveRecheck
	}
	s.routes = s.routeTable()
	mux := http.NewServeMux()
	for _, rt := range s.routes {
		mux.Handle(rt.pattern, s.wrap(rt))
	}
	fallback := p.Fallback
	if fallback == nil {
		fallback = http.NotFoundHandler()
	}
	s.handler = s.withRequest(mux, fallback)
	return s, nil
}

// Handler is the whole API, /v1 and the fallback.
func (s *Server) Handler() http.Handler { return s.handler }

// Start listens synchronously (a taken port fails at once) and serves in a
// goroutine that Stop waits for.
func (s *Server) Start() error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second, // live streams lift it for themselves
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          zap.NewStdLog(s.log.Named("http")),
	}
	// Shutdown waits for handlers; live streams end when it begins.
	srv.RegisterOnShutdown(s.EndStreams)
	s.run = httpserve.New(srv, s.addr, "api", s.log)
	return s.run.Start()
}

// Addr is the address the server listens on.
func (s *Server) Addr() string {
	if s.run == nil {
		return s.addr
	}
	return s.run.Addr()
}

// EndStreams ends every open live stream, with an event telling the client
// to reconnect; Stop calls it first, since http.Server.Shutdown waits for
// handlers. A server run by other means calls it before shutting down.
func (s *Server) EndStreams() { s.stopOnce.Do(func() { close(s.shutdown) }) }

// Stop shuts the server down gracefully and waits for it.
func (s *Server) Stop(ctx context.Context) error {
	if s.run == nil {
		return nil
	}
	return s.run.Stop(ctx)
}
