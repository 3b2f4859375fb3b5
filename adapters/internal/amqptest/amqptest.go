// Package amqptest gives the adapters' integration tests an isolated
// topology on the real RabbitMQ (pkg/testenv), a way to read back the
// measures that arrived, and a TCP proxy whose connections a test can cut.
package amqptest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/mymonit/mymonit/pkg/measure"
	"github.com/mymonit/mymonit/pkg/queue"
	"github.com/mymonit/mymonit/pkg/testenv"
)

// Config returns a queue configuration with random names on the test broker,
// declares its topology (classic queues) and deletes it when the test ends.
func Config(t testing.TB) queue.Config {
	t.Helper()
	u := testenv.AMQP(t)
	cfg := queue.Config{
		URL:          u,
		Exchange:     testenv.Name("at_measures"),
		Queue:        testenv.Name("at_ingest"),
		DeadExchange: testenv.Name("at_dead"),
		DeadQueue:    testenv.Name("at_dead"),
		QueueType:    queue.QueueTypeClassic,
	}
	testenv.Cleanup(t, u, []string{cfg.Queue, cfg.DeadQueue}, []string{cfg.Exchange, cfg.DeadExchange})
	conn, err := amqp.Dial(u)
	if err != nil {
		t.Fatalf("dial %s: %v", u, err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("channel: %v", err)
	}
	if err := cfg.Topology().Declare(ch); err != nil {
		t.Fatalf("declare topology: %v", err)
	}
	return cfg
}

// Message is a measure message read back from the queue.
type Message struct {
	RoutingKey  string
	ContentType string
	MessageID   string
	Producer    string
	Persistent  bool
	Decoded     measure.Decoded
}

// Collect reads messages from the queue (auto-ack) until it has seen want
// measures, then waits a short while to catch any extra one. It fails the
// test when the queue stays empty for 10 seconds before that, or when a
// message does not decode.
func Collect(t testing.TB, cfg queue.Config, want int) []Message {
	t.Helper()
	conn, err := amqp.Dial(cfg.URL)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("channel: %v", err)
	}
	var got []Message
	n := 0
	quiet := time.Now().Add(10 * time.Second)
	extra := time.Time{}
	for {
		d, ok, err := ch.Get(cfg.Queue, true)
		if err != nil {
			t.Fatalf("get from %s: %v", cfg.Queue, err)
		}
		if ok {
			dec, err := measure.Decode(d.Body)
			if err != nil {
				t.Fatalf("message %s does not decode: %v", d.MessageId, err)
			}
			producer, _ := d.Headers[queue.HeaderProducer].(string)
			got = append(got, Message{
				RoutingKey: d.RoutingKey, ContentType: d.ContentType, MessageID: d.MessageId,
				Producer: producer, Persistent: d.DeliveryMode == amqp.Persistent, Decoded: dec,
			})
			n += len(dec.Measures) + len(dec.Rejected)
			quiet = time.Now().Add(10 * time.Second)
			continue
		}
		if n >= want {
			if extra.IsZero() {
				extra = time.Now().Add(300 * time.Millisecond)
			}
			if time.Now().After(extra) {
				return got
			}
		} else if time.Now().After(quiet) {
			t.Fatalf("queue %s: got %d measures, want %d", cfg.Queue, n, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Measures flattens the messages' measures and checks each message's
// envelope: routing key of its experiment, JSON content type, persistent,
// one experiment per message, no rejected item.
func Measures(t testing.TB, msgs []Message) []measure.Measure {
	t.Helper()
	var out []measure.Measure
	for _, m := range msgs {
		if m.ContentType != measure.ContentType || !m.Persistent {
			t.Errorf("message %s: content type %q persistent %v", m.MessageID, m.ContentType, m.Persistent)
		}
		if len(m.Decoded.Rejected) > 0 {
			t.Errorf("message %s carries invalid items: %v", m.MessageID, m.Decoded.Rejected)
		}
		for _, ms := range m.Decoded.Measures {
			if rk := measure.RoutingKey(ms.Experiment); rk != m.RoutingKey {
				t.Errorf("message %s: routing key %q holds a measure of %q", m.MessageID, m.RoutingKey, ms.Experiment)
			}
			out = append(out, ms)
		}
	}
	return out
}

// CollectMeasures is Collect and Measures for exactly want measures,
// sorted by identity (Sort): more than want fails the test.
func CollectMeasures(t testing.TB, cfg queue.Config, want int) []measure.Measure {
	t.Helper()
	ms := Measures(t, Collect(t, cfg, want))
	if len(ms) != want {
		t.Fatalf("queue %s: %d measures, want %d: %+v", cfg.Queue, len(ms), want, ms)
	}
	return Sort(ms)
}

// Key is a measure's identity as a string.
func Key(m measure.Measure) string {
	return m.Experiment + "|" + m.Sensor + "|" + m.Time.UTC().Format(time.RFC3339Nano)
}

// Sort orders measures by identity, for comparisons.
func Sort(ms []measure.Measure) []measure.Measure {
	sort.SliceStable(ms, func(i, j int) bool { return Key(ms[i]) < Key(ms[j]) })
	return ms
}

// Proxy is a TCP proxy between a client under test and the broker, whose
// connections a test can cut (as a network failure would) or have the broker
// close (as an operator would).
type Proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	conns map[net.Conn]net.Conn // client side -> broker side
	wg    sync.WaitGroup
}

// StartProxy proxies to the broker of amqpURL and returns the proxy and a URL
// through it. It stops when the test ends.
func StartProxy(t testing.TB, amqpURL string) (*Proxy, string) {
	t.Helper()
	u, err := url.Parse(amqpURL)
	if err != nil {
		t.Fatalf("parse URL: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	p := &Proxy{ln: ln, target: u.Host, conns: make(map[net.Conn]net.Conn)}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	u.Host = ln.Addr().String()
	return p, u.String()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
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
		p.conns[client] = server
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(client, server, client)
		go p.pipe(server, client, client)
	}
}

func (p *Proxy) pipe(dst, src, client net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	_ = dst.Close()
	_ = src.Close()
	p.mu.Lock()
	delete(p.conns, client)
	p.mu.Unlock()
}

// Cut closes every proxied connection and returns how many there were.
func (p *Proxy) Cut() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c, s := range p.conns {
		_ = c.Close()
		_ = s.Close()
	}
	return len(p.conns)
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

func (p *Proxy) close() {
	_ = p.ln.Close()
	p.Cut()
	p.wg.Wait()
}
