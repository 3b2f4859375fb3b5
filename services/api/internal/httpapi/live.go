package httpapi

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/mymonit/mymonit/pkg/measure"
	"github.com/mymonit/mymonit/pkg/storage"
	"github.com/mymonit/mymonit/services/api/internal/auth"
	"github.com/mymonit/mymonit/services/api/internal/live"
)

// LiveFeed is where live measures come from; *live.Hub implements it.
type LiveFeed interface {
	Subscribe(experiment string) (*live.Subscription, error)
}

// Live stream timing.
const (
	// DefaultLiveRecheck is how often an open stream re-checks that its
	// caller may still read the experiment, when Params.LiveRecheck is 0.
	DefaultLiveRecheck = 5 * time.Second
	// liveKeepAlive is the interval of the comment lines that keep proxies
	// from closing an idle stream.
	liveKeepAlive = 15 * time.Second
	// liveWriteTimeout bounds one write to the client: a client that stops
	// reading is disconnected rather than holding the handler.
	liveWriteTimeout = 10 * time.Second
	// maxLiveSensors bounds the sensor filters of one stream.
	maxLiveSensors = 100
)

// broadcast wakes every waiter at once, any number of times.
type broadcast struct {
	mu sync.Mutex
	ch chan struct{}
}

func newBroadcast() *broadcast { return &broadcast{ch: make(chan struct{})} }

// wait returns a channel closed by the next notify.
func (b *broadcast) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ch
}

func (b *broadcast) notify() {
	b.mu.Lock()
	defer b.mu.Unlock()
	close(b.ch)
	b.ch = make(chan struct{})
}

// accessChanged makes every open live stream re-check its caller's access
// at once; an admin change through this replica calls it. Changes through
// another replica are seen at the next periodic re-check.
func (s *Server) accessChanged() { s.liveAccess.notify() }

// parseLiveQuery parses the sensor filters of a live stream: repeated
// sensor=NAME, none meaning every sensor.
func parseLiveQuery(r *http.Request) (map[string]bool, error) {
	var v validation
	values := r.URL.Query()
	for _, name := range slices.Sorted(maps.Keys(values)) {
		if name != "sensor" {
			v.add("query."+name, "unknown parameter (allowed: sensor, repeated)")
		}
	}
	sensors := values["sensor"]
	if len(sensors) > maxLiveSensors {
		v.add("query.sensor", fmt.Sprintf("at most %d sensors per stream", maxLiveSensors))
	}
	var filter map[string]bool
	for _, name := range sensors {
		if name == "" || len(name) > 128 || !utf8.ValidString(name) {
			v.add("query.sensor", "must be a sensor name of 1 to 128 bytes of UTF-8")
			break
		}
		if filter == nil {
			filter = map[string]bool{}
		}
		filter[name] = true
	}
	return filter, v.err()
}

// tokenEnded is the reason of the end of a stream whose token is no longer
// valid.
const tokenEnded = "your token expired or was revoked; reconnect with a fresh one"

// stillAllowed re-checks that the caller of a stream may read the
// experiment's data: the user still exists, the experiment still exists,
// and the user is still an admin or a member (mayReadData). It returns the
// reason when not.
func (s *Server) stillAllowed(ctx context.Context, c streamCaller, e storage.Experiment) (string, error) {
	// The token as a new request would be checked (a cached verification
	// holds for MYMONIT_AUTH_CACHE_TTL at most): expired, revoked, or of a
	// disabled or deleted account ends the stream; an unreachable identity
	// provider does not.
	if _, err := s.verifier.Verify(ctx, c.authorization); err != nil {
		if errors.Is(err, auth.ErrUnauthenticated) {
			return tokenEnded, nil
		}
		return "", err
	}
	u := c.user
	now, err := s.store.UserByID(ctx, u.ID)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && now.Erased()) {
		return "your account was removed", nil
	}
	if err != nil {
		return "", err
	}
	if _, err := s.store.ExperimentByID(ctx, e.ID); errors.Is(err, storage.ErrNotFound) {
		return "the experiment was deleted", nil
	} else if err != nil {
		return "", err
	}
	if mayReadData(now.Role, false) {
		return "", nil
	}
	ok, err := s.store.IsMember(ctx, e.ID, u.ID)
	if err != nil {
		return "", err
	}
	if !ok {
		return "your membership of the experiment was revoked", nil
	}
	return "", nil
}

// liveMeasures streams the new measures of an experiment as Server-Sent
// Events until the client goes away, the caller loses access, or the
// server shuts down.
func (s *Server) liveMeasures(w http.ResponseWriter, r *http.Request) error {
	e, err := s.dataExperiment(r)
	if err != nil {
		return err
	}
	filter, err := parseLiveQuery(r)
	if err != nil {
		return err
	}
	if s.live == nil {
		return newProblem(http.StatusServiceUnavailable, TypeUnavailable, "live streams are not enabled on this server")
	}
	sub, err := s.live.Subscribe(e.Slug)
	if errors.Is(err, live.ErrUnavailable) {
		w.Header().Set("Retry-After", "5")
		return newProblem(http.StatusServiceUnavailable, TypeUnavailable, "live streams are unavailable: the message broker is not reachable; retry later")
	}
	if err != nil {
		return err
	}
	defer sub.Close()

	u := caller(r)
	info := infoOf(r.Context())
	rc := http.NewResponseController(w)
	// The server's read timeout would end a long stream; nothing more is read.
	_ = rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer
	w.WriteHeader(http.StatusOK)

	// The read is audited when it starts; the route's action audits its end.
	s.audit(info, "measures.live.open", nil)
	sw := &sseWriter{w: w, rc: rc}
	sw.event("ready", fmt.Sprintf(`{"experiment":%q}`, e.Slug))
	s.log.Info("live stream opened", zap.String("http.request.id", info.id), zap.String("mymonit.experiment", e.Slug))

	reason := s.stream(r.Context(), sw, sub, streamCaller{user: u, authorization: r.Header.Get("Authorization"), expires: info.expires}, e, filter)
	if reason != "" {
		sw.event("end", fmt.Sprintf(`{"reason":%q}`, reason))
	}
	s.log.Info("live stream closed", zap.String("http.request.id", info.id), zap.String("mymonit.experiment", e.Slug),
		zap.String("event.reason", reason), zap.Int64("mymonit.live.events", sw.events), zap.NamedError("error.message", sw.err))
	return nil
}

// streamCaller is who opened a stream, as its re-checks need it.
type streamCaller struct {
	user          storage.User
	authorization string    // the request's Authorization header
	expires       time.Time // the token's expiry; zero: none known
}

// stream runs the event loop and returns why the server ended it ("" when
// the client went away or a write failed).
func (s *Server) stream(ctx context.Context, sw *sseWriter, sub *live.Subscription, c streamCaller, e storage.Experiment, filter map[string]bool) string {
	keepAlive := time.NewTicker(liveKeepAlive)
	defer keepAlive.Stop()
	recheck := time.NewTicker(s.liveRecheck)
	defer recheck.Stop()
	var expired <-chan time.Time
	if !c.expires.IsZero() {
		t := time.NewTimer(time.Until(c.expires))
		defer t.Stop()
		expired = t.C
	}
	// Taken before the loop and again as soon as it fires, so that an admin
	// change made while events are written is not missed.
	access := s.liveAccess.wait()
	for sw.err == nil {
		select {
		case <-ctx.Done():
			return ""
		case <-s.shutdown:
			return "the server is shutting down; reconnect"
		case <-expired:
			return tokenEnded
		case <-keepAlive.C:
			sw.comment("keep-alive")
		case <-recheck.C:
		case <-access:
			access = s.liveAccess.wait()
		case ms := <-sub.C():
			for _, m := range ms {
				if filter != nil && !filter[m.Sensor] {
					continue
				}
				b, err := measure.EncodeOne(m)
				if err != nil { // Decode validated it; cannot happen
					continue
				}
				sw.event("measure", string(b))
			}
			if n := sub.Dropped(); n > 0 {
				sw.event("dropped", `{"messages":`+strconv.FormatInt(n, 10)+`}`)
			}
			continue
		}
		// A periodic or triggered re-check of access.
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		why, err := s.stillAllowed(cctx, c, e)
		cancel()
		if err != nil {
			s.log.Warn("live stream: access re-check failed; keeping the stream until the next one", zap.Error(err))
			continue
		}
		if why != "" {
			return why
		}
	}
	return ""
}

// sseWriter writes Server-Sent Events, each flushed at once under a write
// deadline; the first error sticks.
type sseWriter struct {
	w      http.ResponseWriter
	rc     *http.ResponseController
	err    error
	events int64
}

func (sw *sseWriter) write(s string) {
	if sw.err != nil {
		return
	}
	_ = sw.rc.SetWriteDeadline(time.Now().Add(liveWriteTimeout))
	if _, err := sw.w.Write([]byte(s)); err != nil {
		sw.err = err
		return
	}
	sw.err = sw.rc.Flush()
}

func (sw *sseWriter) event(name, data string) {
	sw.events++
	sw.write("event: " + name + "\ndata: " + data + "\n\n")
}

func (sw *sseWriter) comment(text string) { sw.write(": " + text + "\n\n") }
