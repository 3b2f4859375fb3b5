package testenv_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mymonit/mymonit/pkg/testenv"
)

// echoServer answers every line with the same line until the test ends.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			})
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
	})
	return "tcp://" + ln.Addr().String()
}

func dial(t *testing.T, rawURL string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(rawURL, "tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, bufio.NewReader(c)
}

// roundTrip sends line and returns what came back within d.
func roundTrip(c net.Conn, r *bufio.Reader, line string, d time.Duration) (string, error) {
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return "", err
	}
	if err := c.SetReadDeadline(time.Now().Add(d)); err != nil {
		return "", err
	}
	got, err := r.ReadString('\n')
	return strings.TrimSuffix(got, "\n"), err
}

func TestProxy(t *testing.T) {
	target := echoServer(t)
	px, via := testenv.StartProxy(t, target)
	if via == target || !strings.HasPrefix(via, "tcp://127.0.0.1:") {
		t.Fatalf("proxy URL %q: want the target's scheme and another loopback address", via)
	}

	c1, r1 := dial(t, via)
	if got, err := roundTrip(c1, r1, "one", 5*time.Second); err != nil || got != "one" {
		t.Fatalf("through the proxy: got %q, %v; want one", got, err)
	}
	if n := px.Cut(); n != 1 {
		t.Fatalf("Cut: %d connections, want 1", n)
	}
	if _, err := roundTrip(c1, r1, "after cut", 5*time.Second); err == nil {
		t.Fatal("a cut connection still answered")
	}

	c2, r2 := dial(t, via)
	if got, err := roundTrip(c2, r2, "two", 5*time.Second); err != nil || got != "two" {
		t.Fatalf("a new connection after Cut: got %q, %v; want two", got, err)
	}
	px.Freeze()
	if got, err := roundTrip(c2, r2, "held", 200*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("frozen: got %q, %v; want the read to time out", got, err)
	}
	px.Close()
	if _, err := roundTrip(c2, r2, "closed", 5*time.Second); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("after Close: %v; want the connection closed", err)
	}
	px.Close() // idempotent; runs again at cleanup
	if c, err := net.DialTimeout("tcp", strings.TrimPrefix(via, "tcp://"), time.Second); err == nil {
		_ = c.Close()
		t.Fatal("the proxy still accepts connections after Close")
	}
}
