package logging_test

import (
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/mymonit/mymonit/pkg/logging"
)

// startDiscardServer accepts connections and reads and discards everything.
func startDiscardServer(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
	tb.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// BenchmarkLog measures what one log call costs the caller, stdout going
// to io.Discard. Compare the shipper cases with discard-baseline (no
// Logstash): the caller must not be slowed when Logstash is down or
// black-holed. dropped/op is the share of lines the shipper dropped.
func BenchmarkLog(b *testing.B) {
	cases := []struct {
		name string
		addr func(b *testing.B) string
	}{
		{"discard-baseline", func(*testing.B) string { return "" }},
		{"shipper-listening", func(b *testing.B) string { return startDiscardServer(b) }},
		{"shipper-down", func(b *testing.B) string { return closedAddr(b) }},
		{"shipper-blackholed", func(b *testing.B) string { return startBlackHole(b).Addr() }},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			l, err := logging.New(logging.Options{
				Service: "bench", Version: "1", Stdout: io.Discard, LogstashAddr: c.addr(b),
			})
			if err != nil {
				b.Fatal(err)
			}
			log := l.Logger().Named("ingest")
			b.ReportAllocs()
			for b.Loop() {
				log.Info("batch committed",
					zap.String("experiment", "exp-42"),
					zap.Int("measures", 1000),
					zap.Duration("took", 12*time.Millisecond),
					logging.UserID("u-1"),
				)
			}
			b.StopTimer()
			st := l.Stats()
			b.ReportMetric(float64(st.Dropped)/float64(b.N), "dropped/op")
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			_ = l.Close(ctx)
		})
	}
}

// BenchmarkScrub measures the content scrubbing applied to every string:
// the common clean string takes the fast path.
func BenchmarkScrub(b *testing.B) {
	for _, c := range []struct{ name, s string }{
		{"clean", "batch committed for experiment exp-42 in 12ms"},
		{"email", "invitation sent to alice.liddell@example.org by admin"},
		{"url", "dial amqp://guest:guest@rabbit.local:5672/ failed"},
		{"1KiB-kv-clean", strings.Repeat("key=val ", 128)},
		{"1KiB-kv-secrets", strings.Repeat("a=1 token=t ", 85)},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = logging.Scrub(c.s)
			}
		})
	}
}

// BenchmarkRedactFields measures the redacting core on richer fields.
func BenchmarkRedactFields(b *testing.B) {
	l, err := logging.New(logging.Options{Service: "bench", Stdout: io.Discard})
	if err != nil {
		b.Fatal(err)
	}
	log := l.Logger()
	cases := []struct {
		name   string
		fields []zap.Field
	}{
		{"strings", []zap.Field{zap.String("experiment", "exp-42"), zap.String("sensor", "t1"), zap.String("password", "x")}},
		{"dict", []zap.Field{zap.Dict("user", zap.String("id", "u-1"), zap.String("name", "Alice"))}},
		{"map", []zap.Field{zap.Any("headers", map[string][]string{"Accept": {"application/json"}, "Authorization": {"Bearer x"}})}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				log.Info("request", c.fields...)
			}
		})
	}
}
