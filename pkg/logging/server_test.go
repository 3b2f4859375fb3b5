package logging_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"sync"
	"testing"
	"time"
)

// lineServer is a Logstash tcp input with the json_lines codec, as far as
// the shipper can tell: it accepts connections and records every byte.
type lineServer struct {
	ln net.Listener

	mu    sync.Mutex
	raw   bytes.Buffer
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// startLineServer listens on addr ("127.0.0.1:0" for any port) and stops
// at the end of the test.
func startLineServer(t testing.TB, addr string) *lineServer {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	s := &lineServer{ln: ln, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.Close)
	return s
}

func (s *lineServer) Addr() string { return s.ln.Addr().String() }

func (s *lineServer) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go s.read(c)
	}
}

func (s *lineServer) read(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		_ = c.Close()
	}()
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			s.mu.Lock()
			s.raw.Write(line)
			s.mu.Unlock()
		}
		if err != nil {
			return
		}
	}
}

// Close stops listening, closes the open connections and waits for the
// server's goroutines. It is idempotent.
func (s *lineServer) Close() {
	_ = s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// Raw returns a copy of everything received.
func (s *lineServer) Raw() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.raw.Bytes())
}

// WaitFor waits until the received bytes contain sub, failing the test
// after timeout (a hang guard, generous on purpose).
func (s *lineServer) WaitFor(t testing.TB, sub string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !bytes.Contains(s.Raw(), []byte(sub)) {
		if time.Now().After(deadline) {
			t.Fatalf("server did not receive %q within %s; got %d bytes", sub, timeout, len(s.Raw()))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// blackHole accepts connections and never reads them, so the kernel
// buffers fill and writes block.
type blackHole struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func startBlackHole(t testing.TB) *blackHole {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	b := &blackHole{ln: ln}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetReadBuffer(4096)
			}
			b.mu.Lock()
			b.conns = append(b.conns, c)
			b.mu.Unlock()
		}
	}()
	t.Cleanup(b.Close)
	return b
}

func (b *blackHole) Addr() string { return b.ln.Addr().String() }

func (b *blackHole) Close() {
	_ = b.ln.Close()
	b.wg.Wait()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.conns {
		_ = c.Close()
	}
	b.conns = nil
}

// closedAddr returns the address of a port nothing listens on.
func closedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// safeBuffer is a bytes.Buffer safe for concurrent use, as a Stdout.
type safeBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *safeBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *safeBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

// jsonLines decodes newline-separated JSON objects, failing the test on
// any line that is not one.
func jsonLines(t testing.TB, raw []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range bytes.Split(raw, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("invalid JSON line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// within runs f and fails the test if it has not returned after timeout:
// a guard against hangs, not a speed check.
func within(t testing.TB, timeout time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(timeout):
		t.Fatalf("%s did not return within %s", what, timeout)
	}
}
