package storage

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/go-sql-driver/mysql"
)

// Sentinel errors. Store methods wrap them with context; compare with
// errors.Is.
var (
	// ErrNotFound reports that the requested row does not exist.
	ErrNotFound = errors.New("storage: not found")
	// ErrConflict reports that a row with the same unique key exists.
	ErrConflict = errors.New("storage: conflict")
	// ErrInvalid reports an argument the schema cannot hold (a bad slug, a
	// sensor name that is too long, a non-finite value...). Retrying does
	// not help.
	ErrInvalid = errors.New("storage: invalid argument")
	// ErrSchemaNewer reports a database migrated by a newer binary.
	ErrSchemaNewer = errors.New("storage: schema is newer than this binary")
	// ErrSchemaBehind reports a database with pending migrations.
	ErrSchemaBehind = errors.New("storage: schema has pending migrations")
)

// MySQL and MariaDB server error numbers this package reacts to.
const (
	errDupEntry          = 1062 // ER_DUP_ENTRY
	errNoReferencedRow   = 1452 // ER_NO_REFERENCED_ROW_2
	errNoSuchTable       = 1146 // ER_NO_SUCH_TABLE
	errLockWaitTimeout   = 1205 // ER_LOCK_WAIT_TIMEOUT
	errLockDeadlock      = 1213 // ER_LOCK_DEADLOCK
	errTooManyConns      = 1040 // ER_CON_COUNT_ERROR
	errServerShutdown    = 1053 // ER_SERVER_SHUTDOWN
	errNetReadError      = 1158 // ER_NET_READ_ERROR
	errNetReadInterrupt  = 1159 // ER_NET_READ_INTERRUPTED
	errNetWriteError     = 1160 // ER_NET_ERROR_ON_WRITE
	errNetWriteInterrupt = 1161 // ER_NET_WRITE_INTERRUPTED
	errReadOnly          = 1290 // ER_OPTION_PREVENTS_STATEMENT (--read-only during a failover)
	errReadOnlyTx        = 1792 // ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION
	errReadOnlyMode      = 1836 // ER_READ_ONLY_MODE
	errConnKilled        = 1927 // ER_CONNECTION_KILLED (MariaDB)
)

// mysqlErrno returns the server error number carried by err, or 0.
func mysqlErrno(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

// isLockError reports a deadlock or lock wait timeout: the transaction lost
// a lock race and running it again is expected to succeed.
func isLockError(err error) bool {
	switch mysqlErrno(err) {
	case errLockDeadlock, errLockWaitTimeout:
		return true
	}
	return false
}

// IsRetryable reports whether err is transient: the same operation is
// expected to succeed later without changing its input. It is true for lock
// conflicts (deadlock 1213, lock wait timeout 1205), for an unreachable,
// restarting, overloaded or read-only (failing over) server, for broken
// connections (driver.ErrBadConn, connection refused/reset, unexpected EOF,
// network timeouts) and for an operation cut short by its context. It is
// false for nil and for errors about the data itself (ErrInvalid,
// ErrNotFound, ErrConflict, data too long, ...), which fail again however
// often they are retried.
//
// The ingest service uses it to tell "database unavailable, requeue the
// batch" from "poison batch, dead-letter it".
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrInvalid) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) {
		return false
	}
	switch mysqlErrno(err) {
	case errLockDeadlock, errLockWaitTimeout, errTooManyConns, errServerShutdown,
		errNetReadError, errNetReadInterrupt, errNetWriteError, errNetWriteInterrupt,
		errReadOnly, errReadOnlyTx, errReadOnlyMode, errConnKilled:
		return true
	case 0:
	default:
		return false
	}
	switch {
	case errors.Is(err, driver.ErrBadConn),
		errors.Is(err, mysql.ErrInvalidConn),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, io.EOF),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNABORTED),
		errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.ETIMEDOUT),
		errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH),
		errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, context.Canceled):
		return true
	}
	// Dial, DNS and I/O failures on the socket: *net.OpError, *net.DNSError...
	var ne net.Error
	return errors.As(err, &ne)
}
