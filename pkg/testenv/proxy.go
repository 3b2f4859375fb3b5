package testenv

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Proxy is a TCP proxy between a client under test and the broker. A test can
// cut its connections (as a network failure would), freeze them (as a stalled
// network would), have the broker close them (as an operator would) or close
// the proxy.
type Proxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	cond   *sync.Cond
	conns  map[net.Conn]net.Conn // client side -> broker side
	frozen bool
	closed bool
	wg     sync.WaitGroup
}

// StartProxy proxies to the server of rawURL (amqp://, tcp://...) and returns
// the proxy and the same URL with the proxy's address. It stops when the test
// ends.
func StartProxy(t testing.TB, rawURL string) (*Proxy, string) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatalf("parse URL: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	p := &Proxy{ln: ln, target: u.Host, conns: make(map[net.Conn]net.Conn)}
	p.cond = sync.NewCond(&p.mu)
	p.wg.Go(p.accept)
	t.Cleanup(p.Close)
	u.Host = ln.Addr().String()
	return p, u.String()
}

func (p *Proxy) accept() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = client.Close()
			continue
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			_ = client.Close()
			_ = server.Close()
			return
		}
		p.conns[client] = server
		p.mu.Unlock()
		p.wg.Go(func() { p.pipe(client, server, client) })
		p.wg.Go(func() { p.pipe(server, client, client) })
	}
}

// pipe copies src to dst, holding what it reads while the proxy is frozen.
func (p *Proxy) pipe(dst, src, client net.Conn) {
	defer func() {
		_ = dst.Close()
		_ = src.Close()
		p.mu.Lock()
		delete(p.conns, client)
		p.mu.Unlock()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		p.mu.Lock()
		for p.frozen && !p.closed {
			p.cond.Wait()
		}
		closed := p.closed
		p.mu.Unlock()
		if closed {
			return
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Cut closes every proxied connection and returns how many there were. New
// connections are accepted again.
func (p *Proxy) Cut() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c, s := range p.conns {
		_ = c.Close()
		_ = s.Close()
	}
	return len(p.conns)
}

// Freeze holds every byte from now on, in both directions, until the test
// ends: the connections stay open and nothing goes through.
func (p *Proxy) Freeze() {
	p.mu.Lock()
	p.frozen = true
	p.mu.Unlock()
}

// CloseAtBroker asks the broker (rabbitmqctl close_connection) to close the
// connections that go through the proxy, and only those, and returns how many
// it closed.
func (p *Proxy) CloseAtBroker(ctx context.Context) (int, error) {
	p.mu.Lock()
	ports := map[string]bool{}
	for _, s := range p.conns {
		ports[strconv.Itoa(s.LocalAddr().(*net.TCPAddr).Port)] = true
	}
	p.mu.Unlock()
	out, err := exec.CommandContext(ctx, "rabbitmqctl", "-q", "list_connections", "pid", "peer_port").Output()
	if err != nil {
		return 0, fmt.Errorf("rabbitmqctl list_connections: %w", err)
	}
	n := 0
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 || !ports[f[1]] {
			continue
		}
		if out, err := exec.CommandContext(ctx, "rabbitmqctl", "-q", "close_connection", f[0], "closed by a test").CombinedOutput(); err != nil {
			return n, fmt.Errorf("rabbitmqctl close_connection %s: %w: %s", f[0], err, out)
		}
		n++
	}
	return n, nil
}

// Close stops the proxy: it drops what a freeze holds and closes the listener
// and every connection. It runs when the test ends and may run before.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.cond.Broadcast()
	p.mu.Unlock()
	_ = p.ln.Close()
	p.Cut()
	p.wg.Wait()
}
