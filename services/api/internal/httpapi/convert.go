package httpapi

import (
	"time"

	"github.com/mymonit/mymonit/pkg/storage"
)

// apiUser is a user on the wire.
type apiUser struct {
	ID          int64      `json:"id"`
	FirebaseUID string     `json:"firebase_uid,omitempty"`
	Name        string     `json:"name,omitempty"`
	Email       string     `json:"email,omitempty"`
	Role        string     `json:"role"`
	Erased      bool       `json:"erased"`
	ErasedAt    *time.Time `json:"erased_at,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
}

func userToAPI(u storage.User) apiUser {
	out := apiUser{
		ID: u.ID, FirebaseUID: u.FirebaseUID, Name: u.Name, Email: u.Email, Role: string(u.Role),
		Erased: u.Erased(), CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt,
	}
	if u.Erased() {
		t := u.ErasedAt
		out.ErasedAt = &t
	}
	return out
}

func usersToAPI(us []storage.User) []apiUser {
	out := make([]apiUser, len(us))
	for i, u := range us {
		out[i] = userToAPI(u)
	}
	return out
}

// apiExperiment is an experiment on the wire; its id is the slug.
type apiExperiment struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

func experimentToAPI(e storage.Experiment) apiExperiment {
	return apiExperiment{ID: e.Slug, Name: e.Name, Description: e.Description, CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt}
}

func experimentsToAPI(es []storage.Experiment) []apiExperiment {
	out := make([]apiExperiment, len(es))
	for i, e := range es {
		out[i] = experimentToAPI(e)
	}
	return out
}

// userCreate is the body of POST /v1/users.
type userCreate struct {
	Name        string `json:"name"`
	Email       string `json:"email"`
	FirebaseUID string `json:"firebase_uid"`
	Role        string `json:"role"`
}

func (b userCreate) toDB() storage.User {
	return storage.User{Name: b.Name, Email: b.Email, FirebaseUID: b.FirebaseUID, Role: storage.Role(b.Role)}
}

// userPatch is the body of PATCH /v1/users/{id}.
type userPatch struct {
	Name  *string `json:"name"`
	Email *string `json:"email"`
	Role  *string `json:"role"`
}

func (b userPatch) toDB() storage.UserUpdate {
	up := storage.UserUpdate{Name: b.Name, Email: b.Email}
	if b.Role != nil {
		r := storage.Role(*b.Role)
		up.Role = &r
	}
	return up
}

// experimentCreate is the body of POST /v1/experiments.
type experimentCreate struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
}

func (b experimentCreate) toDB() storage.Experiment {
	return storage.Experiment{Slug: b.ID, Name: b.Name, Description: b.Description}
}

// experimentPatch is the body of PATCH /v1/experiments/{id}.
type experimentPatch struct {
	Name        *string `json:"name"`
	Description *string `json:"description"`
}

func (b experimentPatch) toDB() storage.ExperimentUpdate {
	return storage.ExperimentUpdate{Name: b.Name, Description: b.Description}
}
