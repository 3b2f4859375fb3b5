package queue

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/cenkalti/backoff/v4"
	amqp "github.com/rabbitmq/amqp091-go"
)

// dialTimeout bounds the TCP connect and the AMQP handshake of one attempt.
const dialTimeout = 10 * time.Second

// heartbeat is the AMQP heartbeat interval: a silent peer is declared dead
// after about two of them.
const heartbeat = 10 * time.Second

// Backoff bounds the randomized exponential delay between reconnect (and
// re-publish) attempts. Zero fields take the defaults: 100ms and 30s.
type Backoff struct {
	// Initial is the first delay.
	Initial time.Duration
	// Max caps the delay.
	Max time.Duration
}

func (b Backoff) withDefaults() Backoff {
	if b.Initial <= 0 {
		b.Initial = 100 * time.Millisecond
	}
	if b.Max <= 0 {
		b.Max = 30 * time.Second
	}
	if b.Max < b.Initial {
		b.Max = b.Initial
	}
	return b
}

// policy returns a fresh, never-stopping exponential back-off.
func (b Backoff) policy() *backoff.ExponentialBackOff {
	b = b.withDefaults()
	return backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(b.Initial),
		backoff.WithMaxInterval(b.Max),
		backoff.WithMaxElapsedTime(0),
		backoff.WithMultiplier(2),
		backoff.WithRandomizationFactor(0.3),
	)
}

// sleep waits d or until ctx is done, reporting whether the full delay passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// errBadURL marks a URL that no retry can fix.
var errBadURL = errors.New("queue: invalid AMQP URL")

// checkURL reports a malformed URL without quoting it (it holds credentials).
func checkURL(url string) error {
	if _, err := amqp.ParseURI(url); err != nil {
		return fmt.Errorf("%w (must be amqp://user:pass@host:port/vhost or amqps://...)", errBadURL)
	}
	return nil
}

// dial opens a connection named name. The TCP connect honours ctx; ctx and
// dialTimeout both bound the handshake.
func dial(ctx context.Context, url, name string) (*amqp.Connection, error) {
	if err := checkURL(url); err != nil {
		return nil, err
	}
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName(name)
	conn, err := amqp.DialConfig(url, amqp.Config{
		Properties: props,
		Heartbeat:  heartbeat,
		Locale:     "en_US",
		Dial: func(network, addr string) (net.Conn, error) {
			d := net.Dialer{Timeout: dialTimeout}
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			deadline := time.Now().Add(dialTimeout)
			if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
				deadline = dl
			}
			// The library clears the deadline once the handshake completed.
			if err := c.SetDeadline(deadline); err != nil {
				_ = c.Close()
				return nil, err
			}
			return c, nil
		},
	})
	if err != nil {
		return nil, fmt.Errorf("queue: connect to %s: %w", redactURL(url), err)
	}
	return conn, nil
}

// redactURL hides the credentials of an AMQP URL.
func redactURL(url string) string {
	u, err := amqp.ParseURI(url)
	if err != nil {
		return "<invalid URL>"
	}
	vhost := u.Vhost
	if vhost == "/" {
		vhost = ""
	}
	return fmt.Sprintf("%s://%s:%d/%s", u.Scheme, u.Host, u.Port, vhost)
}

// isNotFound reports a 404 NOT_FOUND channel error (missing exchange/queue).
func isNotFound(err error) bool {
	var ae *amqp.Error
	return errors.As(err, &ae) && ae.Code == amqp.NotFound
}
