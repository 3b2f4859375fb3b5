package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Role is what a user may do in MyMONIT.
type Role string

// The roles of the users table.
const (
	// RoleAdmin manages users, experiments and memberships.
	RoleAdmin Role = "admin"
	// RoleScientist reads the experiments it is a member of.
	RoleScientist Role = "scientist"
	// RoleAuditor reads every experiment and the audit trail.
	RoleAuditor Role = "auditor"
)

// Valid reports whether r is one of the roles.
func (r Role) Valid() bool {
	switch r {
	case RoleAdmin, RoleScientist, RoleAuditor:
		return true
	}
	return false
}

// Limits of the users columns.
const (
	MaxFirebaseUIDLen = 128 // bytes
	MaxUserNameLen    = 200 // characters
	MaxEmailLen       = 320 // characters
)

// User is a MyMONIT user. Name and Email are personal data: never log them
// (wrap Email in logging.Email where it must travel).
type User struct {
	// ID is assigned by the database; it is the pseudonymous identifier used
	// in audit events.
	ID int64
	// FirebaseUID is the Firebase user id of the ID tokens; empty once
	// erased.
	FirebaseUID string
	// Name and Email are empty once erased.
	Name  string
	Email string
	Role  Role
	// ErasedAt is the time of the GDPR erasure; zero for a live user.
	ErasedAt time.Time
	// CreatedAt and UpdatedAt are UTC, to the microsecond.
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Erased reports whether the user was erased.
func (u User) Erased() bool { return !u.ErasedAt.IsZero() }

func validateUserFields(name, email string, role Role) error {
	if !role.Valid() {
		return fmt.Errorf("role %q is not admin, scientist or auditor: %w", role, ErrInvalid)
	}
	if !utf8.ValidString(name) || utf8.RuneCountInString(name) > MaxUserNameLen {
		return fmt.Errorf("user name must be valid UTF-8 of at most %d characters: %w", MaxUserNameLen, ErrInvalid)
	}
	if !utf8.ValidString(email) || utf8.RuneCountInString(email) > MaxEmailLen {
		return fmt.Errorf("user email must be valid UTF-8 of at most %d characters: %w", MaxEmailLen, ErrInvalid)
	}
	return nil
}

func validateUID(uid string) error {
	if uid == "" || len(uid) > MaxFirebaseUIDLen || !utf8.ValidString(uid) {
		return fmt.Errorf("firebase uid must be 1 to %d bytes of UTF-8: %w", MaxFirebaseUIDLen, ErrInvalid)
	}
	// The column's collation ignores trailing spaces: "x " would be "x".
	if strings.HasSuffix(uid, " ") {
		return fmt.Errorf("firebase uid must not end with a space: %w", ErrInvalid)
	}
	return nil
}

// nullString stores "" as NULL.
func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// CreateUser stores u (its ID, ErasedAt and times are ignored) and returns
// it as stored. A Firebase uid that is already taken is ErrConflict; a bad
// role, uid, name or email is ErrInvalid.
func (s *Store) CreateUser(ctx context.Context, u User) (User, error) {
	if err := validateUID(u.FirebaseUID); err != nil {
		return User{}, err
	}
	if err := validateUserFields(u.Name, u.Email, u.Role); err != nil {
		return User{}, err
	}
	now := s.timestamp()
	res, err := s.db.ExecContext(ctx,
		"INSERT INTO users (firebase_uid, name, email, role, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
		u.FirebaseUID, nullString(u.Name), nullString(u.Email), string(u.Role), now, now)
	if mysqlErrno(err) == errDupEntry {
		return User{}, fmt.Errorf("create user: firebase uid taken: %w", ErrConflict)
	}
	if err != nil {
		return User{}, fmt.Errorf("create user: %w", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return User{}, fmt.Errorf("create user: %w", err)
	}
	u.ID, u.ErasedAt, u.CreatedAt, u.UpdatedAt = id, time.Time{}, now, now
	return u, nil
}

const userColumns = "id, firebase_uid, name, email, role, erased_at, created_at, updated_at"

func scanUser(sc interface{ Scan(...any) error }) (User, error) {
	var (
		u               User
		uid, name, mail sql.NullString
		role            string
		erased          sql.NullTime
	)
	if err := sc.Scan(&u.ID, &uid, &name, &mail, &role, &erased, &u.CreatedAt, &u.UpdatedAt); err != nil {
		return User{}, err
	}
	u.FirebaseUID, u.Name, u.Email, u.Role = uid.String, name.String, mail.String, Role(role)
	if erased.Valid {
		u.ErasedAt = erased.Time
	}
	return u, nil
}

// rowQuerier is *sql.DB or *sql.Tx.
type rowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *Store) userWhere(ctx context.Context, q rowQuerier, what, where string, arg any) (User, error) {
	u, err := scanUser(q.QueryRowContext(ctx, "SELECT "+userColumns+" FROM users WHERE "+where, arg))
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, fmt.Errorf("user %s: %w", what, ErrNotFound)
	}
	if err != nil {
		return User{}, fmt.Errorf("user %s: %w", what, err)
	}
	return u, nil
}

// UserByID returns the user with the id (erased or not), or ErrNotFound.
func (s *Store) UserByID(ctx context.Context, id int64) (User, error) {
	return s.userWhere(ctx, s.db, fmt.Sprint(id), "id = ?", id)
}

// UserByFirebaseUID returns the user with the Firebase uid, or ErrNotFound.
// Erased users have no uid and are never found this way.
func (s *Store) UserByFirebaseUID(ctx context.Context, uid string) (User, error) {
	if validateUID(uid) != nil {
		return User{}, fmt.Errorf("user by firebase uid: %w", ErrNotFound)
	}
	return s.userWhere(ctx, lookups{s}, "by firebase uid", "firebase_uid = ?", uid)
}

// UserFilter selects a page of ListUsers.
type UserFilter struct {
	// Role, when set, keeps only users with that role.
	Role Role
	// AfterID is the keyset cursor: only users with a larger id.
	AfterID int64
	// Limit is the page size (1 to 1000; 0 means 100).
	Limit int
}

// ListUsers returns users (erased ones included) ordered by id.
func (s *Store) ListUsers(ctx context.Context, f UserFilter) ([]User, error) {
	if f.Role != "" && !f.Role.Valid() {
		return nil, fmt.Errorf("list users: role %q: %w", f.Role, ErrInvalid)
	}
	if f.Limit == 0 {
		f.Limit = 100
	}
	if f.Limit < 0 || f.Limit > 1000 {
		return nil, fmt.Errorf("list users: limit %d not in 1..1000: %w", f.Limit, ErrInvalid)
	}
	q := "SELECT " + userColumns + " FROM users WHERE id > ?"
	args := []any{f.AfterID}
	if f.Role != "" {
		q += " AND role = ?"
		args = append(args, string(f.Role))
	}
	q += " ORDER BY id LIMIT ?"
	args = append(args, f.Limit)
	return s.queryUsers(ctx, "list users", q, args...)
}

func (s *Store) queryUsers(ctx context.Context, what, q string, args ...any) ([]User, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	out := []User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// CountUsers returns the number of live (not erased) users with the role.
func (s *Store) CountUsers(ctx context.Context, role Role) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx,
		"SELECT COUNT(*) FROM users WHERE role = ? AND erased_at IS NULL", string(role)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count users: %w", err)
	}
	return n, nil
}

// UserUpdate lists the fields UpdateUser changes; nil fields are kept.
type UserUpdate struct {
	Name  *string
	Email *string
	Role  *Role
}

// UpdateUser changes the given fields of a live user and returns it. An
// unknown user is ErrNotFound; an erased user is ErrConflict (erasure is
// final: its personal data cannot come back).
func (s *Store) UpdateUser(ctx context.Context, id int64, up UserUpdate) (User, error) {
	var out User
	err := s.InTx(ctx, func(tx *sql.Tx) error {
		u, err := s.userWhere(ctx, tx, fmt.Sprint(id), "id = ? FOR UPDATE", id)
		if err != nil {
			return err
		}
		if u.Erased() {
			return fmt.Errorf("update user %d: user is erased: %w", id, ErrConflict)
		}
		if up.Name != nil {
			u.Name = *up.Name
		}
		if up.Email != nil {
			u.Email = *up.Email
		}
		if up.Role != nil {
			u.Role = *up.Role
		}
		if err := validateUserFields(u.Name, u.Email, u.Role); err != nil {
			return err
		}
		u.UpdatedAt = s.timestamp()
		if _, err := tx.ExecContext(ctx, "UPDATE users SET name = ?, email = ?, role = ?, updated_at = ? WHERE id = ?",
			nullString(u.Name), nullString(u.Email), string(u.Role), u.UpdatedAt, id); err != nil {
			return fmt.Errorf("update user %d: %w", id, err)
		}
		out = u
		return nil
	})
	return out, err
}

// EraseUser is the GDPR erasure of a user: name, email and Firebase uid are
// set to NULL, erased_at is set, the memberships are deleted, and the row
// stays so that audit events still resolve its id. It returns the Firebase
// uid the user had (empty when it was already erased: erasing twice is not
// an error), for a caller that also deletes the Firebase account. An
// unknown user is ErrNotFound.
func (s *Store) EraseUser(ctx context.Context, id int64) (firebaseUID string, err error) {
	err = s.InTx(ctx, func(tx *sql.Tx) error {
		u, err := s.userWhere(ctx, tx, fmt.Sprint(id), "id = ? FOR UPDATE", id)
		if err != nil {
			return err
		}
		firebaseUID = u.FirebaseUID
		if _, err := tx.ExecContext(ctx, "DELETE FROM memberships WHERE user_id = ?", id); err != nil {
			return fmt.Errorf("erase user %d: memberships: %w", id, err)
		}
		if u.Erased() {
			return nil
		}
		now := s.timestamp()
		if _, err := tx.ExecContext(ctx,
			"UPDATE users SET name = NULL, email = NULL, firebase_uid = NULL, erased_at = ?, updated_at = ? WHERE id = ?",
			now, now, id); err != nil {
			return fmt.Errorf("erase user %d: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return firebaseUID, nil
}
