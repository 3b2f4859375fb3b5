package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	fbauth "firebase.google.com/go/v4/auth"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/mymonit/mymonit/pkg/health"
	"github.com/mymonit/mymonit/pkg/storage"
	"github.com/mymonit/mymonit/services/api/internal/auth"
	"github.com/mymonit/mymonit/services/api/internal/auth/authtest"
	"github.com/mymonit/mymonit/services/api/internal/httpapi"
	"github.com/mymonit/mymonit/services/api/internal/live"
)

type apiUser struct {
	ID     int64  `json:"id"`
	Role   string `json:"role"`
	Erased bool   `json:"erased"`
	Name   string `json:"name"`
	Email  string `json:"email"`
}

type apiExperiment struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
}

func slugs(t *testing.T, r response) []string {
	t.Helper()
	var l struct{ Experiments []apiExperiment }
	r.decode(t, &l)
	out := []string{}
	for _, e := range l.Experiments {
		out = append(out, e.ID)
	}
	return out
}

func wantStatus(t *testing.T, what string, r response, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("%s: status %d, want %d: %s", what, r.status, want, r.body)
	}
}

func TestFullFlow(t *testing.T) {
	e := newEnv(t)
	admin := e.signUp(storage.RoleAdmin)
	sciFB := e.signUp("") // a Firebase account without a MyMONIT user yet
	e.secret("Marie Curie", "marie@example.org")

	wantStatus(t, "me before registration", e.do("GET", "/v1/me", sciFB.token, nil), http.StatusForbidden)

	r := e.do("POST", "/v1/users", admin.token, map[string]any{
		"name": "Marie Curie", "email": "marie@example.org", "firebase_uid": sciFB.fb.UID, "role": "scientist",
	})
	wantStatus(t, "create user", r, http.StatusCreated)
	var sci apiUser
	r.decode(t, &sci)
	if got := r.header.Get("Location"); got != fmt.Sprintf("/v1/users/%d", sci.ID) {
		t.Errorf("Location = %q", got)
	}
	wantStatus(t, "duplicate user", e.do("POST", "/v1/users", admin.token, map[string]any{
		"firebase_uid": sciFB.fb.UID, "role": "scientist"}), http.StatusConflict)

	r = e.do("POST", "/v1/experiments", admin.token, map[string]any{"id": "radium-1898", "name": "Radium", "description": "pitchblende"})
	wantStatus(t, "create experiment", r, http.StatusCreated)
	wantStatus(t, "create other experiment", e.do("POST", "/v1/experiments", admin.token, map[string]any{"id": "polonium"}), http.StatusCreated)
	wantStatus(t, "duplicate experiment", e.do("POST", "/v1/experiments", admin.token, map[string]any{"id": "polonium"}), http.StatusConflict)

	wantStatus(t, "scientist before membership", e.do("GET", "/v1/experiments/radium-1898", sciFB.token, nil), http.StatusNotFound)
	path := fmt.Sprintf("/v1/experiments/radium-1898/members/%d", sci.ID)
	wantStatus(t, "add member", e.do("PUT", path, admin.token, nil), http.StatusNoContent)
	wantStatus(t, "add member again", e.do("PUT", path, admin.token, nil), http.StatusNoContent)

	r = e.do("GET", "/v1/me", sciFB.token, nil)
	wantStatus(t, "me", r, http.StatusOK)
	var me struct{ User apiUser }
	r.decode(t, &me)
	if diff := cmp.Diff(apiUser{ID: sci.ID, Role: "scientist", Name: "Marie Curie", Email: "marie@example.org"}, me.User); diff != "" {
		t.Errorf("me (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"radium-1898"}, slugs(t, e.do("GET", "/v1/experiments", sciFB.token, nil))); diff != "" {
		t.Errorf("scientist's experiments (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"polonium", "radium-1898"}, slugs(t, e.do("GET", "/v1/experiments", admin.token, nil))); diff != "" {
		t.Errorf("admin's experiments (-want +got):\n%s", diff)
	}
	r = e.do("GET", "/v1/experiments/radium-1898", sciFB.token, nil)
	wantStatus(t, "get own", r, http.StatusOK)
	var got apiExperiment
	r.decode(t, &got)
	if diff := cmp.Diff(apiExperiment{ID: "radium-1898", Name: "Radium", Description: "pitchblende"}, got); diff != "" {
		t.Errorf("experiment (-want +got):\n%s", diff)
	}
	wantStatus(t, "get foreign", e.do("GET", "/v1/experiments/polonium", sciFB.token, nil), http.StatusNotFound)

	r = e.do("GET", "/v1/experiments/radium-1898/members", admin.token, nil)
	wantStatus(t, "members", r, http.StatusOK)
	var members struct{ Members []apiUser }
	r.decode(t, &members)
	if len(members.Members) != 1 || members.Members[0].ID != sci.ID {
		t.Errorf("members = %+v", members)
	}
	if diff := cmp.Diff([]string{"radium-1898"}, slugs(t, e.do("GET", fmt.Sprintf("/v1/users/%d/experiments", sci.ID), admin.token, nil))); diff != "" {
		t.Errorf("user's experiments (-want +got):\n%s", diff)
	}

	r = e.do("PATCH", "/v1/experiments/radium-1898", admin.token, map[string]any{"description": "Ra"})
	wantStatus(t, "patch experiment", r, http.StatusOK)

	wantStatus(t, "remove member", e.do("DELETE", path, admin.token, nil), http.StatusNoContent)
	wantStatus(t, "remove member again", e.do("DELETE", path, admin.token, nil), http.StatusNoContent)
	wantStatus(t, "get after removal (revoked: 403)", e.do("GET", "/v1/experiments/radium-1898", sciFB.token, nil), http.StatusForbidden)
	if diff := cmp.Diff([]string{}, slugs(t, e.do("GET", "/v1/experiments", sciFB.token, nil))); diff != "" {
		t.Errorf("experiments after removal (-want +got):\n%s", diff)
	}

	r = e.do("PATCH", fmt.Sprintf("/v1/users/%d", sci.ID), admin.token, map[string]any{"role": "auditor"})
	wantStatus(t, "promote to auditor", r, http.StatusOK)
	wantStatus(t, "auditor reads all", e.do("GET", "/v1/experiments/polonium", sciFB.token, nil), http.StatusOK)

	wantStatus(t, "demote self", e.do("PATCH", fmt.Sprintf("/v1/users/%d", admin.user.ID), admin.token, map[string]any{"role": "auditor"}), http.StatusConflict)
	wantStatus(t, "erase self", e.do("DELETE", fmt.Sprintf("/v1/users/%d", admin.user.ID), admin.token, nil), http.StatusConflict)
	wantStatus(t, "erase", e.do("DELETE", fmt.Sprintf("/v1/users/%d", sci.ID), admin.token, nil), http.StatusNoContent)
	wantStatus(t, "erase again", e.do("DELETE", fmt.Sprintf("/v1/users/%d", sci.ID), admin.token, nil), http.StatusNoContent)
	wantStatus(t, "erased user's token", e.do("GET", "/v1/me", sciFB.token, nil), http.StatusForbidden)
	r = e.do("GET", fmt.Sprintf("/v1/users/%d", sci.ID), admin.token, nil)
	wantStatus(t, "erased record", r, http.StatusOK)
	var erased apiUser
	r.decode(t, &erased)
	if diff := cmp.Diff(apiUser{ID: sci.ID, Role: "auditor", Erased: true}, erased); diff != "" {
		t.Errorf("erased user (-want +got):\n%s", diff)
	}
	wantStatus(t, "patch erased", e.do("PATCH", fmt.Sprintf("/v1/users/%d", sci.ID), admin.token, map[string]any{"name": "x"}), http.StatusConflict)
	wantStatus(t, "member erased", e.do("PUT", path, admin.token, nil), http.StatusNotFound)

	wantStatus(t, "delete experiment", e.do("DELETE", "/v1/experiments/polonium", admin.token, nil), http.StatusNoContent)
	wantStatus(t, "deleted experiment", e.do("GET", "/v1/experiments/polonium", admin.token, nil), http.StatusNotFound)

	logs := e.logs.String()
	var audit map[string]any
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, `"event.action":"membership.add"`) {
			if err := json.Unmarshal([]byte(line), &audit); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	want := map[string]any{
		"event.kind": "event", "event.category": "audit", "event.action": "membership.add", "event.outcome": "success",
		"user.id": fmt.Sprint(admin.user.ID), "mymonit.target.user_id": fmt.Sprint(sci.ID), "mymonit.experiment": "radium-1898",
	}
	for k, v := range want {
		if audit[k] != v {
			t.Errorf("audit event %s = %v, want %v", k, audit[k], v)
		}
	}
	if id, _ := audit["http.request.id"].(string); id == "" {
		t.Errorf("audit event without http.request.id: %v", audit)
	}
	for _, action := range []string{"user.create", "experiment.create", "membership.add", "membership.remove", "user.update", "user.erase", "experiment.delete", "experiment.update"} {
		if !strings.Contains(logs, `"event.action":"`+action+`"`) {
			t.Errorf("no audit event %s", action)
		}
	}
}

func TestListUsersPagination(t *testing.T) {
	e := newEnv(t)
	admin := e.signUp(storage.RoleAdmin)
	for range 5 {
		e.signUp(storage.RoleScientist)
	}
	e.signUp(storage.RoleAuditor)
	var ids []int64
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("too many pages")
		}
		r := e.do("GET", "/v1/users?role=scientist&limit=2"+cursor, admin.token, nil)
		wantStatus(t, "list", r, http.StatusOK)
		var l struct {
			Users      []apiUser
			NextCursor string `json:"next_cursor"`
		}
		r.decode(t, &l)
		for _, u := range l.Users {
			if u.Role != "scientist" {
				t.Errorf("role filter let %s through", u.Role)
			}
			ids = append(ids, u.ID)
		}
		if l.NextCursor == "" {
			break
		}
		cursor = "&cursor=" + l.NextCursor
	}
	if len(ids) != 5 || !slices.IsSorted(ids) {
		t.Errorf("ids = %v, want 5 sorted", ids)
	}
}

func TestTokens(t *testing.T) {
	e := newEnv(t)
	admin := e.signUp(storage.RoleAdmin)
	tests := []struct {
		name   string
		header string
		want   int
	}{
		{"none", "", http.StatusUnauthorized},
		{"garbage", "Bearer not-a-token", http.StatusUnauthorized},
		{"basic", "Basic dXNlcjpwYXNz", http.StatusUnauthorized},
		{"empty bearer", "Bearer ", http.StatusUnauthorized},
		{"wrong project", "Bearer " + authtest.Token(t, map[string]any{"alg": "none", "typ": "JWT"},
			authtest.Claims("other-project", admin.fb.UID, nowish(), nowish().Add(3600e9)), ""), http.StatusUnauthorized},
		{"expired", "Bearer " + authtest.Token(t, map[string]any{"alg": "none", "typ": "JWT"},
			authtest.Claims(authtest.ProjectID, admin.fb.UID, nowish().Add(-7200e9), nowish().Add(-3600e9)), ""), http.StatusUnauthorized},
		{"valid", "Bearer " + admin.token, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", e.srv.URL+"/v1/me", nil)
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.want)
			}
			if tt.want == http.StatusUnauthorized {
				if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
					t.Errorf("Content-Type %q", ct)
				}
				if resp.Header.Get("WWW-Authenticate") == "" {
					t.Error("no WWW-Authenticate")
				}
			}
		})
	}
	// A disabled Firebase account is 401.
	other := e.signUp(storage.RoleScientist)
	e.emu.Disable(t, other.fb.UID)
	wantStatus(t, "disabled account", e.do("GET", "/v1/me", other.token, nil), http.StatusUnauthorized)
	// So is a revoked token (never used before, so not cached).
	revoked := e.signUp(storage.RoleScientist)
	e.emu.Revoke(t, revoked.fb.UID)
	wantStatus(t, "revoked token", e.do("GET", "/v1/me", revoked.token, nil), http.StatusUnauthorized)
}

// In production mode, over HTTP: an unsigned token is 401 without any
// network, and a token whose signature needs Google's public keys is 503
// with Retry-After when they cannot be fetched (never 401), 401 when they
// can.
func TestTokensInProduction(t *testing.T) {
	e := newEnv(t, func(p *httpapi.Params) {
		t.Setenv(auth.EmulatorHostEnv, "")
		cfg := auth.DefaultConfig(authtest.ProjectID)
		cfg.CredentialsFile = authtest.FakeServiceAccount(t)
		cfg.Timeout = 3 * time.Second
		v, err := auth.NewVerifier(context.Background(), auth.Params{Config: cfg})
		if err != nil {
			t.Fatal(err)
		}
		p.Verifier = v
	})
	now := time.Now()
	claims := authtest.Claims(authtest.ProjectID, "forged-uid", now, now.Add(time.Hour))
	unsigned := e.do("GET", "/v1/me", authtest.Token(t, map[string]any{"alg": "none", "typ": "JWT"}, claims, ""), nil)
	wantStatus(t, "unsigned token", unsigned, http.StatusUnauthorized)

	want := http.StatusServiceUnavailable
	if c, err := net.DialTimeout("tcp", "www.googleapis.com:443", 2*time.Second); err == nil {
		_ = c.Close()
		want = http.StatusUnauthorized
	}
	forged := e.do("GET", "/v1/me", authtest.Token(t, map[string]any{"alg": "RS256", "kid": "0123456789abcdef", "typ": "JWT"}, claims, "not-a-signature"), nil)
	wantStatus(t, "RS256 token, keys out of reach", forged, want)
	if want == http.StatusServiceUnavailable {
		if p := forged.problem(t); p.Type != httpapi.ProblemBase+httpapi.TypeUnavailable || forged.header.Get("Retry-After") == "" {
			t.Errorf("problem %+v, Retry-After %q: want the unavailable type and a Retry-After", p, forged.header.Get("Retry-After"))
		}
	}
}

func TestValidation(t *testing.T) {
	e := newEnv(t)
	admin := e.signUp(storage.RoleAdmin)
	wantStatus(t, "experiment", e.do("POST", "/v1/experiments", admin.token, map[string]any{"id": "exp"}), http.StatusCreated)
	big := `{"name":"` + strings.Repeat("a", 1<<20) + `"}`
	tests := []struct {
		name, method, path, body string
		status                   int
		param                    string // an invalid_params name, or the problem type suffix
	}{
		{"unknown field", "POST", "/v1/users", `{"firebase_uid":"x","role":"admin","nope":1}`, 400, "body.nope"},
		{"wrong type", "POST", "/v1/users", `{"firebase_uid":1,"role":"admin"}`, 400, "body.firebase_uid"},
		{"bad role", "POST", "/v1/users", `{"firebase_uid":"x","role":"root"}`, 400, "body.role"},
		{"missing uid", "POST", "/v1/users", `{"role":"admin"}`, 400, "body.firebase_uid"},
		{"bad email", "POST", "/v1/users", `{"firebase_uid":"x","role":"admin","email":"not an email"}`, 400, "body.email"},
		{"long name", "POST", "/v1/users", `{"firebase_uid":"x","role":"admin","name":"` + strings.Repeat("n", 201) + `"}`, 400, "body.name"},
		{"not json", "POST", "/v1/users", `{"firebase_uid":`, 400, "body"},
		{"empty body", "POST", "/v1/users", ``, 400, "body"},
		{"array body", "POST", "/v1/users", `[]`, 400, "body"},
		{"two values", "POST", "/v1/users", `{"firebase_uid":"x","role":"admin"} {}`, 400, "body"},
		{"too large", "PATCH", "/v1/experiments/exp", big, 413, "too-large"},
		{"empty patch", "PATCH", "/v1/experiments/exp", `{}`, 400, "body"},
		{"bad slug", "POST", "/v1/experiments", `{"id":"Bad Slug"}`, 400, "body.id"},
		{"bad path slug", "GET", "/v1/experiments/BAD", ``, 400, "path.id"},
		{"bad user id", "GET", "/v1/users/abc", ``, 400, "path.id"},
		{"zero user id", "GET", "/v1/users/0", ``, 400, "path.id"},
		{"bad member id", "PUT", "/v1/experiments/exp/members/-1", ``, 400, "path.userID"},
		{"bad limit", "GET", "/v1/users?limit=0", ``, 400, "query.limit"},
		{"huge limit", "GET", "/v1/users?limit=100000", ``, 400, "query.limit"},
		{"bad role filter", "GET", "/v1/users?role=king", ``, 400, "query.role"},
		{"bad cursor", "GET", "/v1/users?cursor=zzz", ``, 400, "query.cursor"},
		{"unknown query", "GET", "/v1/users?sort=name", ``, 400, "query.sort"},
		{"query on a create of a user", "POST", "/v1/users?role=admin", `{"firebase_uid":"x","role":"admin"}`, 400, "query.role"},
		{"query on a create of an experiment", "POST", "/v1/experiments?dry_run=1", `{"id":"exp2"}`, 400, "query.dry_run"},
		{"bad firebase flag", "DELETE", "/v1/users/1?firebase=maybe", ``, 400, "query.firebase"},
		{"unknown user", "GET", "/v1/users/999999", ``, 404, "not-found"},
		{"unknown route", "GET", "/v1/nope", ``, 404, "not-found"},
		{"wrong method", "POST", "/v1/me", ``, 405, "method-not-allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body any
			if tt.body != "" {
				body = tt.body
			}
			r := e.do(tt.method, tt.path, admin.token, body)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type %q", ct)
			}
			p := r.problem(t)
			if p.Status != tt.status || p.Detail == "" || p.RequestID == "" {
				t.Errorf("problem %+v", p)
			}
			if tt.status == 400 {
				var names []string
				for _, ip := range p.InvalidParams {
					names = append(names, ip.Name)
				}
				if !slices.Contains(names, tt.param) || !strings.Contains(p.Detail, tt.param) {
					t.Errorf("invalid_params %v / detail %q do not name %s", names, p.Detail, tt.param)
				}
				if p.Type != httpapi.ProblemBase+httpapi.TypeValidation {
					t.Errorf("type %q", p.Type)
				}
			} else if p.Type != httpapi.ProblemBase+tt.param {
				t.Errorf("type %q, want %s", p.Type, tt.param)
			}
		})
	}

	t.Run("content type", func(t *testing.T) {
		req, _ := http.NewRequest("POST", e.srv.URL+"/v1/experiments", strings.NewReader(`{"id":"x"}`))
		req.Header.Set("Authorization", "Bearer "+admin.token)
		req.Header.Set("Content-Type", "text/plain")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnsupportedMediaType {
			t.Errorf("status %d, want 415", resp.StatusCode)
		}
	})
	t.Run("request id", func(t *testing.T) {
		req, _ := http.NewRequest("GET", e.srv.URL+"/v1/me", nil)
		req.Header.Set("X-Request-ID", "abc-123")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("X-Request-ID"); got != "abc-123" {
			t.Errorf("X-Request-ID = %q", got)
		}
	})
}

func TestEraseAlsoDeletesTheFirebaseAccount(t *testing.T) {
	e := newEnv(t)
	admin := e.signUp(storage.RoleAdmin)
	sci := e.signUp(storage.RoleScientist)
	keep := e.signUp(storage.RoleScientist)
	ctx := testCtx(t)
	wantStatus(t, "erase keeping the account", e.do("DELETE", fmt.Sprintf("/v1/users/%d", keep.user.ID), admin.token, nil), http.StatusNoContent)
	if _, err := e.accounts.GetUser(ctx, keep.fb.UID); err != nil {
		t.Errorf("the Firebase account was touched without firebase=true: %v", err)
	}
	wantStatus(t, "erase with the account", e.do("DELETE", fmt.Sprintf("/v1/users/%d?firebase=true", sci.user.ID), admin.token, nil), http.StatusNoContent)
	if _, err := e.accounts.GetUser(ctx, sci.fb.UID); !fbauth.IsUserNotFound(err) {
		t.Errorf("Firebase account after erasure with firebase=true: %v", err)
	}
	// Never used before, so not cached: the emulator says the user is gone.
	wantStatus(t, "token of the deleted account", e.do("GET", "/v1/me", sci.token, nil), http.StatusUnauthorized)

	// An account already deleted in Firebase: the erasure goes on.
	gone := e.signUp(storage.RoleScientist)
	e.emu.Delete(t, gone.fb.UID)
	wantStatus(t, "erase a user whose account is already gone", e.do("DELETE", fmt.Sprintf("/v1/users/%d?firebase=true", gone.user.ID), admin.token, nil), http.StatusNoContent)
	if u, err := e.store.UserByID(ctx, gone.user.ID); err != nil || !u.Erased() {
		t.Errorf("user whose account was already gone: %+v, %v; want erased", u, err)
	}
}

// failingAccounts is a Firebase that cannot be reached.
type failingAccounts struct{ calls atomic.Int32 }

func (f *failingAccounts) DeleteUser(context.Context, string) error {
	f.calls.Add(1)
	return errors.New("connection refused")
}

// When the Firebase account cannot be deleted, nothing is erased, so that
// the same request can be made again; an erased user would have lost the uid
// that finds the account.
func TestEraseKeepsTheUserWhenTheAccountCannotBeDeleted(t *testing.T) {
	down := &failingAccounts{}
	e := newEnv(t, func(p *httpapi.Params) { p.Accounts = down })
	admin := e.signUp(storage.RoleAdmin)
	sci := e.signUp(storage.RoleScientist)
	ctx := testCtx(t)
	exp, err := e.store.CreateExperiment(ctx, storage.Experiment{Slug: "erase-retry", Name: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.AddMembership(ctx, exp.ID, sci.user.ID); err != nil {
		t.Fatal(err)
	}

	resp := e.do("DELETE", fmt.Sprintf("/v1/users/%d?firebase=true", sci.user.ID), admin.token, nil)
	wantStatus(t, "erase while Firebase is down", resp, http.StatusServiceUnavailable)
	if p := resp.problem(t); p.Type != httpapi.ProblemBase+httpapi.TypeUnavailable || !strings.Contains(p.Detail, "not erased") {
		t.Errorf("problem %+v: want type %s and a detail that says the user is not erased", p, httpapi.TypeUnavailable)
	}
	if down.calls.Load() != 1 {
		t.Errorf("DeleteUser called %d times, want 1", down.calls.Load())
	}
	u, err := e.store.UserByID(ctx, sci.user.ID)
	if err != nil || u.Erased() || u.FirebaseUID != sci.fb.UID {
		t.Fatalf("user after the failed erasure: %+v, %v; want it untouched", u, err)
	}
	wantStatus(t, "the member still reads", e.do("GET", "/v1/experiments/erase-retry/sensors", sci.token, nil), http.StatusOK)
	wantStatus(t, "erase without the account", e.do("DELETE", fmt.Sprintf("/v1/users/%d", sci.user.ID), admin.token, nil), http.StatusNoContent)
	if down.calls.Load() != 1 {
		t.Errorf("DeleteUser called without firebase=true")
	}
}

// panickingFeed is a live feed with a bug.
type panickingFeed struct{}

func (panickingFeed) Subscribe(string) (*live.Subscription, error) { panic("feed bug") }

// A panicking handler answers a problem+json 500 and an audit event of
// failure, and the server goes on.
func TestHandlerPanic(t *testing.T) {
	e := newEnv(t, func(p *httpapi.Params) { p.Live = panickingFeed{} })
	admin := e.signUp(storage.RoleAdmin)
	if _, err := e.store.CreateExperiment(testCtx(t), storage.Experiment{Slug: "boom", Name: "x"}); err != nil {
		t.Fatal(err)
	}
	resp := e.do("GET", "/v1/experiments/boom/measures/live", admin.token, nil)
	wantStatus(t, "panicking handler", resp, http.StatusInternalServerError)
	if p := resp.problem(t); p.Type != httpapi.ProblemBase+httpapi.TypeInternal || strings.Contains(p.Detail, "feed bug") || p.RequestID == "" {
		t.Errorf("problem %+v: want the internal type, a request id, and no panic text", p)
	}
	evs := auditEvents(t, e, "measures.live")
	if len(evs) != 1 || evs[0]["event.outcome"] != "failure" {
		t.Errorf("audit events of the panicking read: %v; want one failure", evs)
	}
	if !strings.Contains(e.logs.String(), "feed bug") {
		t.Error("the panic is not in the error log")
	}
	wantStatus(t, "the next request", e.do("GET", "/v1/me", admin.token, nil), http.StatusOK)
}

// The operational endpoints the api serves beside /v1 answer as the spec
// says.
func TestOperationalEndpoints(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector())
	var dbDown atomic.Bool
	e := newEnv(t, func(p *httpapi.Params) {
		ops := health.New(health.Options{Gatherer: reg})
		ops.AddCheck("database", func(context.Context) error {
			if dbDown.Load() {
				return errors.New("schema not migrated")
			}
			return nil
		})
		p.Fallback = ops.Handler()
	})
	wantStatus(t, "healthz", e.do("GET", "/healthz", "", nil), http.StatusOK)
	wantStatus(t, "readyz", e.do("GET", "/readyz", "", nil), http.StatusOK)
	dbDown.Store(true)
	wantStatus(t, "readyz, database down", e.do("GET", "/readyz", "", nil), http.StatusServiceUnavailable)
	m := e.do("GET", "/metrics", "", nil)
	wantStatus(t, "metrics", m, http.StatusOK)
	if !strings.Contains(string(m.body), "go_goroutines") {
		t.Errorf("metrics without the Go collector's series: %.200s", m.body)
	}
}
