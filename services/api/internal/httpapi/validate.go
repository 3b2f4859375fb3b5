package httpapi

import (
	"fmt"
	"maps"
	"net/http"
	"net/mail"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/mymonit/mymonit/pkg/storage"
)

// slugPattern is the experiment id of the message contract.
var slugPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// maxDescription bounds an experiment description (TEXT).
const maxDescription = 65535

// validation collects the bad parameters of a request.
type validation []InvalidParam

func (v *validation) add(name, reason string) {
	*v = append(*v, InvalidParam{Name: name, Reason: reason})
}

// err returns the problem, or nil when nothing was wrong.
func (v validation) err() error {
	if len(v) == 0 {
		return nil
	}
	parts := make([]string, len(v))
	for i, p := range v {
		parts[i] = p.Name + ": " + p.Reason
	}
	p := newProblem(http.StatusBadRequest, TypeValidation, strings.Join(parts, "; "))
	p.InvalidParams = v
	return p
}

func (v *validation) text(name, value string, min, max int) {
	n := utf8.RuneCountInString(value)
	switch {
	case !utf8.ValidString(value):
		v.add(name, "must be valid UTF-8")
	case n < min && min == 1:
		v.add(name, "is required")
	case n < min || n > max:
		v.add(name, fmt.Sprintf("must be %d to %d characters", min, max))
	}
}

func (v *validation) email(name, value string) {
	if value == "" {
		return
	}
	a, err := mail.ParseAddress(value)
	if err != nil || a.Address != value || utf8.RuneCountInString(value) > storage.MaxEmailLen {
		v.add(name, fmt.Sprintf("must be a plain e-mail address (user@domain) of at most %d characters", storage.MaxEmailLen))
	}
}

func (v *validation) role(name, value string) {
	if !storage.Role(value).Valid() {
		v.add(name, "must be one of admin, scientist, auditor")
	}
}

func (v *validation) uid(name, value string) {
	if value == "" || len(value) > storage.MaxFirebaseUIDLen || !utf8.ValidString(value) || strings.TrimSpace(value) != value {
		v.add(name, fmt.Sprintf("must be a Firebase uid of 1 to %d bytes without surrounding spaces", storage.MaxFirebaseUIDLen))
	}
}

func (b userCreate) validate() error {
	var v validation
	v.text("body.name", b.Name, 0, storage.MaxUserNameLen)
	v.email("body.email", b.Email)
	v.uid("body.firebase_uid", b.FirebaseUID)
	v.role("body.role", b.Role)
	return v.err()
}

func (b userPatch) validate() error {
	var v validation
	if b.Name == nil && b.Email == nil && b.Role == nil {
		v.add("body", "must set at least one of name, email, role")
	}
	if b.Name != nil {
		v.text("body.name", *b.Name, 0, storage.MaxUserNameLen)
	}
	if b.Email != nil {
		v.email("body.email", *b.Email)
	}
	if b.Role != nil {
		v.role("body.role", *b.Role)
	}
	return v.err()
}

func (b experimentCreate) validate() error {
	var v validation
	if !slugPattern.MatchString(b.ID) {
		v.add("body.id", "must match [a-z0-9][a-z0-9._-]{0,63}")
	}
	v.text("body.name", b.Name, 0, 200)
	if len(b.Description) > maxDescription || !utf8.ValidString(b.Description) {
		v.add("body.description", fmt.Sprintf("must be valid UTF-8 of at most %d bytes", maxDescription))
	}
	return v.err()
}

func (b experimentPatch) validate() error {
	var v validation
	if b.Name == nil && b.Description == nil {
		v.add("body", "must set at least one of name, description")
	}
	if b.Name != nil {
		v.text("body.name", *b.Name, 0, 200)
	}
	if b.Description != nil && (len(*b.Description) > maxDescription || !utf8.ValidString(*b.Description)) {
		v.add("body.description", fmt.Sprintf("must be valid UTF-8 of at most %d bytes", maxDescription))
	}
	return v.err()
}

// pathUserID parses a user id path parameter.
func pathUserID(r *http.Request, name string) (int64, error) {
	raw := r.PathValue(name)
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 || strconv.FormatInt(id, 10) != raw {
		return 0, invalid("path."+name, "must be a positive integer user id")
	}
	return id, nil
}

// pathSlug parses an experiment id path parameter.
func pathSlug(r *http.Request) (string, error) {
	slug := r.PathValue("id")
	if !slugPattern.MatchString(slug) {
		return "", invalid("path.id", "must be an experiment id matching [a-z0-9][a-z0-9._-]{0,63}")
	}
	return slug, nil
}

// listQuery is the parsed query of GET /v1/users.
type listQuery struct {
	role    storage.Role
	limit   int
	afterID int64
}

// Page sizes of lists.
const (
	defaultLimit = 100
	maxLimit     = 1000
)

func parseListQuery(r *http.Request) (listQuery, error) {
	q := listQuery{limit: defaultLimit}
	var v validation
	values := r.URL.Query()
	for _, name := range slices.Sorted(maps.Keys(values)) {
		switch name {
		case "role", "limit", "cursor":
			if len(values[name]) > 1 {
				v.add("query."+name, "must be given once")
			}
		default:
			v.add("query."+name, "unknown parameter (allowed: role, limit, cursor)")
		}
	}
	if raw := values.Get("role"); raw != "" {
		v.role("query.role", raw)
		q.role = storage.Role(raw)
	}
	if raw := values.Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > maxLimit {
			v.add("query.limit", fmt.Sprintf("must be an integer from 1 to %d", maxLimit))
		}
		q.limit = n
	}
	if raw := values.Get("cursor"); raw != "" {
		id, err := decodeCursor(raw)
		if err != nil {
			v.add("query.cursor", "is not a cursor returned by this API")
		}
		q.afterID = id
	}
	return q, v.err()
}

// onlyQuery rejects query parameters other than allowed.
func onlyQuery(r *http.Request, allowed ...string) error {
	var v validation
	values := r.URL.Query()
	for _, name := range slices.Sorted(maps.Keys(values)) {
		vals := values[name]
		ok := false
		for _, a := range allowed {
			ok = ok || a == name
		}
		switch {
		case !ok:
			v.add("query."+name, "unknown parameter")
		case len(vals) > 1:
			v.add("query."+name, "must be given once")
		}
	}
	return v.err()
}
