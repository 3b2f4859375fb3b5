package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/mymonit/mymonit/pkg/storage"
	"github.com/mymonit/mymonit/services/api/internal/auth"
)

// ProblemBase prefixes the type URIs of problems.
const ProblemBase = "https://mymonit.dev/problems/"

// Problem types (the suffix of the type URI).
const (
	TypeUnauthenticated  = "unauthenticated"
	TypeForbidden        = "forbidden"
	TypeNotFound         = "not-found"
	TypeValidation       = "validation"
	TypeConflict         = "conflict"
	TypeUnsupportedMedia = "unsupported-media-type"
	TypeTooLarge         = "too-large"
	TypeMethodNotAllowed = "method-not-allowed"
	TypeNotImplemented   = "not-implemented"
	TypeUnavailable      = "unavailable"
	TypeInternal         = "internal"
)

// maxBody bounds request bodies.
const maxBody = 1 << 20

// InvalidParam names one bad parameter of a validation problem.
type InvalidParam struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// Problem is an RFC 9457 problem document, and an error.
type Problem struct {
	Type          string         `json:"type"`
	Title         string         `json:"title"`
	Status        int            `json:"status"`
	Detail        string         `json:"detail"`
	Instance      string         `json:"instance,omitempty"`
	RequestID     string         `json:"request_id,omitempty"`
	InvalidParams []InvalidParam `json:"invalid_params,omitempty"`

	cause error
}

func (p *Problem) Error() string {
	if p.cause != nil {
		return p.Detail + ": " + p.cause.Error()
	}
	return p.Detail
}

func (p *Problem) Unwrap() error { return p.cause }

var titles = map[string]string{
	TypeUnauthenticated:  "Unauthenticated",
	TypeForbidden:        "Forbidden",
	TypeNotFound:         "Not found",
	TypeValidation:       "Invalid request",
	TypeConflict:         "Conflict",
	TypeUnsupportedMedia: "Unsupported media type",
	TypeTooLarge:         "Request body too large",
	TypeMethodNotAllowed: "Method not allowed",
	TypeNotImplemented:   "Not implemented",
	TypeUnavailable:      "Service unavailable",
	TypeInternal:         "Internal error",
}

func newProblem(status int, typ, detail string) *Problem {
	return &Problem{Type: ProblemBase + typ, Title: titles[typ], Status: status, Detail: detail}
}

// invalid is a validation problem about one parameter.
func invalid(name, reason string) *Problem {
	p := newProblem(http.StatusBadRequest, TypeValidation, name+": "+reason)
	p.InvalidParams = []InvalidParam{{Name: name, Reason: reason}}
	return p
}

func notFound(detail string) *Problem { return newProblem(http.StatusNotFound, TypeNotFound, detail) }

func conflict(detail string) *Problem { return newProblem(http.StatusConflict, TypeConflict, detail) }

func forbidden(detail string) *Problem {
	return newProblem(http.StatusForbidden, TypeForbidden, detail)
}

// errClientGone marks a request whose client went away: nothing is written.
var errClientGone = errors.New("client closed the request")

// toProblem maps any error of a handler to the problem answered. It is the
// only place where errors become statuses.
func toProblem(err error) *Problem {
	var p *Problem
	switch {
	case errors.As(err, &p):
		return p
	case errors.Is(err, auth.ErrUnauthenticated):
		p = newProblem(http.StatusUnauthorized, TypeUnauthenticated,
			"a valid Firebase ID token is required: Authorization: Bearer <ID token> (missing, malformed, expired or revoked token, or disabled account)")
	case errors.Is(err, auth.ErrUnavailable):
		p = newProblem(http.StatusServiceUnavailable, TypeUnavailable,
			"the identity provider could not be reached to check the token; retry later")
	case errors.Is(err, storage.ErrNotFound):
		p = notFound("the resource does not exist")
	case errors.Is(err, storage.ErrConflict):
		p = conflict("the request conflicts with the current state of the resource")
	case errors.Is(err, storage.ErrInvalid):
		p = newProblem(http.StatusBadRequest, TypeValidation, strings.TrimSuffix(err.Error(), ": "+storage.ErrInvalid.Error()))
	case storage.IsRetryable(err):
		p = newProblem(http.StatusServiceUnavailable, TypeUnavailable, "the database is unavailable; retry later")
	default:
		p = newProblem(http.StatusInternalServerError, TypeInternal, "an internal error occurred; quote the request id when reporting it")
	}
	p.cause = err
	return p
}

// writeError answers err as a problem and logs server-side failures. It is
// the single place where handler errors are handled.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	info := infoOf(r.Context())
	if errors.Is(err, errClientGone) || (errors.Is(err, context.Canceled) && r.Context().Err() != nil) {
		info.status = 499 // nginx's "client closed request", for the access log only
		return
	}
	p := *toProblem(err)
	p.Instance = r.URL.Path
	p.RequestID = info.id
	if p.Status >= 500 {
		s.log.Error("request failed", zap.Error(err), zap.String("http.request.id", info.id),
			zap.String("http.route", info.route))
	}
	switch p.Status {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="mymonit"`)
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "5")
	}
	writeJSONType(w, p.Status, "application/problem+json", p)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	writeJSONType(w, status, "application/json", v)
}

func writeJSONType(w http.ResponseWriter, status int, contentType string, v any) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// decodeBody reads one JSON object of at most maxBody bytes into dst,
// rejecting unknown fields, with problems that name the field.
func decodeBody(w http.ResponseWriter, r *http.Request, dst any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return newProblem(http.StatusUnsupportedMediaType, TypeUnsupportedMedia,
				"the request body must be application/json")
		}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(dst)
	if err == nil {
		if _, extra := dec.Token(); extra != io.EOF {
			return invalid("body", "must hold a single JSON object")
		}
		return nil
	}
	var (
		syntax  *json.SyntaxError
		typeErr *json.UnmarshalTypeError
		tooBig  *http.MaxBytesError
	)
	switch {
	case errors.As(err, &tooBig):
		return newProblem(http.StatusRequestEntityTooLarge, TypeTooLarge,
			fmt.Sprintf("the request body exceeds %d bytes", maxBody))
	case errors.Is(err, io.EOF):
		return invalid("body", "a JSON object is required")
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
		return invalid("body", "is not valid JSON")
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return invalid("body", "must be a JSON object")
		}
		return invalid("body."+typeErr.Field, "must be a JSON "+jsonKind(typeErr.Type.Kind().String()))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		if len(name) > 64 {
			name = strings.ToValidUTF8(name[:64], "") + "..."
		}
		return invalid("body."+name, "unknown field")
	case r.Context().Err() != nil:
		return errClientGone
	default:
		return invalid("body", "could not be read as JSON")
	}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "int", "int64", "int32", "uint", "uint64", "float64":
		return "number"
	case "bool":
		return "boolean"
	case "struct", "map":
		return "object"
	case "slice":
		return "array"
	}
	return "value of another type"
}
