package httppush

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"mime"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/mymonit/mymonit/adapters/sink"
	"github.com/mymonit/mymonit/pkg/logging"
	"github.com/mymonit/mymonit/pkg/measure"
)

// Sink receives the measures; *sink.Sink implements it.
type Sink interface {
	Add(ctx context.Context, ms ...measure.Measure) (*sink.Ticket, error)
	Reject(reason string, n int)
}

// Settings configure the HTTP push endpoint.
type Settings struct {
	HTTPAddr string `env:"MYMONIT_HTTPPUSH_HTTP_ADDR" default:":8187" help:"listen address of POST /v1/measures"`
	KeysFile string `env:"MYMONIT_HTTPPUSH_KEYS_FILE" default:"httppush-keys.json" help:"JSON file of the producers: name, SHA-256 of the API key, allowed experiments, rate and burst (see httppush key create)"`
}

// BindFlags defines flags overriding the settings.
func (s *Settings) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&s.HTTPAddr, "listen", s.HTTPAddr, "listen address of POST /v1/measures (MYMONIT_HTTPPUSH_HTTP_ADDR)")
	fs.StringVar(&s.KeysFile, "keys-file", s.KeysFile, "producers and their hashed keys (MYMONIT_HTTPPUSH_KEYS_FILE)")
}

// Rejection kinds, the reason label of mymonit_adapter_measures_rejected_total.
const (
	KindUnauthorized = "unauthorized"
	KindMalformed    = "malformed_message"
	KindInvalid      = "invalid"
	KindForbidden    = "experiment_not_allowed"
	KindRateLimited  = "rate_limited"
)

// Handler serves POST /v1/measures.
type Handler struct {
	sink Sink
	keys *Keys
	log  *zap.Logger

	mu       sync.Mutex
	limiters map[string]*rate.Limiter
}

// NewHandler returns the handler; keys authenticate the producers.
func NewHandler(s Sink, keys *Keys, log *zap.Logger) *Handler {
	if log == nil {
		log = zap.NewNop()
	}
	h := &Handler{sink: s, keys: keys, log: log, limiters: map[string]*rate.Limiter{}}
	for _, p := range keys.Producers() {
		h.limiters[p.Name] = rate.NewLimiter(rate.Limit(p.Rate), p.Burst)
	}
	return h
}

// Routes returns the mux of the endpoint.
func (h *Handler) Routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/measures", h.push)
	return mux
}

// Rejected is one refused measure of a request.
type Rejected struct {
	// Index of the measure in the batch (0 for a single measure).
	Index int `json:"index"`
	// Reason says what is wrong.
	Reason string `json:"reason"`
}

// Response is the JSON answer of every request.
type Response struct {
	// Accepted counts the measures published and confirmed by RabbitMQ.
	Accepted int `json:"accepted"`
	// Rejected lists the refused measures, by index.
	Rejected []Rejected `json:"rejected,omitempty"`
	// Error describes a failure of the whole request.
	Error string `json:"error,omitempty"`
}

// apiKey returns the key of "Authorization: Bearer <key>" or "X-API-Key".
func apiKey(r *http.Request) string {
	if k := r.Header.Get("X-API-Key"); k != "" {
		return strings.TrimSpace(k)
	}
	a := r.Header.Get("Authorization")
	if len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		return strings.TrimSpace(a[7:])
	}
	return ""
}

func (h *Handler) push(w http.ResponseWriter, r *http.Request) {
	key := apiKey(r)
	if key == "" {
		h.sink.Reject(KindUnauthorized, 1)
		w.Header().Set("WWW-Authenticate", `Bearer realm="mymonit"`)
		reply(w, http.StatusUnauthorized, Response{Error: "missing API key: send Authorization: Bearer <key> (or X-API-Key)"})
		return
	}
	p, ok := h.keys.Lookup(key)
	if !ok {
		h.sink.Reject(KindUnauthorized, 1)
		w.Header().Set("WWW-Authenticate", `Bearer realm="mymonit", error="invalid_token"`)
		reply(w, http.StatusUnauthorized, Response{Error: "unknown API key"})
		return
	}
	log := h.log.With(zap.String("producer", p.Name))
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != measure.ContentType {
			h.sink.Reject(KindMalformed, 1)
			reply(w, http.StatusUnsupportedMediaType, Response{Error: fmt.Sprintf("Content-Type %q: send %s", ct, measure.ContentType)})
			return
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, measure.MaxMessageBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			h.sink.Reject(KindMalformed, 1)
			reply(w, http.StatusRequestEntityTooLarge, Response{Error: fmt.Sprintf("body larger than %d bytes: split the batch", measure.MaxMessageBytes)})
			return
		}
		reply(w, http.StatusBadRequest, Response{Error: "read body: " + err.Error()})
		return
	}
	dec, err := measure.Decode(body)
	if err != nil {
		h.sink.Reject(KindMalformed, 1)
		reply(w, http.StatusBadRequest, Response{Error: err.Error()})
		return
	}
	// Rebuild each measure's index in the message: Decode returns the good
	// ones in order and the bad ones with their index.
	var rejected []Rejected
	bad := map[int]bool{}
	for _, rj := range dec.Rejected {
		bad[rj.Index] = true
		rejected = append(rejected, Rejected{Index: rj.Index, Reason: rj.Reason})
	}
	if len(dec.Rejected) > 0 {
		h.sink.Reject(KindInvalid, len(dec.Rejected))
	}
	var ms []measure.Measure
	var idx []int
	next := 0
	forbidden := 0
	for _, m := range dec.Measures {
		for bad[next] {
			next++
		}
		i := next
		next++
		if !p.Allows(m.Experiment) {
			forbidden++
			rejected = append(rejected, Rejected{Index: i, Reason: prefix(dec.Batch, i) + fmt.Sprintf("experiment %q is not allowed for producer %q", m.Experiment, p.Name)})
			continue
		}
		ms = append(ms, m)
		idx = append(idx, i)
	}
	if forbidden > 0 {
		h.sink.Reject(KindForbidden, forbidden)
	}
	if len(ms) > 0 {
		if wait, err := h.allow(p, len(ms)); err != nil {
			h.sink.Reject(KindRateLimited, len(ms))
			status := http.StatusRequestEntityTooLarge // larger than the burst: never allowed
			if wait > 0 {
				status = http.StatusTooManyRequests
				w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			}
			reply(w, status, Response{Error: err.Error(), Rejected: sortRejected(rejected)})
			return
		}
		t, err := h.sink.Add(r.Context(), ms...)
		for _, rj := range t.Rejected() {
			rejected = append(rejected, Rejected{Index: idx[rj.Index], Reason: prefix(dec.Batch, idx[rj.Index]) + rj.Reason})
		}
		if err == nil {
			err = t.Wait(r.Context())
		}
		if err != nil {
			log.Warn("push not confirmed", zap.Error(err), zap.Int("measures", len(ms)))
			w.Header().Set("Retry-After", "1")
			reply(w, http.StatusServiceUnavailable, Response{Error: fmt.Sprintf("measures not confirmed by RabbitMQ (%v): send the request again", err), Rejected: sortRejected(rejected)})
			return
		}
		resp := Response{Accepted: t.Queued(), Rejected: sortRejected(rejected)}
		if len(rejected) > 0 {
			reply(w, http.StatusBadRequest, resp)
			return
		}
		reply(w, http.StatusOK, resp)
		return
	}
	reply(w, http.StatusBadRequest, Response{Rejected: sortRejected(rejected), Error: "no measure accepted"})
}

func prefix(batch bool, i int) string {
	if batch {
		return fmt.Sprintf("measure %d: ", i)
	}
	return ""
}

// allow takes n measures from the producer's rate limit, or says how long to
// wait.
func (h *Handler) allow(p Producer, n int) (time.Duration, error) {
	h.mu.Lock()
	lim := h.limiters[p.Name]
	h.mu.Unlock()
	if n > lim.Burst() {
		return 0, fmt.Errorf("%d measures in one request exceed the burst of producer %q (%d): split the batch", n, p.Name, lim.Burst())
	}
	res := lim.ReserveN(time.Now(), n)
	if d := res.Delay(); d > 0 {
		res.Cancel()
		return d, fmt.Errorf("rate limit of producer %q (%.0f measures/s, burst %d) exceeded: retry in %s", p.Name, p.Rate, p.Burst, d.Round(time.Millisecond))
	}
	return 0, nil
}

func sortRejected(rs []Rejected) []Rejected {
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].Index < rs[j].Index })
	return rs
}

func reply(w http.ResponseWriter, status int, resp Response) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(resp)
}

// Server runs the HTTP listener.
type Server struct {
	addr string
	h    *Handler
	log  *zap.Logger
	srv  *http.Server
	ln   net.Listener
	wg   sync.WaitGroup
}

// NewServer loads the keys file and returns the server; Start listens.
func NewServer(set Settings, s Sink, log *zap.Logger) (*Server, error) {
	keys, err := LoadKeys(set.KeysFile)
	if err != nil {
		return nil, fmt.Errorf("MYMONIT_HTTPPUSH_KEYS_FILE: %w", err)
	}
	if log == nil {
		log = zap.NewNop()
	}
	log.Info("producers loaded", zap.Int("producers", len(keys.Producers())), logging.Event("authentication", "keys-loaded", logging.OutcomeSuccess))
	return &Server{addr: set.HTTPAddr, h: NewHandler(s, keys, log), log: log}, nil
}

// Start listens synchronously, then serves in a goroutine Stop waits for.
func (s *Server) Start(context.Context) error {
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("MYMONIT_HTTPPUSH_HTTP_ADDR: %w", err)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s.h.Routes(), ReadHeaderTimeout: 10 * time.Second}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("HTTP push server stopped", zap.Error(err))
		}
	}()
	s.log.Info("HTTP push listening", zap.String("addr", ln.Addr().String()))
	return nil
}

// Addr is the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Stop stops accepting and waits for the requests in progress.
func (s *Server) Stop(ctx context.Context) error {
	var err error
	if s.srv != nil {
		err = s.srv.Shutdown(ctx)
	}
	s.wg.Wait()
	return err
}
