package httpapi

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/mymonit/mymonit/pkg/logging"
	"github.com/mymonit/mymonit/pkg/storage"
)

// Cursors are opaque to clients: base64url of "u:<last id>".
func encodeCursor(id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("u:" + strconv.FormatInt(id, 10)))
}

func decodeCursor(s string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return 0, err
	}
	raw, ok := strings.CutPrefix(string(b), "u:")
	if !ok {
		return 0, errors.New("bad cursor")
	}
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		return 0, errors.New("bad cursor")
	}
	return id, nil
}

// meResponse is GET /v1/me.
type meResponse struct {
	User apiUser `json:"user"`
}

func (s *Server) me(w http.ResponseWriter, r *http.Request) error {
	if err := onlyQuery(r); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, meResponse{User: userToAPI(caller(r))})
	return nil
}

// ---- users ----

func (s *Server) createUser(w http.ResponseWriter, r *http.Request) error {
	if err := onlyQuery(r); err != nil {
		return err
	}
	var body userCreate
	if err := decodeBody(w, r, &body); err != nil {
		return err
	}
	if err := body.validate(); err != nil {
		return err
	}
	u, err := s.store.CreateUser(r.Context(), body.toDB())
	if errors.Is(err, storage.ErrConflict) {
		return conflict("a user with this firebase_uid exists")
	}
	if err != nil {
		return err
	}
	infoOf(r.Context()).targetUser = u.ID
	w.Header().Set("Location", fmt.Sprintf("/v1/users/%d", u.ID))
	writeJSON(w, http.StatusCreated, userToAPI(u))
	return nil
}

// userList is GET /v1/users.
type userList struct {
	Users      []apiUser `json:"users"`
	NextCursor string    `json:"next_cursor,omitempty"`
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) error {
	q, err := parseListQuery(r)
	if err != nil {
		return err
	}
	us, err := s.store.ListUsers(r.Context(), storage.UserFilter{Role: q.role, AfterID: q.afterID, Limit: q.limit})
	if err != nil {
		return err
	}
	out := userList{Users: usersToAPI(us)}
	if len(us) == q.limit {
		out.NextCursor = encodeCursor(us[len(us)-1].ID)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// targetUser parses {id} as the user acted upon.
func targetUser(r *http.Request) (int64, error) {
	id, err := pathUserID(r, "id")
	if err == nil {
		infoOf(r.Context()).targetUser = id
	}
	return id, err
}

func userNotFound(id int64) error { return notFound(fmt.Sprintf("user %d does not exist", id)) }

func (s *Server) getUser(w http.ResponseWriter, r *http.Request) error {
	id, err := targetUser(r)
	if err != nil {
		return err
	}
	if err := onlyQuery(r); err != nil {
		return err
	}
	u, err := s.store.UserByID(r.Context(), id)
	if errors.Is(err, storage.ErrNotFound) {
		return userNotFound(id)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, userToAPI(u))
	return nil
}

func (s *Server) updateUser(w http.ResponseWriter, r *http.Request) error {
	id, err := targetUser(r)
	if err != nil {
		return err
	}
	if err := onlyQuery(r); err != nil {
		return err
	}
	var body userPatch
	if err := decodeBody(w, r, &body); err != nil {
		return err
	}
	if err := body.validate(); err != nil {
		return err
	}
	if id == caller(r).ID && body.Role != nil && storage.Role(*body.Role) != storage.RoleAdmin {
		return conflict("administrators cannot demote themselves (so that an admin always remains)")
	}
	u, err := s.store.UpdateUser(r.Context(), id, body.toDB())
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return userNotFound(id)
	case errors.Is(err, storage.ErrConflict):
		return conflict(fmt.Sprintf("user %d is erased and cannot be changed", id))
	case err != nil:
		return err
	}
	writeJSON(w, http.StatusOK, userToAPI(u))
	return nil
}

// eraseUser is the GDPR erasure. With ?firebase=true it also deletes the
// Firebase account (501 when the server has no Firebase admin access).
func (s *Server) eraseUser(w http.ResponseWriter, r *http.Request) error {
	id, err := targetUser(r)
	if err != nil {
		return err
	}
	if err := onlyQuery(r, "firebase"); err != nil {
		return err
	}
	deleteAccount := false
	if raw := r.URL.Query().Get("firebase"); raw != "" {
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return invalid("query.firebase", "must be true or false")
		}
		deleteAccount = b
	}
	if deleteAccount && s.accounts == nil {
		return newProblem(http.StatusNotImplemented, TypeNotImplemented,
			"this server cannot delete Firebase accounts; erase without firebase=true and delete the account in the Firebase console")
	}
	if id == caller(r).ID {
		return conflict("administrators cannot erase themselves")
	}
	// The account goes first: when Firebase fails, nothing is erased and the
	// same request can be made again (a missing account is no error).
	deleted := ""
	if deleteAccount {
		u, err := s.store.UserByID(r.Context(), id)
		if errors.Is(err, storage.ErrNotFound) {
			return userNotFound(id)
		}
		if err != nil {
			return err
		}
		if err := s.deleteAccount(r, id, u.FirebaseUID); err != nil {
			return err
		}
		deleted = u.FirebaseUID
	}
	uid, err := s.store.EraseUser(r.Context(), id)
	if errors.Is(err, storage.ErrNotFound) {
		return userNotFound(id)
	}
	if err != nil {
		return err
	}
	// The uid changed between the read and the erasure: that account goes too.
	if deleteAccount && uid != deleted {
		if err := s.deleteAccount(r, id, uid); err != nil {
			return err
		}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// deleteAccount deletes the Firebase account uid of user id, if any. A
// failure is 503.
func (s *Server) deleteAccount(r *http.Request, id int64, uid string) error {
	if uid == "" {
		return nil
	}
	if err := s.accounts.DeleteUser(r.Context(), uid); err != nil {
		s.log.Warn("the Firebase account of a user to erase could not be deleted", zap.Error(err),
			logging.UserID(strconv.FormatInt(id, 10)), zap.String("http.request.id", infoOf(r.Context()).id))
		return newProblem(http.StatusServiceUnavailable, TypeUnavailable,
			fmt.Sprintf("the Firebase account of user %d could not be deleted, so the user is not erased; try again later, or erase without firebase=true and delete the account in the Firebase console", id))
	}
	return nil
}

// experimentList is GET /v1/experiments and GET /v1/users/{id}/experiments.
type experimentList struct {
	Experiments []apiExperiment `json:"experiments"`
}

func (s *Server) userExperiments(w http.ResponseWriter, r *http.Request) error {
	id, err := targetUser(r)
	if err != nil {
		return err
	}
	if err := onlyQuery(r); err != nil {
		return err
	}
	es, err := s.store.ListUserExperiments(r.Context(), id)
	if errors.Is(err, storage.ErrNotFound) {
		return userNotFound(id)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, experimentList{Experiments: experimentsToAPI(es)})
	return nil
}

// ---- experiments ----

func experimentNotFound(slug string) error {
	return notFound(fmt.Sprintf("experiment %q does not exist or is not visible to you", slug))
}

// experiment returns the experiment of {id} if the caller may see it:
// admins and auditors see all, scientists only those they are members of.
// A scientist whose membership was revoked gets 403; anything else is the
// same 404 as an unknown experiment.
func (s *Server) experiment(r *http.Request) (storage.Experiment, error) {
	slug, err := pathSlug(r)
	if err != nil {
		return storage.Experiment{}, err
	}
	info := infoOf(r.Context())
	info.experiment = slug
	c := info.access
	if c == nil {
		// Only the routes under experimentPath call this, and authorize
		// reads the experiment of those whose id is a slug.
		return storage.Experiment{}, fmt.Errorf("route %s reads experiment %q that was not read with its caller", info.route, slug)
	}
	if !c.Found {
		return storage.Experiment{}, experimentNotFound(slug)
	}
	if caller(r).Role == storage.RoleScientist && !c.Member {
		return storage.Experiment{}, s.notMember(r, c.Experiment)
	}
	return c.Experiment, nil
}

// dataExperiment is experiment for the routes that read an experiment's
// data (measures, sensors, the live stream): those are for its members and
// admins. An auditor sees every experiment but reads the data of those it is
// a member of only; anything else is 403.
func (s *Server) dataExperiment(r *http.Request) (storage.Experiment, error) {
	e, err := s.experiment(r)
	if err != nil {
		return e, err
	}
	if !mayReadData(caller(r).Role, infoOf(r.Context()).access.Member) {
		return storage.Experiment{}, forbidden(fmt.Sprintf("the data of experiment %q is for its members: auditors read the experiments, and the data of those they are members of", e.Slug))
	}
	return e, nil
}

// mayReadData reports whether a user of role, member or not of an
// experiment, reads its data (see dataExperiment).
func mayReadData(role storage.Role, member bool) bool {
	return role == storage.RoleAdmin || member
}

// notMember is the answer to a scientist that is not a member of e: 403
// when its membership was revoked (it knew the experiment already, so
// saying so reveals nothing, and it learns what happened), else the 404 of
// an unknown experiment.
func (s *Server) notMember(r *http.Request, e storage.Experiment) error {
	revoked, err := s.store.WasRevoked(r.Context(), e.ID, caller(r).ID)
	if err != nil {
		return err
	}
	if revoked {
		return forbidden(fmt.Sprintf("your membership of experiment %q was revoked; ask an administrator", e.Slug))
	}
	return experimentNotFound(e.Slug)
}

func (s *Server) createExperiment(w http.ResponseWriter, r *http.Request) error {
	if err := onlyQuery(r); err != nil {
		return err
	}
	var body experimentCreate
	if err := decodeBody(w, r, &body); err != nil {
		return err
	}
	if err := body.validate(); err != nil {
		return err
	}
	infoOf(r.Context()).experiment = body.ID
	e, err := s.store.CreateExperiment(r.Context(), body.toDB())
	if errors.Is(err, storage.ErrConflict) {
		return conflict(fmt.Sprintf("experiment %q exists", body.ID))
	}
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/experiments/"+e.Slug)
	writeJSON(w, http.StatusCreated, experimentToAPI(e))
	return nil
}

func (s *Server) listExperiments(w http.ResponseWriter, r *http.Request) error {
	if err := onlyQuery(r); err != nil {
		return err
	}
	var (
		es  []storage.Experiment
		err error
	)
	if u := caller(r); u.Role == storage.RoleScientist {
		es, err = s.store.ListUserExperiments(r.Context(), u.ID)
	} else {
		es, err = s.store.ListExperiments(r.Context())
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, experimentList{Experiments: experimentsToAPI(es)})
	return nil
}

func (s *Server) getExperiment(w http.ResponseWriter, r *http.Request) error {
	e, err := s.experiment(r)
	if err != nil {
		return err
	}
	if err := onlyQuery(r); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, experimentToAPI(e))
	return nil
}

func (s *Server) updateExperiment(w http.ResponseWriter, r *http.Request) error {
	e, err := s.experiment(r)
	if err != nil {
		return err
	}
	if err := onlyQuery(r); err != nil {
		return err
	}
	var body experimentPatch
	if err := decodeBody(w, r, &body); err != nil {
		return err
	}
	if err := body.validate(); err != nil {
		return err
	}
	updated, err := s.store.UpdateExperiment(r.Context(), e.ID, body.toDB())
	if errors.Is(err, storage.ErrNotFound) {
		return experimentNotFound(e.Slug)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, experimentToAPI(updated))
	return nil
}

func (s *Server) deleteExperiment(w http.ResponseWriter, r *http.Request) error {
	e, err := s.experiment(r)
	if err != nil {
		return err
	}
	if err := onlyQuery(r); err != nil {
		return err
	}
	err = s.store.DeleteExperiment(r.Context(), e.ID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return experimentNotFound(e.Slug)
	case errors.Is(err, storage.ErrConflict):
		return conflict(fmt.Sprintf("experiment %q has stored measures and cannot be deleted: the API does not delete measurement data", e.Slug))
	case err != nil:
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ---- memberships ----

// memberList is GET /v1/experiments/{id}/members.
type memberList struct {
	Members []apiUser `json:"members"`
}

func (s *Server) listMembers(w http.ResponseWriter, r *http.Request) error {
	e, err := s.experiment(r)
	if err != nil {
		return err
	}
	if err := onlyQuery(r); err != nil {
		return err
	}
	us, err := s.store.ListMembers(r.Context(), e.ID)
	if errors.Is(err, storage.ErrNotFound) {
		return experimentNotFound(e.Slug)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, memberList{Members: usersToAPI(us)})
	return nil
}

// membership resolves {id} and {userID}.
func (s *Server) membership(r *http.Request) (storage.Experiment, int64, error) {
	e, err := s.experiment(r)
	if err != nil {
		return storage.Experiment{}, 0, err
	}
	uid, err := pathUserID(r, "userID")
	if err != nil {
		return storage.Experiment{}, 0, err
	}
	infoOf(r.Context()).targetUser = uid
	return e, uid, onlyQuery(r)
}

func (s *Server) addMember(w http.ResponseWriter, r *http.Request) error {
	e, uid, err := s.membership(r)
	if err != nil {
		return err
	}
	err = s.store.AddMembership(r.Context(), e.ID, uid)
	if errors.Is(err, storage.ErrNotFound) {
		return notFound(fmt.Sprintf("user %d does not exist or is erased, or experiment %q does not exist", uid, e.Slug))
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) removeMember(w http.ResponseWriter, r *http.Request) error {
	e, uid, err := s.membership(r)
	if err != nil {
		return err
	}
	err = s.store.RemoveMembership(r.Context(), e.ID, uid)
	if errors.Is(err, storage.ErrNotFound) {
		return notFound(fmt.Sprintf("user %d or experiment %q does not exist", uid, e.Slug))
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
