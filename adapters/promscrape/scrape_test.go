package promscrape_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/mymonit/mymonit/adapters/promscrape"
	"github.com/mymonit/mymonit/adapters/sink"
	"github.com/mymonit/mymonit/pkg/measure"
	"github.com/mymonit/mymonit/pkg/queue"
)

const textBody = "# TYPE jobs_total counter\njobs_total{kind=\"a\"} 5\n# TYPE temp gauge\ntemp 21.5\n"

const omBody = "# TYPE jobs counter\njobs_total{kind=\"a\"} 5\n# TYPE temp gauge\ntemp 21.5\n# EOF\n"

// exporter serves textBody to clients that accept it, else omBody; omOnly
// makes it serve OpenMetrics to everyone, as some exporters do.
func exporter(omOnly bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if omOnly || !strings.Contains(r.Header.Get("Accept"), "text/plain") {
			w.Header().Set("Content-Type", string(expfmt.FmtOpenMetrics_1_0_0))
			fmt.Fprint(w, omBody)
			return
		}
		w.Header().Set("Content-Type", string(expfmt.FmtText))
		fmt.Fprint(w, textBody)
	})
}

func newScraper(t *testing.T, p promscrape.Params) *promscrape.Scraper {
	t.Helper()
	if p.Sink == nil {
		p.Sink = newSink(t, &recorder{})
	}
	if p.Targets == nil {
		p.Targets = []promscrape.Target{{URL: "http://unused/", Experiment: "lab", Interval: time.Second, Timeout: time.Second}}
	}
	p.Now = func() time.Time { return scrapeAt }
	s, err := promscrape.New(p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestScrapeNegotiatesFormat(t *testing.T) {
	want := []measure.Measure{
		m(`jobs_total{kind="a"}`, 5, map[string]string{"kind": "a"}),
		m("temp", 21.5, nil),
	}
	for _, tt := range []struct {
		name   string
		omOnly bool
		format expfmt.FormatType
	}{
		{"text preferred", false, expfmt.TypeTextPlain},
		{"OpenMetrics when the target speaks nothing else", true, expfmt.TypeOpenMetrics},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(exporter(tt.omOnly))
			defer srv.Close()
			s := newScraper(t, promscrape.Params{})
			res, err := s.Scrape(t.Context(), promscrape.Target{URL: srv.URL, Experiment: "lab", Interval: time.Second, Timeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if res.Format.FormatType() != tt.format {
				t.Errorf("format %s, want type %d", res.Format, tt.format)
			}
			if diff := cmp.Diff(want, res.Measures); diff != "" {
				t.Errorf("measures (-want +got):\n%s", diff)
			}
		})
	}
}

func TestScrapeFailures(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	mux := http.NewServeMux()
	mux.HandleFunc("/500", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, strings.Repeat("# padding comment line\n", 100))
		fmt.Fprint(w, "x 1\n")
	})
	mux.HandleFunc("/garbage", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", string(expfmt.FmtText))
		fmt.Fprint(w, "ok 1\nthis is not { an exposition\n")
	})
	mux.HandleFunc("/badom", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", string(expfmt.FmtOpenMetrics_1_0_0))
		fmt.Fprint(w, "ok 1\n") // no # EOF
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	closed := httptest.NewServer(mux)
	closed.Close()

	s := newScraper(t, promscrape.Params{MaxBodyBytes: 1024})
	tests := []struct {
		path, url string
		timeout   time.Duration
		reason    string
		says      string
	}{
		{path: "/500", reason: promscrape.FailHTTPStatus, says: "500"},
		{path: "/slow", timeout: 50 * time.Millisecond, reason: promscrape.FailTimeout, says: "timeout"},
		{path: "/big", reason: promscrape.FailTooLarge, says: "larger than 1024 bytes"},
		{path: "/garbage", reason: promscrape.FailParse, says: "line 2"},
		{path: "/badom", reason: promscrape.FailParse, says: "# EOF"},
		{url: closed.URL + "/x", reason: promscrape.FailConnect, says: "connect"},
	}
	for _, tt := range tests {
		t.Run(tt.path+tt.url, func(t *testing.T) {
			target := promscrape.Target{URL: srv.URL + tt.path, Experiment: "lab", Interval: time.Minute, Timeout: time.Minute}
			if tt.url != "" {
				target.URL = tt.url
			}
			if tt.timeout > 0 {
				target.Timeout = tt.timeout
			}
			_, err := s.Scrape(t.Context(), target)
			var se *promscrape.ScrapeError
			if !errors.As(err, &se) {
				t.Fatalf("error %v, want a *ScrapeError", err)
			}
			if se.Reason != tt.reason {
				t.Errorf("reason %q, want %q (%v)", se.Reason, tt.reason, err)
			}
			if !strings.Contains(err.Error(), tt.says) {
				t.Errorf("error %q does not say %q", err, tt.says)
			}
		})
	}
}

// recorder is a sink.Publisher that confirms everything and keeps it.
type recorder struct {
	mu   sync.Mutex
	msgs []queue.Message
	got  chan struct{} // receives a value per Publish, when not nil
}

func (r *recorder) Publish(_ context.Context, msgs ...queue.Message) error {
	r.mu.Lock()
	r.msgs = append(r.msgs, msgs...)
	r.mu.Unlock()
	if r.got != nil {
		r.got <- struct{}{}
	}
	return nil
}

func (r *recorder) measures(t *testing.T) []measure.Measure {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []measure.Measure
	for _, msg := range r.msgs {
		d, err := measure.Decode(msg.Body)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d.Measures...)
	}
	return out
}

func newSink(t *testing.T, pub sink.Publisher) *sink.Sink {
	t.Helper()
	set := sink.DefaultSettings()
	set.FlushInterval = time.Millisecond
	s, err := sink.New(sink.Params{Settings: set, Publisher: pub, Producer: "promscrape"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

// TestRunKeepsGoingPastFailures runs a good and a failing target: the good
// one's measures are published, the failure is counted by reason, and the
// NaN sample is counted as rejected under its field.
func TestRunKeepsGoingPastFailures(t *testing.T) {
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", string(expfmt.FmtText))
		fmt.Fprint(w, "temp 21.5\nbroken NaN\n")
	}))
	defer good.Close()
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", 503) }))
	defer bad.Close()

	rec := &recorder{got: make(chan struct{}, 100)}
	reg := prometheus.NewRegistry()
	targets := []promscrape.Target{
		{URL: good.URL, Experiment: "lab", Interval: time.Hour, Timeout: time.Minute},
		{URL: bad.URL, Experiment: "lab", Labels: map[string]string{"i": "bad"}, Interval: time.Hour, Timeout: time.Minute},
	}
	s := newScraper(t, promscrape.Params{Targets: targets, Sink: newSink(t, rec), Registerer: reg})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	<-rec.got // the good target's first scrape, confirmed
	for metricValue(t, reg, "mymonit_promscrape_scrape_failures_total", "target", bad.URL, "reason", "http_status") < 1 {
		time.Sleep(5 * time.Millisecond) // wait for the bad target's first scrape
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]measure.Measure{m("temp", 21.5, nil)}, rec.measures(t)); diff != "" {
		t.Errorf("published (-want +got):\n%s", diff)
	}
	if got := metricValue(t, reg, "mymonit_promscrape_samples_rejected_total", "target", good.URL, "field", "value"); got != 1 {
		t.Errorf("rejected samples of field value: %v, want 1", got)
	}
	if got := metricValue(t, reg, "mymonit_promscrape_up", "target", bad.URL); got != 0 {
		t.Errorf("up of the failing target: %v, want 0", got)
	}
}

// metricValue returns the value of the series of a gathered metric with the
// given label pairs (name, value, ...), 0 when there is none yet.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, mt := range mf.GetMetric() {
			got := map[string]string{}
			for _, l := range mt.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			if cmp.Equal(want, got) {
				return mt.GetCounter().GetValue() + mt.GetGauge().GetValue()
			}
		}
	}
	return 0
}
