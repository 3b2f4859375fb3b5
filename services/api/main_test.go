package main

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/mymonit/mymonit/pkg/storage"
	"github.com/mymonit/mymonit/pkg/testenv"
)

func TestServesReadinessAgainstTheDatabase(t *testing.T) {
	dsn := testenv.MySQLDatabase(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	t.Setenv("MYMONIT_MYSQL_DSN", dsn)
	t.Setenv("MYMONIT_API_HTTP_ADDR", addr)
	t.Setenv("MYMONIT_LOG_LEVEL", "warn")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()

	status := func() int {
		for range 100 {
			resp, err := http.Get("http://" + addr + "/readyz")
			if err == nil {
				resp.Body.Close()
				return resp.StatusCode
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatal("api never answered")
		return 0
	}
	if got := status(); got != http.StatusServiceUnavailable {
		t.Errorf("/readyz before migrations = %d, want 503", got)
	}
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

func TestRefusesBadConfiguration(t *testing.T) {
	t.Setenv("MYMONIT_MYSQL_MAX_OPEN_CONNS", "zero")
	err := run(context.Background())
	if err == nil || !contains(err.Error(), "MYMONIT_MYSQL_MAX_OPEN_CONNS") {
		t.Errorf("run with a bad variable: %v", err)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
