package lineproto

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/mymonit/mymonit/adapters/sink"
	"github.com/mymonit/mymonit/pkg/measure"
)

// Sink receives the measures; *sink.Sink implements it.
type Sink interface {
	Add(ctx context.Context, ms ...measure.Measure) (*sink.Ticket, error)
	Reject(reason string, n int)
}

// Settings configure the listeners and the mapping.
type Settings struct {
	HTTPAddr         string   `env:"MYMONIT_LINEPROTO_HTTP_ADDR" default:":8186" help:"listen address of POST /write (InfluxDB v1) and /api/v2/write (v2)"`
	UDPAddr          string   `env:"MYMONIT_LINEPROTO_UDP_ADDR" help:"listen address for line protocol over UDP; empty: no UDP"`
	UDPPrecision     string   `env:"MYMONIT_LINEPROTO_UDP_PRECISION" default:"ns" oneof:"ns us ms s m h" help:"precision of the timestamps in UDP datagrams"`
	Experiment       string   `env:"MYMONIT_LINEPROTO_EXPERIMENT" help:"experiment of lines without an experiment tag in requests without db/bucket (and of UDP lines)"`
	SensorTags       []string `env:"MYMONIT_LINEPROTO_SENSOR_TAGS" default:"*" help:"tags whose values join the sensor name (<measurement>.<field>,<tag>=<value>...): a comma-separated list, * for all, - for none"`
	IgnoreNonNumeric bool     `env:"MYMONIT_LINEPROTO_IGNORE_NON_NUMERIC" default:"false" help:"drop string and boolean fields silently (counted as non_numeric) instead of answering 400"`
	MaxBody          int64    `env:"MYMONIT_LINEPROTO_MAX_BODY" default:"33554432" min:"1024" help:"largest request body in bytes, after gzip decompression"`
}

// Validate checks the default experiment.
func (s Settings) Validate() error {
	if s.Experiment != "" {
		if err := measure.ValidateExperiment(s.Experiment); err != nil {
			return fmt.Errorf("MYMONIT_LINEPROTO_EXPERIMENT=%q: %w", s.Experiment, err)
		}
	}
	if _, err := ParsePrecision(s.UDPPrecision); err != nil {
		return fmt.Errorf("MYMONIT_LINEPROTO_UDP_PRECISION: %w", err)
	}
	if s.MaxBody < 1024 {
		return fmt.Errorf("MYMONIT_LINEPROTO_MAX_BODY=%d: must be at least 1024", s.MaxBody)
	}
	return nil
}

// BindFlags defines flags overriding the settings.
func (s *Settings) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&s.HTTPAddr, "listen", s.HTTPAddr, "listen address of /write and /api/v2/write (MYMONIT_LINEPROTO_HTTP_ADDR)")
	fs.StringVar(&s.UDPAddr, "udp", s.UDPAddr, "UDP listen address; empty: none (MYMONIT_LINEPROTO_UDP_ADDR)")
	fs.StringVar(&s.UDPPrecision, "udp-precision", s.UDPPrecision, "timestamp precision of UDP lines (MYMONIT_LINEPROTO_UDP_PRECISION)")
	fs.StringVar(&s.Experiment, "experiment", s.Experiment, "default experiment (MYMONIT_LINEPROTO_EXPERIMENT)")
	fs.Func("sensor-tags", "tags joining the sensor name: list, * or - (MYMONIT_LINEPROTO_SENSOR_TAGS, default "+strings.Join(s.SensorTags, ",")+")", func(v string) error {
		s.SensorTags = splitList(v)
		return nil
	})
	fs.BoolVar(&s.IgnoreNonNumeric, "ignore-non-numeric", s.IgnoreNonNumeric, "drop string and boolean fields silently (MYMONIT_LINEPROTO_IGNORE_NON_NUMERIC)")
	fs.Int64Var(&s.MaxBody, "max-body", s.MaxBody, "largest body in bytes after decompression (MYMONIT_LINEPROTO_MAX_BODY)")
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Mapping returns the mapping the settings describe.
func (s Settings) Mapping() Mapping {
	tags := s.SensorTags
	if len(tags) == 1 && tags[0] == "-" {
		tags = nil
	}
	return Mapping{DefaultExperiment: s.Experiment, SensorTags: tags, IgnoreNonNumeric: s.IgnoreNonNumeric}
}

// Handler serves the write endpoints.
type Handler struct {
	sink    Sink
	mapping Mapping
	maxBody int64
	log     *zap.Logger
	now     func() time.Time
}

// NewHandler returns the HTTP handler of POST /write, POST /api/v2/write and
// GET|HEAD /ping.
func NewHandler(s Sink, m Mapping, maxBody int64, log *zap.Logger) *Handler {
	if log == nil {
		log = zap.NewNop()
	}
	return &Handler{sink: s, mapping: m, maxBody: maxBody, log: log, now: time.Now}
}

// Routes returns the mux of the handler's endpoints.
func (h *Handler) Routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /write", func(w http.ResponseWriter, r *http.Request) { h.write(w, r, "db") })
	mux.HandleFunc("POST /api/v2/write", func(w http.ResponseWriter, r *http.Request) { h.write(w, r, "bucket") })
	ping := func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }
	mux.HandleFunc("GET /ping", ping)
	mux.HandleFunc("HEAD /ping", ping)
	return mux
}

// Response is the JSON body of a 400 (bad lines) or an error.
type Response struct {
	// Code is InfluxDB's error code: invalid, too large, unavailable...
	Code string `json:"code"`
	// Message sums the problem up, listing the first bad lines; InfluxDB
	// clients (Telegraf) log it.
	Message string `json:"message"`
	// Error repeats Message for InfluxDB v1 clients.
	Error string `json:"error"`
	// Published counts the measures of the request confirmed by RabbitMQ.
	Published int `json:"published"`
	// Rejected lists every refused line (or field), in line order.
	Rejected []LineError `json:"rejected,omitempty"`
}

// MarshalJSON writes a LineError as {"line","reason","text"}.
func (e LineError) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Line   int    `json:"line"`
		Reason string `json:"reason"`
		Text   string `json:"text"`
	}{e.Line, e.Reason, e.Text})
}

func (h *Handler) write(w http.ResponseWriter, r *http.Request, expParam string) {
	q := r.URL.Query()
	prec, err := ParsePrecision(q.Get("precision"))
	if err != nil {
		h.fail(w, http.StatusBadRequest, "invalid", err.Error())
		return
	}
	exp := q.Get(expParam)
	if exp != "" {
		if err := measure.ValidateExperiment(exp); err != nil {
			h.fail(w, http.StatusBadRequest, "invalid", fmt.Sprintf("%s=%q is not an experiment name: %v", expParam, exp, err))
			return
		}
	}
	body, status, err := h.read(w, r)
	if err != nil {
		code := "invalid"
		if status == http.StatusRequestEntityTooLarge {
			code = "request too large"
		}
		h.fail(w, status, code, err.Error())
		return
	}
	p := h.mapping.Parse(body, Batch{Experiment: exp, Precision: prec, Now: h.now()})
	if p.Ignored > 0 {
		h.sink.Reject(KindNonNumeric, p.Ignored)
	}
	published, errs, err := Publish(r.Context(), h.sink, p)
	if err != nil {
		h.log.Warn("write not confirmed", zap.Error(err), zap.Int("measures", len(p.Measures)))
		resp := h.response("unavailable", fmt.Sprintf("measures not confirmed by RabbitMQ (%v); send the request again", err), published, errs)
		w.Header().Set("Retry-After", "1")
		h.reply(w, http.StatusServiceUnavailable, resp)
		return
	}
	if len(errs) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	h.reply(w, http.StatusBadRequest, h.response("invalid", "", published, errs))
}

// Publish adds the parsed measures to the sink and waits for their confirms.
// It returns how many were confirmed, every refused line (the parser's and
// the contract's, in line order; each counted in the sink's metrics), and an
// error when the measures could not all be confirmed.
func Publish(ctx context.Context, s Sink, p Parsed) (int, []LineError, error) {
	errs := p.Errors
	for k, n := range kindCounts(errs) {
		s.Reject(k, n)
	}
	if len(p.Measures) == 0 {
		return 0, errs, nil
	}
	t, err := s.Add(ctx, p.Measures...)
	for _, rj := range t.Rejected() {
		line := p.Lines[rj.Index]
		errs = append(errs, LineError{Line: line, Text: p.Text(line), Reason: fmt.Sprintf("sensor %q: %s", cutString(p.Measures[rj.Index].Sensor), rj.Reason), Kind: KindInvalid})
	}
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Line < errs[j].Line })
	if err != nil {
		return 0, errs, err
	}
	if err := t.Wait(ctx); err != nil {
		return 0, errs, err
	}
	return t.Queued(), errs, nil
}

func (h *Handler) response(code, msg string, published int, errs []LineError) Response {
	if msg == "" {
		var b strings.Builder
		fmt.Fprintf(&b, "partial write: %d line(s) refused, %d measures of the other lines published", countLines(errs), published)
		for i, e := range errs {
			if i == 5 {
				fmt.Fprintf(&b, "; and %d more (see rejected)", len(errs)-5)
				break
			}
			fmt.Fprintf(&b, "; %s", e.Error())
		}
		msg = b.String()
	}
	return Response{Code: code, Message: msg, Error: msg, Published: published, Rejected: errs}
}

func countLines(errs []LineError) int {
	n, last := 0, 0
	for _, e := range errs {
		if e.Line != last {
			n++
			last = e.Line
		}
	}
	return n
}

func (h *Handler) fail(w http.ResponseWriter, status int, code, msg string) {
	h.reply(w, status, Response{Code: code, Message: msg, Error: msg})
}

func (h *Handler) reply(w http.ResponseWriter, status int, resp Response) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Influxdb-Error", resp.Message)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(resp)
}

// read returns the decompressed body, at most maxBody bytes.
func (h *Handler) read(w http.ResponseWriter, r *http.Request) ([]byte, int, error) {
	var src io.Reader = http.MaxBytesReader(w, r.Body, h.maxBody)
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(src)
		if err != nil {
			return nil, http.StatusBadRequest, fmt.Errorf("gzip body: %w", err)
		}
		defer zr.Close()
		src = zr
	default:
		return nil, http.StatusUnsupportedMediaType, fmt.Errorf("Content-Encoding %q: only gzip is accepted", enc)
	}
	body, err := io.ReadAll(io.LimitReader(src, h.maxBody+1))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe) || int64(len(body)) > h.maxBody:
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("body larger than %d bytes (MYMONIT_LINEPROTO_MAX_BODY); split the write", h.maxBody)
	case err != nil:
		return nil, http.StatusBadRequest, fmt.Errorf("read body: %w", err)
	}
	return body, 0, nil
}

// Server runs the HTTP and UDP listeners.
type Server struct {
	set  Settings
	h    *Handler
	sink Sink
	log  *zap.Logger

	http   *http.Server
	ln     net.Listener
	udp    net.PacketConn
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewServer returns a server; Start listens.
func NewServer(set Settings, s Sink, log *zap.Logger) *Server {
	if log == nil {
		log = zap.NewNop()
	}
	h := NewHandler(s, set.Mapping(), set.MaxBody, log)
	return &Server{set: set, h: h, sink: s, log: log}
}

// Start listens on the HTTP (and UDP) addresses synchronously, so a taken
// port fails at once, then serves in goroutines Stop waits for.
func (s *Server) Start(context.Context) error {
	ln, err := net.Listen("tcp", s.set.HTTPAddr)
	if err != nil {
		return fmt.Errorf("MYMONIT_LINEPROTO_HTTP_ADDR: %w", err)
	}
	s.ln = ln
	if s.set.UDPAddr != "" {
		pc, err := net.ListenPacket("udp", s.set.UDPAddr)
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("MYMONIT_LINEPROTO_UDP_ADDR: %w", err)
		}
		s.udp = pc
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.http = &http.Server{Handler: s.h.Routes(), ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("line protocol HTTP server stopped", zap.Error(err))
		}
	}()
	if s.udp != nil {
		prec, _ := ParsePrecision(s.set.UDPPrecision)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveUDP(ctx, prec)
		}()
	}
	s.log.Info("line protocol listening", zap.String("http", ln.Addr().String()), zap.String("udp", s.UDPAddr()))
	return nil
}

// HTTPAddr is the address the HTTP listener is bound to.
func (s *Server) HTTPAddr() string { return s.ln.Addr().String() }

// UDPAddr is the address the UDP listener is bound to, or "".
func (s *Server) UDPAddr() string {
	if s.udp == nil {
		return ""
	}
	return s.udp.LocalAddr().String()
}

func (s *Server) serveUDP(ctx context.Context, prec Precision) {
	buf := make([]byte, 64*1024)
	for {
		n, _, err := s.udp.ReadFrom(buf)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.Error("UDP listener stopped", zap.Error(err))
			}
			return
		}
		p := s.h.mapping.Parse(buf[:n], Batch{Precision: prec, Now: s.h.now()})
		if p.Ignored > 0 {
			s.sink.Reject(KindNonNumeric, p.Ignored)
		}
		for k, c := range kindCounts(p.Errors) {
			s.sink.Reject(k, c)
		}
		if len(p.Errors) > 0 {
			s.log.Debug("UDP datagram with bad lines", zap.Int("bad", len(p.Errors)), zap.String("first", p.Errors[0].Error()))
		}
		if len(p.Measures) == 0 {
			continue
		}
		// UDP has no answer: the ticket is not waited for. Add waits while
		// the buffer is full, and the socket's buffer then fills.
		if _, err := s.sink.Add(ctx, p.Measures...); err != nil {
			s.log.Warn("UDP measures dropped", zap.Error(err), zap.Int("measures", len(p.Measures)))
		}
	}
}

func kindCounts(errs []LineError) map[string]int {
	m := map[string]int{}
	for _, e := range errs {
		m[e.Kind]++
	}
	return m
}

// Stop stops accepting requests and datagrams and waits for the requests in
// progress (whose measures are then confirmed) until ctx is done.
func (s *Server) Stop(ctx context.Context) error {
	var err error
	if s.udp != nil {
		_ = s.udp.Close()
	}
	if s.http != nil {
		err = s.http.Shutdown(ctx)
	}
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	return err
}
