package mqtt_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"

	"github.com/mymonit/mymonit/adapters/sink"
	"github.com/mymonit/mymonit/pkg/measure"
)

// MQTT control packet types.
const (
	packetPublish = 3
	packetPuback  = 4
)

// packet is an MQTT control packet seen by the proxy: its type (3 PUBLISH,
// 4 PUBACK...), QoS, packet id and, for a PUBLISH, its topic.
type packet struct {
	kind  byte
	qos   byte
	id    uint16
	topic string
}

// readPacket reads one MQTT control packet from r, copying its bytes to w.
func readPacket(r *bufio.Reader, w io.Writer) (packet, error) {
	first, err := r.ReadByte()
	if err != nil {
		return packet{}, err
	}
	head := []byte{first}
	n, mul := 0, 1
	for i := 0; ; i++ {
		b, err := r.ReadByte()
		if err != nil {
			return packet{}, err
		}
		head = append(head, b)
		n += int(b&0x7f) * mul
		mul *= 128
		if b&0x80 == 0 {
			break
		}
		if i == 3 {
			return packet{}, errors.New("malformed remaining length")
		}
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return packet{}, err
	}
	p := packet{kind: first >> 4, qos: (first >> 1) & 3}
	switch {
	case p.kind == packetPublish && len(body) >= 2:
		tl := int(binary.BigEndian.Uint16(body))
		if len(body) < 2+tl {
			return packet{}, errors.New("short PUBLISH")
		}
		p.topic = string(body[2 : 2+tl])
		if p.qos > 0 && len(body) >= 4+tl {
			p.id = binary.BigEndian.Uint16(body[2+tl:])
		}
	case p.kind == packetPuback && len(body) >= 2:
		p.id = binary.BigEndian.Uint16(body)
	}
	if _, err := w.Write(append(head, body...)); err != nil {
		return packet{}, err
	}
	return p, nil
}

// proxy forwards one MQTT connection at a time between a client and the
// broker and calls seen with every packet, before forwarding it, from the
// broker (down true) and from the client.
type proxy struct {
	ln     net.Listener
	broker string
	seen   func(p packet, down bool)
	wg     sync.WaitGroup
}

// newProxy listens on a free local port in front of broker (an MQTT URL);
// URL is the address a client should use. It closes when the test ends.
func newProxy(t *testing.T, broker string, seen func(p packet, down bool)) *proxy {
	t.Helper()
	u, err := url.Parse(broker)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, broker: u.Host, seen: seen}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		_ = ln.Close()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) URL() string { return "tcp://" + p.ln.Addr().String() }

func (p *proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		b, err := net.Dial("tcp", p.broker)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.wg.Add(2)
		go p.copy(c, b, false)
		go p.copy(b, c, true)
	}
}

// copy forwards packets from one side to the other, telling seen about each.
func (p *proxy) copy(from, to net.Conn, down bool) {
	defer p.wg.Done()
	defer from.Close()
	defer to.Close()
	r := bufio.NewReader(from)
	for {
		var buf bytesBuffer
		pk, err := readPacket(r, &buf)
		if err != nil {
			return
		}
		p.seen(pk, down)
		if _, err := to.Write(buf.b); err != nil {
			return
		}
	}
}

type bytesBuffer struct{ b []byte }

func (b *bytesBuffer) Write(p []byte) (int, error) { b.b = append(b.b, p...); return len(p), nil }

// recordingSink passes measures on to a sink and keeps each message's
// ticket by sensor.
type recordingSink struct {
	*sink.Sink
	mu      sync.Mutex
	tickets map[string]*sink.Ticket
}

func (s *recordingSink) Add(ctx context.Context, ms ...measure.Measure) (*sink.Ticket, error) {
	t, err := s.Sink.Add(ctx, ms...)
	if err == nil {
		s.mu.Lock()
		for _, m := range ms {
			s.tickets[m.Sensor] = t
		}
		s.mu.Unlock()
	}
	return t, err
}

func (s *recordingSink) confirmed(sensor string) (bool, error) {
	s.mu.Lock()
	t := s.tickets[sensor]
	s.mu.Unlock()
	if t == nil {
		return false, fmt.Errorf("no measure of %s was added", sensor)
	}
	select {
	case <-t.Done():
		return t.Err() == nil, nil
	default:
		return false, nil
	}
}
