package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/mymonit/mymonit/deploy/elk"
	"github.com/mymonit/mymonit/pkg/config"
)

// fake is an Elasticsearch or a Kibana that checks the requests it
// receives: authentication, headers, bodies. It answers 503 to the first
// unavailable requests of each path, then as configured.
type fake struct {
	t           *testing.T
	product     string // X-Elastic-Product header, Elasticsearch only
	user, pass  string
	unavailable map[string]int // path → 503 answers before the real one
	status      map[string]int // path → status of the real answer (default 200)
	answer      map[string]string

	mu       sync.Mutex
	requests []string // "METHOD path"
	bodies   map[string][]byte
	problems []string
}

func newFake(t *testing.T, product string) *fake {
	return &fake{t: t, product: product, user: "elastic", pass: "s3cret",
		unavailable: map[string]int{}, status: map[string]int{}, answer: map[string]string{}, bodies: map[string][]byte{}}
}

func (f *fake) problem(format string, args ...any) {
	f.problems = append(f.problems, fmt.Sprintf(format, args...))
}

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := r.Method + " " + r.URL.Path
	f.requests = append(f.requests, key)
	if f.product != "" {
		w.Header().Set("X-Elastic-Product", f.product)
	}
	w.Header().Set("Content-Type", "application/json")
	if u, p, ok := r.BasicAuth(); !ok || u != f.user || p != f.pass {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":{"type":"security_exception","reason":"unable to authenticate user"},"status":401}`)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		f.problem("%s: reading body: %v", key, err)
	}
	f.bodies[key] = body
	if f.unavailable[r.URL.Path] > 0 {
		f.unavailable[r.URL.Path]--
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, `{"message":"starting"}`)
		return
	}
	if s, ok := f.status[r.URL.Path]; ok {
		w.WriteHeader(s)
	}
	fmt.Fprint(w, f.answer[key])
}

func (f *fake) check() {
	f.t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.problems {
		f.t.Error(p)
	}
}

func (f *fake) got() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requests...)
}

func (f *fake) body(key string) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.bodies[key]
}

// stack is a fake Elasticsearch and Kibana that answer like healthy ones.
type stack struct {
	es, kb       *fake
	esURL, kbURL string
}

func newStack(t *testing.T) *stack {
	es := newFake(t, "Elasticsearch")
	es.answer["GET /"] = `{"name":"es01","version":{"number":"8.15.0"},"tagline":"You Know, for Search"}`
	es.answer["PUT /_ilm/policy/"+elk.PolicyName] = `{"acknowledged":true}`
	es.answer["PUT /_index_template/"+elk.TemplateName] = `{"acknowledged":true}`
	kb := newFake(t, "")
	kb.answer["GET /api/status"] = `{"name":"kb01","status":{"overall":{"level":"available"}}}`
	kb.answer["POST /api/saved_objects/_import"] = `{"success":true,"successCount":9,"successResults":[]}`
	kbHandler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("kbn-xsrf") == "" {
			kb.mu.Lock()
			kb.problem("%s %s without the kbn-xsrf header", r.Method, r.URL.Path)
			kb.mu.Unlock()
		}
		if r.URL.Path == "/api/saved_objects/_import" && r.URL.Query().Get("overwrite") != "true" {
			kb.mu.Lock()
			kb.problem("import without overwrite=true: %s", r.URL.RawQuery)
			kb.mu.Unlock()
		}
		kb.ServeHTTP(w, r)
	})
	esSrv, kbSrv := httptest.NewServer(es), httptest.NewServer(kbHandler)
	t.Cleanup(esSrv.Close)
	t.Cleanup(kbSrv.Close)
	return &stack{es: es, kb: kb, esURL: esSrv.URL, kbURL: kbSrv.URL}
}

func (s *stack) config() Config {
	return Config{ElasticsearchURL: s.esURL, KibanaURL: s.kbURL, Username: "elastic", Password: "s3cret",
		Timeout: time.Minute, Retention: "30d"}
}

func newTestSetup(cfg Config) (*Setup, *observer.ObservedLogs) {
	core, logs := observer.New(zap.InfoLevel)
	return NewSetup(SetupParams{Config: cfg, Log: zap.New(core), MinBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond}), logs
}

// jsonEqual reports whether two JSON documents hold the same value.
func jsonEqual(t *testing.T, got, want []byte) string {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		return fmt.Sprintf("body is not JSON: %v: %s", err, got)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	return cmp.Diff(w, g)
}

// importedFile returns the file part of the multipart import request.
func importedFile(t *testing.T, body []byte, contentType string) (name string, data []byte) {
	t.Helper()
	_, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		t.Fatalf("import content type %q: %v", contentType, err)
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	p, err := mr.NextPart()
	if err != nil {
		t.Fatalf("import body is not multipart: %v", err)
	}
	if p.FormName() != "file" {
		t.Errorf("import form field %q, want file", p.FormName())
	}
	data, err = io.ReadAll(p)
	if err != nil {
		t.Fatal(err)
	}
	return p.FileName(), data
}

func TestSetupAppliesEverything(t *testing.T) {
	st := newStack(t)
	// Both come up slowly: 503 twice from Elasticsearch, once from Kibana's
	// status and once from the import.
	st.es.unavailable["/"] = 2
	st.kb.unavailable["/api/status"] = 1
	st.kb.unavailable["/api/saved_objects/_import"] = 1
	var contentType string
	st.kb.answer["POST /api/saved_objects/_import"] = `{"success":true,"successCount":9}`

	cfg := st.config()
	cfg.Retention = "90d"
	s, logs := newTestSetup(cfg)
	s.http.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.URL.Path == "/api/saved_objects/_import" {
			contentType = r.Header.Get("Content-Type")
		}
		return http.DefaultTransport.RoundTrip(r)
	})
	if err := s.Run(t.Context()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	st.es.check()
	st.kb.check()

	wantES := []string{"GET /", "GET /", "GET /", "PUT /_ilm/policy/" + elk.PolicyName, "PUT /_index_template/" + elk.TemplateName}
	if diff := cmp.Diff(wantES, st.es.got()); diff != "" {
		t.Errorf("Elasticsearch requests (-want +got):\n%s", diff)
	}
	wantKB := []string{"GET /api/status", "GET /api/status", "POST /api/saved_objects/_import", "POST /api/saved_objects/_import"}
	if diff := cmp.Diff(wantKB, st.kb.got()); diff != "" {
		t.Errorf("Kibana requests (-want +got):\n%s", diff)
	}

	// The policy is the embedded one with the configured retention.
	var policy map[string]any
	if err := json.Unmarshal(elk.Policy(), &policy); err != nil {
		t.Fatal(err)
	}
	policy["policy"].(map[string]any)["phases"].(map[string]any)["delete"].(map[string]any)["min_age"] = "90d"
	wantPolicy, _ := json.Marshal(policy)
	if diff := jsonEqual(t, st.es.body("PUT /_ilm/policy/"+elk.PolicyName), wantPolicy); diff != "" {
		t.Errorf("policy body (-want +got):\n%s", diff)
	}
	if diff := jsonEqual(t, st.es.body("PUT /_index_template/"+elk.TemplateName), elk.Template()); diff != "" {
		t.Errorf("index template body (-want +got):\n%s", diff)
	}
	name, data := importedFile(t, st.kb.body("POST /api/saved_objects/_import"), contentType)
	if !strings.HasSuffix(name, ".ndjson") {
		t.Errorf("import file name %q: Kibana wants .ndjson", name)
	}
	if !bytes.Equal(data, elk.SavedObjects()) {
		t.Errorf("imported file differs from the embedded saved objects (%d bytes, want %d)", len(data), len(elk.SavedObjects()))
	}

	// Progress: each wait is logged with its cause, each step once done.
	waits := logs.FilterMessageSnippet("waiting for").All()
	if len(waits) != 4 {
		t.Errorf("logged %d waits, want 4 (two for Elasticsearch, one for Kibana, one for the import)", len(waits))
	}
	for _, w := range waits {
		if !strings.Contains(fmt.Sprint(w.ContextMap()["error"]), "503") {
			t.Errorf("wait %q does not say why: %v", w.Message, w.ContextMap())
		}
	}
	if n := logs.FilterMessageSnippet("done: ").Len(); n != 5 {
		t.Errorf("logged %d finished steps, want 5", n)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestSetupIsIdempotent(t *testing.T) {
	st := newStack(t)
	for range 2 {
		s, _ := newTestSetup(st.config())
		if err := s.Run(t.Context()); err != nil {
			t.Fatalf("Run: %v", err)
		}
	}
	st.es.check()
	st.kb.check()
	once := []string{"GET /", "PUT /_ilm/policy/" + elk.PolicyName, "PUT /_index_template/" + elk.TemplateName}
	if diff := cmp.Diff(append(once, once...), st.es.got()); diff != "" {
		t.Errorf("Elasticsearch requests of two runs (-want +got):\n%s", diff)
	}
}

func TestSetupFailures(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(*stack, *Config)
		want    []string // substrings of the error
		esReqs  []string // requests Elasticsearch must have received
	}{
		{
			name:    "wrong password is not retried",
			prepare: func(_ *stack, c *Config) { c.Password = "wrong" },
			want:    []string{"Elasticsearch at", "401 Unauthorized", "unable to authenticate user", "ELK_SETUP_ELASTICSEARCH_USERNAME"},
			esReqs:  []string{"GET /"},
		},
		{
			name: "template refused",
			prepare: func(s *stack, _ *Config) {
				s.es.status["/_index_template/"+elk.TemplateName] = http.StatusBadRequest
				s.es.answer["PUT /_index_template/"+elk.TemplateName] = `{"error":{"type":"mapper_parsing_exception","reason":"unknown parameter [x]"},"status":400}`
			},
			want:   []string{"index template mymonit-logs", "400 Bad Request", "mapper_parsing_exception: unknown parameter [x]"},
			esReqs: []string{"GET /", "PUT /_ilm/policy/" + elk.PolicyName, "PUT /_index_template/" + elk.TemplateName},
		},
		{
			name: "Kibana import reports refused objects",
			prepare: func(s *stack, _ *Config) {
				s.kb.answer["POST /api/saved_objects/_import"] = `{"success":false,"successCount":8,"errors":[{"id":"mymonit-audit","type":"dashboard","error":{"type":"missing_references"}}]}`
			},
			want: []string{"Kibana saved objects", "import refused 1 objects", "dashboard mymonit-audit: missing_references"},
		},
		{
			name: "Elasticsearch never comes up",
			prepare: func(s *stack, c *Config) {
				s.es.unavailable["/"] = 1 << 30
				c.Timeout = 50 * time.Millisecond
			},
			want: []string{"Elasticsearch at", "gave up after", "ELK_SETUP_TIMEOUT=50ms", "503 Service Unavailable"},
		},
		{
			name: "Kibana unreachable",
			prepare: func(s *stack, c *Config) {
				c.KibanaURL = "http://127.0.0.1:1"
				c.Timeout = time.Second
			},
			want:   []string{"Kibana at http://127.0.0.1:1", "gave up after", "connection refused"},
			esReqs: []string{"GET /", "PUT /_ilm/policy/" + elk.PolicyName, "PUT /_index_template/" + elk.TemplateName},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newStack(t)
			cfg := st.config()
			tt.prepare(st, &cfg)
			s, _ := newTestSetup(cfg)
			err := s.Run(t.Context())
			if err == nil {
				t.Fatal("Run succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), cfg.Password) {
				t.Errorf("error %q shows the password", err)
			}
			if tt.esReqs != nil {
				if diff := cmp.Diff(tt.esReqs, st.es.got()); diff != "" {
					t.Errorf("Elasticsearch requests (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestConfig(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "password")
	if err := os.WriteFile(pwFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     map[string]string
		want    Config
		wantErr []string
	}{
		{
			name: "defaults and password file",
			env:  map[string]string{"ELK_SETUP_ELASTICSEARCH_PASSWORD_FILE": pwFile},
			want: Config{ElasticsearchURL: "http://elasticsearch:9200", KibanaURL: "http://kibana:5601",
				Username: "elastic", Password: "from-file", Timeout: 5 * time.Minute, Retention: "30d"},
		},
		{
			name: "everything set",
			env: map[string]string{
				"ELK_SETUP_ELASTICSEARCH_URL": "https://es.example:9200", "ELK_SETUP_KIBANA_URL": "https://kb.example/kibana",
				"ELK_SETUP_ELASTICSEARCH_USERNAME": "setup", "ELK_SETUP_ELASTICSEARCH_PASSWORD": "p",
				"ELK_SETUP_TIMEOUT": "90s", "ELK_SETUP_LOG_RETENTION": "365d",
			},
			want: Config{ElasticsearchURL: "https://es.example:9200", KibanaURL: "https://kb.example/kibana",
				Username: "setup", Password: "p", Timeout: 90 * time.Second, Retention: "365d"},
		},
		{
			name: "bad values are named",
			env: map[string]string{
				"ELK_SETUP_ELASTICSEARCH_URL": "elasticsearch:9200", "ELK_SETUP_KIBANA_URL": "ftp://kibana",
				"ELK_SETUP_LOG_RETENTION": "4w",
			},
			wantErr: []string{`ELK_SETUP_ELASTICSEARCH_URL="elasticsearch:9200"`, `ELK_SETUP_KIBANA_URL="ftp://kibana"`, `ELK_SETUP_LOG_RETENTION="4w"`},
		},
		{
			name:    "bad timeout",
			env:     map[string]string{"ELK_SETUP_TIMEOUT": "soon"},
			wantErr: []string{"ELK_SETUP_TIMEOUT"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got Config
			err := config.LoadFrom(func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }, os.ReadFile, &got)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("config = %+v, want %+v", got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %s", err, w)
				}
			}
		})
	}
}

func TestRunConfigCommand(t *testing.T) {
	var out bytes.Buffer
	if err := run(t.Context(), []string{"config"}, &out); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"ELK_SETUP_ELASTICSEARCH_URL", "ELK_SETUP_KIBANA_URL", "ELK_SETUP_ELASTICSEARCH_USERNAME", "ELK_SETUP_ELASTICSEARCH_PASSWORD", "ELK_SETUP_TIMEOUT", "ELK_SETUP_LOG_RETENTION"} {
		if !strings.Contains(out.String(), v) {
			t.Errorf("config reference lacks %s:\n%s", v, out.String())
		}
	}
	if err := run(t.Context(), []string{"bogus"}, &out); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("unknown argument: err = %v", err)
	}
}
