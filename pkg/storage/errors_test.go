package storage_test

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/mymonit/mymonit/pkg/storage"
)

func TestIsRetryable(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"deadlock", &mysql.MySQLError{Number: 1213}, true},
		{"lock wait timeout", &mysql.MySQLError{Number: 1205}, true},
		{"wrapped deadlock", fmt.Errorf("upsert: %w", &mysql.MySQLError{Number: 1213}), true},
		{"too many connections", &mysql.MySQLError{Number: 1040}, true},
		{"server shutting down", &mysql.MySQLError{Number: 1053}, true},
		{"read-only server (failover)", &mysql.MySQLError{Number: 1290}, true},
		{"bad connection", driver.ErrBadConn, true},
		{"wrapped bad connection", fmt.Errorf("x: %w", driver.ErrBadConn), true},
		{"invalid connection", mysql.ErrInvalidConn, true},
		{"unexpected EOF", io.ErrUnexpectedEOF, true},
		{"connection refused", refused, true},
		{"connection reset", fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{"deadline", context.DeadlineExceeded, true},
		{"duplicate key", &mysql.MySQLError{Number: 1062}, false},
		{"data too long", &mysql.MySQLError{Number: 1406}, false},
		{"syntax error", &mysql.MySQLError{Number: 1064}, false},
		{"trigger signal", &mysql.MySQLError{Number: 1644}, false},
		{"invalid", fmt.Errorf("row 3: %w", storage.ErrInvalid), false},
		{"not found", storage.ErrNotFound, false},
		{"conflict", storage.ErrConflict, false},
		{"plain error", errors.New("something else"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := storage.IsRetryable(tt.err); got != tt.want {
				t.Errorf("IsRetryable(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}
