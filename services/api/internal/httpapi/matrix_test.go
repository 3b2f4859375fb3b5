package httpapi_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/mymonit/mymonit/pkg/storage"
)

// TestAuthorizationMatrix calls every route as every kind of caller, on an
// experiment the scientist and the auditor are members of ("own") and one
// they are not ("foreign"), and asserts the exact status: no object-level
// leak.
func TestAuthorizationMatrix(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	admin := e.signUp(storage.RoleAdmin)
	sci := e.signUp(storage.RoleScientist)
	aud := e.signUp(storage.RoleAuditor)
	unknown := e.signUp("")
	target := e.signUp(storage.RoleScientist) // the user admin routes act on

	exps := map[string]storage.Experiment{}
	for _, slug := range []string{"own", "foreign", "del-own", "del-foreign"} {
		x, err := e.store.CreateExperiment(ctx, storage.Experiment{Slug: slug, Name: slug})
		if err != nil {
			t.Fatal(err)
		}
		exps[slug] = x
	}
	for _, slug := range []string{"own", "del-own"} {
		for _, u := range []account{sci, aud} {
			if err := e.store.AddMembership(ctx, exps[slug].ID, u.user.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A scientist whose memberships were revoked, and an erased user.
	revoked := e.signUp(storage.RoleScientist)
	for _, slug := range []string{"own", "del-own"} {
		if err := e.store.AddMembership(ctx, exps[slug].ID, revoked.user.ID); err != nil {
			t.Fatal(err)
		}
		if err := e.store.RemoveMembership(ctx, exps[slug].ID, revoked.user.ID); err != nil {
			t.Fatal(err)
		}
	}
	erased := e.signUp(storage.RoleScientist)
	if _, err := e.store.EraseUser(ctx, erased.user.ID); err != nil {
		t.Fatal(err)
	}
	// Users erased by the admin's DELETE calls, one per scope.
	doomed := map[string]int64{"own": e.signUp(storage.RoleScientist).user.ID, "foreign": e.signUp(storage.RoleScientist).user.ID}

	type call struct {
		method, path string
		body         func() any
	}
	n := 0
	newUser := func() any {
		n++
		return map[string]any{"firebase_uid": fmt.Sprintf("matrix-uid-%d", n), "role": "scientist"}
	}
	newExp := func() any {
		n++
		return map[string]any{"id": fmt.Sprintf("matrix-%d", n)}
	}
	patchUser := func() any { return map[string]any{"role": "scientist"} }
	patchExp := func() any { return map[string]any{"description": "changed"} }

	// routes by pattern; scope picks own/foreign objects.
	routes := []struct {
		pattern string
		call    func(scope string) call
		// statuses by role for each scope; missing scope uses "own".
		admin, scientist, auditor map[string]int
	}{
		{"GET /v1/openapi.json", func(string) call { return call{"GET", "/v1/openapi.json", nil} },
			all(200), all(200), all(200)},
		{"GET /v1/me", func(string) call { return call{"GET", "/v1/me", nil} },
			all(200), all(200), all(200)},
		{"POST /v1/users", func(string) call { return call{"POST", "/v1/users", newUser} },
			all(201), all(403), all(403)},
		{"GET /v1/users", func(string) call { return call{"GET", "/v1/users", nil} },
			all(200), all(403), all(403)},
		{"GET /v1/users/{id}", func(string) call { return call{"GET", fmt.Sprintf("/v1/users/%d", target.user.ID), nil} },
			all(200), all(403), all(403)},
		{"PATCH /v1/users/{id}", func(string) call {
			return call{"PATCH", fmt.Sprintf("/v1/users/%d", target.user.ID), patchUser}
		}, all(200), all(403), all(403)},
		{"GET /v1/users/{id}/experiments", func(string) call {
			return call{"GET", fmt.Sprintf("/v1/users/%d/experiments", target.user.ID), nil}
		}, all(200), all(403), all(403)},
		{"POST /v1/experiments", func(string) call { return call{"POST", "/v1/experiments", newExp} },
			all(201), all(403), all(403)},
		{"GET /v1/experiments", func(string) call { return call{"GET", "/v1/experiments", nil} },
			all(200), all(200), all(200)},
		{"GET /v1/experiments/{id}", func(s string) call { return call{"GET", "/v1/experiments/" + s, nil} },
			all(200), map[string]int{"own": 200, "foreign": 404}, all(200)},
		{"GET /v1/experiments/{id}/measures", func(s string) call { return call{"GET", "/v1/experiments/" + s + "/measures", nil} },
			all(200), map[string]int{"own": 200, "foreign": 404}, map[string]int{"own": 200, "foreign": 403}},
		{"GET /v1/experiments/{id}/sensors", func(s string) call { return call{"GET", "/v1/experiments/" + s + "/sensors", nil} },
			all(200), map[string]int{"own": 200, "foreign": 404}, map[string]int{"own": 200, "foreign": 403}},
		{"PATCH /v1/experiments/{id}", func(s string) call { return call{"PATCH", "/v1/experiments/" + s, patchExp} },
			all(200), all(403), all(403)},
		{"GET /v1/experiments/{id}/members", func(s string) call { return call{"GET", "/v1/experiments/" + s + "/members", nil} },
			all(200), all(403), all(403)},
		{"PUT /v1/experiments/{id}/members/{userID}", func(s string) call {
			return call{"PUT", fmt.Sprintf("/v1/experiments/%s/members/%d", s, target.user.ID), nil}
		}, all(204), all(403), all(403)},
		{"DELETE /v1/experiments/{id}/members/{userID}", func(s string) call {
			return call{"DELETE", fmt.Sprintf("/v1/experiments/%s/members/%d", s, target.user.ID), nil}
		}, all(204), all(403), all(403)},
		{"DELETE /v1/experiments/{id}", func(s string) call { return call{"DELETE", "/v1/experiments/del-" + s, nil} },
			all(204), all(403), all(403)},
		// The matrix's server has no live feed: a caller allowed to watch gets
		// 503, which proves authorization runs first (streams: live_test.go).
		{"GET /v1/experiments/{id}/measures/live", func(s string) call {
			return call{"GET", "/v1/experiments/" + s + "/measures/live", nil}
		}, all(503), map[string]int{"own": 503, "foreign": 404}, map[string]int{"own": 503, "foreign": 403}},
		{"DELETE /v1/users/{id}", func(s string) call { return call{"DELETE", fmt.Sprintf("/v1/users/%d", doomed[s]), nil} },
			all(204), all(403), all(403)},
	}
	callers := []struct {
		name  string
		token string
		want  func(i int, scope string) int
	}{
		{"no token", "", func(i int, _ string) int { return publicOr(routes[i].pattern, 401) }},
		{"unknown user", unknown.token, func(i int, _ string) int { return publicOr(routes[i].pattern, 403) }},
		{"erased user", erased.token, func(i int, _ string) int { return publicOr(routes[i].pattern, 403) }},
		// Revoked: a foreign scientist everywhere, except that an experiment
		// it knew says 403 rather than 404.
		{"revoked scientist", revoked.token, func(i int, s string) int {
			if st := routes[i].scientist["foreign"]; !(s == "own" && st == http.StatusNotFound) {
				return st
			}
			return http.StatusForbidden
		}},
		{"auditor", aud.token, func(i int, s string) int { return routes[i].auditor[s] }},
		{"scientist", sci.token, func(i int, s string) int { return routes[i].scientist[s] }},
		{"admin", admin.token, func(i int, s string) int { return routes[i].admin[s] }}, // last: it changes things
	}
	covered := map[string]bool{}
	for _, c := range callers {
		for i, rt := range routes {
			covered[rt.pattern] = true
			for _, scope := range []string{"own", "foreign"} {
				cl := rt.call(scope)
				var body any
				if cl.body != nil {
					body = cl.body()
				}
				r := e.do(cl.method, cl.path, c.token, body)
				if want := c.want(i, scope); r.status != want {
					t.Errorf("%s %s (%s) as %s: %d, want %d: %s", cl.method, cl.path, scope, c.name, r.status, want, r.body)
				}
			}
		}
	}
	for _, p := range serverRoutes(t) {
		if !covered[p] {
			t.Errorf("route %s is not in the matrix", p)
		}
	}
}

func all(status int) map[string]int { return map[string]int{"own": status, "foreign": status} }

func publicOr(pattern string, status int) int {
	if pattern == "GET /v1/openapi.json" {
		return http.StatusOK
	}
	return status
}
