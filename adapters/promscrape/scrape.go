package promscrape

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/mymonit/mymonit/pkg/measure"
)

// acceptHeader asks for the text format first and OpenMetrics next (unlike
// Prometheus, which prefers OpenMetrics): expfmt parses both, but its
// OpenMetrics parser checks every line against the ABNF grammar and is a few
// hundred times slower (BenchmarkDecodeAndMap). Targets that only speak
// OpenMetrics get it.
const acceptHeader = "text/plain;version=0.0.4,application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,*/*;q=0.1"

// Reasons a scrape fails: the reason label of
// mymonit_promscrape_scrape_failures_total.
const (
	FailConnect    = "connect"     // the target could not be reached
	FailTimeout    = "timeout"     // no complete answer within the timeout
	FailHTTPStatus = "http_status" // an answer other than 200 OK
	FailTooLarge   = "too_large"   // a body larger than the limit
	FailParse      = "parse"       // an exposition expfmt refuses
)

// ScrapeError is a failed scrape: Reason is one of the Fail constants.
type ScrapeError struct {
	Reason string
	Err    error
}

func (e *ScrapeError) Error() string { return e.Err.Error() }
func (e *ScrapeError) Unwrap() error { return e.Err }

// Result is one successful scrape.
type Result struct {
	// Format is the exposition format the target answered with.
	Format expfmt.Format
	// Measures are the samples mapped to measures.
	Measures []measure.Measure
	// Rejected are the samples that break the v1 contract.
	Rejected []Rejection
}

// fetcher scrapes one target over HTTP.
type fetcher struct {
	client  *http.Client
	maxBody int64
}

// fetch gets and decodes the exposition of t, within t.Timeout. Families come
// sorted by name, so the mapping is deterministic whatever the format.
func (f fetcher) fetch(ctx context.Context, t Target) ([]*dto.MetricFamily, expfmt.Format, error) {
	ctx, cancel := context.WithTimeout(ctx, t.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.URL, nil)
	if err != nil {
		return nil, "", &ScrapeError{Reason: FailConnect, Err: err}
	}
	req.Header.Set("Accept", acceptHeader)
	req.Header.Set("User-Agent", "mymonit-promscrape")
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", strconv.FormatFloat(t.Timeout.Seconds(), 'f', -1, 64))
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, "", classify(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, "", &ScrapeError{Reason: FailHTTPStatus, Err: fmt.Errorf("HTTP status %s", resp.Status)}
	}
	format := expfmt.ResponseFormat(resp.Header)
	if format.FormatType() == expfmt.TypeUnknown {
		// No or an unknown Content-Type: the text format, as Prometheus
		// assumes for such targets.
		format = expfmt.NewFormat(expfmt.TypeTextPlain)
	}
	body := &limitedReader{r: resp.Body, left: f.maxBody}
	dec := expfmt.NewDecoder(body, format)
	var fams []*dto.MetricFamily
	for {
		mf := &dto.MetricFamily{}
		err := dec.Decode(mf)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			switch {
			case body.over:
				return nil, format, &ScrapeError{Reason: FailTooLarge, Err: fmt.Errorf("exposition larger than %d bytes", f.maxBody)}
			case ctx.Err() != nil || isTimeout(err):
				return nil, format, classify(ctx, err)
			}
			return nil, format, &ScrapeError{Reason: FailParse, Err: fmt.Errorf("%s exposition: %w", formatName(format), err)}
		}
		fams = append(fams, mf)
	}
	if body.over {
		return nil, format, &ScrapeError{Reason: FailTooLarge, Err: fmt.Errorf("exposition larger than %d bytes", f.maxBody)}
	}
	slices.SortStableFunc(fams, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	return fams, format, nil
}

func classify(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || isTimeout(err) {
		return &ScrapeError{Reason: FailTimeout, Err: fmt.Errorf("no answer within the timeout: %w", err)}
	}
	return &ScrapeError{Reason: FailConnect, Err: err}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

func formatName(f expfmt.Format) string {
	if f.FormatType() == expfmt.TypeOpenMetrics {
		return "OpenMetrics"
	}
	return "text"
}

// limitedReader reads at most left bytes and records an attempt to read more.
type limitedReader struct {
	r    io.Reader
	left int64
	over bool
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		// One byte more tells a body of exactly the limit from a larger one.
		var b [1]byte
		n, err := l.r.Read(b[:])
		if n > 0 {
			l.over = true
			return 0, errors.New("exposition too large")
		}
		return 0, err
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// defaultClient is used when Params.Client is nil: no redirects beyond the
// standard ten, gzip handled by the transport, connections kept alive.
func defaultClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 2
	tr.ResponseHeaderTimeout = 0
	return &http.Client{Transport: tr}
}
