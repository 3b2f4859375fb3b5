package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/mymonit/mymonit/pkg/logging"
	"github.com/mymonit/mymonit/pkg/storage"
)

// requestInfo is what the layers of one request share. Handlers fill the
// audit target.
type requestInfo struct {
	id     string
	route  string
	status int
	user   storage.User // the caller, once authenticated
	authed bool
	// expires is when the caller's token expires (live streams end then).
	expires time.Time

	targetUser int64  // audit: the user acted upon
	experiment string // audit: the experiment acted upon (slug)

	// access is the experiment of the route's path as the caller may see
	// it, read with the caller (Server.authorize) on the routes of one
	// experiment; nil elsewhere, and when the path's id is no slug.
	access *storage.Caller
}

type infoKey struct{}

func infoOf(ctx context.Context) *requestInfo {
	if info, ok := ctx.Value(infoKey{}).(*requestInfo); ok {
		return info
	}
	return &requestInfo{}
}

// caller is the authenticated user of the request.
func caller(r *http.Request) storage.User { return infoOf(r.Context()).user }

// requestID keeps a client's X-Request-ID when it is short and plain,
// otherwise makes one.
func requestID(r *http.Request) string {
	id := r.Header.Get("X-Request-ID")
	if len(id) >= 1 && len(id) <= 64 && !slices.ContainsFunc([]byte(id), func(c byte) bool {
		return !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-')
	}) {
		return id
	}
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// statusWriter records the status for the access log.
type statusWriter struct {
	http.ResponseWriter
	info *requestInfo
}

func (w *statusWriter) WriteHeader(code int) {
	if w.info.status == 0 {
		w.info.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.info.status == 0 {
		w.info.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// captureWriter collects what the mux answers for unmatched /v1 requests
// (404, 405 with Allow) so it can be rewritten as a problem.
type captureWriter struct {
	header http.Header
	status int
}

func (c *captureWriter) Header() http.Header         { return c.header }
func (c *captureWriter) Write(b []byte) (int, error) { return len(b), nil }
func (c *captureWriter) WriteHeader(code int)        { c.status = code }

// withRequest assigns the request id, sends what is not under /v1 to the
// fallback, turns the mux's plain-text 404 and 405 under /v1 into problems,
// and writes one access log line.
func (s *Server) withRequest(mux *http.ServeMux, fallback http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		info := &requestInfo{id: requestID(r)}
		r = r.WithContext(context.WithValue(r.Context(), infoKey{}, info))
		w.Header().Set("X-Request-ID", info.id)
		sw := &statusWriter{ResponseWriter: w, info: info}

		h, pattern := mux.Handler(r)
		info.route = pattern
		switch {
		case r.URL.Path != "/v1" && !strings.HasPrefix(r.URL.Path, "/v1/"):
			info.route = "fallback"
			fallback.ServeHTTP(sw, r)
		case pattern == "":
			c := &captureWriter{header: http.Header{}}
			h.ServeHTTP(c, r)
			if c.status == http.StatusMethodNotAllowed {
				sw.Header().Set("Allow", c.header.Get("Allow"))
				s.writeError(sw, r, newProblem(http.StatusMethodNotAllowed, TypeMethodNotAllowed,
					fmt.Sprintf("%s is not allowed on %s; allowed: %s", r.Method, r.URL.Path, c.header.Get("Allow"))))
			} else {
				s.writeError(sw, r, notFound("no such route: "+r.URL.Path))
			}
		default:
			mux.ServeHTTP(sw, r)
		}
		if info.status == 0 {
			info.status = http.StatusOK
		}
		fields := []zap.Field{
			zap.String("http.request.id", info.id),
			zap.String("http.request.method", r.Method),
			zap.String("http.route", info.route),
			zap.Int("http.response.status_code", info.status),
			zap.Duration("event.duration", time.Since(start)),
		}
		if info.authed {
			fields = append(fields, logging.UserID(strconv.FormatInt(info.user.ID, 10)))
		}
		s.log.Info("request", fields...)
	})
}

// route is one /v1 endpoint.
type route struct {
	// pattern is the ServeMux pattern, "GET /v1/users/{id}".
	pattern string
	// public routes need no token.
	public bool
	// roles may call the route; empty means every authenticated user.
	roles []storage.Role
	// action, when set, makes every call an audit event with that
	// event.action.
	action string
	h      func(w http.ResponseWriter, r *http.Request) error
}

// wrap runs authentication, the role check, the handler, the audit event
// and the error mapper around a route's handler.
func (s *Server) wrap(rt route) http.Handler {
	scoped := strings.Contains(rt.pattern, " "+experimentPath)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := infoOf(r.Context())
		err := s.authorize(r, rt, scoped)
		if err == nil {
			err = call(rt.h, w, r)
		}
		if rt.action != "" && info.authed {
			s.audit(info, rt.action, err)
		}
		if rt.action != "" && r.Method != http.MethodGet && err == nil {
			s.accessChanged() // open live streams re-check their access
		}
		if err != nil {
			s.writeError(w, r, err)
		}
	})
}

// call runs h, turning a panic into an error: the request still gets its
// audit event and a problem+json 500 (when nothing was written yet), the
// stack goes to the error log, and the server goes on. http.ErrAbortHandler
// is re-raised: it is how a handler aborts a response on purpose.
func call(h func(http.ResponseWriter, *http.Request) error, w http.ResponseWriter, r *http.Request) (err error) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if v == http.ErrAbortHandler {
			panic(v)
		}
		err = fmt.Errorf("handler panic: %v\n%s", v, debug.Stack())
	}()
	return h(w, r)
}

// experimentPath starts the path of every route of one experiment.
const experimentPath = "/v1/experiments/{id}"

// authorize authenticates the caller (unless the route is public) and
// checks its role. On the routes of one experiment (scoped) the caller's
// user, the experiment and the caller's membership are read in one
// statement, kept for Server.experiment: one round trip to the database
// less on every such request.
func (s *Server) authorize(r *http.Request, rt route, scoped bool) error {
	if rt.public {
		return nil
	}
	id, err := s.verifier.Verify(r.Context(), r.Header.Get("Authorization"))
	if err != nil {
		if r.Context().Err() != nil {
			return errClientGone
		}
		return err
	}
	info := infoOf(r.Context())
	info.expires = id.ExpiresAt
	var u storage.User
	if slug := r.PathValue("id"); scoped && slugPattern.MatchString(slug) {
		var c storage.Caller
		if c, err = s.store.UserAndExperiment(r.Context(), id.UID, slug); err == nil {
			u, info.access = c.User, &c
		}
	} else {
		u, err = s.store.UserByFirebaseUID(r.Context(), id.UID)
	}
	if errors.Is(err, storage.ErrNotFound) {
		return forbidden("this account is not a MyMONIT user (unknown or erased); ask an administrator")
	}
	if err != nil {
		return fmt.Errorf("user of the token: %w", err)
	}
	info.user, info.authed = u, true
	if len(rt.roles) > 0 && !slices.Contains(rt.roles, u.Role) {
		return forbidden(fmt.Sprintf("the %s role may not use %s", u.Role, rt.pattern))
	}
	return nil
}

// audit logs the audit event of an admin change.
func (s *Server) audit(info *requestInfo, action string, err error) {
	outcome := logging.OutcomeSuccess
	if err != nil {
		outcome = logging.OutcomeFailure
	}
	fields := []zap.Field{
		logging.Audit(action, outcome),
		logging.UserID(strconv.FormatInt(info.user.ID, 10)),
		zap.String("user.roles", string(info.user.Role)),
		zap.String("http.request.id", info.id),
	}
	if info.targetUser != 0 {
		fields = append(fields, zap.String("mymonit.target.user_id", strconv.FormatInt(info.targetUser, 10)))
	}
	if info.experiment != "" {
		fields = append(fields, zap.String("mymonit.experiment", info.experiment))
	}
	if err != nil {
		p := toProblem(err)
		fields = append(fields, zap.Int("http.response.status_code", p.Status), zap.String("event.reason", p.Type))
	}
	s.auditLog.Info("audit "+action, fields...)
}
