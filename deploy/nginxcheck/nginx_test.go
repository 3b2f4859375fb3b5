package nginxcheck_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/mymonit/mymonit/pkg/storage"
	"github.com/mymonit/mymonit/pkg/testenv"
)

// securityHeaders are the headers every HTTPS answer carries.
var securityHeaders = map[string]string{
	"Strict-Transport-Security": "max-age=63072000; includeSubDomains",
	"X-Content-Type-Options":    "nosniff",
	"X-Frame-Options":           "DENY",
	"Referrer-Policy":           "no-referrer",
	"Content-Security-Policy":   "default-src 'none'; frame-ancestors 'none'",
}

func checkSecurityHeaders(t *testing.T, what string, h http.Header) {
	t.Helper()
	for k, want := range securityHeaders {
		if got := h.Get(k); got != want {
			t.Errorf("%s: %s = %q, want %q", what, k, got, want)
		}
	}
	if s := h.Get("Server"); s != "nginx" {
		t.Errorf("%s: Server = %q, want the bare \"nginx\" (server_tokens off)", what, s)
	}
}

// checkProblem checks an answer nginx made itself is an RFC 9457 problem.
func checkProblem(t *testing.T, what string, resp *http.Response, body []byte, status int) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("%s: status %d, want %d (body %s)", what, resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("%s: Content-Type %q, want application/problem+json", what, ct)
	}
	var p struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		Status int    `json:"status"`
	}
	if err := json.Unmarshal(body, &p); err != nil || p.Status != status || p.Title == "" || p.Type == "" {
		t.Errorf("%s: body %s is not a problem with status %d (%v)", what, body, status, err)
	}
}

// api is one api process under test.
type api struct {
	addr string
	out  *testenv.Buffer
}

// startAPIs builds services/api and runs n instances on one freshly
// migrated test database. The routes used here are public, so the token
// verifier is never called: the emulator address points nowhere.
func startAPIs(t *testing.T, n int) []*api {
	t.Helper()
	root := repoRoot(t)
	bin := filepath.Join(t.TempDir(), "api")
	build := exec.Command("go", "build", "-o", bin, "./services/api")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./services/api: %v\n%s", err, out)
	}
	dsn := testenv.MySQLDatabase(t)
	ctx := context.Background()
	db, err := storage.Open(ctx, storage.Config{DSN: dsn, MaxOpenConns: 2, MaxIdleConns: 2, ConnMaxLifetime: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	_, err = storage.Migrate(ctx, db, zap.NewNop())
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	apis := make([]*api, n)
	for i := range apis {
		a := &api{addr: freeAddr(t), out: &testenv.Buffer{}}
		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(),
			"MYMONIT_MYSQL_DSN="+dsn,
			"MYMONIT_API_HTTP_ADDR="+a.addr,
			"MYMONIT_LOG_LEVEL=info",
			"MYMONIT_LOGSTASH_ADDR=",
			"MYMONIT_FIREBASE_PROJECT_ID=demo-mymonit",
			"MYMONIT_MODE=test",
			"FIREBASE_AUTH_EMULATOR_HOST=127.0.0.1:1",
		)
		cmd.Stdout, cmd.Stderr = a.out, a.out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		t.Cleanup(func() {
			_ = cmd.Process.Signal(os.Interrupt)
			if err := <-exited; err != nil {
				t.Errorf("api %d on %s: %v\n%s", i, a.addr, err, a.out.String())
			}
		})
		waitListening(t, a.addr, exited)
		apis[i] = a
	}
	return apis
}

// requestIDs returns the http.request.id of every request an api logged.
func (a *api) requestIDs(t *testing.T) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	for _, line := range strings.Split(a.out.String(), "\n") {
		var l struct {
			Message string `json:"message"`
			ID      string `json:"http.request.id"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.ID != "" {
			ids[l.ID] = true
		}
	}
	return ids
}

// accessLog reads nginx's access log, every line of which must be JSON.
func (n *nginx) accessLines(t *testing.T) map[string]map[string]any {
	t.Helper()
	b, err := os.ReadFile(n.accessLog)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]map[string]any{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for i := 1; sc.Scan(); i++ {
		var l map[string]any
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("access log line %d is not JSON: %v\n%s", i, err, sc.Bytes())
		}
		id, _ := l["http.request.id"].(string)
		if id == "" {
			t.Fatalf("access log line %d has no http.request.id: %s", i, sc.Bytes())
		}
		byID[id] = l
	}
	return byID
}

// eventually polls cond until it holds; the processes under test write
// their logs after the answer has left.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 300 {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not after 15s", what)
}

func TestConfigurationIsValid(t *testing.T) {
	upstream := httptest.NewServer(http.NotFoundHandler())
	defer upstream.Close()
	n := startNginx(t, options{upstreams: []string{upstream.Listener.Addr().String()}}) // runs nginx -t first
	resp, body := n.get(t, n.statusURL+"/nginx_status")
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("Active connections")) {
		t.Errorf("local status: %d %s", resp.StatusCode, body)
	}
}

func TestThroughNginxToTheAPI(t *testing.T) {
	apis := startAPIs(t, 2)
	n := startNginx(t, options{upstreams: []string{apis[0].addr, apis[1].addr}})
	var ids []string // X-Request-ID of the requests that reached an api

	t.Run("openapi over TLS and HTTP/2", func(t *testing.T) {
		resp, body := n.get(t, n.httpsURL+"/v1/openapi.json")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		if resp.Proto != "HTTP/2.0" || resp.TLS == nil {
			t.Errorf("protocol %s (TLS %v), want HTTP/2.0 over TLS", resp.Proto, resp.TLS != nil)
		}
		var spec struct {
			OpenAPI string         `json:"openapi"`
			Paths   map[string]any `json:"paths"`
		}
		if err := json.Unmarshal(body, &spec); err != nil || !strings.HasPrefix(spec.OpenAPI, "3.") || len(spec.Paths) == 0 {
			t.Errorf("not the OpenAPI 3 spec of the api (%v): %.200s", err, body)
		}
		checkSecurityHeaders(t, "openapi", resp.Header)
		ids = append(ids, resp.Header.Get("X-Request-ID"))
	})

	t.Run("healthz", func(t *testing.T) {
		resp, body := n.get(t, n.httpsURL+"/healthz")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		checkSecurityHeaders(t, "healthz", resp.Header)
		ids = append(ids, resp.Header.Get("X-Request-ID"))
	})

	t.Run("plain HTTP redirects to HTTPS", func(t *testing.T) {
		resp, _ := n.get(t, n.httpURL+"/v1/experiments?limit=5")
		if resp.StatusCode != http.StatusMovedPermanently {
			t.Fatalf("status %d, want 301", resp.StatusCode)
		}
		if loc := resp.Header.Get("Location"); loc != "https://127.0.0.1/v1/experiments?limit=5" {
			t.Errorf("Location %q, want the same URL over https", loc)
		}
	})

	t.Run("oversized body is refused", func(t *testing.T) {
		req, err := http.NewRequest(http.MethodPost, n.httpsURL+"/v1/experiments", bytes.NewReader(bytes.Repeat([]byte("x"), 2<<20)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, body := n.do(t, req)
		checkProblem(t, "2 MiB body", resp, body, http.StatusRequestEntityTooLarge)
		checkSecurityHeaders(t, "413", resp.Header)
		if id := resp.Header.Get("X-Request-ID"); id != "" {
			t.Errorf("the oversized request reached an api (X-Request-ID %s)", id)
		}
	})

	t.Run("unknown path is a problem", func(t *testing.T) {
		resp, body := n.get(t, n.httpsURL+"/admin.php")
		checkProblem(t, "/admin.php", resp, body, http.StatusNotFound)
		checkSecurityHeaders(t, "404", resp.Header)
	})

	t.Run("load balancing across both replicas", func(t *testing.T) {
		var sent []string
		for range 20 {
			resp, body := n.get(t, n.httpsURL+"/healthz")
			id := resp.Header.Get("X-Request-ID")
			if resp.StatusCode != http.StatusOK || id == "" {
				t.Fatalf("healthz: %d, X-Request-ID %q: %s", resp.StatusCode, id, body)
			}
			sent = append(sent, id)
		}
		ids = append(ids, sent...)
		var got [2]map[string]bool
		eventually(t, "every request id in the log of one api", func() bool {
			got[0], got[1] = apis[0].requestIDs(t), apis[1].requestIDs(t)
			for _, id := range sent {
				if !got[0][id] && !got[1][id] {
					return false
				}
			}
			return true
		})
		var served [2]int
		for _, id := range sent {
			if got[0][id] && got[1][id] {
				t.Errorf("request %s logged by both replicas", id)
			}
			for i := range got {
				if got[i][id] {
					served[i]++
				}
			}
		}
		if served[0] == 0 || served[1] == 0 {
			t.Errorf("replicas served %d and %d of %d requests, want both used", served[0], served[1], len(sent))
		}
		t.Logf("replicas served %d and %d requests", served[0], served[1])
	})

	t.Run("JSON access log", func(t *testing.T) {
		var lines map[string]map[string]any
		eventually(t, "access log lines of every request", func() bool {
			lines = n.accessLines(t)
			for _, id := range ids {
				if lines[id] == nil {
					return false
				}
			}
			return true
		})
		upstreams := map[string]bool{apis[0].addr: true, apis[1].addr: true}
		first := lines[ids[0]]
		for k, want := range map[string]any{
			"http.request.method":       "GET",
			"url.path":                  "/v1/openapi.json",
			"http.response.status_code": float64(200),
			"http.version":              "HTTP/2.0",
			"event.dataset":             "nginx.access",
			"source.address":            "127.0.0.1",
		} {
			if first[k] != want {
				t.Errorf("access log of the openapi request: %s = %v, want %v", k, first[k], want)
			}
		}
		if tv, _ := first["tls.version"].(string); !strings.HasPrefix(tv, "TLSv1.") {
			t.Errorf("tls.version = %q", tv)
		}
		if _, err := time.Parse(time.RFC3339, fmt.Sprint(first["@timestamp"])); err != nil {
			t.Errorf("@timestamp: %v", err)
		}
		for _, id := range ids {
			if up := fmt.Sprint(lines[id]["nginx.upstream.address"]); !upstreams[up] {
				t.Errorf("request %s: upstream %q is not one of the apis", id, up)
			}
		}
		var saw413 bool
		for _, l := range lines {
			saw413 = saw413 || l["http.response.status_code"] == float64(413)
		}
		if !saw413 {
			t.Error("no access log line for the refused 2 MiB body")
		}
	})
}

func TestRateLimit(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	}))
	defer upstream.Close()
	// One request a minute refills the bucket: with the burst of 40, the
	// first 41 pass and the next ones are refused whatever the speed of
	// the machine.
	n := startNginx(t, options{
		upstreams: []string{upstream.Listener.Addr().String()},
		edits:     []edit{{"nginx.conf", "rate=20r/s;", "rate=1r/m;"}},
	})
	var limited int
	for i := range 60 {
		resp, body := n.get(t, n.httpsURL+"/v1/me")
		switch {
		case i <= 40 && resp.StatusCode != http.StatusOK:
			t.Fatalf("request %d within the burst: %d %s", i+1, resp.StatusCode, body)
		case resp.StatusCode == http.StatusTooManyRequests:
			limited++
			checkProblem(t, "rate limited", resp, body, http.StatusTooManyRequests)
			checkSecurityHeaders(t, "429", resp.Header)
			if resp.Header.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
		}
	}
	if limited == 0 {
		t.Error("60 requests at once, none refused: no rate limit")
	}
	// /healthz is not limited: monitors poll it.
	if resp, body := n.get(t, n.httpsURL+"/healthz"); resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz after the burst: %d %s", resp.StatusCode, body)
	}
}

// TestServerSentEventsAreNotBuffered reads the first event while the stream
// is still open, over HTTP/1.1 and HTTP/2 (nginx buffers differently for
// each: with proxy_buffering on, HTTP/1.1 clients wait for the end).
func TestServerSentEventsAreNotBuffered(t *testing.T) {
	releases := make(chan chan struct{}, 1)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/experiments/demo/measures/live" {
			http.NotFound(w, r)
			return
		}
		release := <-releases
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		io.WriteString(w, "event: measure\ndata: {\"sensor\":\"t1\",\"value\":1}\n\n")
		w.(http.Flusher).Flush()
		// The stream stays open until the client has seen the first event:
		// a buffering proxy would hold it back and the test would never
		// release the stream.
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "event: measure\ndata: {\"sensor\":\"t1\",\"value\":2}\n\n")
	}))
	defer upstream.Close()
	n := startNginx(t, options{upstreams: []string{upstream.Listener.Addr().String()}})

	for _, tt := range []struct {
		proto  string
		client *http.Client
	}{{"HTTP/1.1", n.client1}, {"HTTP/2.0", n.client}} {
		t.Run(tt.proto, func(t *testing.T) {
			release := make(chan struct{})
			releases <- release
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.httpsURL+"/v1/experiments/demo/measures/live", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Accept", "text/event-stream")
			resp, err := tt.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" || resp.Proto != tt.proto {
				t.Fatalf("%s status %d, Content-Type %q", resp.Proto, resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			checkSecurityHeaders(t, "event stream", resp.Header)
			r := bufio.NewReader(resp.Body)
			readEvent := func() string {
				var ev strings.Builder
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						t.Fatalf("reading the stream after %q: %v (nginx held the event back: buffering?)", ev.String(), err)
					}
					if line == "\n" {
						return ev.String()
					}
					ev.WriteString(line)
				}
			}
			if ev := readEvent(); !strings.Contains(ev, `"value":1`) {
				t.Fatalf("first event %q", ev)
			}
			close(release) // only now may the api finish the stream
			if ev := readEvent(); !strings.Contains(ev, `"value":2`) {
				t.Fatalf("second event %q", ev)
			}
			if rest, _ := io.ReadAll(r); len(bytes.TrimSpace(rest)) != 0 {
				t.Errorf("after the last event: %q", rest)
			}
		})
	}
}
