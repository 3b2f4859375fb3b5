package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"
	"go.uber.org/zap"

	"github.com/mymonit/mymonit/deploy/elk"
)

// Config is elk-setup's environment.
type Config struct {
	ElasticsearchURL string        `env:"ELK_SETUP_ELASTICSEARCH_URL" default:"http://elasticsearch:9200" help:"Elasticsearch base URL"`
	KibanaURL        string        `env:"ELK_SETUP_KIBANA_URL" default:"http://kibana:5601" help:"Kibana base URL (with its base path, if any)"`
	Username         string        `env:"ELK_SETUP_ELASTICSEARCH_USERNAME" default:"elastic" help:"user for Elasticsearch and Kibana (basic authentication); it needs manage_ilm, manage_index_templates and Kibana saved-objects management"`
	Password         string        `env:"ELK_SETUP_ELASTICSEARCH_PASSWORD" secret:"true" help:"password of that user; give it as a file with ELK_SETUP_ELASTICSEARCH_PASSWORD_FILE; empty: no authentication (security disabled)"`
	Timeout          time.Duration `env:"ELK_SETUP_TIMEOUT" default:"5m" min:"1s" help:"how long to wait for Elasticsearch and Kibana, and to apply everything, before giving up"`
	Retention        string        `env:"ELK_SETUP_LOG_RETENTION" default:"30d" help:"age at which a rolled-over backing index of mymonit-logs is deleted, in days (e.g. 30d); audit events live as long"`
}

var retentionRE = regexp.MustCompile(`^[1-9][0-9]{0,4}d$`)

// Validate checks the URLs and the retention.
func (c Config) Validate() error {
	var errs []error
	for _, u := range []struct{ env, v string }{
		{"ELK_SETUP_ELASTICSEARCH_URL", c.ElasticsearchURL},
		{"ELK_SETUP_KIBANA_URL", c.KibanaURL},
	} {
		p, err := url.Parse(u.v)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			errs = append(errs, fmt.Errorf("%s=%q: want an http:// or https:// URL with a host", u.env, u.v))
		}
	}
	if !retentionRE.MatchString(c.Retention) {
		errs = append(errs, fmt.Errorf("ELK_SETUP_LOG_RETENTION=%q: want a number of days, e.g. 30d", c.Retention))
	}
	return errors.Join(errs...)
}

// SetupParams are the dependencies of a Setup.
type SetupParams struct {
	Config Config
	Log    *zap.Logger
	// Transport carries every request; nil means http.DefaultTransport.
	Transport http.RoundTripper
	// MinBackoff and MaxBackoff bound the pause between attempts; zero
	// means 1s and 15s.
	MinBackoff, MaxBackoff time.Duration
}

// Setup applies the log pipeline's Elasticsearch and Kibana objects.
type Setup struct {
	cfg        Config
	log        *zap.Logger
	http       *http.Client
	minBackoff time.Duration
	maxBackoff time.Duration
}

// NewSetup returns a Setup; it does not contact anything.
func NewSetup(p SetupParams) *Setup {
	s := &Setup{cfg: p.Config, log: p.Log, minBackoff: p.MinBackoff, maxBackoff: p.MaxBackoff}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	t := p.Transport
	if t == nil {
		t = http.DefaultTransport
	}
	s.http = &http.Client{Transport: t, Timeout: 30 * time.Second}
	if s.minBackoff <= 0 {
		s.minBackoff = time.Second
	}
	if s.maxBackoff < s.minBackoff {
		s.maxBackoff = max(15*time.Second, s.minBackoff)
	}
	return s
}

// permanentError is a failure that retrying cannot fix (bad credentials,
// a refused body).
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Run waits for Elasticsearch, applies the lifecycle policy and the index
// template, waits for Kibana and imports the saved objects, all within
// Config.Timeout.
func (s *Setup) Run(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()

	esCfg := elasticsearch.Config{
		Addresses:    []string{s.cfg.ElasticsearchURL},
		Transport:    s.http.Transport,
		DisableRetry: true, // retried here, with pauses and progress logs
	}
	if s.cfg.Password != "" {
		esCfg.Username, esCfg.Password = s.cfg.Username, s.cfg.Password
	}
	es, err := elasticsearch.NewClient(esCfg)
	if err != nil {
		return fmt.Errorf("elasticsearch client: %w", err)
	}
	policy, err := policyBody(s.cfg.Retention)
	if err != nil {
		return err
	}

	steps := []struct {
		what string
		do   func(context.Context) error
	}{
		{"Elasticsearch at " + s.cfg.ElasticsearchURL, func(ctx context.Context) error {
			return esDo(es.Info(es.Info.WithContext(ctx)))
		}},
		{"lifecycle policy " + elk.PolicyName, func(ctx context.Context) error {
			return esDo(es.ILM.PutLifecycle(elk.PolicyName,
				es.ILM.PutLifecycle.WithBody(bytes.NewReader(policy)), es.ILM.PutLifecycle.WithContext(ctx)))
		}},
		{"index template " + elk.TemplateName, func(ctx context.Context) error {
			return esDo(es.Indices.PutIndexTemplate(elk.TemplateName, bytes.NewReader(elk.Template()),
				es.Indices.PutIndexTemplate.WithContext(ctx)))
		}},
		{"Kibana at " + s.cfg.KibanaURL, s.kibanaAvailable},
		{"Kibana saved objects", s.importSavedObjects},
	}
	for _, st := range steps {
		if err := s.retry(ctx, st.what, st.do); err != nil {
			return err
		}
	}
	s.log.Info("log pipeline ready: data stream "+elk.DataStream+", dashboard "+elk.DashboardID,
		zap.String("event.action", "elk.setup"), zap.String("event.outcome", "success"))
	return nil
}

// retry runs do until it succeeds, fails permanently or ctx ends, pausing
// between attempts with a doubling backoff.
func (s *Setup) retry(ctx context.Context, what string, do func(context.Context) error) error {
	pause := s.minBackoff
	var last error // the last failure that was not the deadline itself
	for attempt := 1; ; attempt++ {
		err := do(ctx)
		if err == nil {
			s.log.Info("done: "+what, zap.Int("attempt", attempt))
			return nil
		}
		if pe := (permanentError{}); errors.As(err, &pe) {
			return fmt.Errorf("%s: %w", what, err)
		}
		if ctx.Err() != nil {
			if last != nil {
				err = last // say why it never succeeded, not that time ran out
			}
			return fmt.Errorf("%s: gave up after %d attempts (ELK_SETUP_TIMEOUT=%s): %w", what, attempt, s.cfg.Timeout, err)
		}
		last = err
		s.log.Info("waiting for "+what, zap.Int("attempt", attempt), zap.Duration("retry_in", pause), zap.Error(err))
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: gave up after %d attempts (ELK_SETUP_TIMEOUT=%s): %w", what, attempt, s.cfg.Timeout, err)
		case <-t.C:
		}
		pause = min(2*pause, s.maxBackoff)
	}
}

// policyBody returns the lifecycle policy with the delete phase at
// retention.
func policyBody(retention string) ([]byte, error) {
	var p map[string]any
	if err := json.Unmarshal(elk.Policy(), &p); err != nil {
		return nil, fmt.Errorf("embedded lifecycle policy: %w", err)
	}
	phases, _ := p["policy"].(map[string]any)["phases"].(map[string]any)
	del, ok := phases["delete"].(map[string]any)
	if !ok {
		return nil, errors.New("embedded lifecycle policy has no delete phase")
	}
	del["min_age"] = retention
	return json.Marshal(p)
}

// esDo turns an Elasticsearch response into an error: transport errors,
// 429 and 5xx are temporary, other error statuses permanent.
func esDo(res *esapi.Response, err error) error {
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("reading the response: %w", err)
	}
	if !res.IsError() {
		return nil
	}
	return statusError(res.StatusCode, esReason(body))
}

// esReason extracts error.reason from an Elasticsearch error body.
func esReason(body []byte) string {
	var e struct {
		Error struct {
			Type   string `json:"type"`
			Reason string `json:"reason"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error.Reason != "" {
		return e.Error.Type + ": " + e.Error.Reason
	}
	return strings.TrimSpace(string(body))
}

func statusError(status int, reason string) error {
	err := fmt.Errorf("%d %s: %s", status, http.StatusText(status), reason)
	switch {
	case status == http.StatusTooManyRequests || status >= 500:
		return err
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return permanentError{fmt.Errorf("%w (check ELK_SETUP_ELASTICSEARCH_USERNAME and the password)", err)}
	default:
		return permanentError{err}
	}
}

// kibanaAvailable checks GET /api/status: 200 with overall level
// "available".
func (s *Setup) kibanaAvailable(ctx context.Context) error {
	req, err := s.kibanaRequest(ctx, http.MethodGet, "/api/status", nil)
	if err != nil {
		return err
	}
	body, err := s.send(req)
	if err != nil {
		return err
	}
	var st struct {
		Status struct {
			Overall struct {
				Level string `json:"level"`
			} `json:"overall"`
		} `json:"status"`
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return fmt.Errorf("kibana status: %w", err)
	}
	if st.Status.Overall.Level != "available" {
		return fmt.Errorf("kibana status is %q, not available yet", st.Status.Overall.Level)
	}
	return nil
}

// importSavedObjects posts the NDJSON file to the saved-objects import
// API, overwriting earlier versions, and checks that every object was
// imported.
func (s *Setup) importSavedObjects(ctx context.Context) error {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	part, err := mw.CreateFormFile("file", "mymonit.ndjson")
	if err != nil {
		return err
	}
	if _, err := part.Write(elk.SavedObjects()); err != nil {
		return err
	}
	if err := mw.Close(); err != nil {
		return err
	}
	req, err := s.kibanaRequest(ctx, http.MethodPost, "/api/saved_objects/_import?overwrite=true", &buf)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	body, err := s.send(req)
	if err != nil {
		return err
	}
	var res struct {
		Success      bool `json:"success"`
		SuccessCount int  `json:"successCount"`
		Errors       []struct {
			ID    string `json:"id"`
			Type  string `json:"type"`
			Error struct {
				Type string `json:"type"`
			} `json:"error"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return permanentError{fmt.Errorf("import response: %w", err)}
	}
	if !res.Success {
		var objs []string
		for _, e := range res.Errors {
			objs = append(objs, fmt.Sprintf("%s %s: %s", e.Type, e.ID, e.Error.Type))
		}
		return permanentError{fmt.Errorf("import refused %d objects: %s", len(res.Errors), strings.Join(objs, "; "))}
	}
	s.log.Info("kibana saved objects imported", zap.Int("objects", res.SuccessCount))
	return nil
}

func (s *Setup) kibanaRequest(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(s.cfg.KibanaURL, "/")+path, body)
	if err != nil {
		return nil, permanentError{err}
	}
	req.Header.Set("kbn-xsrf", "true")
	if s.cfg.Password != "" {
		req.SetBasicAuth(s.cfg.Username, s.cfg.Password)
	}
	return req, nil
}

// send does a Kibana request and returns the body of a 2xx answer.
func (s *Setup) send(req *http.Request) ([]byte, error) {
	res, err := s.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the response: %w", err)
	}
	if res.StatusCode/100 != 2 {
		var e struct {
			Message string `json:"message"`
		}
		reason := strings.TrimSpace(string(body))
		if json.Unmarshal(body, &e) == nil && e.Message != "" {
			reason = e.Message
		}
		return nil, statusError(res.StatusCode, reason)
	}
	return body, nil
}
