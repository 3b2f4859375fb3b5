// Package httpserve runs an *http.Server with the lifecycle every MyMONIT
// process wants: Start listens synchronously, so a taken port fails at once,
// then serves in a goroutine that Stop shuts down gracefully and waits for.
package httpserve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	"go.uber.org/zap"
)

// Server serves one *http.Server on one listener.
type Server struct {
	srv  *http.Server
	addr string
	name string
	log  *zap.Logger
	ln   net.Listener
	done chan error
}

// New returns a Server for srv listening on addr (e.g. ":8080",
// "127.0.0.1:0"); name says what it serves in errors and logs. A nil log
// logs nothing.
func New(srv *http.Server, addr, name string, log *zap.Logger) *Server {
	if log == nil {
		log = zap.NewNop()
	}
	return &Server{srv: srv, addr: addr, name: name, log: log}
}

// Start listens, then serves in a goroutine that Stop waits for.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("%s: listen on %s: %w", s.name, s.addr, err)
	}
	s.ln = ln
	s.done = make(chan error, 1)
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	s.log.Info(s.name+" listening", zap.String("url.full", "http://"+ln.Addr().String()))
	return nil
}

// Addr is the address the server listens on once started, else the
// configured one.
func (s *Server) Addr() string {
	if s.ln == nil {
		return s.addr
	}
	return s.ln.Addr().String()
}

// Stop shuts the server down gracefully (http.Server.Shutdown, bounded by
// ctx) and waits for it. Stopping a server never started does nothing.
func (s *Server) Stop(ctx context.Context) error {
	if s.done == nil {
		return nil
	}
	err := s.srv.Shutdown(ctx)
	return errors.Join(err, <-s.done)
}
