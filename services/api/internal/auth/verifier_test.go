package auth_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mymonit/mymonit/pkg/logging"
	"github.com/mymonit/mymonit/services/api/internal/auth"
	"github.com/mymonit/mymonit/services/api/internal/auth/authtest"
)

// testConfig is a test-mode Config for the emulator's project without cache.
func testConfig(project string) auth.Config {
	c := auth.DefaultConfig(project)
	c.Mode = auth.ModeTest
	c.CacheTTL = 0
	c.Timeout = 3 * time.Second
	return c
}

func newVerifier(t *testing.T, p auth.Params) *auth.Verifier {
	t.Helper()
	v, err := auth.NewVerifier(context.Background(), p)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v
}

// unique returns an email no other run of the suite used (the emulator may
// be shared).
func unique(t *testing.T, name string) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return name + "-" + hex.EncodeToString(b) + "@example.com"
}

// check asserts that err wraps want (nil: no error) and mentions reason.
func check(t *testing.T, err, want error, reason string) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("Verify: unexpected error %v", err)
	case want != nil && !errors.Is(err, want):
		t.Fatalf("Verify error = %v, want one wrapping %v", err, want)
	case want != nil && !strings.Contains(err.Error(), reason):
		t.Fatalf("Verify error = %q, want it to mention %q", err, reason)
	}
}

// TestWithEmulator runs the verifier against the real Firebase Auth
// Emulator, started once for all its subtests.
func TestWithEmulator(t *testing.T) {
	emu := authtest.Start(t)
	if emu.StartTime > 0 {
		t.Logf("auth emulator started on %s in %s", emu.Host, emu.StartTime.Round(10*time.Millisecond))
	}
	t.Setenv(auth.EmulatorHostEnv, emu.Host)
	project := emu.ProjectID
	v := newVerifier(t, auth.Params{Config: testConfig(project)})

	alice := emu.SignUp(t, unique(t, "alice"), "alice-secret")
	emu.SetClaims(t, alice.UID, map[string]any{"mymonit_role": "admin", "level": 3})
	aliceToken := emu.SignIn(t, alice)

	t.Run("tokens", func(t *testing.T) {
		now := time.Now()
		expired := authtest.Token(t, map[string]any{"alg": "none", "typ": "JWT"},
			authtest.Claims(project, alice.UID, now.Add(-3*time.Hour), now.Add(-2*time.Hour)), "")
		otherProject := authtest.Token(t, map[string]any{"alg": "none", "typ": "JWT"},
			authtest.Claims("demo-other", alice.UID, now, now.Add(time.Hour)), "")
		tests := []struct {
			name   string
			header string
			want   error
			reason string
		}{
			{"valid", "Bearer " + aliceToken, nil, ""},
			{"scheme case-insensitive", "bearer  " + aliceToken + " ", nil, ""},
			{"missing header", "", auth.ErrUnauthenticated, "no Authorization header"},
			{"basic", "Basic YWxpY2U6c2VjcmV0", auth.ErrUnauthenticated, "not a Bearer token"},
			{"bearer without token", "Bearer ", auth.ErrUnauthenticated, "empty Bearer token"},
			{"token without scheme", aliceToken, auth.ErrUnauthenticated, "not a Bearer token"},
			{"garbage", "Bearer not-a-jwt", auth.ErrUnauthenticated, "invalid ID token"},
			{"garbage segments", "Bearer a.b.c", auth.ErrUnauthenticated, "invalid ID token"},
			{"huge", "Bearer " + strings.Repeat("a", 20000), auth.ErrUnauthenticated, "longer than"},
			{"expired", "Bearer " + expired, auth.ErrUnauthenticated, "expired"},
			{"other project", "Bearer " + otherProject, auth.ErrUnauthenticated, "invalid ID token"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				id, err := v.Verify(context.Background(), tt.header)
				check(t, err, tt.want, tt.reason)
				if tt.want != nil {
					if strings.Contains(err.Error(), aliceToken) {
						t.Errorf("error contains the token: %v", err)
					}
					return
				}
				want := auth.Identity{
					UID:    alice.UID,
					Email:  logging.Email(alice.Email),
					Claims: map[string]any{"mymonit_role": "admin", "level": float64(3)},
				}
				if diff := cmp.Diff(want, id, cmpopts.IgnoreFields(auth.Identity{}, "ExpiresAt")); diff != "" {
					t.Errorf("Identity (-want +got):\n%s", diff)
				}
				if d := time.Until(id.ExpiresAt); d < 50*time.Minute || d > 61*time.Minute {
					t.Errorf("ExpiresAt %s is not about an hour ahead", id.ExpiresAt)
				}
			})
		}
	})

	t.Run("token of another project", func(t *testing.T) {
		other := newVerifier(t, auth.Params{Config: testConfig("demo-other")})
		_, err := other.Verify(context.Background(), "Bearer "+aliceToken)
		check(t, err, auth.ErrUnauthenticated, `invalid 'aud'`)
	})

	t.Run("unsigned token accepted in emulator mode", func(t *testing.T) {
		// Why production refuses the emulator: a hand-made token for any
		// existing uid passes.
		now := time.Now()
		forged := authtest.Token(t, map[string]any{"alg": "none", "typ": "JWT"},
			authtest.Claims(project, alice.UID, now, now.Add(time.Hour)), "")
		id, err := v.Verify(context.Background(), "Bearer "+forged)
		check(t, err, nil, "")
		if id.UID != alice.UID {
			t.Errorf("UID = %q, want %q", id.UID, alice.UID)
		}
	})

	t.Run("disabled user", func(t *testing.T) {
		bob := emu.SignUp(t, unique(t, "bob"), "bob-secret")
		check(t, verifyErr(v, bob.IDToken), nil, "")
		emu.Disable(t, bob.UID)
		check(t, verifyErr(v, bob.IDToken), auth.ErrUnauthenticated, "disabled")
	})

	t.Run("deleted user", func(t *testing.T) {
		dan := emu.SignUp(t, unique(t, "dan"), "dan-secret")
		emu.Delete(t, dan.UID)
		check(t, verifyErr(v, dan.IDToken), auth.ErrUnauthenticated, "no longer exists")
	})

	t.Run("revoked", func(t *testing.T) {
		clock := &fakeClock{now: time.Now()}
		cfg := testConfig(project)
		cfg.CacheTTL = 30 * time.Second
		cached := newVerifier(t, auth.Params{Config: cfg, Now: clock.Now})

		carol := emu.SignUp(t, unique(t, "carol"), "carol-secret")
		check(t, verifyErr(cached, carol.IDToken), nil, "")
		emu.Revoke(t, carol.UID)

		// Without cache: refused at once.
		check(t, verifyErr(v, carol.IDToken), auth.ErrUnauthenticated, "revoked")
		// With cache: the documented trade-off, accepted until the TTL ends...
		check(t, verifyErr(cached, carol.IDToken), nil, "")
		clock.Add(cfg.CacheTTL)
		// ...then checked again and refused.
		check(t, verifyErr(cached, carol.IDToken), auth.ErrUnauthenticated, "revoked")
		// A token issued after the revocation is good.
		check(t, verifyErr(v, emu.SignIn(t, carol)), nil, "")
	})

	t.Run("emulator unreachable", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := l.Addr().String()
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		t.Setenv(auth.EmulatorHostEnv, closed)
		cfg := testConfig(project)
		cfg.Timeout = time.Second
		down := newVerifier(t, auth.Params{Config: cfg})
		began := time.Now()
		check(t, verifyErr(down, aliceToken), auth.ErrUnavailable, "")
		if took := time.Since(began); took > 3*time.Second {
			t.Errorf("Verify took %s with a 1s timeout", took)
		}
	})

	t.Run("emulator failing", func(t *testing.T) {
		for _, status := range []int{http.StatusInternalServerError, http.StatusServiceUnavailable} {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(status)
				_, _ = fmt.Fprintf(w, `{"error":{"code":%d,"message":"INTERNAL"}}`, status)
			}))
			t.Setenv(auth.EmulatorHostEnv, strings.TrimPrefix(srv.URL, "http://"))
			cfg := testConfig(project)
			cfg.Timeout = time.Second
			failing := newVerifier(t, auth.Params{Config: cfg})
			err := verifyErr(failing, aliceToken)
			srv.Close()
			check(t, err, auth.ErrUnavailable, "")
		}
	})
}

func verifyErr(v *auth.Verifier, token string) error {
	_, err := v.Verify(context.Background(), "Bearer "+token)
	return err
}

func TestNewVerifierEmulatorGuard(t *testing.T) {
	tests := []struct {
		mode    string
		host    string
		wantErr bool
	}{
		{auth.ModeProduction, "127.0.0.1:9099", true},
		{auth.ModeDev, "127.0.0.1:9099", false},
		{auth.ModeTest, "127.0.0.1:9099", false},
		{auth.ModeDev, "", false},
	}
	creds := authtest.FakeServiceAccount(t)
	for _, tt := range tests {
		t.Run(tt.mode+" "+tt.host, func(t *testing.T) {
			t.Setenv(auth.EmulatorHostEnv, tt.host)
			cfg := auth.DefaultConfig(authtest.ProjectID)
			cfg.Mode = tt.mode
			cfg.CredentialsFile = creds
			_, err := auth.NewVerifier(context.Background(), auth.Params{Config: cfg})
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("NewVerifier: %v", err)
				}
				return
			}
			if !errors.Is(err, auth.ErrEmulatorInProduction) {
				t.Fatalf("NewVerifier error = %v, want ErrEmulatorInProduction", err)
			}
			for _, s := range []string{auth.EmulatorHostEnv, "MYMONIT_MODE=dev", "unsigned"} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*auth.Config)
		want string
	}{
		{"defaults", func(*auth.Config) {}, ""},
		{"no project", func(c *auth.Config) { c.ProjectID = "" }, "MYMONIT_FIREBASE_PROJECT_ID"},
		{"bad mode", func(c *auth.Config) { c.Mode = "prod" }, "MYMONIT_MODE"},
		{"negative ttl", func(c *auth.Config) { c.CacheTTL = -time.Second }, "MYMONIT_AUTH_CACHE_TTL"},
		{"negative size", func(c *auth.Config) { c.CacheSize = -1 }, "MYMONIT_AUTH_CACHE_SIZE"},
		{"no timeout", func(c *auth.Config) { c.Timeout = 0 }, "MYMONIT_AUTH_TIMEOUT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := auth.DefaultConfig("demo-mymonit")
			tt.edit(&c)
			err := c.Validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Errorf("Validate() = %q, want mention of %q", got, tt.want)
			}
		})
	}
}

// TestProductionOffline checks what production mode does with forged tokens
// when Google cannot be reached (as on this CI machine): tokens failing the
// local checks are 401 without any network; a well-formed RS256 token whose
// signature needs Google's keys is 503 offline (401 when online).
func TestProductionOffline(t *testing.T) {
	t.Setenv(auth.EmulatorHostEnv, "")
	cfg := auth.DefaultConfig(authtest.ProjectID)
	cfg.CredentialsFile = authtest.FakeServiceAccount(t)
	cfg.Timeout = 3 * time.Second
	v := newVerifier(t, auth.Params{Config: cfg})

	// The RS256 signature is checked against Google's public keys: offline,
	// that is an outage (503, never 401); online, a bad signature (401).
	signatureCheck := auth.ErrUnavailable
	if c, err := net.DialTimeout("tcp", "www.googleapis.com:443", 2*time.Second); err == nil {
		_ = c.Close()
		signatureCheck = auth.ErrUnauthenticated
	}
	now := time.Now()
	good := authtest.Claims(authtest.ProjectID, "forged-uid", now, now.Add(time.Hour))
	expired := authtest.Claims(authtest.ProjectID, "forged-uid", now.Add(-3*time.Hour), now.Add(-2*time.Hour))
	rs256 := map[string]any{"alg": "RS256", "kid": "0123456789abcdef", "typ": "JWT"}
	tests := []struct {
		name   string
		token  string
		want   []error // any of them
		reason string
	}{
		{"alg none", authtest.Token(t, map[string]any{"alg": "none", "typ": "JWT"}, good, ""),
			[]error{auth.ErrUnauthenticated}, "kid"},
		{"HS256 with kid", authtest.Token(t, map[string]any{"alg": "HS256", "kid": "x", "typ": "JWT"}, good, "sig"),
			[]error{auth.ErrUnauthenticated}, "algorithm"},
		{"RS256 expired", authtest.Token(t, rs256, expired, "not-a-signature"),
			[]error{auth.ErrUnauthenticated}, "expired"},
		{"RS256 wrong signature", authtest.Token(t, rs256, good, "not-a-signature"),
			[]error{signatureCheck}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), "Bearer "+tt.token)
			if err == nil {
				t.Fatal("forged token accepted")
			}
			matched := false
			for _, w := range tt.want {
				matched = matched || errors.Is(err, w)
			}
			if !matched || !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("Verify error = %v, want one of %v mentioning %q", err, tt.want, tt.reason)
			}
			t.Logf("%s: %v", tt.name, err)
		})
	}
}

// fakeClock is a settable clock for the cache.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
