package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/google/go-cmp/cmp"

	"github.com/mymonit/mymonit/pkg/config"
	"github.com/mymonit/mymonit/pkg/logging"
	"github.com/mymonit/mymonit/pkg/storage"
	"github.com/mymonit/mymonit/pkg/testenv"
)

// startServe runs the api on a free port against the database dsn, with
// the extra variables env, until the test ends, and returns a function that
// polls /readyz.
func startServe(t *testing.T, dsn string, env map[string]string) (readyz func() int) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	t.Setenv("MYMONIT_MYSQL_DSN", dsn)
	t.Setenv("MYMONIT_API_HTTP_ADDR", addr)
	t.Setenv("MYMONIT_LOG_LEVEL", "warn")
	t.Setenv("MYMONIT_FIREBASE_PROJECT_ID", "demo-mymonit")
	t.Setenv("MYMONIT_MODE", "test")
	t.Setenv("FIREBASE_AUTH_EMULATOR_HOST", "127.0.0.1:1") // never called by these tests
	for k, v := range env {
		t.Setenv(k, v)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	return func() int {
		t.Helper()
		for range 100 {
			resp, err := http.Get("http://" + addr + "/readyz")
			if err == nil {
				resp.Body.Close()
				return resp.StatusCode
			}
			select {
			case err := <-done:
				t.Fatalf("api stopped: %v", err)
			case <-time.After(50 * time.Millisecond):
			}
		}
		t.Fatal("api never answered")
		return 0
	}
}

func TestServesReadinessAgainstTheDatabase(t *testing.T) {
	dsn := testenv.MySQLDatabase(t)
	status := startServe(t, dsn, nil)
	if got := status(); got != http.StatusServiceUnavailable {
		t.Errorf("/readyz before migrations = %d, want 503", got)
	}
	ctx := context.Background()
	db, err := storage.Open(ctx, storage.Config{DSN: dsn, MaxOpenConns: 2, MaxIdleConns: 2, ConnMaxLifetime: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := storage.Migrate(ctx, db, zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	if got := status(); got != http.StatusOK {
		t.Errorf("/readyz after migrations = %d, want 200", got)
	}
}

func TestMigratesOnStart(t *testing.T) {
	dsn := testenv.MySQLDatabase(t)
	status := startServe(t, dsn, map[string]string{"MYMONIT_MYSQL_MIGRATE_ON_START": "true"})
	if got := status(); got != http.StatusOK {
		t.Errorf("/readyz with MYMONIT_MYSQL_MIGRATE_ON_START=true on an empty database = %d, want 200", got)
	}
	db, err := storage.Open(context.Background(), storage.Config{DSN: dsn, MaxOpenConns: 1, MaxIdleConns: 1, ConnMaxLifetime: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := storage.Check(context.Background(), db); err != nil {
		t.Errorf("schema after the start: %v", err)
	}
}

func TestRefusesBadConfiguration(t *testing.T) {
	t.Setenv("MYMONIT_MYSQL_MAX_OPEN_CONNS", "zero")
	err := run(context.Background(), nil)
	if err == nil || !contains(err.Error(), "MYMONIT_MYSQL_MAX_OPEN_CONNS") {
		t.Errorf("run with a bad variable: %v", err)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func TestRefusesTheEmulatorInProduction(t *testing.T) {
	t.Setenv("MYMONIT_MYSQL_DSN", testenv.MySQLDatabase(t))
	t.Setenv("MYMONIT_FIREBASE_PROJECT_ID", "demo-mymonit")
	t.Setenv("MYMONIT_MODE", "production")
	t.Setenv("FIREBASE_AUTH_EMULATOR_HOST", "127.0.0.1:9099")
	t.Setenv("MYMONIT_LOG_LEVEL", "error")
	err := run(context.Background(), nil)
	if err == nil || !contains(err.Error(), "FIREBASE_AUTH_EMULATOR_HOST") || !contains(err.Error(), "not starting") {
		t.Errorf("run with the emulator in production: %v", err)
	}
}

func TestRequiresAFirebaseProject(t *testing.T) {
	t.Setenv("MYMONIT_FIREBASE_PROJECT_ID", "")
	err := run(context.Background(), nil)
	if err == nil || !contains(err.Error(), "MYMONIT_FIREBASE_PROJECT_ID") {
		t.Errorf("run without a project: %v", err)
	}
}

func TestBootstrapAdmin(t *testing.T) {
	dsn := testenv.MySQLDatabase(t)
	t.Setenv("MYMONIT_MYSQL_DSN", dsn)
	t.Setenv("MYMONIT_LOG_LEVEL", "error") // audit events are written all the same
	ctx := context.Background()
	var out strings.Builder
	if err := run(ctx, []string{"bootstrap-admin", "-uid", "boot-uid"}); err == nil || !contains(err.Error(), "migrations") {
		t.Errorf("bootstrap on an empty database: %v", err)
	}
	db, err := storage.Open(ctx, storage.Config{DSN: dsn, MaxOpenConns: 2, MaxIdleConns: 2, ConnMaxLifetime: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := storage.Migrate(ctx, db, zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no uid", []string{"bootstrap-admin"}, "-uid"},
		{"first admin", []string{"bootstrap-admin", "-uid", "boot-uid", "-name", "Root", "-email", "root@example.org"}, ""},
		{"second admin refused", []string{"bootstrap-admin", "-uid", "other-uid"}, "admin already exists"},
		{"second admin forced", []string{"bootstrap-admin", "-uid", "other-uid", "-force"}, ""},
		{"same uid", []string{"bootstrap-admin", "-uid", "other-uid", "-force"}, "exists"},
		{"unknown command", []string{"serve-twice"}, "unknown command"},
	}
	for _, tt := range tests {
		err := bootstrapOrRun(ctx, tt.args, &out)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.wantErr != "" && (err == nil || !contains(err.Error(), tt.wantErr)):
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.wantErr)
		}
	}
	store := storage.NewStore(storage.StoreParams{DB: db})
	u, err := store.UserByFirebaseUID(ctx, "boot-uid")
	if err != nil || u.Role != storage.RoleAdmin || u.Name != "Root" {
		t.Errorf("bootstrapped user = %+v, %v", u, err)
	}
	if contains(out.String(), "root@example.org") || contains(out.String(), "Root") || contains(out.String(), "boot-uid") {
		t.Errorf("bootstrap printed personal data: %q", out.String())
	}
	// One audit event per attempt that reached the database.
	var got []string
	for _, line := range strings.Split(out.String(), "\n") {
		var ev map[string]any
		if json.Unmarshal([]byte(line), &ev) != nil || ev["event.action"] != "user.bootstrap_admin" {
			continue
		}
		if ev["event.category"] != logging.CategoryAudit || ev["log.level"] != "info" {
			t.Errorf("audit event %v: want event.category audit at info", ev)
		}
		target, _ := ev["mymonit.target.user_id"].(string)
		got = append(got, fmt.Sprintf("%v force=%v target=%v", ev["event.outcome"], ev["mymonit.force"], target != ""))
	}
	want := []string{"success force=false target=true", "failure force=false target=false", "success force=true target=true", "failure force=true target=false"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit events of bootstrap-admin (-want +got):\n%s\n%s", diff, out.String())
	}
}

// bootstrapOrRun runs the command line with output to out.
func bootstrapOrRun(ctx context.Context, args []string, out *strings.Builder) error {
	if len(args) > 0 && args[0] == "bootstrap-admin" {
		return bootstrapAdmin(ctx, args[1:], out)
	}
	return run(ctx, args)
}

// The README's configuration reference of the api is the one the code
// declares.
func TestREADMEConfigReference(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- config:api -->\n", "<!-- /config:api -->"
	s := string(readme)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatalf("README.md lacks the %q … %q section", begin, end)
	}
	if got, want := s[i+len(begin):j], config.Markdown(Config{}); got != want {
		t.Errorf("README.md configuration reference of the api is stale; replace it with the output of `api config`:\n%s", want)
	}
}
