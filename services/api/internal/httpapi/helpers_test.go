package httpapi_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	firebase "firebase.google.com/go/v4"
	fbauth "firebase.google.com/go/v4/auth"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/mymonit/mymonit/pkg/logging"
	"github.com/mymonit/mymonit/pkg/storage"
	"github.com/mymonit/mymonit/pkg/testenv"
	"github.com/mymonit/mymonit/services/api/internal/auth"
	"github.com/mymonit/mymonit/services/api/internal/auth/authtest"
	"github.com/mymonit/mymonit/services/api/internal/httpapi"
)

// env is a running API over a fresh database and the Auth Emulator.
type env struct {
	t      testing.TB
	emu    *authtest.Emulator
	store  *storage.Store
	srv    *httptest.Server
	api    *httpapi.Server
	router routers.Router
	logs   *testenv.Buffer
	// accounts is the Admin SDK client of the emulator.
	accounts *fbauth.Client
	// db and dsn reach the test database directly (measures fixtures, and
	// the ingest service of the full-flow test).
	db  *sql.DB
	dsn string

	mu      sync.Mutex
	secrets []string // what must never appear in the logs
	n       int
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// newEnv starts everything. The logger is NOT redacting: the test checks
// that the API itself never logs personal data or tokens.
func newEnv(t testing.TB, opts ...func(*httpapi.Params)) *env {
	t.Helper()
	ctx := testCtx(t)
	dsn := testenv.MySQLDatabase(t)
	db, err := storage.Open(ctx, storage.Config{DSN: dsn, MaxOpenConns: 8, MaxIdleConns: 8, ConnMaxLifetime: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if _, err := storage.Migrate(ctx, db, zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	// Every component logs here, unredacted: the suite checks that none of
	// them logs personal data or tokens.
	logs := &testenv.Buffer{}
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(logging.EncoderConfig()), zapcore.AddSync(logs), zap.DebugLevel))

	store := storage.NewStore(storage.StoreParams{DB: db, Logger: log.Named("storage")})
	t.Cleanup(func() { _ = store.Close() })

	emu := authtest.Start(t)
	t.Setenv(auth.EmulatorHostEnv, emu.Host)
	cfg := auth.DefaultConfig(emu.ProjectID)
	cfg.Mode = auth.ModeTest
	v, err := auth.NewVerifier(ctx, auth.Params{Config: cfg, Logger: log.Named("auth")})
	if err != nil {
		t.Fatal(err)
	}
	app, err := firebase.NewApp(ctx, &firebase.Config{ProjectID: emu.ProjectID})
	if err != nil {
		t.Fatal(err)
	}
	accounts, err := app.Auth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	deleter, err := auth.NewAccounts(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	params := httpapi.Params{Store: store, Verifier: v, Logger: log, Accounts: deleter}
	for _, o := range opts {
		o(&params)
	}
	s, err := httpapi.New(params)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := httpapi.Spec()
	if err != nil {
		t.Fatal(err)
	}
	router, err := legacy.NewRouter(spec)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	e := &env{t: t, emu: emu, store: store, srv: srv, api: s, router: router, logs: logs, accounts: accounts, db: db, dsn: dsn}
	t.Cleanup(func() {
		srv.Close()
		out := logs.String()
		if !strings.Contains(out, `"event.category":"audit"`) && t.Name() != "FuzzParsing" {
			t.Logf("no audit event logged")
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		for _, s := range e.secrets {
			if strings.Contains(out, s) {
				t.Errorf("the logs contain a secret or personal datum %.20q...", s)
			}
		}
		// Every JWT starts with the base64 of `{"`: no token, whole or cut,
		// and no token header was logged.
		if i := strings.Index(out, "eyJ"); i >= 0 {
			t.Errorf("the logs contain what looks like a token: %.40q...", out[i:])
		}
	})
	return e
}

// secret registers strings that must never be logged.
func (e *env) secret(s ...string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, v := range s {
		if v != "" {
			e.secrets = append(e.secrets, v)
		}
	}
}

// account is an emulator account and, optionally, its MyMONIT user.
type account struct {
	fb    authtest.User
	user  storage.User
	token string
}

func (e *env) nextN() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.n++
	return e.n
}

// signUp creates an emulator account; role "" creates no MyMONIT user.
func (e *env) signUp(role storage.Role) account {
	e.t.Helper()
	n := e.nextN()
	email := fmt.Sprintf("person%d.%d@example.org", n, time.Now().UnixNano())
	fb := e.emu.SignUp(e.t, email, "secret-password-1")
	a := account{fb: fb, token: fb.IDToken}
	name := fmt.Sprintf("Person Nameof%d", time.Now().UnixNano())
	e.secret(email, name, fb.IDToken, "secret-password-1")
	if role != "" {
		u, err := e.store.CreateUser(testCtx(e.t), storage.User{FirebaseUID: fb.UID, Name: name, Email: email, Role: role})
		if err != nil {
			e.t.Fatal(err)
		}
		a.user = u
	}
	return a
}

// response is an answer of the API.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) problem(t testing.TB) httpapi.Problem {
	t.Helper()
	var p httpapi.Problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("problem: %v: %s", err, r.body)
	}
	return p
}

func (r response) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// do sends a request and validates the response against the spec when the
// route is in it.
func (e *env) do(method, path, token string, body any) response {
	e.t.Helper()
	return e.doT(e.t, method, path, token, body)
}

// doT is do reporting to t (fuzz targets must not use the F).
func (e *env) doT(t testing.TB, method, path, token string, body any) response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(testCtx(t), method, e.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := response{status: resp.StatusCode, header: resp.Header, body: b}
	e.validate(t, req, out)
	return out
}

// validate checks a response against the OpenAPI document.
func (e *env) validate(t testing.TB, req *http.Request, r response) {
	t.Helper()
	vreq := req.Clone(req.Context())
	vreq.URL.Scheme, vreq.URL.Host, vreq.Host = "", "", ""
	route, params, err := e.router.FindRoute(vreq)
	if err != nil {
		return // unknown routes are checked by the route tests
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request: vreq, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
		},
		Status:  r.status,
		Header:  r.header,
		Body:    io.NopCloser(bytes.NewReader(r.body)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(req.Context(), in); err != nil {
		t.Errorf("%s %s -> %d does not match the spec: %v\n%s", req.Method, req.URL.Path, r.status, err, r.body)
	}
}

func nowish() time.Time { return time.Now() }

func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }
