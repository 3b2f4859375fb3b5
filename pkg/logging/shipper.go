package logging

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.uber.org/zap"
)

const (
	// maxBatchLines and maxBatchBytes bound one vectored write.
	maxBatchLines = 256
	maxBatchBytes = 256 << 10
	// maxPooledLine: larger line buffers are not kept for reuse.
	maxPooledLine = 16 << 10
	// batchLinger is how long a batch waits for more lines.
	batchLinger = 2 * time.Millisecond
	// backoffJitter is the randomization factor of reconnection delays.
	backoffJitter = 0.2
)

// ShipperOptions configures a Shipper.
type ShipperOptions struct {
	// Addr is the host:port of a Logstash tcp input (codec json_lines).
	Addr string
	// BufferSize is the number of lines queued; 0 means DefaultBufferSize.
	BufferSize int
	// DialTimeout bounds one connection attempt; 0 means
	// DefaultDialTimeout.
	DialTimeout time.Duration
	// WriteTimeout bounds one write; 0 means DefaultWriteTimeout.
	WriteTimeout time.Duration
	// MinBackoff and MaxBackoff bound the jittered exponential delay
	// between connection attempts; 0 means DefaultMinBackoff and
	// DefaultMaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// Logger reports connection changes (connected, lost, unreachable). It
	// must not write to this Shipper. Nil means no reports.
	Logger *zap.Logger
}

// ShipperStats are the Shipper's counters since it started.
type ShipperStats struct {
	// Sent counts lines written completely to a connection.
	Sent uint64
	// Dropped counts lines lost: buffer full, written after Close, failed
	// twice, or still queued when Close gave up.
	Dropped uint64
	// Reconnects counts connections established after the first one.
	Reconnects uint64
	// Connected tells whether a connection is open now.
	Connected bool
}

// Shipper sends lines to Logstash over TCP. It is the zapcore.WriteSyncer of
// the Logstash core: Write copies the line into a bounded queue and returns
// at once, dropping (and counting) the line when the queue is full; it
// never blocks on the network. One goroutine, started by NewShipper and
// stopped by Close, connects with a jittered exponential backoff, writes
// queued lines in batches with a write deadline and, when a write fails or
// the peer closes, reconnects and retries the unfinished line once.
//
// Delivery is at most once per line in the sense that nothing is
// acknowledged: lines in the kernel's buffers when a connection breaks are
// lost, and a line cut by a failed write may arrive truncated before its
// retry. Every line is also written to stdout, which stays the reference.
type Shipper struct {
	opts   ShipperOptions
	lines  chan *[]byte
	wake   chan struct{} // the queue is half full: stop lingering
	high   int           // half the queue
	pool   sync.Pool
	dialer net.Dialer

	// ctx is cancelled when Close gives up: dials and waits end at once.
	ctx    context.Context
	cancel context.CancelFunc
	stop   chan struct{} // closed by Close: drain the queue, then exit
	done   chan struct{} // closed when the goroutine has exited

	closeOnce sync.Once
	closed    atomic.Bool

	mu   sync.Mutex
	conn net.Conn // the open connection, for Close to interrupt a write

	sent, dropped, reconnects atomic.Uint64
	connected                 atomic.Bool
}

// NewShipper validates o and starts the shipping goroutine. It does not
// wait for a connection: lines queue until one is open. Close stops it.
func NewShipper(o ShipperOptions) (*Shipper, error) {
	if _, _, err := net.SplitHostPort(o.Addr); err != nil {
		return nil, fmt.Errorf("logging: shipper address %q: %w", o.Addr, err)
	}
	if o.BufferSize < 0 || o.DialTimeout < 0 || o.WriteTimeout < 0 || o.MinBackoff < 0 || o.MaxBackoff < 0 {
		return nil, errors.New("logging: shipper options: negative size or duration")
	}
	if o.BufferSize == 0 {
		o.BufferSize = DefaultBufferSize
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.MinBackoff == 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = o.MinBackoff
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Shipper{
		opts:   o,
		lines:  make(chan *[]byte, o.BufferSize),
		wake:   make(chan struct{}, 1),
		high:   max(o.BufferSize/2, 1),
		dialer: net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second},
		ctx:    ctx,
		cancel: cancel,
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	s.pool.New = func() any { b := make([]byte, 0, 512); return &b }
	go s.run()
	return s, nil
}

// Write queues a copy of p, one JSON line, without blocking. It always
// returns len(p), nil: a line that does not fit is dropped and counted.
func (s *Shipper) Write(p []byte) (int, error) {
	if s.closed.Load() {
		s.dropped.Add(1)
		return len(p), nil
	}
	bp, _ := s.pool.Get().(*[]byte)
	*bp = append((*bp)[:0], p...)
	select {
	case s.lines <- bp:
		if len(s.lines) >= s.high {
			select {
			case s.wake <- struct{}{}:
			default:
			}
		}
	default:
		s.dropped.Add(1)
		s.release(bp)
	}
	return len(p), nil
}

// Sync returns nil at once: it never waits for the network.
func (s *Shipper) Sync() error { return nil }

// Stats returns the counters.
func (s *Shipper) Stats() ShipperStats {
	return ShipperStats{
		Sent:       s.sent.Load(),
		Dropped:    s.dropped.Load(),
		Reconnects: s.reconnects.Load(),
		Connected:  s.connected.Load(),
	}
}

// Close stops accepting lines, lets the goroutine send what is queued and
// waits for it. When ctx is done first, it interrupts the connection, counts
// what is left as dropped, waits for the goroutine (which then returns
// promptly) and returns ctx's error. A Logstash found unreachable while
// draining is not retried: the rest is dropped. Close is idempotent; lines
// written afterwards are dropped.
func (s *Shipper) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.stop)
	})
	var err error
	select {
	case <-s.done: // already finished: ctx does not matter
	default:
		select {
		case <-s.done:
		case <-ctx.Done():
			s.abort()
			<-s.done
			err = fmt.Errorf("logging: drain logstash queue: %w", ctx.Err())
		}
	}
	s.cancel()
	// Lines that raced with Close, or that the goroutine left behind.
	for {
		select {
		case bp := <-s.lines:
			s.dropped.Add(1)
			s.release(bp)
		default:
			return err
		}
	}
}

// abort cancels dials and waits and unblocks a write in progress.
func (s *Shipper) abort() {
	s.cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		_ = s.conn.SetDeadline(time.Now())
	}
}

func (s *Shipper) release(bp *[]byte) {
	if cap(*bp) <= maxPooledLine {
		s.pool.Put(bp)
	}
}

func (s *Shipper) stopping() bool {
	select {
	case <-s.stop:
		return true
	default:
		return false
	}
}

// run is the shipping goroutine.
func (s *Shipper) run() {
	defer close(s.done)
	var (
		l          *link
		batch      []*[]byte
		headFailed bool // batch[0] already failed once
		ever       bool // a connection was established before
		bufs       net.Buffers
	)
	defer func() {
		if l != nil {
			s.disconnect(l)
		}
		s.dropBatch(batch)
	}()
	bo := &backoff.ExponentialBackOff{
		InitialInterval:     s.opts.MinBackoff,
		RandomizationFactor: backoffJitter,
		Multiplier:          2,
		MaxInterval:         time.Duration(float64(s.opts.MaxBackoff) / (1 + backoffJitter)),
		Stop:                backoff.Stop,
		Clock:               backoff.SystemClock,
	}
	bo.Reset()
	linger := time.NewTimer(time.Hour)
	linger.Stop()

	for {
		if len(batch) == 0 {
			var ok bool
			if batch, ok = s.next(batch, linger); !ok {
				return
			}
			headFailed = false
		}
		if s.ctx.Err() != nil {
			return
		}
		if l != nil && l.broken() {
			s.opts.Logger.Warn("logstash closed the connection", zap.String("server.address", s.opts.Addr))
			s.disconnect(l)
			l = nil
		}
		if l == nil {
			conn, ok := s.connect(bo)
			if !ok {
				return
			}
			l = newLink(conn)
			s.setConn(conn)
			s.connected.Store(true)
			if ever {
				s.reconnects.Add(1)
			}
			ever = true
			s.opts.Logger.Info("logstash connected", zap.String("server.address", s.opts.Addr))
		}

		bufs = bufs[:0]
		for _, bp := range batch {
			bufs = append(bufs, *bp)
		}
		_ = l.conn.SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout))
		vec := bufs // WriteTo consumes its receiver
		n, err := vec.WriteTo(l.conn)
		done := 0
		for done < len(batch) && n >= int64(len(*batch[done])) {
			n -= int64(len(*batch[done]))
			s.release(batch[done])
			done++
		}
		s.sent.Add(uint64(done))
		batch = batch[:copy(batch, batch[done:])]
		if done > 0 {
			headFailed = false
		}
		if err == nil {
			continue
		}
		s.opts.Logger.Warn("logstash connection lost", zap.String("server.address", s.opts.Addr), zap.Error(err))
		s.disconnect(l)
		l = nil
		if headFailed && len(batch) > 0 {
			// Second failure of this line: give up on it.
			s.dropped.Add(1)
			s.release(batch[0])
			batch = batch[:copy(batch, batch[1:])]
			headFailed = false
		} else {
			headFailed = len(batch) > 0
		}
	}
}

// next waits for a line, then gathers what else is queued, up to a batch.
// When that is little, it first lets more lines queue for batchLinger (or
// until Write finds the queue half full): the loggers then hand lines over
// without waking this goroutine, and a busy service costs few system calls.
// While stopping it does not wait; it reports false when there is nothing
// left to do.
func (s *Shipper) next(batch []*[]byte, linger *time.Timer) ([]*[]byte, bool) {
	select {
	case bp := <-s.lines:
		batch = append(batch, bp)
	default:
		select {
		case bp := <-s.lines:
			batch = append(batch, bp)
		case <-s.stop:
			select {
			case bp := <-s.lines:
				batch = append(batch, bp)
			default:
				return batch, false
			}
		case <-s.ctx.Done():
			return batch, false
		}
	}
	if len(s.lines) < min(maxBatchLines, s.high) && !s.stopping() {
		select { // a stale signal from an earlier batch
		case <-s.wake:
		default:
		}
		linger.Reset(batchLinger)
		select {
		case <-linger.C:
		case <-s.wake:
			linger.Stop()
		case <-s.stop:
			linger.Stop()
		case <-s.ctx.Done():
			linger.Stop()
		}
	}
	size := len(*batch[0])
	for len(batch) < maxBatchLines && size < maxBatchBytes {
		select {
		case bp := <-s.lines:
			batch = append(batch, bp)
			size += len(*bp)
		default:
			return batch, true
		}
	}
	return batch, true
}

// connect dials until it succeeds, backing off between attempts. Once Close
// was called it makes one more attempt only. It reports false when giving
// up.
func (s *Shipper) connect(bo *backoff.ExponentialBackOff) (net.Conn, bool) {
	reported := false
	for {
		conn, err := s.dialer.DialContext(s.ctx, "tcp", s.opts.Addr)
		if err == nil {
			bo.Reset()
			return conn, true
		}
		if s.ctx.Err() != nil || s.stopping() {
			return nil, false
		}
		if !reported {
			s.opts.Logger.Warn("logstash unreachable, retrying", zap.String("server.address", s.opts.Addr), zap.Error(err))
			reported = true
		}
		t := time.NewTimer(bo.NextBackOff())
		select {
		case <-t.C:
		case <-s.stop:
			t.Stop()
		case <-s.ctx.Done():
			t.Stop()
			return nil, false
		}
	}
}

func (s *Shipper) setConn(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conn = c
	if s.ctx.Err() != nil {
		_ = c.SetDeadline(time.Now())
	}
}

func (s *Shipper) disconnect(l *link) {
	s.mu.Lock()
	s.conn = nil
	s.mu.Unlock()
	s.connected.Store(false)
	l.close()
}

func (s *Shipper) dropBatch(batch []*[]byte) {
	for _, bp := range batch {
		s.dropped.Add(1)
		s.release(bp)
	}
}

// link is one connection and the goroutine watching it: Logstash never
// sends anything, so the goroutine reads and discards until the read fails,
// which tells that the peer closed or reset the connection before a write
// fails. close closes the connection and waits for that goroutine.
type link struct {
	conn net.Conn
	dead chan struct{}
	wg   sync.WaitGroup
}

func newLink(conn net.Conn) *link {
	l := &link{conn: conn, dead: make(chan struct{})}
	l.wg.Add(1)
	go l.watch()
	return l
}

func (l *link) watch() {
	defer l.wg.Done()
	defer close(l.dead)
	var buf [512]byte
	for {
		if _, err := l.conn.Read(buf[:]); err != nil {
			return
		}
	}
}

func (l *link) broken() bool {
	select {
	case <-l.dead:
		return true
	default:
		return false
	}
}

func (l *link) close() {
	_ = l.conn.Close()
	l.wg.Wait()
}
