package storage_test

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/mymonit/mymonit/pkg/storage"
)

func TestInTxRetriesDeadlock(t *testing.T) {
	s, db := newStore(t, storage.StoreParams{})
	ctx := testCtx(t)
	for _, q := range []string{
		"CREATE TABLE counters (id INT PRIMARY KEY, n INT NOT NULL) ENGINE=InnoDB",
		"INSERT INTO counters VALUES (1, 0), (2, 0)",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	// Two transactions lock row "first", meet, then ask for the other's row:
	// a deadlock on the first attempt. InnoDB rolls one back with 1213;
	// InTx must run that one again and both must commit.
	var locked sync.WaitGroup
	locked.Add(2)
	var attempts [2]atomic.Int32
	bump := func(who, first, second int) func(tx *sql.Tx) error {
		return func(tx *sql.Tx) error {
			attempt := attempts[who].Add(1)
			if _, err := tx.ExecContext(ctx, "UPDATE counters SET n = n + 1 WHERE id = ?", first); err != nil {
				return err
			}
			if attempt == 1 {
				locked.Done()
				locked.Wait()
			}
			_, err := tx.ExecContext(ctx, "UPDATE counters SET n = n + 1 WHERE id = ?", second)
			return err
		}
	}
	var errs [2]error
	var wg sync.WaitGroup
	wg.Go(func() { errs[0] = s.InTx(ctx, bump(0, 1, 2)) })
	wg.Go(func() { errs[1] = s.InTx(ctx, bump(1, 2, 1)) })
	wg.Wait()

	for who, err := range errs {
		if err != nil {
			t.Errorf("transaction %d: %v", who, err)
		}
	}
	if total := attempts[0].Load() + attempts[1].Load(); total != 3 {
		t.Errorf("fn ran %d times in all (%d + %d), want 3: one deadlock victim retried once",
			total, attempts[0].Load(), attempts[1].Load())
	}
	// Both transactions' effects, once each: the victim's first attempt was
	// rolled back.
	if n := queryInt(t, db, "SELECT SUM(n) FROM counters"); n != 4 {
		t.Errorf("sum of counters = %d, want 4", n)
	}
}

func TestInTxSurfacesOtherErrorsOnce(t *testing.T) {
	s, db := newStore(t, storage.StoreParams{})
	ctx := testCtx(t)
	if _, err := db.ExecContext(ctx, "CREATE TABLE things (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	errApp := errors.New("application says no")
	tests := []struct {
		name    string
		fail    func(tx *sql.Tx) error
		wantErr func(error) bool
	}{
		{"application error", func(*sql.Tx) error { return errApp }, func(err error) bool { return errors.Is(err, errApp) }},
		{"duplicate key", func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, "INSERT INTO things VALUES (1)")
			return err
		}, func(err error) bool { return errors.Is(err, &mysql.MySQLError{Number: 1062}) }},
		{"syntax error", func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, "INSERT INTO things VALUES (")
			return err
		}, func(err error) bool { return errors.Is(err, &mysql.MySQLError{Number: 1064}) }},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			id := 100 + i
			err := s.InTx(ctx, func(tx *sql.Tx) error {
				calls++
				// A write before the failure must be rolled back.
				if _, err := tx.ExecContext(ctx, "INSERT INTO things VALUES (?)", id); err != nil {
					return err
				}
				if tt.name == "duplicate key" {
					if _, err := tx.ExecContext(ctx, "INSERT INTO things VALUES (1)"); err != nil {
						return err
					}
				}
				return tt.fail(tx)
			})
			if !tt.wantErr(err) {
				t.Errorf("InTx = %v, want the fn's error", err)
			}
			if calls != 1 {
				t.Errorf("fn ran %d times, want 1", calls)
			}
			if n := queryInt(t, db, "SELECT COUNT(*) FROM things WHERE id = ?", id); n != 0 {
				t.Errorf("write of the failed transaction is visible")
			}
		})
	}
	// And a successful one commits.
	if err := s.InTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO things VALUES (7)")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if n := queryInt(t, db, "SELECT COUNT(*) FROM things WHERE id = 7"); n != 1 {
		t.Errorf("committed row not visible")
	}
}

func TestInTxRetriesAreBounded(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		max       int
		wantCalls int
	}{
		{"deadlock", &mysql.MySQLError{Number: 1213, Message: "Deadlock found"}, 3, 3},
		{"lock wait timeout", &mysql.MySQLError{Number: 1205, Message: "Lock wait timeout exceeded"}, 4, 4},
		{"default bound", &mysql.MySQLError{Number: 1213}, 0, storage.DefaultMaxTxAttempts},
		{"not a lock error", &mysql.MySQLError{Number: 1146}, 3, 1},
	}
	db := migratedDB(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newStore(t, storage.StoreParams{DB: db, MaxTxAttempts: tt.max})
			calls := 0
			err := s.InTx(testCtx(t), func(*sql.Tx) error { calls++; return tt.err })
			if !errors.Is(err, tt.err) {
				t.Errorf("InTx = %v, want %v", err, tt.err)
			}
			if calls != tt.wantCalls {
				t.Errorf("fn ran %d times, want %d", calls, tt.wantCalls)
			}
		})
	}
}

func TestInTxStopsRetryingWhenContextEnds(t *testing.T) {
	s, _ := newStore(t, storage.StoreParams{MaxTxAttempts: 1000})
	ctx, cancel := context.WithTimeout(testCtx(t), 200*time.Millisecond)
	defer cancel()
	calls := 0
	err := s.InTx(ctx, func(*sql.Tx) error { calls++; return &mysql.MySQLError{Number: 1213} })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("InTx = %v, want context.DeadlineExceeded", err)
	}
	if calls >= 1000 {
		t.Errorf("fn ran %d times: the context did not stop the retries", calls)
	}
}

func TestInTxRollsBackOnPanic(t *testing.T) {
	s, db := newStore(t, storage.StoreParams{})
	ctx := testCtx(t)
	if _, err := db.ExecContext(ctx, "CREATE TABLE things (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the panic did not propagate")
			}
		}()
		_ = s.InTx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, "INSERT INTO things VALUES (1)"); err != nil {
				return err
			}
			panic("boom")
		})
	}()
	if n := queryInt(t, db, "SELECT COUNT(*) FROM things"); n != 0 {
		t.Errorf("write of the panicking transaction is visible")
	}
}
