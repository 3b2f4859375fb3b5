package auth_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	fbauth "firebase.google.com/go/v4/auth"
	"github.com/google/go-cmp/cmp"

	"github.com/mymonit/mymonit/services/api/internal/auth"
)

// counting is a fake SDK client: it accepts tokens "uid:<uid>" expiring at
// exp, refuses others with failWith, and counts its calls.
type counting struct {
	calls    atomic.Int64
	exp      time.Time
	failWith error
}

func (c *counting) check(_ context.Context, token string) (*fbauth.Token, error) {
	c.calls.Add(1)
	if c.failWith != nil {
		return nil, c.failWith
	}
	return &fbauth.Token{
		UID:     token[len("uid:"):],
		Expires: c.exp.Unix(),
		Claims:  map[string]any{"email": "x@example.com", "role": "admin", "iat": 1.0},
	}, nil
}

func TestCache(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	type step struct {
		advance   time.Duration
		token     string
		wantCalls int64 // total provider calls after this step
	}
	tests := []struct {
		name  string
		ttl   time.Duration
		size  int
		exp   time.Duration // token expiry after start
		steps []step
	}{
		{"hit within ttl", 30 * time.Second, 10, time.Hour, []step{
			{0, "uid:a", 1}, {10 * time.Second, "uid:a", 1}, {19 * time.Second, "uid:a", 1},
			{time.Second, "uid:a", 2}, // now == start+30s: TTL over, checked again
			{time.Second, "uid:a", 2},
		}},
		{"never beyond expiry", 30 * time.Second, 10, 10 * time.Second, []step{
			{0, "uid:a", 1}, {9 * time.Second, "uid:a", 1}, {time.Second, "uid:a", 2},
		}},
		{"ttl 0 disables", 0, 10, time.Hour, []step{
			{0, "uid:a", 1}, {0, "uid:a", 2}, {0, "uid:a", 3},
		}},
		{"size 0 disables", time.Minute, 0, time.Hour, []step{
			{0, "uid:a", 1}, {0, "uid:a", 2},
		}},
		{"bounded, oldest evicted", time.Minute, 2, time.Hour, []step{
			{0, "uid:a", 1}, {0, "uid:b", 2}, {0, "uid:c", 3},
			{0, "uid:c", 3}, {0, "uid:b", 3}, {0, "uid:a", 4},
		}},
		{"keys differ per token", time.Minute, 10, time.Hour, []step{
			{0, "uid:a", 1}, {0, "uid:b", 2}, {0, "uid:a", 2}, {0, "uid:b", 2},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{now: start}
			fake := &counting{exp: start.Add(tt.exp)}
			cfg := auth.DefaultConfig("demo-mymonit")
			cfg.CacheTTL, cfg.CacheSize = tt.ttl, tt.size
			v := auth.NewVerifierWith(fake.check, auth.Params{Config: cfg, Now: clock.Now})
			for i, s := range tt.steps {
				clock.Add(s.advance)
				id, err := v.Verify(context.Background(), "Bearer "+s.token)
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if id.UID != s.token[len("uid:"):] {
					t.Fatalf("step %d: UID %q for token %q", i, id.UID, s.token)
				}
				if got := fake.calls.Load(); got != s.wantCalls {
					t.Fatalf("step %d: %d provider calls, want %d", i, got, s.wantCalls)
				}
			}
			if tt.size > 0 && v.CacheLen() > tt.size {
				t.Errorf("cache holds %d entries, bound %d", v.CacheLen(), tt.size)
			}
		})
	}
}

func TestCacheReturnsCopies(t *testing.T) {
	fake := &counting{exp: time.Now().Add(time.Hour)}
	v := auth.NewVerifierWith(fake.check, auth.Params{Config: auth.DefaultConfig("demo-mymonit")})
	first, err := v.Verify(context.Background(), "Bearer uid:a")
	if err != nil {
		t.Fatal(err)
	}
	first.Claims["role"] = "tampered"
	second, err := v.Verify(context.Background(), "Bearer uid:a")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]any{"role": "admin"}, second.Claims); diff != "" {
		t.Errorf("cached Claims changed (-want +got):\n%s", diff)
	}
	if fake.calls.Load() != 1 {
		t.Errorf("%d provider calls, want 1", fake.calls.Load())
	}
}

func TestFailuresNotCachedAndUnavailable(t *testing.T) {
	tests := []struct {
		name string
		err  error
	}{
		{"network", errors.New("dial tcp 127.0.0.1:9: connect: connection refused")},
		{"deadline", context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := &counting{exp: time.Now().Add(time.Hour), failWith: tt.err}
			v := auth.NewVerifierWith(fake.check, auth.Params{Config: auth.DefaultConfig("demo-mymonit")})
			for range 2 {
				_, err := v.Verify(context.Background(), "Bearer uid:a")
				if !errors.Is(err, auth.ErrUnavailable) || !errors.Is(err, tt.err) {
					t.Fatalf("Verify error = %v, want ErrUnavailable wrapping %v", err, tt.err)
				}
			}
			if fake.calls.Load() != 2 {
				t.Errorf("%d provider calls, want 2 (failures are not cached)", fake.calls.Load())
			}
			fake.failWith = nil
			if _, err := v.Verify(context.Background(), "Bearer uid:a"); err != nil {
				t.Fatalf("after recovery: %v", err)
			}
		})
	}
}
