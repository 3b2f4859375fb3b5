package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/mymonit/mymonit/pkg/health"
	"github.com/mymonit/mymonit/pkg/logging"
	"github.com/mymonit/mymonit/pkg/storage"
	"github.com/mymonit/mymonit/services/api/internal/auth"
	"github.com/mymonit/mymonit/services/api/internal/auth/authtest"
	"github.com/mymonit/mymonit/services/api/internal/httpapi"
)

// api is the API under test: the real instance (auth.Verifier against the
// Auth Emulator) and the bypassed one (a verifier that accepts the
// scientist whatever the token), both over the world's store, and an HTTP
// client with keep-alive.
type api struct {
	real, bypassed *httpapi.Server
	client         *http.Client
	token          string // the scientist's ID token
	emulatorHost   string
	emulatorStart  time.Duration
}

// bypassVerifier accepts any request as the scientist: the API without
// authentication, for the baseline of the concurrent read.
type bypassVerifier struct{ id auth.Identity }

// Verify implements httpapi.Verifier.
func (v bypassVerifier) Verify(context.Context, string) (auth.Identity, error) { return v.id, nil }

// startAPI finds or starts the Auth Emulator, signs up the scientist,
// creates its MyMONIT user and membership, and starts both instances. The
// returned stop function stops them, removes the user (a -keep database
// outlives the run) and stops an emulator it started; it must be called
// even when startAPI fails.
func startAPI(ctx context.Context, w *world, clients int, say func(string, ...any)) (_ *api, stop func() error, err error) {
	var stops []func() error
	stop = func() error {
		var errs []error
		for i := len(stops) - 1; i >= 0; i-- {
			errs = append(errs, stops[i]())
		}
		return errors.Join(errs...)
	}
	emu, stopEmu, err := authtest.Run(ctx)
	stops = append(stops, stopEmu)
	if err != nil {
		return nil, stop, err
	}
	if emu.StartTime > 0 {
		say("auth emulator started on %s in %.1f s", emu.Host, emu.StartTime.Seconds())
	} else {
		say("auth emulator on %s", emu.Host)
	}
	// The Admin SDK reads the emulator's address from the environment.
	if os.Getenv(auth.EmulatorHostEnv) != emu.Host {
		prev, had := os.LookupEnv(auth.EmulatorHostEnv)
		if err := os.Setenv(auth.EmulatorHostEnv, emu.Host); err != nil {
			return nil, stop, fmt.Errorf("set %s: %w", auth.EmulatorHostEnv, err)
		}
		stops = append(stops, func() error {
			if had {
				return os.Setenv(auth.EmulatorHostEnv, prev)
			}
			return os.Unsetenv(auth.EmulatorHostEnv)
		})
	}

	email := fmt.Sprintf("apibench.%d@example.org", time.Now().UnixNano())
	fb, err := emu.SignUpContext(ctx, email, "apibench-password")
	if err != nil {
		return nil, stop, err
	}
	user, err := w.store.CreateUser(ctx, storage.User{FirebaseUID: fb.UID, Name: "API benchmark", Email: email, Role: storage.RoleScientist})
	if err != nil {
		return nil, stop, fmt.Errorf("create the scientist: %w", err)
	}
	stops = append(stops, func() error {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if _, err := w.db.ExecContext(cctx, "DELETE FROM users WHERE id = ?", user.ID); err != nil {
			return fmt.Errorf("remove the scientist: %w", err)
		}
		return nil
	})
	if err := w.store.AddMembership(ctx, w.experiment.ID, user.ID); err != nil {
		return nil, stop, fmt.Errorf("make the scientist a member: %w", err)
	}

	cfg := auth.DefaultConfig(emu.ProjectID)
	cfg.Mode = auth.ModeTest
	verifier, err := auth.NewVerifier(ctx, auth.Params{Config: cfg})
	if err != nil {
		return nil, stop, err
	}
	// The production logger (ECS JSON, redaction) with its output thrown
	// away: every request pays for its access and audit lines.
	logs, err := logging.New(logging.Options{Service: "api", Version: "apibench", Stdout: io.Discard})
	if err != nil {
		return nil, stop, err
	}
	stops = append(stops, func() error {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		return logs.Close(cctx)
	})
	log := logs.Logger()
	a := &api{token: fb.IDToken, emulatorHost: emu.Host, emulatorStart: emu.StartTime}
	ops := health.New(health.Options{Logger: log})
	start := func(v httpapi.Verifier) (*httpapi.Server, error) {
		s, err := httpapi.New(httpapi.Params{Store: w.store, Verifier: v, Logger: log.Named("api"), Fallback: ops.Handler(), Addr: "127.0.0.1:0"})
		if err != nil {
			return nil, err
		}
		if err := s.Start(); err != nil {
			return nil, err
		}
		stops = append(stops, func() error {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			return s.Stop(cctx)
		})
		return s, nil
	}
	if a.real, err = start(verifier); err != nil {
		return nil, stop, err
	}
	if a.bypassed, err = start(bypassVerifier{id: auth.Identity{UID: fb.UID, ExpiresAt: time.Now().Add(time.Hour)}}); err != nil {
		return nil, stop, err
	}
	tr := &http.Transport{
		MaxIdleConns:        2 * clients,
		MaxIdleConnsPerHost: 2 * clients,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	a.client = &http.Client{Transport: tr}
	stops = append(stops, func() error { tr.CloseIdleConnections(); return nil })

	// The scientist reaches the API: its token verifies and maps to the
	// member.
	var me struct {
		User struct {
			ID   int64  `json:"id"`
			Role string `json:"role"`
		} `json:"user"`
	}
	if err := a.getJSON(ctx, a.real, "/v1/me", &me); err != nil {
		return nil, stop, err
	}
	if me.User.ID != user.ID || me.User.Role != string(storage.RoleScientist) {
		return nil, stop, fmt.Errorf("GET /v1/me = user %d role %q, want the scientist %d", me.User.ID, me.User.Role, user.ID)
	}
	return a, stop, nil
}

// request builds a GET of path (with query) on s with the scientist's
// token.
func (a *api) request(ctx context.Context, s *httpapi.Server, path string, query url.Values, accept string) (*http.Request, error) {
	u := "http://" + s.Addr() + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	return req, nil
}

// getJSON GETs path on s and decodes the 200 answer into out.
func (a *api) getJSON(ctx context.Context, s *httpapi.Server, path string, out any) error {
	req, err := a.request(ctx, s, path, nil, "application/json")
	if err != nil {
		return err
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return nil
}

// measuresPath is the measures route of the benchmark experiment.
func measuresPath() string { return "/v1/experiments/" + experimentSlug + "/measures" }
