// Package testenv gives integration tests isolated resources on the real
// MariaDB/MySQL and RabbitMQ servers named by the environment:
//
//	MYMONIT_TEST_MYSQL_DSN  default root@tcp(127.0.0.1:3306)/
//	MYMONIT_TEST_AMQP_URL   default amqp://guest:guest@127.0.0.1:5672/
//
// Proxy stands between a client under test and the broker, for tests of
// network failures.
//
// A server that cannot be reached fails the test; it never skips it. Start the
// servers with `make services` (scripts/services.sh).
package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/mymonit/mymonit/pkg/queue"
)

// Default addresses of the local servers.
const (
	DefaultMySQLDSN = "root@tcp(127.0.0.1:3306)/"
	DefaultAMQPURL  = "amqp://guest:guest@127.0.0.1:5672/"
)

// MySQLServerDSN returns the DSN of the test server (no database selected).
func MySQLServerDSN() string {
	if v := os.Getenv("MYMONIT_TEST_MYSQL_DSN"); v != "" {
		return v
	}
	return DefaultMySQLDSN
}

// AMQPURL returns the URL of the test broker.
func AMQPURL() string {
	if v := os.Getenv("MYMONIT_TEST_AMQP_URL"); v != "" {
		return v
	}
	return DefaultAMQPURL
}

// Name returns a random lowercase identifier with the given prefix, usable as
// a database, queue or exchange name.
func Name(prefix string) string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return prefix + "_" + hex.EncodeToString(b[:])
}

// MySQLDatabase creates a fresh database on the test server, drops it when the
// test ends, and returns a DSN that selects it (parseTime and multi-statement
// options are left to the caller's storage.Open).
func MySQLDatabase(t testing.TB) string {
	t.Helper()
	cfg, err := mysql.ParseDSN(MySQLServerDSN())
	if err != nil {
		t.Fatalf("testenv: MYMONIT_TEST_MYSQL_DSN: %v", err)
	}
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		t.Fatalf("testenv: MySQL/MariaDB at %s is not reachable (start it with `make services`): %v", cfg.Addr, err)
	}
	name := Name("mymonit_test")
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name+" CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		t.Fatalf("testenv: create database: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("mysql", cfg.FormatDSN())
		if err != nil {
			t.Errorf("testenv: %v", err)
			return
		}
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name); err != nil {
			t.Errorf("testenv: drop database %s: %v", name, err)
		}
	})
	cfg.DBName = name
	return cfg.FormatDSN()
}

// AMQP checks the broker is reachable and returns its URL. Tests isolate
// themselves by using names from Name for their exchanges and queues, and
// delete them with DeleteQueues/DeleteExchanges.
func AMQP(t testing.TB) string {
	t.Helper()
	url := AMQPURL()
	conn, err := amqp.DialConfig(url, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	if err != nil {
		t.Fatalf("testenv: RabbitMQ at %s is not reachable (start it with `make services`): %v", redactURL(url), err)
	}
	_ = conn.Close()
	return url
}

// QueueConfig returns a queue configuration on the test broker (AMQP) whose
// exchanges and queues have fresh names starting with prefix: quorum
// queues with a delivery limit of 20, as in production. They are deleted
// when the test ends. config.Environ(cfg) gives the MYMONIT_AMQP_*
// variables of a child process that should use them.
func QueueConfig(t testing.TB, prefix string) queue.Config {
	t.Helper()
	url := AMQP(t)
	cfg := queue.Config{
		URL:           url,
		Exchange:      Name(prefix + "_x"),
		Queue:         Name(prefix + "_q"),
		DeadExchange:  Name(prefix + "_dead_x"),
		DeadQueue:     Name(prefix + "_dead_q"),
		QueueType:     queue.QueueTypeQuorum,
		DeliveryLimit: 20,
	}
	Cleanup(t, url, []string{cfg.Queue, cfg.DeadQueue}, []string{cfg.Exchange, cfg.DeadExchange})
	return cfg
}

// Cleanup deletes the named queues and exchanges when the test ends.
func Cleanup(t testing.TB, url string, queues, exchanges []string) {
	t.Helper()
	t.Cleanup(func() {
		conn, err := amqp.DialConfig(url, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
		if err != nil {
			t.Errorf("testenv: cleanup dial: %v", err)
			return
		}
		defer conn.Close()
		for _, q := range queues {
			ch, err := conn.Channel()
			if err != nil {
				t.Errorf("testenv: cleanup channel: %v", err)
				return
			}
			_, _ = ch.QueueDelete(q, false, false, false)
			_ = ch.Close()
		}
		for _, x := range exchanges {
			ch, err := conn.Channel()
			if err != nil {
				t.Errorf("testenv: cleanup channel: %v", err)
				return
			}
			_ = ch.ExchangeDelete(x, false, false)
			_ = ch.Close()
		}
	})
}

func redactURL(u string) string {
	if at := strings.LastIndex(u, "@"); at >= 0 {
		if i := strings.Index(u, "://"); i >= 0 && i < at {
			return u[:i+3] + "***" + u[at:]
		}
	}
	return u
}

// Buffer is a bytes.Buffer safe for concurrent use, for collecting the output
// of processes and loggers under test.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
