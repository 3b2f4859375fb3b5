package storage_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mymonit/mymonit/pkg/storage"
)

func createUser(t testing.TB, s *storage.Store, uid string, role storage.Role) storage.User {
	t.Helper()
	u, err := s.CreateUser(testCtx(t), storage.User{FirebaseUID: uid, Name: "Name " + uid, Email: uid + "@example.org", Role: role})
	if err != nil {
		t.Fatalf("CreateUser(%q): %v", uid, err)
	}
	return u
}

func ptr[T any](v T) *T { return &v }

func TestUsers(t *testing.T) {
	clock := time.Date(2026, 3, 4, 5, 6, 7, 891234567, time.UTC)
	s, db := newStore(t, storage.StoreParams{Now: func() time.Time { return clock }})
	ctx := testCtx(t)

	in := storage.User{FirebaseUID: "uid-A", Name: "Ada Lovelace", Email: "ada@example.org", Role: storage.RoleScientist}
	got, err := s.CreateUser(ctx, in)
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	want := in
	stamp := clock.Truncate(time.Microsecond)
	want.ID, want.CreatedAt, want.UpdatedAt = got.ID, stamp, stamp
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("CreateUser (-want +got):\n%s", diff)
	}
	for name, read := range map[string]func() (storage.User, error){
		"UserByID":          func() (storage.User, error) { return s.UserByID(ctx, got.ID) },
		"UserByFirebaseUID": func() (storage.User, error) { return s.UserByFirebaseUID(ctx, "uid-A") },
	} {
		u, err := read()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if diff := cmp.Diff(want, u); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}

	errTests := []struct {
		name string
		err  func() error
		want error
	}{
		{"duplicate uid", func() error { _, err := s.CreateUser(ctx, in); return err }, storage.ErrConflict},
		{"uid differs by case", func() error {
			_, err := s.CreateUser(ctx, storage.User{FirebaseUID: "UID-A", Role: storage.RoleAdmin})
			return err
		}, nil},
		{"empty uid", func() error { _, err := s.CreateUser(ctx, storage.User{Role: storage.RoleAdmin}); return err }, storage.ErrInvalid},
		{"bad role", func() error { _, err := s.CreateUser(ctx, storage.User{FirebaseUID: "x", Role: "root"}); return err }, storage.ErrInvalid},
		{"name too long", func() error {
			_, err := s.CreateUser(ctx, storage.User{FirebaseUID: "y", Role: storage.RoleAdmin, Name: strings.Repeat("é", 201)})
			return err
		}, storage.ErrInvalid},
		{"unknown id", func() error { _, err := s.UserByID(ctx, 999999); return err }, storage.ErrNotFound},
		{"unknown uid", func() error { _, err := s.UserByFirebaseUID(ctx, "nope"); return err }, storage.ErrNotFound},
		{"empty uid lookup", func() error { _, err := s.UserByFirebaseUID(ctx, ""); return err }, storage.ErrNotFound},
		// The collation ignores trailing spaces; the store must not.
		{"uid with a trailing space", func() error {
			_, err := s.CreateUser(ctx, storage.User{FirebaseUID: "z ", Role: storage.RoleAdmin})
			return err
		}, storage.ErrInvalid},
		{"lookup with a trailing space", func() error { _, err := s.UserByFirebaseUID(ctx, "uid-A "); return err }, storage.ErrNotFound},
		{"caller with a trailing space", func() error { _, err := s.UserAndExperiment(ctx, "uid-A ", "erase-me"); return err }, storage.ErrNotFound},
		{"update unknown", func() error { _, err := s.UpdateUser(ctx, 999999, storage.UserUpdate{}); return err }, storage.ErrNotFound},
		{"update bad role", func() error {
			_, err := s.UpdateUser(ctx, got.ID, storage.UserUpdate{Role: ptr(storage.Role("x"))})
			return err
		}, storage.ErrInvalid},
		{"erase unknown", func() error { _, err := s.EraseUser(ctx, 999999); return err }, storage.ErrNotFound},
		{"list bad role", func() error { _, err := s.ListUsers(ctx, storage.UserFilter{Role: "x"}); return err }, storage.ErrInvalid},
		{"list bad limit", func() error { _, err := s.ListUsers(ctx, storage.UserFilter{Limit: 1001}); return err }, storage.ErrInvalid},
	}
	for _, tt := range errTests {
		if err := tt.err(); !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
	}

	clock = clock.Add(time.Second)
	up, err := s.UpdateUser(ctx, got.ID, storage.UserUpdate{Name: ptr("Ada King"), Role: ptr(storage.RoleAuditor)})
	if err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	want.Name, want.Role, want.UpdatedAt = "Ada King", storage.RoleAuditor, clock.Truncate(time.Microsecond)
	if diff := cmp.Diff(want, up); diff != "" {
		t.Errorf("UpdateUser (-want +got):\n%s", diff)
	}

	e := createExperiment(t, s, "erase-me")
	if err := s.AddMembership(ctx, e.ID, got.ID); err != nil {
		t.Fatalf("AddMembership: %v", err)
	}
	uid, err := s.EraseUser(ctx, got.ID)
	if err != nil || uid != "uid-A" {
		t.Fatalf("EraseUser = %q, %v; want uid-A", uid, err)
	}
	erased, err := s.UserByID(ctx, got.ID)
	if err != nil {
		t.Fatalf("UserByID after erasure: %v", err)
	}
	wantErased := storage.User{ID: got.ID, Role: storage.RoleAuditor, ErasedAt: clock.Truncate(time.Microsecond),
		CreatedAt: want.CreatedAt, UpdatedAt: clock.Truncate(time.Microsecond)}
	if diff := cmp.Diff(wantErased, erased); diff != "" {
		t.Errorf("erased user (-want +got):\n%s", diff)
	}
	if n := queryInt(t, db, "SELECT COUNT(*) FROM users WHERE id = ? AND name IS NULL AND email IS NULL AND firebase_uid IS NULL", got.ID); n != 1 {
		t.Errorf("erased row keeps personal data")
	}
	if n := queryInt(t, db, "SELECT COUNT(*) FROM memberships WHERE user_id = ?", got.ID); n != 0 {
		t.Errorf("erased user keeps %d memberships", n)
	}
	if _, err := s.UserByFirebaseUID(ctx, "uid-A"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("UserByFirebaseUID of an erased user: %v", err)
	}
	if uid, err := s.EraseUser(ctx, got.ID); err != nil || uid != "" {
		t.Errorf("EraseUser again = %q, %v; want no error", uid, err)
	}
	if _, err := s.UpdateUser(ctx, got.ID, storage.UserUpdate{Name: ptr("back")}); !errors.Is(err, storage.ErrConflict) {
		t.Errorf("UpdateUser of an erased user: %v, want ErrConflict", err)
	}
	if err := s.AddMembership(ctx, e.ID, got.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("AddMembership of an erased user: %v, want ErrNotFound", err)
	}
	// The uid of an erased user can be registered again.
	createUser(t, s, "uid-A", storage.RoleScientist)
}

func TestListUsersPaginates(t *testing.T) {
	s, _ := newStore(t, storage.StoreParams{})
	ctx := testCtx(t)
	var scientists []int64
	for i, role := range []storage.Role{"scientist", "admin", "scientist", "auditor", "scientist", "scientist"} {
		u := createUser(t, s, "u"+string(rune('a'+i)), role)
		if role == storage.RoleScientist {
			scientists = append(scientists, u.ID)
		}
	}
	tests := []struct {
		name   string
		filter storage.UserFilter
		pages  int
		want   []int64
	}{
		{"all scientists by 3", storage.UserFilter{Role: storage.RoleScientist, Limit: 3}, 2, scientists},
		{"all scientists by 1", storage.UserFilter{Role: storage.RoleScientist, Limit: 1}, 4, scientists},
		{"after the second", storage.UserFilter{Role: storage.RoleScientist, AfterID: scientists[1]}, 1, scientists[2:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ids []int64
			f := tt.filter
			pages := 0
			for {
				page, err := s.ListUsers(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				if len(page) == 0 {
					break
				}
				pages++
				for _, u := range page {
					ids = append(ids, u.ID)
				}
				f.AfterID = page[len(page)-1].ID
			}
			if diff := cmp.Diff(tt.want, ids); diff != "" || pages != tt.pages {
				t.Errorf("ids (-want +got):\n%s pages %d want %d", diff, pages, tt.pages)
			}
		})
	}
	if n, err := s.CountUsers(ctx, storage.RoleAdmin); err != nil || n != 1 {
		t.Errorf("CountUsers(admin) = %d, %v", n, err)
	}
}

func TestMemberships(t *testing.T) {
	s, _ := newStore(t, storage.StoreParams{})
	ctx := testCtx(t)
	a, b := createExperiment(t, s, "exp-a"), createExperiment(t, s, "exp-b")
	u1, u2 := createUser(t, s, "m1", storage.RoleScientist), createUser(t, s, "m2", storage.RoleScientist)

	for _, p := range [][2]int64{{a.ID, u1.ID}, {a.ID, u1.ID}, {a.ID, u2.ID}, {b.ID, u1.ID}} {
		if err := s.AddMembership(ctx, p[0], p[1]); err != nil {
			t.Fatalf("AddMembership%v: %v", p, err)
		}
	}
	members, err := s.ListMembers(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]storage.User{u1, u2}, members, cmpopts.EquateApproxTime(time.Millisecond)); diff != "" {
		t.Errorf("ListMembers (-want +got):\n%s", diff)
	}
	exps, err := s.ListUserExperiments(ctx, u1.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]storage.Experiment{a, b}, exps); diff != "" {
		t.Errorf("ListUserExperiments (-want +got):\n%s", diff)
	}

	tests := []struct {
		name string
		err  error
		want error
	}{
		{"add unknown experiment", s.AddMembership(ctx, 999999, u1.ID), storage.ErrNotFound},
		{"add unknown user", s.AddMembership(ctx, a.ID, 999999), storage.ErrNotFound},
		{"remove", s.RemoveMembership(ctx, a.ID, u2.ID), nil},
		{"remove again", s.RemoveMembership(ctx, a.ID, u2.ID), nil},
		{"remove unknown experiment", s.RemoveMembership(ctx, 999999, u2.ID), storage.ErrNotFound},
		{"remove unknown user", s.RemoveMembership(ctx, a.ID, 999999), storage.ErrNotFound},
		{"members of unknown", func() error { _, err := s.ListMembers(ctx, 999999); return err }(), storage.ErrNotFound},
		{"experiments of unknown", func() error { _, err := s.ListUserExperiments(ctx, 999999); return err }(), storage.ErrNotFound},
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, tt.want) || (tt.want == nil && tt.err != nil) {
			t.Errorf("%s: err = %v, want %v", tt.name, tt.err, tt.want)
		}
	}
	for _, c := range []struct {
		exp, user int64
		want      bool
	}{{a.ID, u1.ID, true}, {a.ID, u2.ID, false}, {b.ID, u2.ID, false}} {
		if got, err := s.IsMember(ctx, c.exp, c.user); err != nil || got != c.want {
			t.Errorf("IsMember(%d, %d) = %v, %v; want %v", c.exp, c.user, got, err, c.want)
		}
	}
	u3 := createUser(t, s, "m3", storage.RoleAdmin)
	if _, err := s.EraseUser(ctx, u3.ID); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		uid, slug string
		want      storage.Caller
		err       error
	}{
		{"m1", "exp-a", storage.Caller{User: u1, Experiment: a, Found: true, Member: true}, nil},
		{"m2", "exp-a", storage.Caller{User: u2, Experiment: a, Found: true}, nil}, // removed above
		{"m1", "exp-b", storage.Caller{User: u1, Experiment: b, Found: true, Member: true}, nil},
		{"m2", "exp-b", storage.Caller{User: u2, Experiment: b, Found: true}, nil},
		{"m1", "exp-c", storage.Caller{User: u1}, nil},
		{"m1", "exp-a ", storage.Caller{User: u1}, nil}, // PAD SPACE would match exp-a
		{"m1", "", storage.Caller{User: u1}, nil},
		{"nope", "exp-a", storage.Caller{}, storage.ErrNotFound},
		{"nope", "exp-a ", storage.Caller{}, storage.ErrNotFound},
		{"", "exp-a", storage.Caller{}, storage.ErrNotFound},
		{"m3", "exp-a", storage.Caller{}, storage.ErrNotFound}, // erased
	} {
		got, err := s.UserAndExperiment(ctx, c.uid, c.slug)
		if !errors.Is(err, c.err) || (c.err == nil && err != nil) {
			t.Errorf("UserAndExperiment(%q, %q): err = %v, want %v", c.uid, c.slug, err, c.err)
			continue
		}
		if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("UserAndExperiment(%q, %q) (-want +got):\n%s", c.uid, c.slug, diff)
		}
	}
}

func TestMembershipRevocations(t *testing.T) {
	s, _ := newStore(t, storage.StoreParams{})
	ctx := testCtx(t)
	a, b := createExperiment(t, s, "rev-a"), createExperiment(t, s, "rev-b")
	u := createUser(t, s, "r1", storage.RoleScientist)
	revoked := func(exp int64) bool {
		t.Helper()
		got, err := s.WasRevoked(ctx, exp, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	steps := []struct {
		name         string
		do           func() error
		wantA, wantB bool
	}{
		{"never a member", func() error { return nil }, false, false},
		{"removing a non-member records nothing", func() error { return s.RemoveMembership(ctx, a.ID, u.ID) }, false, false},
		{"added", func() error { return s.AddMembership(ctx, a.ID, u.ID) }, false, false},
		{"removed", func() error { return s.RemoveMembership(ctx, a.ID, u.ID) }, true, false},
		{"removed again", func() error { return s.RemoveMembership(ctx, a.ID, u.ID) }, true, false},
		{"added back", func() error { return s.AddMembership(ctx, a.ID, u.ID) }, false, false},
		{"removed once more", func() error { return s.RemoveMembership(ctx, a.ID, u.ID) }, true, false},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if gotA, gotB := revoked(a.ID), revoked(b.ID); gotA != st.wantA || gotB != st.wantB {
			t.Errorf("%s: WasRevoked = %v, %v; want %v, %v", st.name, gotA, gotB, st.wantA, st.wantB)
		}
	}
	if err := s.DeleteExperiment(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if revoked(a.ID) {
		t.Error("a revocation outlived its experiment")
	}
}

func TestUpdateAndDeleteExperiment(t *testing.T) {
	s, db := newStore(t, storage.StoreParams{})
	ctx := testCtx(t)
	e := createExperiment(t, s, "upd")
	up, err := s.UpdateExperiment(ctx, e.ID, storage.ExperimentUpdate{Description: ptr("new")})
	if err != nil {
		t.Fatal(err)
	}
	if up.Description != "new" || up.Name != e.Name || up.Slug != e.Slug {
		t.Errorf("UpdateExperiment = %+v", up)
	}
	if _, err := s.UpdateExperiment(ctx, e.ID, storage.ExperimentUpdate{Name: ptr(strings.Repeat("n", 201))}); !errors.Is(err, storage.ErrInvalid) {
		t.Errorf("long name: %v", err)
	}
	if _, err := s.UpdateExperiment(ctx, 999999, storage.ExperimentUpdate{}); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("unknown: %v", err)
	}
	withData := createExperiment(t, s, "with-data")
	ensureSeries(t, s, withData.ID, "t")
	u := createUser(t, s, "d1", storage.RoleScientist)
	if err := s.AddMembership(ctx, e.ID, u.ID); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		id   int64
		want error
	}{
		{"with series", withData.ID, storage.ErrConflict},
		{"plain", e.ID, nil},
		{"again", e.ID, storage.ErrNotFound},
	}
	for _, tt := range tests {
		if err := s.DeleteExperiment(ctx, tt.id); !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
	if n := queryInt(t, db, "SELECT COUNT(*) FROM memberships WHERE experiment_id = ?", e.ID); n != 0 {
		t.Errorf("memberships of a deleted experiment: %d", n)
	}
}
